"""Fixtures for the journal tests: ``pg`` (a real PostgreSQL server for the session; a skip
when it cannot start, a failure under WATCHDOG_REQUIRE_REAL_SERVICES=1) and ``open_backend``
(a fresh, empty journal of either backend, closed after the test).

The server: Debian's ``postgresql`` binaries, initdb in a temp folder, ``postgres`` on
127.0.0.1 at a free port (unix socket in the same folder), run as the ``postgres`` user when
we are root (it refuses root), stopped and its folder removed at the end of the session.
Each test gets its own schema of one database (fast: no CREATE DATABASE per test).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from watchdog.journal import open_journal
from watchdog.journal.base import Journal

REQUIRE_ENV = "WATCHDOG_REQUIRE_REAL_SERVICES"
BACKENDS = ["sqlite", "postgresql"]
DATABASE = "watchdog_test"



def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        initdb, postgres = find_bin("initdb"), find_bin("postgres")
        if initdb is None or postgres is None:
            raise FileNotFoundError("PostgreSQL's initdb/postgres binaries are not installed"
                                    " (Debian package postgresql)")
        self.pg_ctl = str(Path(postgres).with_name("pg_ctl"))
        self.folder = Path(tempfile.mkdtemp(prefix="watchdog-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.folder, 0o700)
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--no-sync", "--no-instructions"])
        self.log = open(self.folder / "postgres.log", "ab")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(
            [*self._as, postgres, "-D", str(self.data), "-h", "127.0.0.1", "-p",
             str(self.port), "-k", str(self.folder), "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self._schemas = itertools.count(1)
        try:
            self._wait_ready(60.0)
            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}".encode())
        except BaseException:
            self.stop()
            raise

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run([*self._as, *cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.folder / "postgres.log")
                                   .read_text(errors="replace")[-2000:])
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, database: str = DATABASE, schema: str | None = None) -> str:
        base = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return base if schema is None else f"{base}?options={quote(f'-csearch_path={schema}')}"

    def new_schema(self) -> str:
        """A URL of the test database whose tables live in a new, empty schema."""
        name = f"t{next(self._schemas)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}".encode())
        return self.url(schema=name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            subprocess.run([*self._as, self.pg_ctl, "-D", str(self.data), "-m", "immediate",
                            "-w", "-t", "30", "stop"], capture_output=True, check=False)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def missing(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1; run scripts/ensure-postgresql.sh as root)")
    pytest.skip(f"{reason} (run scripts/ensure-postgresql.sh as root to install it)")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | Exception]:
    try:
        server = PgServer()
    except (OSError, RuntimeError, KeyError, psycopg.Error) as err:  # reported by ``pg``
        yield err
        return
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg(pg_server: PgServer | Exception) -> PgServer:
    if isinstance(pg_server, Exception):
        missing(f"PostgreSQL cannot start here: {pg_server}")
    assert isinstance(pg_server, PgServer)
    return pg_server


JournalUrl = Callable[[], str]


@pytest.fixture(params=BACKENDS)
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> JournalUrl:
    """Makes the URL (or path) of a new, empty journal of the test's backend; every call
    to it names the same journal."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg").new_schema()
    else:
        url = str(tmp_path / "journal.db")
    return lambda: url


@pytest.fixture
def open_backend(journal_url: JournalUrl) -> Iterator[Callable[[], Journal]]:
    """Opens connections to the test's journal (each one closed after the test)."""
    opened: list[Journal] = []

    def make() -> Journal:
        j = open_journal(journal_url())
        opened.append(j)
        return j

    yield make
    for j in opened:
        j.close()


@pytest.fixture
def journal(open_backend: Callable[[], Journal]) -> Journal:
    return open_backend()
