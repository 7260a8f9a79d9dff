"""The outbox table (``notification_outbox``): rows, noise control, and their SQL.

Noise control (Alertmanager-like) is decided at insert time, from the outbox itself:
- duplicates: a key already in the outbox is ignored, whatever its state;
- repeat interval: a firing alert (or inconclusive warning) already notified less than
  ``repeat_interval`` ago is stored as suppressed; after that it is sent again, marked
  "still firing";
- resolved: sent only when its firing was notified, to the same channel (its severity
  is taken from the firing), with the time it fired for; its evidence carries the
  current value.
An alert is identified by its module and its rule: the first evidence entry that names a
rule (other entries may add context), or the title when none does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from watchdog.journal.base import SqlConnection
from watchdog.notifiers import Notification
from watchdog.notifiers.slack_blocks import duration

PENDING, SENT, SUPPRESSED, DEAD, DUPLICATE = "pending", "sent", "suppressed", "dead", "duplicate"
FIRING = ("alert_firing", "inconclusive")


def identity(n: Notification) -> str:
    if n.kind == "decision":
        return f"{n.module}|decision|{n.key}"
    rule = next((str(e["rule"]) for e in n.evidence if e.get("rule")), "")
    base = "inconclusive" if n.kind == "inconclusive" else "alert"
    return f"{n.module}|{base}|{rule or n.title}"


def encode(n: Notification) -> str:
    return json.dumps(asdict(n), sort_keys=True, default=_json_default)


def decode(payload: str) -> Notification:
    d = json.loads(payload)
    return Notification(**{**d, "reasons": tuple(d.get("reasons", ())),
                           "evidence": tuple(d.get("evidence", ()))})


def insert(conn: SqlConnection, notifier: str, n: Notification, now: float,
           repeat_interval: float, route: Callable[[Notification], str]) -> str:
    """Insert ``n`` (call inside a transaction); returns pending, suppressed or duplicate."""
    if conn.execute("SELECT 1 FROM notification_outbox WHERE notifier=? AND key=?",
                    (notifier, n.key)).fetchone():
        return DUPLICATE
    ident = identity(n)
    last = conn.execute(
        "SELECT kind, at, severity, episode_start FROM notification_outbox WHERE"
        " notifier=? AND identity=? AND state!=? ORDER BY id DESC LIMIT 1",
        (notifier, ident, SUPPRESSED)).fetchone()
    fired = last is not None and last[0] in FIRING
    state, repeat, episode = PENDING, 0, None
    if n.kind in FIRING:
        episode = (last[3] if last[3] is not None else last[1]) if fired else n.at
        if fired and n.at - last[1] < repeat_interval:
            state = SUPPRESSED
        repeat = int(fired)
    elif n.kind == "alert_resolved":
        if not fired:
            state = SUPPRESSED  # nothing was notified, so there is nothing to resolve
        else:
            episode = last[3] if last[3] is not None else last[1]
            n = replace(n, severity=last[2])  # resolved goes where the firing went
    conn.execute(
        "INSERT INTO notification_outbox (notifier, key, module, kind, severity, channel,"
        " identity, payload, state, at, enqueued_at, episode_start, repeat, next_attempt_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (notifier, n.key, n.module, n.kind, n.severity, route(n), ident, encode(n), state,
         n.at, now, episode, repeat, now))
    return state


def for_send(row: dict[str, Any]) -> Notification:
    """The notification of an outbox row, its title saying how long an alert has fired."""
    n = decode(row["payload"])
    since = row["episode_start"]
    if since is not None and row["kind"] == "alert_firing" and row["repeat"]:
        n = replace(n, title=f"{n.title} (still firing after {duration(n.at - since)})")
    elif since is not None and row["kind"] == "alert_resolved":
        n = replace(n, title=f"{n.title} (fired for {duration(n.at - since)})")
    return n


def heads(conn: SqlConnection, notifier: str) -> list[dict[str, Any]]:
    """The oldest pending row of each channel."""
    return _dicts(conn.execute(
        "SELECT * FROM notification_outbox WHERE id IN (SELECT min(id) FROM"
        " notification_outbox WHERE notifier=? AND state=? GROUP BY channel) ORDER BY id",
        (notifier, PENDING)))


def mark_sent(conn: SqlConnection, row_id: int, at: float) -> None:
    conn.execute("UPDATE notification_outbox SET state=?, sent_at=?, attempts=attempts+1,"
                 " last_error=NULL WHERE id=? AND state=?", (SENT, at, row_id, PENDING))


def mark_failed(conn: SqlConnection, row_id: int, state: str, attempts: int,
                refusals: int, next_attempt_at: float, error: str) -> None:
    conn.execute("UPDATE notification_outbox SET state=?, attempts=?, refusals=?,"
                 " next_attempt_at=?, last_error=? WHERE id=?",
                 (state, attempts, refusals, next_attempt_at, error, row_id))


def rows(conn: SqlConnection, notifier: str, state: str | None = None
         ) -> list[dict[str, Any]]:
    sql, args = "SELECT * FROM notification_outbox WHERE notifier=?", [notifier]
    if state is not None:
        sql, args = sql + " AND state=?", [*args, state]
    return _dicts(conn.execute(sql + " ORDER BY id", args))


def count(conn: SqlConnection, notifier: str, state: str) -> int:
    return int(conn.execute("SELECT count(*) FROM notification_outbox WHERE notifier=? AND"
                            " state=?", (notifier, state)).fetchone()[0])


def prune(conn: SqlConnection, notifier: str, before: float) -> int:
    cur = conn.execute("DELETE FROM notification_outbox WHERE notifier=? AND state IN (?,?)"
                       " AND enqueued_at < ?", (notifier, SENT, SUPPRESSED, before))
    return int(cur.rowcount)


def requeue_dead(conn: SqlConnection, notifier: str, now: float) -> int:
    cur = conn.execute("UPDATE notification_outbox SET state=?, refusals=0, next_attempt_at=?"
                       " WHERE notifier=? AND state=?", (PENDING, now, notifier, DEAD))
    return int(cur.rowcount)


def _dicts(cur: Any) -> list[dict[str, Any]]:
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
