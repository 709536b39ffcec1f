"""The write journal: each write's intent and outcome made durable the moment it happens, cheaply.

A DuckDB commit costs ~2.5 ms (an fsync) and a keyed upsert several more, which would double the cost
of every Bloomerang write. So the apply loop records each record in a small SQLite journal next to the
staging file (WAL, ~30 µs a commit, durable across a killed process): a ``pending`` row *before* a
create is sent, an ``outcome`` row the moment it succeeded or failed. The ledger moves outcomes into
DuckDB (``sync_state``, ``sync_log``) in batches and then clears them from the journal.

After a crash, the next run first replays outcomes still in the journal (so nothing written is
forgotten), then resolves creates that stayed pending by looking them up by correlation id.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from bloom_pipeline.errors import MOVE_ASIDE, UnusableFileError
from bloom_pipeline.staging.store import usable_folder

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pending (entity TEXT, source TEXT, source_id TEXT, run_id TEXT, "
    "PRIMARY KEY (entity, source, source_id))",
    "CREATE TABLE IF NOT EXISTS outcome (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, body TEXT)",
)
# An outcome settles its record's pending marker in the statement that inserts it (a trigger runs inside the
# statement's own transaction). Why not BEGIN / INSERT / DELETE / COMMIT: each statement releases the
# interpreter lock and must win it back from the write pool's threads, on the thread every write waits for —
# four round trips per record where one does. TEMP: the trigger lives in this connection, not in the file, so
# a journal written by other code reads the same.
SETTLE_PENDING = (
    "CREATE TEMP TRIGGER IF NOT EXISTS outcome_settles_pending AFTER INSERT ON main.outcome BEGIN "
    "DELETE FROM pending WHERE entity = json_extract(NEW.body, '$.entity') "
    "AND source = json_extract(NEW.body, '$.source') AND source_id = json_extract(NEW.body, '$.source_id'); END"
)


class Journal:
    """One org's write journal (``<data dir>/<org>_journal.sqlite``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        usable_folder(self.path.parent)
        try:
            self._con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process; no fsync per write
            for statement in SCHEMA:
                self._con.execute(statement)
            self._con.execute(SETTLE_PENDING)
            self._con.execute("SELECT count(*) FROM pending").fetchone()
        except sqlite3.DatabaseError as exc:
            raise UnusableFileError(self.path, f"not a usable write journal ({exc}); {MOVE_ASIDE}") from None

    @classmethod
    def beside(cls, staging_path: str | Path) -> Journal:
        staging = Path(staging_path)
        return cls(staging.with_name(staging.name.replace("_staging.duckdb", "") + "_journal.sqlite"))

    def close(self) -> None:
        self._con.close()

    def mark_pending(self, entity: str, source: str, source_id: str, run_id: str) -> None:
        self._con.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)", (entity, source, source_id, run_id))

    def add_outcome(self, run_id: str, body: dict[str, Any]) -> None:
        """One record's result; settles its pending marker in the same commit (``SETTLE_PENDING``)."""
        self._con.execute("INSERT INTO outcome (run_id, body) VALUES (?, ?)", (run_id, json.dumps(body, default=str)))

    def outcomes(self) -> list[tuple[int, str, dict[str, Any]]]:
        rows = self._con.execute("SELECT seq, run_id, body FROM outcome ORDER BY seq").fetchall()
        return [(seq, run_id, json.loads(body)) for seq, run_id, body in rows]

    def forget_outcomes(self, up_to_seq: int) -> None:
        self._con.execute("DELETE FROM outcome WHERE seq <= ?", (up_to_seq,))

    def pending(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self._con.execute("SELECT entity, source, source_id FROM pending").fetchall()]

    def forget_pending(self, entity: str, source: str, source_id: str) -> None:
        self._con.execute("DELETE FROM pending WHERE entity = ? AND source = ? AND source_id = ?",
                          (entity, source, source_id))
