"""Metrics read from the journal at scrape time: rollout state, decisions, baselines.

The journal is the single source of truth, so these hold for every process that writes
it (the daemon, the CLI, the API) and survive restarts: decision counters are counts of
the append-only ``decisions`` table, phase/stage/traffic come from the checkpoints.

Each scrape opens its own short-lived connection to the journal file (WAL readers do not
block the writer), so scraping is safe from any thread. A journal that cannot be read
gives ``watchdog_journal_up 0`` and no other journal series, never a failed scrape.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from watchdog.errors import JournalError
from watchdog.groups.engine import group_kill_key
from watchdog.groups.machine import ROLLED_BACK, flag
from watchdog.journal import is_postgres, open_journal
from watchdog.journal.base import Journal
from watchdog.model import Action
from watchdog.rollout.state import Phase

log = logging.getLogger(__name__)

Family = GaugeMetricFamily | CounterMetricFamily

BASELINE_STATS = ("mean", "stddev", "p50", "p90", "p95", "p99", "min", "max")


class Pending(Protocol):
    """Something with a backlog, such as :class:`~watchdog.notifiers.queue.NotificationQueue`."""

    def pending(self) -> int: ...


class JournalCollector(Collector):
    """Register with ``registry.register(JournalCollector(path, clock.now, ...))``."""

    def __init__(self, journal_path: str | Path, now: Callable[[], float],
                 queues: Sequence[tuple[str, Pending]] = ()) -> None:
        if str(journal_path) == ":memory:":
            raise ValueError("the journal collector reads a journal file, not :memory:")
        self.journal_path = str(journal_path)
        self.now = now
        self.queues = list(queues)

    def describe(self) -> Iterator[Metric]:
        yield from _families().values()
        yield _queue_family()

    def collect(self) -> Iterator[Metric]:
        yield self._queues()
        families = _families()
        try:
            if not is_postgres(self.journal_path) and not Path(self.journal_path).is_file():
                raise JournalError(f"{self.journal_path} does not exist (yet)")
            journal = open_journal(self.journal_path)
        except JournalError as err:
            log.warning("metrics: cannot open the journal: %s", err)
            families["up"].add_metric([], 0)
            yield families["up"]
            return
        try:
            self._fill(journal, families)
        except (JournalError, sqlite3.Error) as err:
            log.warning("metrics: cannot read the journal: %s", err)
            families = _families()
            families["up"].add_metric([], 0)
            yield families["up"]
            return
        finally:
            journal.close()
        yield from families.values()

    def _fill(self, journal: Journal, f: dict[str, Family]) -> None:
        now = self.now()
        f["up"].add_metric([], 1)
        kill = bool(journal.setting("kill_switch", False))
        f["kill"].add_metric([], 1 if kill else 0)
        checkpoints = journal.checkpoints()
        for cp in checkpoints:
            m = cp.module
            # a module group's own kill switch holds its members on V1 too
            off = kill or (bool(cp.members) and bool(journal.setting(group_kill_key(m), False)))
            for phase in Phase:
                f["phase"].add_metric([m, phase.value], 1 if phase is cp.phase else 0)
            f["stage"].add_metric([m], cp.stage + 1)
            f["traffic"].add_metric([m], 0.0 if off else cp.traffic_percent / 100.0)
            updated = journal.checkpoint_updated_at(m)
            if updated is not None:
                f["age"].add_metric([m], max(0.0, now - updated))
            self._baselines(journal, f, m, now)
            for member, state in sorted(cp.members.items()):
                # a group's member has no checkpoint of its own: its series from the
                # group's (rolled_back where it was switched off alone), its own flag
                shown = Phase.ROLLED_BACK if state == ROLLED_BACK else cp.phase
                for phase in Phase:
                    f["phase"].add_metric([member, phase.value], 1 if phase is shown else 0)
                f["stage"].add_metric([member], cp.stage + 1)
                f["traffic"].add_metric([member], 0.0 if off else flag(cp, member) / 100.0)
                self._baselines(journal, f, member, now)
        # every module with a rollout has every series from the start, at 0 until its first
        # event, so increase() and rate() see the first rollback instead of a new series
        counts: dict[tuple[str, str], int] = {
            (cp.module, action.value): 0 for cp in checkpoints for action in Action}
        counts.update(journal.decision_counts())
        for (module, action), n in sorted(counts.items()):
            f["decisions"].add_metric([module, action], n)
        for module in sorted({module for module, _ in counts}):
            f["rollbacks"].add_metric([module], counts.get((module, Action.ROLLBACK.value), 0))
        f["pending"].add_metric([], journal.unapplied_count())

    @staticmethod
    def _baselines(journal: Journal, f: dict[str, Family], m: str, now: float) -> None:
        for metric, b in sorted(journal.active_baselines(m, now).items()):
            for stat in BASELINE_STATS:
                f["baseline"].add_metric([m, metric, stat], float(getattr(b, stat)))
            f["baseline_samples"].add_metric([m, metric], b.count)
            f["baseline_age"].add_metric([m, metric], max(0.0, now - b.captured_at))

    def _queues(self) -> Family:
        family = _queue_family()
        for name, queue in self.queues:
            try:
                family.add_metric([name], queue.pending())
            except (JournalError, sqlite3.Error) as err:
                log.warning("metrics: cannot count the %s queue: %s", name, err)
        return family


def _queue_family() -> Family:
    return GaugeMetricFamily("watchdog_notification_queue_depth",
                             "Notifications waiting to be sent", labels=["notifier"])


def _families() -> dict[str, Family]:
    def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Family:
        return GaugeMetricFamily(name, doc, labels=list(labels))

    return {
        "up": gauge("watchdog_journal_up", "1 when the journal could be read at this scrape"),
        "kill": gauge("watchdog_kill_switch", "1 when the global kill switch forces V1"),
        "phase": gauge("watchdog_rollout_phase", "Rollout phase (1 for the current one)",
                       ["module", "phase"]),
        "stage": gauge("watchdog_rollout_stage", "Current stage of the plan (1-based, as in "
                       "decision reasons)", ["module"]),
        "traffic": gauge("watchdog_traffic_ratio", "Share of traffic routed to V2 (0-1; 0 "
                         "while the kill switch is on)", ["module"]),
        "age": gauge("watchdog_checkpoint_age_seconds", "Seconds since the module's "
                     "checkpoint was last written", ["module"]),
        "baseline": gauge("watchdog_baseline_value", "Statistic of the active V1 baseline, "
                          "in the metric's own unit", ["module", "metric", "stat"]),
        "baseline_samples": gauge("watchdog_baseline_samples", "Samples behind the active "
                                  "V1 baseline", ["module", "metric"]),
        "baseline_age": gauge("watchdog_baseline_age_seconds", "Seconds since the active "
                              "V1 baseline was captured", ["module", "metric"]),
        "pending": gauge("watchdog_pending_actuations", "Journaled decisions that change "
                         "flags and are not yet confirmed applied"),
        "decisions": CounterMetricFamily("watchdog_decisions", "Journaled decisions by "
                                         "action", labels=["module", "action"]),
        "rollbacks": CounterMetricFamily("watchdog_rollbacks", "Journaled rollbacks",
                                         labels=["module"]),
    }
