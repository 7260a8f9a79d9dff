"""Every decision a plan can make reaches the notifiers with a title (issue 20: step back
and approve are decisions too; a KeyError here stopped the daemon's notification queue)."""

from __future__ import annotations

import pytest

from watchdog.api.views import decision_view
from watchdog.daemon.ticks import notification
from watchdog.journal.store import JournaledDecision
from watchdog.model import Action, Decision


@pytest.mark.parametrize("action", list(Action))
def test_every_action_has_a_notification_and_a_view(action: Action) -> None:
    jd = JournaledDecision(1, Decision("m", 1.0, action, 25.0, 1, 0, ("why",), actor="bob"),
                           1.0, None, None)
    n = notification(jd)
    assert n.title.startswith("m ") and n.title.endswith(" by bob")
    assert n.action == action.value
    assert decision_view(jd).action is action
