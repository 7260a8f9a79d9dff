"""The SQLite journal's baselines (a mixin of :class:`watchdog.journal.store.Journal`)."""

from __future__ import annotations

from watchdog.baseline import Baseline
from watchdog.errors import JournalError
from watchdog.journal import records
from watchdog.journal.sqlite_extra import SqliteExtras
from watchdog.journal.sqlite_mapped import _mapped


class SqliteBaselines(SqliteExtras):
    @_mapped
    def save_baseline(self, b: Baseline) -> Baseline:
        with self.transaction():
            cur = self._conn.execute(f"INSERT INTO baselines ({records.BASELINE_COLUMNS})"
                                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                     records.baseline_values(b))
        found = self.baseline(int(cur.lastrowid or 0))
        assert found is not None
        return found

    @_mapped
    def baselines(self, module: str | None = None, metric: str | None = None
                  ) -> list[Baseline]:
        pairs = [(c, v) for c, v in (("module=?", module), ("metric=?", metric)) if v is not None]
        sql = "SELECT * FROM baselines" + (
            " WHERE " + " AND ".join(c for c, _ in pairs) if pairs else "")
        return [records.baseline_row(r) for r in self._rows(sql + " ORDER BY id",
                                                            tuple(v for _, v in pairs))]

    @_mapped
    def baseline_fingerprint(self, module: str, now: float | None = None) -> tuple[object, ...]:
        """Changes whenever a baseline of ``module`` is added, pinned or unpinned, and
        (given ``now``) whenever one expires."""
        row = self._conn.execute(
            "SELECT count(*), max(id), sum(pinned * id),"
            " sum(expires_at IS NOT NULL AND expires_at <= ?) FROM baselines WHERE module=?",
            (now, module)).fetchone()
        return tuple(row)

    @_mapped
    def baseline(self, baseline_id: int) -> Baseline | None:
        rows = list(self._rows("SELECT * FROM baselines WHERE id=?", (baseline_id,)))
        return records.baseline_row(rows[0]) if rows else None

    @_mapped
    def pin_baseline(self, baseline_id: int) -> Baseline:
        """Make this baseline the reference for its module and metric (unpinning others)."""
        found = self.baseline(baseline_id)
        if found is None:
            raise JournalError(f"no baseline with id {baseline_id}")
        with self.transaction():
            self._conn.execute("UPDATE baselines SET pinned=0 WHERE module=? AND metric=?",
                               (found.module, found.metric))
            self._conn.execute("UPDATE baselines SET pinned=1 WHERE id=?", (baseline_id,))
        pinned = self.baseline(baseline_id)
        assert pinned is not None
        return pinned

    def active_baselines(self, module: str, now: float) -> dict[str, Baseline]:
        """Per metric: the pinned baseline if any, else the newest one not expired."""
        return records.choose_active(self.baselines(module=module), now)
