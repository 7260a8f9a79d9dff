"""The ``command`` actuator: runs a program (never a shell) to flip a module's flags.

Configuration (keyword arguments, from YAML)::

    actuator: command
    argv: [kubectl, set, env, deployment/checkout, "CHECKOUT_TRAFFIC={traffic_percent}",
           "CHECKOUT_VERSION={version}", "WATCHDOG_KILL_SWITCH={kill_switch}"]
    read_argv: [/usr/local/bin/flags-get, "{module}"]   # optional; prints the JSON state
    timeout: 30            # seconds; then the whole process group is killed
    cwd: null              # working directory
    env: {}                # extra environment variables
    inherit_env: true      # start from the daemon's environment (PATH, HOME, KUBECONFIG...)

Placeholders ``{module}`` ``{version}`` ``{traffic_percent}`` ``{kill_switch}`` and
``{decision_id}`` are substituted inside each argument separately, so a value always stays
within the one argument it was written in: ``"{version}"`` becomes ``v2``, ``"--traffic=
{traffic_percent}"`` becomes ``--traffic=25``, and no value can add arguments or shell syntax
(there is no shell). ``traffic_percent`` is ``25`` (or ``12.5``), ``kill_switch`` ``1``/``0``.
The same values are in the environment as ``ROLLOUT_MODULE``, ``ROLLOUT_VERSION``,
``ROLLOUT_TRAFFIC_PERCENT``, ``ROLLOUT_KILL_SWITCH`` and ``ROLLOUT_DECISION_ID``. Unknown
``{names}`` are a configuration error (a typo must not reach production as literal text).

Exit status 0 is success; otherwise the error carries the status and the tail of stderr. The
program runs in its own session; on timeout its process group gets SIGTERM, then SIGKILL.
Read-back: ``read_argv`` (only ``{module}`` may appear) must print the JSON state
(``{"version": "v2", "traffic_percent": 25, "kill_switch": false, "decision_id": "42"}``) or
``null``; without it, :meth:`read` returns the last state the command confirmed. The command
should be idempotent (``kubectl set env`` is): applying the same state twice runs it twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence

from pydantic import Field

from watchdog.actuators import FlagState
from watchdog.actuators.base import ActuatorBase
from watchdog.actuators.flagcodec import (
    bool_text,
    check_readback,
    check_state,
    describe,
    from_dict,
    percent_text,
)
from watchdog.config.schema import Duration
from watchdog.errors import ActuatorError, ConfigError, Issue
from watchdog.pluginbase import PluginOptions

log = logging.getLogger(__name__)

PLACEHOLDERS = ("module", "version", "traffic_percent", "kill_switch", "decision_id")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
KILL_GRACE_SECONDS = 2.0


def _config_error(message: str) -> ConfigError:
    return ConfigError([Issue("actuator command", 0, message)])


def _check_argv(key: str, argv: object, allowed: Sequence[str]) -> list[str]:
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence) or not argv \
            or not all(isinstance(a, str) for a in argv):
        raise _config_error(f"{key} must be a non-empty list of strings (no shell command line)")
    args = [str(a) for a in argv]
    unknown = sorted({m[1] for a in args for m in _PLACEHOLDER.finditer(a)} - set(allowed))
    if unknown:
        raise _config_error(f"{key}: unknown placeholder(s) {', '.join(unknown)} "
                            f"(allowed: {', '.join(allowed)})")
    return args


def substitute(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Each argument on its own: values never leave the argument they were written in."""
    return [_PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), arg) for arg in argv]


def placeholder_values(state: FlagState) -> dict[str, str]:
    return {"module": state.module, "version": state.version,
            "traffic_percent": percent_text(state.traffic_percent),
            "kill_switch": bool_text(state.kill_switch), "decision_id": state.decision_id}


