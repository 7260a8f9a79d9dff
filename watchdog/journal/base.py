"""The journal's contract: what the engine, control, API, telemetry, CLI and notifiers may
call, implemented by :class:`watchdog.journal.store.Journal` (SQLite, the embedded
default) and :class:`watchdog.journal.postgres.PostgresJournal` (PostgreSQL).
:func:`watchdog.journal.open_journal` picks one from a path or URL.

Errors (all in :mod:`watchdog.errors`; each backend maps its library's errors in one
place): every method may raise :class:`~watchdog.errors.JournalError`, and in particular

* :class:`~watchdog.errors.JournalUnavailable`: the database cannot be reached;
* :class:`~watchdog.errors.JournalBusy`: a lock was held past the connection's wait;
* :class:`~watchdog.errors.JournalConflict`: a write lost a race and was not made, with
  :class:`~watchdog.errors.CheckpointConflict` (compare-and-swap) and
  :class:`~watchdog.errors.FencingError` (the lease moved) as its kinds.

A write that raises wrote nothing: each write method is one transaction.

Fencing: a write of decisions or a checkpoint may carry the :class:`Lease` its writer
holds (``fence=``). The write checks, in its own transaction, that the module's lease
row still has that holder and epoch, and raises :class:`~watchdog.errors.FencingError`
otherwise; a takeover (:meth:`Journal.acquire_lease` by another holder after expiry) adds
one to the epoch, so an old leader that was paused or partitioned can never overwrite the
new leader's state. The check is on holder and epoch, not on expiry: a lease that
expired without being taken over still fences nobody else out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from watchdog.baseline import Baseline
from watchdog.journal.records import Expected, JournaledDecision, Lease, Renewals
from watchdog.judge.alerts import AlertState
from watchdog.model import Decision
from watchdog.rollout.state import Checkpoint

__all__ = ["Expected", "Journal", "JournaledDecision", "Lease", "Renewals", "SqlConnection",
           "SqlCursor"]


class SqlCursor(Protocol):
    description: Any
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SqlConnection(Protocol):
    """A DB-API connection taking ``?`` placeholders (PostgreSQL's is adapted), for the
    portable SQL of the notification outbox, the Slack ledger and the API audit.
    ``execute`` raises JournalError (mapped like the journal's own errors)."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


@runtime_checkable
class Journal(Protocol):
    """Decisions (append-only), checkpoints (one per module), alert episodes, baselines,
    settings, snapshots, the API audit, and leases, in one database."""

    #: where the journal is: a file path (or ":memory:"), or a PostgreSQL URL without
    #: its password. Also the key of the process-level state lock.
    path: str

    def close(self) -> None:
        """Close the connection; the object is unusable afterwards. Never raises."""

    def reopen(self) -> Journal:
        """A new connection to the same database (for another thread: one transaction
        at a time per connection). Raises JournalUnavailable, SchemaError."""

    @property
    def sql(self) -> SqlConnection:
        """This connection, for the outbox's, ledger's and audit's portable SQL."""

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction: committed when the block ends, rolled back (and the
        exception re-raised) when it raises. SQLite takes the write lock at the start
        (raises JournalBusy after the busy timeout). Not re-entrant on SQLite."""

    # decisions -----------------------------------------------------------------------

    def record(self, decisions: list[Decision], checkpoint: Checkpoint | None,
               journaled_at: float, alert_summaries: Mapping[str, str] | None = None,
               previous_alerts: Mapping[str, AlertState] | None = None, *,
               expect: Expected | None = None, fence: Lease | None = None) -> list[int]:
        """Append ``decisions`` (ids returned in order, increasing) and upsert
        ``checkpoint`` with the alert episodes that changed from ``previous_alerts`` to
        ``checkpoint.alerts``, all in one transaction.

        ``expect``: compare-and-swap; raises CheckpointConflict (carrying the current
        checkpoint) unless the module's checkpoint is ``expect.checkpoint``.
        ``fence``: raises FencingError unless ``fence.module``'s lease row still has
        ``fence.holder`` and ``fence.epoch``; every decision and the checkpoint must be
        of ``fence.module`` (ValueError otherwise)."""

    def mark_applied(self, decision_id: int, at: float, error: str | None = None) -> None:
        """Record that a decision was applied at ``at`` (``error`` None), or why applying
        it failed (``applied_at`` stays unset). An unknown id is ignored."""

    def decisions(self, module: str | None = None, since: float | None = None,
                  until: float | None = None, limit: int | None = None,
                  unapplied_only: bool = False) -> list[JournaledDecision]:
        """Decisions oldest first (by id), filtered; ``limit`` keeps the newest ones."""

    def last_decision(self, module: str) -> JournaledDecision | None:
        """The module's newest decision, or None."""

    def decision_counts(self) -> dict[tuple[str, str], int]:
        """How many decisions per (module, action value)."""

    def unapplied_count(self) -> int:
        """Decisions other than holds not yet marked applied."""

    # checkpoints ---------------------------------------------------------------------

    def save_checkpoint(self, cp: Checkpoint, at: float, *,
                        fence: Lease | None = None) -> None:
        """Upsert ``cp`` (``record([], cp, at, fence=fence)``)."""

    def checkpoint(self, module: str) -> Checkpoint | None:
        """The module's checkpoint, or None when it has none."""

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, by module name."""

    def checkpoint_updated_at(self, module: str) -> float | None:
        """When the module's checkpoint was last written (the writer's clock)."""

    def modules(self) -> list[str]:
        """The modules that have a checkpoint, sorted."""

    # alerts --------------------------------------------------------------------------

    def alerts(self, module: str | None = None, open_only: bool = False
               ) -> list[dict[str, Any]]:
        """Alert episodes (columns of the ``alerts`` table) oldest first; ``open_only``:
        not resolved."""

    # baselines -----------------------------------------------------------------------

    def save_baseline(self, b: Baseline) -> Baseline:
        """Store ``b``; returns it with its new id."""

    def baselines(self, module: str | None = None, metric: str | None = None
                  ) -> list[Baseline]:
        """Stored baselines oldest first (by id)."""

    def baseline(self, baseline_id: int) -> Baseline | None:
        """One baseline by id, or None."""

    def baseline_fingerprint(self, module: str, now: float | None = None
                             ) -> tuple[object, ...]:
        """A value that changes whenever a baseline of ``module`` is added, pinned or
        unpinned, and (given ``now``) whenever one expires."""

    def pin_baseline(self, baseline_id: int) -> Baseline:
        """Make this baseline its module's and metric's reference (unpinning the others,
        one transaction). Raises JournalError for an unknown id."""

    def active_baselines(self, module: str, now: float) -> dict[str, Baseline]:
        """Per metric: the pinned baseline if any, else the newest one not expired."""

    # settings ------------------------------------------------------------------------

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` (kill switch, last verdict per module)."""

    def setting(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""

    # snapshots and the API audit -----------------------------------------------------

    def save_snapshot(self, name: str, created_at: float, actor: str, reason: str,
                      data: Mapping[str, Any]) -> None:
        """Store a named snapshot of rollout state; JournalConflict if the name exists."""

    def snapshots(self) -> list[dict[str, Any]]:
        """Every snapshot (name, created_at, actor, reason, data) by time and name."""

    def api_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The last ``limit`` rows of the API audit, oldest first."""

    # leases --------------------------------------------------------------------------

    def acquire_lease(self, module: str, holder: str, ttl: float, now: float
                      ) -> Lease | None:
        """Take (or keep) ``module``'s lease for ``ttl`` seconds from ``now``. A free,
        released or expired lease is taken with the epoch plus one (1 for a new module);
        one ``holder`` holds already is extended with its epoch unchanged. None (and
        nothing written) while another holder's lease has not expired."""

    def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        """Extend a held lease to ``now + ttl``; FencingError unless the row still has
        ``lease.holder`` and ``lease.epoch`` (a renewal never revives a lost lease)."""

    def renew_leases(self, leases: Sequence[tuple[Lease, float]], now: float) -> Renewals:
        """Extend each held ``(lease, ttl)`` to ``now + ttl``, all in one transaction (a
        keeper's round is one commit, not one per lease). Each is fenced as by
        :meth:`renew_lease`: a lease whose row no longer has its holder and epoch is not
        renewed and comes back in ``lost`` with its FencingError; the others come back
        in ``renewed``. Raises JournalError (nothing renewed) if the transaction fails."""

    def release_lease(self, lease: Lease, now: float) -> bool:
        """Give the lease up (holder "", expired now; the epoch stays, so the next
        holder gets a higher one). False when it was not ours any more."""

    def leases(self) -> list[Lease]:
        """Every module's lease row, by module (released ones with holder "")."""
