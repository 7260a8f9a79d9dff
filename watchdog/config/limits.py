"""Every limit on the size of what rollout-watchdog reads, in one place.

Input beyond a limit is refused with a :class:`~watchdog.errors.ConfigError` (or a
:class:`~watchdog.errors.ScenarioError`) that names the file, the limit, and, where
raising it makes sense, the environment variable that raises it
(``WATCHDOG_LIMIT_<NAME>``, a positive integer; set it in the unit's ``Environment=``
for the daemon). The defaults are far above any real configuration (the shipped rules
are 7 files, 60 KB, 4,100 YAML nodes) and keep the worst input under them to seconds of
CPU and well under a GiB: they bound ``check``, ``run --check`` and a daemon's reload
(which parses on the main thread) alike.

==================  ===========  ==========================================================
limit               default      what it bounds
==================  ===========  ==========================================================
FILE_BYTES          16 MiB       one config or rule file (non-regular files are refused)
YAML_NODES          500,000      nodes built from one load of a config or a rule set, all
                                 its files together; an alias counts at every use (alias
                                 bombs are refused before they are expanded)
YAML_DEPTH          64           nesting of one YAML document, aliases expanded (fixed)
MODULES             10,000       modules in one rule set (``include_defaults`` makes each
                                 a full module, which the node count does not see)
ISSUES_PER_FILE     100          problems listed per rule file (the rest are counted)
SECRET_BYTES        64 KiB       a secret read ``from_file``/``from_credential`` (fixed)
SCENARIO_BYTES      1 GiB        one backtest scenario file
REPLAY_TICKS        100,000      ticks of one replay (``end / step_seconds``)
==================  ===========  ==========================================================
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "WATCHDOG_LIMIT_"


class LimitValueError(ValueError):
    """A ``WATCHDOG_LIMIT_*`` variable is set to something other than a positive integer."""


@dataclass(frozen=True)
class Limit:
    """One named limit; :meth:`value` is the default or its environment override."""

    name: str
    default: int
    unit: str
    raisable: bool = True

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name

    def value(self, env: Mapping[str, str] | None = None) -> int:
        if not self.raisable:
            return self.default
        raw = (os.environ if env is None else env).get(self.env)
        if raw is None or not raw.strip():
            return self.default
        try:
            number = int(raw.replace("_", "").strip())
        except ValueError:
            number = 0
        if number <= 0:
            raise LimitValueError(f"{self.env} must be a positive integer, got {raw!r}")
        return number

    def refusal(self, prefix: str, limit: int | None = None) -> str:
        """"<prefix> N <unit> (limit NAME; how to raise it)", e.g. prefix "more than"."""
        shown = self.default if limit is None else limit
        hint = (f"; if this input is meant, raise it with {self.env}=<n>" if self.raisable
                else "")
        return f"{prefix} {shown:,} {self.unit} (limit {self.name}{hint})"


FILE_BYTES = Limit("FILE_BYTES", 16 * 1024 * 1024, "bytes")
YAML_NODES = Limit("YAML_NODES", 500_000, "YAML nodes")
YAML_DEPTH = Limit("YAML_DEPTH", 64, "levels", raisable=False)
MODULES = Limit("MODULES", 10_000, "modules")
ISSUES_PER_FILE = 100
SECRET_BYTES = Limit("SECRET_BYTES", 64 * 1024, "bytes", raisable=False)
SCENARIO_BYTES = Limit("SCENARIO_BYTES", 1024 * 1024 * 1024, "bytes")
REPLAY_TICKS = Limit("REPLAY_TICKS", 100_000, "ticks")


class ReadRefused(OSError):
    """A file was not read: not a regular file, or larger than its limit."""


def read_bytes(path: str | Path, limit: Limit) -> bytes:
    """The file's bytes: a regular file of at most ``limit`` bytes, else ReadRefused.

    Opened without blocking (a FIFO would wait for a writer) and checked on the open file
    (no race with a swap); read with a cap, so a file that grows while it is read is
    refused rather than read without end.
    """
    most = limit.value()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReadRefused("not a regular file")
        data = handle.read(most + 1)
    if len(data) > most:
        raise ReadRefused(limit.refusal("larger than", most))
    return data


def read_text(path: str | Path, limit: Limit) -> str:
    """:func:`read_bytes` decoded as UTF-8 (UnicodeDecodeError as it comes)."""
    return read_bytes(path, limit).decode("utf-8")
