"""The ``api_audit`` table (journal migrations v4, v5): the control requests the API received.

Refused requests (``missing_token``, ``wrong_token``, ``no_token_configured``: 401, from
anyone who can reach the port) are aggregated so that the table cannot be grown without
bound by anonymous callers: one row per client address, method, route and outcome per
:data:`BUCKET_SECONDS` of the API's clock, with ``count`` (requests it stands for), ``at``
(the first) and ``last_at`` (the last). The row keeps the path and module of its requests
while they are all the same; otherwise the route's template (``/api/modules/{module}/pause``)
and no module. Past :data:`MAX_KEYS` refused rows in one bucket, further new keys (many
client addresses, say) fold into one row of the bucket: client :data:`OTHERS`, outcome
``refused``, the route's action, path ``*``. So refused requests add at most
``MAX_KEYS + routes`` rows per bucket, and every refused request is still counted (each
one is a short single-row write, as before). The body of a refused request is never read,
so nothing an anonymous caller sent beyond the path is kept; the token is never stored.

Requests that presented the token keep one row each (``count`` 1): accepted ones (``ok``)
and those the route refused (``rejected``: 404, 409, 422). Accepted actions are also
journaled as decisions, with their actor and reason, by :mod:`watchdog.control`.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from watchdog.errors import JournalError
from watchdog.journal import open_journal
from watchdog.journal.base import Journal, SqlConnection

log = logging.getLogger(__name__)

MAX_PATH = 300
BUCKET_SECONDS = 600.0
MAX_KEYS = 64
OTHERS = "*"
REFUSED = ("missing_token", "wrong_token", "no_token_configured")

Recorded = Literal["new", "counted", "failed"]


@dataclass(frozen=True)
class Attempt:
    at: float
    client: str
    method: str
    path: str
    action: str
    module: str | None
    status: int
    outcome: str
    route: str = ""  # the route's path template; "" when the same as ``path``


def record(journal_path: str, attempt: Attempt) -> bool:
    """Record ``attempt``; False (and a log line) when the journal cannot take it."""
    return write(journal_path, attempt) != "failed"


def write(journal_path: str, attempt: Attempt) -> Recorded:
    """Record ``attempt``: ``new`` (a row of its own, or the first of an aggregate),
    ``counted`` (added to a refused row of this bucket), ``failed`` (logged)."""
    try:
        journal = open_journal(journal_path)
    except JournalError as err:
        log.error("api audit: cannot open the journal to record %s: %s", attempt, err)
        return "failed"
    try:
        with journal.transaction():
            conn = journal.sql
            if attempt.outcome in REFUSED and _count(conn, attempt):
                return "counted"
            _insert(conn, attempt)
            return "new"
    except (JournalError, sqlite3.Error) as err:
        log.error("api audit: cannot record %s: %s", attempt, err)
        return "failed"
    finally:
        journal.close()


def _insert(conn: SqlConnection, a: Attempt) -> None:
    conn.execute("INSERT INTO api_audit (at, last_at, client, method, path, action, module,"
                 " status, outcome, count) VALUES (?,?,?,?,?,?,?,?,?,1)",
                 (a.at, a.at, a.client[:100], a.method[:10], a.path[:MAX_PATH], a.action,
                  a.module, a.status, a.outcome))


def _count(conn: SqlConnection, a: Attempt) -> bool:
    """Add ``a`` to its row of the bucket (True); False when it needs a row of its own.
    A new key past :data:`MAX_KEYS` rows goes to (or starts) the bucket's fold row."""
    start = math.floor(a.at / BUCKET_SECONDS) * BUCKET_SECONDS
    bucket = (start, start + BUCKET_SECONDS)
    template = (a.route or a.path)[:MAX_PATH]
    found = conn.execute(
        "SELECT id FROM api_audit WHERE at >= ? AND at < ? AND client = ? AND method = ?"
        " AND action = ? AND outcome = ? ORDER BY id DESC LIMIT 1",
        (*bucket, a.client[:100], a.method[:10], a.action, a.outcome)).fetchone()
    if found is not None:
        conn.execute(
            "UPDATE api_audit SET count = count + 1,"
            " last_at = CASE WHEN last_at >= ? THEN last_at ELSE ? END,"
            " path = CASE WHEN path = ? THEN path ELSE ? END,"
            " module = CASE WHEN module IS NOT DISTINCT FROM ? THEN module ELSE NULL END"
            " WHERE id = ?", (a.at, a.at, a.path[:MAX_PATH], template, a.module, found[0]))
        return True
    placeholders = ",".join("?" * len(REFUSED))
    (rows,) = conn.execute(
        f"SELECT COUNT(*) FROM api_audit WHERE at >= ? AND at < ? AND client != ?"
        f" AND outcome IN ({placeholders})", (*bucket, OTHERS, *REFUSED)).fetchone()
    if rows < MAX_KEYS:
        return False
    fold = Attempt(a.at, OTHERS, a.method, "*", a.action, None, a.status, "refused")
    found = conn.execute(
        "SELECT id FROM api_audit WHERE at >= ? AND at < ? AND client = ? AND method = ?"
        " AND action = ? ORDER BY id DESC LIMIT 1",
        (*bucket, OTHERS, fold.method[:10], fold.action)).fetchone()
    if found is None:
        _insert(conn, fold)
    else:
        conn.execute("UPDATE api_audit SET count = count + 1, last_at = CASE WHEN"
                     " last_at >= ? THEN last_at ELSE ? END WHERE id = ?",
                     (a.at, a.at, found[0]))
    return True


def entries(journal: Journal, limit: int = 100) -> list[dict[str, Any]]:
    """The last ``limit`` rows, oldest first."""
    return journal.api_audit(limit)
