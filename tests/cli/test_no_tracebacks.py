"""Issue 18, item 5: no tracebacks. A port in use names where the port came from (the
config's ``api.port`` with file:line, or WATCHDOG_API_PORT); ``check`` on a daemon config
says to use ``run --check``. Real daemon processes, a real socket holding the port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from watchdog.cli.main import cli

EXE = Path(sys.executable).parent / "rollout-watchdog"
SCENARIO = Path(__file__).parent.parent / "data" / "scenarios" / "aa-clean-1000.jsonl"


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def config(tmp_path: Path, api: str) -> Path:
    path = tmp_path / "watchdog.yaml"
    path.write_text(f"db: {tmp_path / 'j.db'}\n"
                    f"source: {{plugin: file, options: {{path: \"{SCENARIO}\"}}}}\n"
                    f"actuators: [{{plugin: file, options: {{path: \"{tmp_path}/{{module}}.json"
                    "\"}}]\nmodules: [checkout]\n" + api)
    return path


def run(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    return subprocess.run([str(EXE), "run", "--config", str(path)], capture_output=True,
                          text=True, timeout=60, env={**clean, **(env or {})})


def test_a_port_in_use_from_the_config_names_api_port_and_its_line(tmp_path: Path,
                                                                   taken: int) -> None:
    path = config(tmp_path, f"api:\n  enabled: true\n  port: {taken}\n")
    done = run(path)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2
    assert f"error: {path}:7: api.port: cannot listen on 127.0.0.1:{taken}: " \
           "Address already in use" in done.stderr, done.stderr
    assert "WATCHDOG_API_PORT" not in done.stderr


def test_a_port_in_use_from_the_environment_names_the_variable(tmp_path: Path,
                                                               taken: int) -> None:
    done = run(config(tmp_path, "api: {enabled: true}\n"),
               env={"WATCHDOG_API_PORT": str(taken)})
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2
    assert f"error: WATCHDOG_API_PORT: cannot listen on 127.0.0.1:{taken}" in done.stderr


def test_check_on_a_daemon_config_says_use_run_check(tmp_path: Path) -> None:
    path = config(tmp_path, "")
    done = CliRunner().invoke(cli, ["check", str(path)])
    assert done.exit_code == 1
    assert f"{path}: this is a daemon config; use rollout-watchdog run --check --config " \
           f"{path}" in done.output, done.output
    assert "Traceback" not in done.output
