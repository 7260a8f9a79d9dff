"""Safety actions that do not get applied: announced once when stuck, once when applied.

The outbox hands a rollback (an abort, the kill switch) to the actuators at once; if they
have not all confirmed it ``after`` seconds later (counted from when this process first
handed it over), operators must hear of it: an ERROR log line, a count, and ``on_stuck``
(the daemon sends it through the notification queues) with the actuators' error text.
Once it is applied at last, ``on_unstuck`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from watchdog.clock import Clock
from watchdog.model import Action, Decision

log = logging.getLogger(__name__)

# (decision, its key, seconds since it was handed over, the actuators' errors)
OnStuck = Callable[[Decision, str, float, str], None]


def safety_action(d: Decision) -> bool:
    return d.action in (Action.ROLLBACK, Action.ABORT) or d.kill_switch


class StuckWatch:
    def __init__(self, clock: Clock, after: float, on_stuck: OnStuck | None,
                 on_unstuck: OnStuck | None) -> None:
        self.clock, self.after = clock, after
        self.on_stuck, self.on_unstuck = on_stuck, on_unstuck
        self.count = 0  # safety actions announced as stuck
        self._seen: dict[str, float] = {}  # key -> clock.monotonic() when first handed over
        self._announced: set[str] = set()

    def wanted(self, keys: Iterable[str]) -> None:
        """The keys handed over this round (the others are applied or replaced)."""
        now, keys = self.clock.monotonic(), set(keys)
        for gone in [k for k in self._seen if k not in keys]:
            self._seen.pop(gone)
            self._announced.discard(gone)
        for key in keys:
            self._seen.setdefault(key, now)

    def check(self, key: str, decision: Decision, errors: Callable[[], str]) -> None:
        """``key`` is not applied yet: announce it once it has waited too long."""
        waited = self.clock.monotonic() - self._seen.get(key, self.clock.monotonic())
        if not safety_action(decision) or key in self._announced or waited < self.after:
            return
        self._announced.add(key)
        self.count += 1
        text = errors() or "no answer yet"
        log.error("ALERT %s of %s (%s) handed to the actuators %.1fs ago is not applied yet: "
                  "%s", decision.action.value, decision.module, key, waited, text)
        self._call(self.on_stuck, decision, key, waited, text)

    def applied(self, key: str, decision: Decision, errors: Callable[[], str]) -> None:
        if key not in self._announced:
            return
        self._announced.discard(key)
        waited = self.clock.monotonic() - self._seen.get(key, self.clock.monotonic())
        log.warning("%s of %s (%s) applied after %.1fs", decision.action.value,
                    decision.module, key, waited)
        self._call(self.on_unstuck, decision, key, waited, errors())

    @staticmethod
    def _call(hook: OnStuck | None, decision: Decision, key: str, waited: float,
              errors: str) -> None:
        if hook is None:
            return
        try:
            hook(decision, key, waited, errors)
        except Exception:
            log.exception("announcing the actuation of %s", key)
