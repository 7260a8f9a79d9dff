"""A module's metrics source as the daemon last saw it, kept in the journal's settings.

The daemon (:mod:`watchdog.daemon.sourcewatch`) writes ``source:{module}`` when it
changes: ``ok``, ``partial`` (some reads failed: which and why) or ``down`` (the fetch
failed as a whole: the error). ``status`` and the API read it so that a source that is
down is said, instead of the last verdict's "0 V2 samples in window".
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from watchdog.errors import JournalError
from watchdog.journal.base import Journal

SOURCE_KEY = "source:{module}"


def record_source(journal: Journal, module: str, state: dict[str, Any], at: float,
                  known: dict[str, Any] | None = None) -> None:
    """Keep the module's source state in the journal's settings when it changed (with
    ``since``, when it began); for display only, so a failed write is skipped.
    ``known``: the values this process last read or wrote, by key (compared instead of
    reading the journal at every tick; see :func:`write_if_changed`)."""
    write_if_changed(
        journal, SOURCE_KEY.format(module=module), {**state, "since": at},
        lambda old: isinstance(old, dict)
        and {k: v for k, v in old.items() if k != "since"} == state, known)


def write_if_changed(journal: Journal, key: str, value: Any,
                     unchanged: Callable[[Any], bool],
                     known: dict[str, Any] | None = None) -> None:
    """Write a display setting unless ``unchanged(old)`` says the stored one still holds.

    ``known`` remembers, by key, what this process last read or wrote (as the journal
    holds it: JSON, tuples come back as lists), so a steady tick reads nothing; a key
    whose read or write failed is dropped from it and read again next time. The setting
    is for display only: a failed write is skipped (the next change writes it).
    """
    try:
        old = known[key] if known is not None and key in known else journal.setting(key)
        if unchanged(old):
            if known is not None:
                known[key] = old  # as read (from the journal, or already known)
            return
        journal.set_setting(key, value)
        if known is not None:
            known[key] = json.loads(json.dumps(value, default=str))
    except (sqlite3.Error, JournalError):
        if known is not None:
            known.pop(key, None)  # read again next time


def source_note(state: object) -> str | None:
    """What ``status`` and the API say for a stored source state (None when it is ok)."""
    if not isinstance(state, dict) or state.get("state") not in ("down", "partial"):
        return None
    from watchdog.baseline import iso

    since = state.get("since")
    when = f" since {iso(since)}" if isinstance(since, int | float) else ""
    if state["state"] == "down":
        return f"source {state.get('source', '?')} down{when}: {state.get('error', '')}"
    problems = [str(p) for p in state.get("problems") or []]
    return f"source {state.get('source', '?')}: {'; '.join(problems)}{when}"