def tail(data: bytes, limit: int) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class CommandOptions(PluginOptions):
    """Options of the ``command`` actuator."""

    argv: list[str] = Field(min_length=1, description="The command that applies a decision, "
                            "as a list; placeholders {decision_id} {module} {version} "
                            "{traffic_percent} {kill_switch} are filled in.")
    read_argv: list[str] | None = Field(default=None, description="The command that prints "
                                        "a module's flags as JSON ({module} filled in).")
    timeout: Duration = Field(default=30.0, gt=0, description="A run's timeout (then killed).")
    cwd: str | None = Field(default=None, description="Working folder.")
    env: dict[str, str] | None = Field(default=None, description="Extra environment "
                                       "variables (values may be secrets).")
    inherit_env: bool = Field(default=True, description="Pass the daemon's environment on.")
    stderr_tail: int = Field(default=1000, ge=0, description="Characters of stderr kept in "
                             "an error.")


class CommandActuator(ActuatorBase):
    name = "command"
    Options = CommandOptions
    secret_options = frozenset({"env"})

    def __init__(self, argv: Sequence[str], *, read_argv: Sequence[str] | None = None,
                 timeout: float = 30.0, cwd: str | None = None,
                 env: Mapping[str, str] | None = None, inherit_env: bool = True,
                 stderr_tail: int = 1000) -> None:
        self.argv = _check_argv("argv", argv, PLACEHOLDERS)
        self.read_argv = None if read_argv is None else \
            _check_argv("read_argv", read_argv, ("module",))
        if timeout <= 0:
            raise _config_error("timeout must be positive")
        self.timeout = float(timeout)
        self.cwd = cwd
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.inherit_env = inherit_env
        self.stderr_tail = stderr_tail
        self._confirmed: dict[str, FlagState] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CommandActuator(argv={self.argv!r}, read_argv={self.read_argv!r})"

    def apply(self, state: FlagState) -> None:
        where = f"command actuator ({self.argv[0]})"
        check_state(state, where)
        values = placeholder_values(state)
        self._run(substitute(self.argv, values), values, where)
        if self.read_argv is not None:
            check_readback(state, self.read(state.module), where)
        log.info("command actuator: %s confirmed by %s", describe(state), self.argv[0])
        with self._lock:
            self._confirmed[state.module] = state

    def read(self, module: str) -> FlagState | None:
        if self.read_argv is None:
            with self._lock:
                return self._confirmed.get(module)
        where = f"command actuator read-back ({self.read_argv[0]})"
        out = self._run(substitute(self.read_argv, {"module": module}), {"module": module},
                        where)
        if not out.strip():
            return None
        try:
            data = json.loads(out)
        except ValueError as err:
            raise ActuatorError(f"{where}: output is not JSON: {tail(out, 200)!r}") from err
        return from_dict(data, module, where)

    def _environment(self, values: Mapping[str, str]) -> dict[str, str]:
        env = dict(os.environ) if self.inherit_env else {}
        env.update(self.env)
        env.update({f"ROLLOUT_{k.upper()}": v for k, v in values.items()})
        return env

    def _run(self, args: list[str], values: Mapping[str, str], where: str) -> bytes:
        """Stdout of a successful run; ActuatorError otherwise."""
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=self.cwd,
                                    env=self._environment(values), start_new_session=True)
        except OSError as err:
            raise ActuatorError(f"{where}: cannot start: {err.strerror or err}") from err
        try:
            out, err_out = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            err_out = _kill_group(proc)
            raise ActuatorError(f"{where}: timed out after {self.timeout:g}s; process group "
                                f"killed{_stderr_suffix(err_out, self.stderr_tail)}") from None
        if proc.returncode != 0:
            raise ActuatorError(f"{where}: exit status {proc.returncode}"
                                f"{_stderr_suffix(err_out, self.stderr_tail)}")
        return out


def _stderr_suffix(err_out: bytes, limit: int) -> str:
    text = tail(err_out, limit)
    return f"; stderr: {text}" if text else ""


def _kill_group(proc: subprocess.Popen[bytes]) -> bytes:
    """SIGTERM the process group, SIGKILL what is left; the stderr collected so far."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived or ignored SIGTERM
    try:
        _, err_out = proc.communicate(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:  # a descendant left the group and holds our pipes
        proc.kill()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()
        return b""
    return err_out or b""
