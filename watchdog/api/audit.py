"""The ``api_audit`` table (journal migration v4): every control request the API received.

One row per request to a control route, refused or not: when, from which client address,
method and path, the action and module it named, the HTTP status and the outcome
(``ok``, ``missing_token``, ``wrong_token``, ``no_token_configured``, ``rejected``).
The body of a refused request is never read, so nothing an anonymous caller sent beyond
the path is kept; the token is never stored. Accepted actions are also journaled as
decisions, with their actor and reason, by :mod:`watchdog.control`.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from watchdog.errors import JournalError
from watchdog.journal.store import Journal

log = logging.getLogger(__name__)

MAX_PATH = 300


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


def record(journal_path: str, attempt: Attempt) -> bool:
    """Append ``attempt``; False (and a log line) when the journal cannot take it."""
    try:
        journal = Journal(journal_path)
    except JournalError as err:
        log.error("api audit: cannot open the journal to record %s: %s", attempt, err)
        return False
    try:
        with journal.transaction():
            journal.db.conn.execute(
                "INSERT INTO api_audit (at, client, method, path, action, module, status,"
                " outcome) VALUES (?,?,?,?,?,?,?,?)",
                (attempt.at, attempt.client[:100], attempt.method[:10],
                 attempt.path[:MAX_PATH], attempt.action, attempt.module, attempt.status,
                 attempt.outcome))
        return True
    except (JournalError, sqlite3.Error) as err:
        log.error("api audit: cannot record %s: %s", attempt, err)
        return False
    finally:
        journal.close()


def entries(journal: Journal, limit: int = 100) -> list[dict[str, Any]]:
    """The last ``limit`` rows, oldest first."""
    rows = journal.db.query("SELECT * FROM (SELECT * FROM api_audit ORDER BY id DESC LIMIT ?)"
                            " ORDER BY id", [limit])
    return list(rows)
