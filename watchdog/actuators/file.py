"""The ``file`` actuator: writes a module's flags to a file that the service reads.

Configuration (keyword arguments, from YAML)::

    actuator: file
    path: /etc/checkout/rollout-{module}.env   # {module}: one file per module (default shape)
    format: env            # json | yaml | env | flagd (see watchdog.actuators.fileformats)
    mode: "0640"           # permissions (octal string; YAML 0640 works too, 640 is refused)
    group: checkout        # optional group owner (else an existing file's group is kept)
    prefix: ""             # env only: variable name prefix, e.g. MANA_ -> MANA_CHECKOUT_TRAFFIC
    kill_switch_key: null  # name of the global kill switch (per-format default)

Writes are atomic: a temporary file in the same directory gets the permissions, the content,
a flush and an fsync, is renamed over the target, and the directory is fsynced; a concurrent
reader sees the old file or the new one, never a mixture. Writers are serialised with an
advisory ``flock`` on the directory, so modules sharing one file (a path without ``{module}``)
do not lose each other's updates. Content identical to what is there is not rewritten (one
effect: the file's inode and mtime stay, a systemd path unit does not fire twice). After each
apply the file is read again, parsed and compared with the state.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field

from watchdog.actuators import FlagState
from watchdog.actuators.base import ActuatorBase
from watchdog.actuators.fileformats import FORMATS, make_format
from watchdog.actuators.flagcodec import check_readback, check_state, describe
from watchdog.errors import ActuatorError, ConfigError, Issue
from watchdog.pluginbase import PluginOptions

log = logging.getLogger(__name__)


def _config_error(message: str) -> ConfigError:
    return ConfigError([Issue("actuator file", 0, message)])


def parse_mode(mode: int | str) -> int:
    """``0o640``, ``"0640"``, ``"640"`` and ``"0o640"`` all mean rw-r-----."""
    if isinstance(mode, str):
        text = mode.strip().lower().removeprefix("0o")
        if not re.fullmatch(r"[0-7]{1,3}|0[0-7]{3}", text):
            raise _config_error(f"mode {mode!r} is not an octal permission like '0640'")
        value = int(text, 8)
    elif isinstance(mode, int) and not isinstance(mode, bool):
        value = mode
    else:
        raise _config_error(f"mode {mode!r} is not an octal permission like '0640'")
    if not 0 <= value <= 0o777:  # no setuid/sticky bits; a YAML 640 (decimal) lands here
        raise _config_error(f"mode {mode!r} is out of range; write it as a string, e.g. '0640'")
    return value


def _resolve_group(group: str | int | None) -> int | None:
    if group is None or isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise _config_error(f"unknown group {group!r}") from None


def safe_file_part(module: str) -> str:
    """A module name made safe for a file name: no separators, no leading dot."""
    part = re.sub(r"[^A-Za-z0-9._-]", "_", module)
    return "_" + part[1:] if part.startswith(".") else part


class FileActuatorOptions(PluginOptions):
    """Options of the ``file`` actuator."""

    path: str = Field(min_length=1, description="Flag file per module; {module} and "
                      "{state_dir} are filled in, e.g. \"{state_dir}/{module}.json\".")
    format: Literal["json", "yaml", "env", "flagd"] = Field(
        default="json", description="json, yaml, env (KEY=value lines) or flagd (a flagd "
        "flag definition file).")
    mode: int | str = Field(default=0o640, json_schema_extra={"doc_default": "\"0640\""},
                            description="Permissions, an octal string like "
                            "\"0640\" (YAML 0640 works too; 640 is refused).")
    group: str | int | None = Field(default=None, description="Group owner (else an "
                                    "existing file's group is kept).")
    prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_]*$",
                        description="Prefix of the keys written (letters, digits, _).")
    kill_switch_key: str | None = Field(default=None, description="Key of the global kill "
                                        "switch (default: the format's own).")


class FileActuator(ActuatorBase):
    name = "file"
    Options = FileActuatorOptions

    def __init__(self, path: str | os.PathLike[str], format: str = "json", *,
                 mode: int | str = 0o640, group: str | int | None = None, prefix: str = "",
                 kill_switch_key: str | None = None) -> None:
        if format not in FORMATS:
            raise _config_error(f"unknown format {format!r} (one of {', '.join(FORMATS)})")
        if not re.fullmatch(r"[A-Za-z0-9_]*", prefix):
            raise _config_error(f"prefix {prefix!r} may hold only letters, digits and _")
        if format == "env" and kill_switch_key is not None \
                and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", kill_switch_key):
            raise _config_error(f"kill_switch_key {kill_switch_key!r} is not a variable name")
        self.path_template = os.fspath(path)
        if not self.path_template:
            raise _config_error("path is empty")
        left = self.path_template.replace("{module}", "")
        if "{" in left or "}" in left:
            # a mistyped placeholder ({modul}) would name one literal file for every
            # module, found only when flags are written (a rollback's, maybe)
            found = re.search(r"\{[^{}]*\}?|\}", left)
            raise _config_error(f"path {self.path_template!r}: {found.group(0) if found else '{'}"
                                f" is not a placeholder (the path takes {{module}} and "
                                f"{{state_dir}})")
        self.format = format
        self.mode = parse_mode(mode)
        self.gid = _resolve_group(group)
        self._format = make_format(format, prefix=prefix, kill_switch_key=kill_switch_key)

    def __repr__(self) -> str:
        return f"FileActuator(path={self.path_template!r}, format={self.format!r}, " \
               f"mode={self.mode:#o})"

    def path_for(self, module: str) -> Path:
        return Path(self.path_template.replace("{module}", safe_file_part(module)))

    def apply(self, state: FlagState) -> None:
        path = self.path_for(state.module)
        where = f"file actuator ({path})"
        check_state(state, where)
        try:
            dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise ActuatorError(f"{where}: cannot open directory {path.parent}: "
                                f"{err.strerror or err}") from err
        try:
            fcntl.flock(dirfd, fcntl.LOCK_EX)
            existing = self._existing_text(path, where)
            text = self._format.render(existing, state)
            if text != existing:
                self._write_atomically(path, text.encode("utf-8"), dirfd, where)
                log.info("file actuator: wrote %s to %s", describe(state), path)
            else:
                self._ensure_mode(path, where)
            got = self.read(state.module)
        finally:
            os.close(dirfd)  # also releases the flock
        check_readback(state, got, where)

    def read(self, module: str) -> FlagState | None:
        path = self.path_for(module)
        where = f"file actuator ({path})"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ActuatorError(f"{where}: cannot read: {err.strerror or err}") from err
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ActuatorError(f"{where}: not UTF-8 text") from err
        try:
            return self._format.parse(text, module)
        except ActuatorError as err:
            raise ActuatorError(f"{where}: {err}") from err

    def _existing_text(self, path: Path, where: str) -> str | None:
        try:
            return path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            log.warning("%s: existing file is not UTF-8 text; rewriting it", where)
            return None
        except OSError as err:
            raise ActuatorError(f"{where}: cannot read: {err.strerror or err}") from err

    def _ensure_mode(self, path: Path, where: str) -> None:
        try:
            if path.stat().st_mode & 0o7777 != self.mode:
                os.chmod(path, self.mode)
        except OSError as err:
            raise ActuatorError(f"{where}: cannot set mode {self.mode:#o}: {err}") from err

    def _wanted_gid(self, path: Path) -> int | None:
        if self.gid is not None:
            return self.gid
        try:
            return path.stat().st_gid  # keep the group an operator gave the file
        except OSError:
            return None

    def _write_atomically(self, path: Path, data: bytes, dirfd: int, where: str) -> None:
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(fd, self.mode)
                gid = self._wanted_gid(path)
                if gid is not None and gid != os.fstat(fd).st_gid:
                    self._chown(fd, gid, where)
                handle.write(data)
                handle.flush()
                os.fsync(fd)
            os.replace(tmp, path)
            tmp = None
            os.fsync(dirfd)
        except OSError as err:
            raise ActuatorError(f"{where}: write failed: {err.strerror or err}") from err
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _chown(self, fd: int, gid: int, where: str) -> None:
        try:
            os.fchown(fd, -1, gid)
        except PermissionError as err:
            if self.gid is not None:  # asked for explicitly: a reader may depend on it
                raise ActuatorError(f"{where}: cannot give the file group {gid}: "
                                    f"{err.strerror}") from err
            log.warning("%s: cannot keep the file's group %d: %s", where, gid, err.strerror)
