"""What a :class:`watchdog.daemon.leases.Guard` reports outward: its log lines of lease
changes and its state for /health (:class:`GuardReports`, a mixin of the guard), its
Prometheus metrics (:class:`GuardCollector`) and the notification of a module taken over
(:func:`guard_notification`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from watchdog.daemon.lease_terms import Change
from watchdog.journal.records import Lease
from watchdog.notifiers import Notification

if TYPE_CHECKING:
    from watchdog.daemon.leases import Guard

log = logging.getLogger("watchdog.daemon.leases")  # the guard's lines, under its logger


class GuardReports:
    """The guard's log lines of lease changes, standby lines and /health state."""

    instance: str
    on_change: Callable[[Change], None] | None
    _live: tuple[str, ...]
    _said: set[tuple[str, str, int]]

    def held(self) -> dict[str, Lease]:
        raise NotImplementedError

    def others(self) -> dict[str, Lease]:
        raise NotImplementedError

    def share(self) -> int:
        raise NotImplementedError

    def _announce(self, changes: list[Change]) -> None:
        for change in changes:
            if change.lease is not None:
                was = change.previous
                log.info("module %s: guarded by this instance (%s), lease epoch %d%s",
                         change.module, self.instance, change.lease.epoch,
                         f"; taken over from instance {was.holder} (epoch {was.epoch})"
                         if change.took_over and was is not None and was.holder else "")
            elif change.to:
                log.warning("module %s: lost its lease (epoch %d) to instance %s; this "
                            "instance no longer ticks it", change.module,
                            change.previous.epoch if change.previous else 0, change.to)
            else:
                log.info("module %s: lease released by this instance (%s)", change.module,
                         self.instance)
            if self.on_change is not None:
                try:
                    self.on_change(change)
                except Exception:
                    log.exception("after the lease change of module %s", change.module)

    def _standby_lines(self) -> None:
        for module, lease in sorted(self.others().items()):
            key = (module, lease.holder, lease.epoch)
            if key not in self._said:
                self._said.add(key)
                log.info("standby for module %s: guarded by instance %s (lease epoch %d); "
                         "this instance (%s) takes over if that lease expires", module,
                         lease.holder, lease.epoch, self.instance)

    def state(self) -> dict[str, object]:
        """For /health and ``status``: role, instance, live instances, leases held."""
        held = self.held()
        return {"instance": self.instance,
                "role": "leader" if held else "standby",
                "live_instances": list(self._live), "fair_share": self.share(),
                "modules": {m: {"epoch": lease.epoch, "expires_at": lease.expires_at}
                            for m, lease in sorted(held.items())},
                "standby_for": {m: {"instance": lease.holder, "epoch": lease.epoch}
                                for m, lease in sorted(self.others().items())}}


class GuardCollector(Collector):
    """``watchdog_lease_held{module}``, ``watchdog_lease_epoch{module}``,
    ``watchdog_instance_modules``, ``watchdog_instances_live``."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def collect(self) -> Iterator[Metric]:
        held = self.guard.held()
        g = GaugeMetricFamily("watchdog_lease_held", "1 while this instance holds the "
                              "module's lease (guards it), else 0", labels=["module"])
        e = GaugeMetricFamily("watchdog_lease_epoch", "Fencing epoch of the module's lease "
                              "as this instance last held it", labels=["module"])
        for module in self.guard.modules():
            g.add_metric([module], 1 if module in held else 0)
            lease = held.get(module)
            if lease is not None:
                e.add_metric([module], lease.epoch)
        yield g
        yield e
        yield GaugeMetricFamily("watchdog_instance_modules", "Modules this instance guards",
                                value=len(held))
        yield GaugeMetricFamily("watchdog_instances_live", "Instances with a live heartbeat "
                                "in the lease table (this one included)",
                                value=len(self.guard.live()))


def guard_notification(change: Change, instance: str, at: float) -> Notification:
    """Slack (every notifier): guarding of a module moved to this instance."""
    lease, was = change.lease, change.previous
    assert lease is not None
    before = f"instance {was.holder} (epoch {was.epoch})" if was is not None and was.holder \
        else "an instance that released it"
    return Notification(
        key=f"guard:{change.module}:{lease.epoch}", module=change.module, kind="guard_moved",
        action=None, severity="warning",
        title=f"{change.module} now guarded by instance {instance} (lease epoch {lease.epoch})",
        stage=None, traffic_percent=None,
        reasons=(f"took the lease over from {before}: that instance stopped renewing it",
                 "decisions it journaled but had not confirmed are applied again"), at=at)
