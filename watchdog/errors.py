"""One exception hierarchy for the whole project.

    WatchdogError
    ├── ConfigError            configuration or rules are invalid (carries file:line issues)
    ├── ScenarioError          a recorded scenario file is malformed (carries file:line)
    ├── IllegalTransition      a rollout action is not allowed in the module's current state
    ├── UnknownModule          a module name that no configuration declares
    ├── PluginError            an entry-point plugin is unknown or failed to load
    ├── JournalError           the journal (SQLite or PostgreSQL) could not be read or written
    │   ├── SchemaError        the database schema is newer than this program or corrupt
    │   ├── JournalUnavailable the database cannot be reached (connection, server down)
    │   ├── JournalBusy        another writer held a lock past the wait (retry later)
    │   └── JournalConflict    a write lost a race and was not made
    │       ├── CheckpointConflict  the checkpoint is not the one the write expected
    │       └── FencingError        the module's lease moved (a new holder or epoch)
    ├── SourceError            a metrics source failed
    │   ├── SourceUnavailable  the source could not be reached (network, timeout, 5xx)
    │   ├── BadQuery           the source rejected the query
    │   └── EmptyResult        the query succeeded but returned nothing
    └── ActuatorError          a flag change could not be applied or read back

Library errors are wrapped with ``raise ... from err`` at the edge that calls the library.
"""

from __future__ import annotations

from dataclasses import dataclass


class WatchdogError(Exception):
    """Base of every error rollout-watchdog raises on purpose."""


@dataclass(frozen=True)
class Issue:
    """One problem found in a file, located by file and line (1-based; 0 when unknown)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ConfigError(WatchdogError):
    """Configuration or rules failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or "invalid configuration")


class ScenarioError(WatchdogError):
    """A recorded scenario could not be read."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.issue = Issue(file, line, message)
        super().__init__(str(self.issue))


class IllegalTransition(WatchdogError):
    """A rollout action is not allowed in the module's current state."""


class UnknownModule(WatchdogError):
    """No configuration declares this module."""


class PluginError(WatchdogError):
    """A plugin named in configuration is unknown or could not be loaded."""


class JournalError(WatchdogError):
    """The journal could not be read or written (each backend maps its library's errors
    to this class or a subclass, in one place: ``watchdog.journal.store.sqlite_error``,
    ``watchdog.journal.pg_schema.pg_error``)."""


class SchemaError(JournalError):
    """The database schema is newer than this program, or not ours."""


class JournalUnavailable(JournalError):
    """The journal's database cannot be reached (connection refused or lost, server
    shutting down, file cannot be opened)."""


class JournalBusy(JournalError):
    """Another writer held a lock for longer than this connection waits (SQLite: database
    is locked; PostgreSQL: lock timeout, deadlock, serialization failure). Nothing was
    written; trying again later may succeed."""


class JournalConflict(JournalError):
    """A write lost a race or broke a uniqueness rule, and was not made (nothing of its
    transaction was written)."""


class CheckpointConflict(JournalConflict):
    """A compare-and-swap of a checkpoint failed: ``current`` is the checkpoint now in
    the journal (None: there is none), not the one the write expected."""

    def __init__(self, message: str, current: object = None) -> None:
        super().__init__(message)
        self.current = current


class FencingError(JournalConflict):
    """A write (or a renewal) carried a lease that is no longer the module's: another
    instance took it over (a new epoch), or it was released. The write was refused."""

    def __init__(self, message: str, module: str = "", holder: str | None = None,
                 epoch: int | None = None) -> None:
        super().__init__(message)
        self.module, self.holder, self.epoch = module, holder, epoch


class SourceError(WatchdogError):
    """A metrics source failed."""


class SourceUnavailable(SourceError):
    """The source could not be reached (connection refused, timeout, server error)."""


class BadQuery(SourceError):
    """The source rejected the query as invalid."""


class EmptyResult(SourceError):
    """The query ran but returned no series."""


class ActuatorError(WatchdogError):
    """A flag change could not be applied or its read-back did not match."""


class NotifierError(WatchdogError):
    """A notifier could not deliver a message; the notification stays queued.

    ``auth``: the service refused our credentials (stop sending until reconfigured).
    ``permanent``: resending the same message cannot succeed (bad channel, bad payload).
    ``retry_after``: seconds the service asked us to wait before the next attempt.
    Messages never contain a token or a webhook URL.
    """

    def __init__(self, message: str, *, code: str = "", auth: bool = False,
                 permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.auth = auth
        self.permanent = permanent
        self.retry_after = retry_after
