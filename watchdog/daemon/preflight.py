"""What ``run`` refuses at start, checked by ``run --check`` without starting anything.

``run --check`` validates the config, its rules and plugins (:func:`load_config`,
:class:`PluginSet`); these are the other checks a start makes, done without creating,
migrating or locking the journal and without listening on a port:

* ``db``: not a folder or another kind of non-regular file; an existing non-empty file
  is an SQLite database holding a rollout-watchdog journal (or nothing yet) of a schema
  this program knows; a missing one can be created (no file where a folder must be);
* ``state_dir``: a folder, or one that can be created;
* ``api``: when enabled, the same bind check as the server (:func:`check_bind`: no
  address beyond loopback without a token), and the token readable and well-formed.

Files the checking user may not read (an operator checking the service user's journal)
are not judged: a start as the service user will say.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from watchdog.daemon.config import Loaded
from watchdog.errors import ConfigError, Issue
from watchdog.journal import is_postgres

SQLITE_HEADER = b"SQLite format 3\x00"


def preflight(loaded: Loaded, env: Mapping[str, str]) -> None:
    """ConfigError listing every problem a start would hit (file:line where known)."""
    issues = check_db(loaded, env) + check_state_dir(loaded) + check_api(loaded, env)
    if issues:
        raise ConfigError(issues)


def _where(loaded: Loaded, key: str, env_name: str, env: Mapping[str, str]) -> tuple[str, int]:
    if getattr(loaded.config, key) is not None:
        return loaded.file, loaded.line_of(key)
    return (env_name, 0) if env.get(env_name) else (loaded.file, 0)


def check_db(loaded: Loaded, env: Mapping[str, str]) -> list[Issue]:
    file, line = _where(loaded, "db", "WATCHDOG_DB", env)
    if is_postgres(loaded.db):
        return []  # a server: reached (and migrated) when the daemon starts
    path = Path(loaded.db)
    problem = _creatable(path) if not path.exists() else _journal_problem(path)
    return [] if problem is None else [Issue(file, line, f"db: {problem}")]


def check_state_dir(loaded: Loaded) -> list[Issue]:
    path = Path(loaded.state_dir)
    file, line = (loaded.file, loaded.line_of("state_dir")) \
        if loaded.config.state_dir is not None else (loaded.file, 0)
    if path.exists():
        problem = None if path.is_dir() else f"{path} is not a folder"
    else:
        problem = _creatable(path)
    return [] if problem is None else [Issue(file, line, f"state_dir: {problem}")]


def _creatable(path: Path) -> str | None:
    """Why ``path``'s folders cannot be made (``mkdir -p``), or None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"cannot create {path}: {parent} is not a folder"
    return None


def _journal_problem(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a folder (name the journal file, e.g. {path / 'journal.db'})"
    if not path.is_file():
        return f"{path} is not a regular file"
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except PermissionError:
        return None
    except OSError as err:
        return f"cannot read {path}: {err.strerror or err}"
    if not head:
        return None  # an empty file: SQLite makes it a new database
    if head != SQLITE_HEADER:
        return f"{path} is not an SQLite database (no SQLite header)"
    return _schema_problem(path)


def _schema_problem(path: Path) -> str | None:
    """The journal's own checks (watchdog.journal.schema.connect), read-only."""
    from watchdog.journal.schema import APPLICATION_ID, SCHEMA_VERSION

    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=1)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                  ).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as err:
        return f"{path} cannot be read as an SQLite database: {err}"
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and version != 0):
        return f"{path} is not a rollout-watchdog journal (application_id {app_id:#x})"
    if app_id == 0 and tables:
        return f"{path} holds tables but no rollout-watchdog schema version"
    if version > SCHEMA_VERSION:
        return (f"{path} has schema version {version}, newer than this program knows "
                f"({SCHEMA_VERSION}); upgrade rollout-watchdog")
    return None


def check_api(loaded: Loaded, env: Mapping[str, str]) -> list[Issue]:
    """The server's own bind check (as :class:`watchdog.daemon.observe.Observability`)."""
    api = loaded.config.api
    if not api.enabled:
        return []
    from watchdog.api.settings import ApiSettings, check_bind, load_api_token

    try:
        settings = ApiSettings()
    except ValidationError as err:
        return [Issue("WATCHDOG_API_*", 0, f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                for e in err.errors()]
    try:
        check_bind(api.host or settings.host, load_api_token(settings, env))
    except ConfigError as err:
        if api.host is None:
            return err.issues
        return [Issue(loaded.file, loaded.line_of("api", "host"), f"api.host: {i.message}")
                for i in err.issues]
    return []
