"""What the staging step last made of each record: the record's content hash, the mapping it was mapped with,
and the staged row it gave (``stage_inputs``). A record whose content and mapping are the same as then is not
mapped or validated again: its staged row is carried into the run as it is.

Why a table of its own, and why it is safe: a row here says "record R (content hash H) of source S, mapped by
mapping M, gave the ``stg_*`` row whose ``payload_hash`` is P". It is trusted only while all three hold — the
record's hash now is H, the org's resolved mapping and the code now hash to M (``mapping_hash``), and the staged
row is still there with payload hash P — so any other writer of ``stg_*`` (a backfill window, a restore, a hand
edit) simply makes the record be mapped again. Only records that were staged whole are listed: a quarantined
record, and one with an optional value left out (a 'field' quarantine row), is mapped again every run, so its
quarantine rows are written by every run as before. Losing this table costs one full mapping, nothing else.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from bloom_pipeline.staging import ddl, writes
from bloom_pipeline.staging.writes import replace_rows

if TYPE_CHECKING:
    import pandas as pd

    from bloom_pipeline.mapping.spec import OrgConfig
    from bloom_pipeline.staging.store import StagingStore

# The code that decides what a record's staged row is: the mapping engine, the pandera models, this step.
_PACKAGE = Path(__file__).resolve().parents[1]
_DECIDING_CODE = ("mapping", "mappings_default", "schemas.py", "sync/stage.py", "staging/validation.py",
                  "staging/writes.py", "staging/stage_inputs.py")


@functools.cache
def _code_digest() -> str:
    """sha256 of the package version and of the source of every module that decides a staged row, so an edit
    of the code (not only a release) invalidates what was staged by the old code."""
    from bloom_pipeline import __version__

    digest = hashlib.sha256(__version__.encode())
    for part in _DECIDING_CODE:
        path = _PACKAGE / part
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and file.suffix in {".py", ".yaml", ".yml"}:
                digest.update(str(file.relative_to(_PACKAGE)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def mapping_hash(org: OrgConfig) -> str:
    """The org's resolved mapping (its YAML with ``extends`` and the package defaults merged) and the code."""
    return hashlib.sha256((org.model_dump_json() + "\n" + _code_digest()).encode()).hexdigest()


def record_hashes(records: Iterable[Any]) -> list[str]:
    """sha256 of each record as stored (``writes.record_json``): the hash ``raw_*.record_hash`` holds too, so the
    extract's digests serve the stage (``Extracted.digests``) and a record is serialised once per run."""
    return writes.record_hashes(records)


def unchanged_ids(store: StagingStore, entity: str, source: str, source_entity: str, mapping: str,
                  hashes: dict[str, str]) -> set[str]:
    """The source ids among ``hashes`` (source id -> record hash now) whose record, mapping and staged row are
    those of the last stage."""
    if not hashes:
        return set()
    table = ddl.staged_table(entity)
    with store.connect() as con:
        known = con.execute(
            f"SELECT i.source_id, i.record_hash FROM stage_inputs i JOIN {table} s ON s.source = i.source "
            "AND s.source_id = i.source_id AND s.payload_hash = i.payload_hash "
            "WHERE i.source = ? AND i.entity = ? AND i.mapping_hash = ?",
            [source, source_entity, mapping],
        ).fetchall()
    return {sid for sid, digest in known if hashes.get(sid) == digest}


def write_changes(store: StagingStore, entity: str, frame: pd.DataFrame, *, source: str, source_entity: str,
                  run_id: str, unchanged: set[str], full_scan: bool, mapping: str, record_hash: dict[str, str],
                  uncached: set[str]) -> int:
    """In one transaction: the rows mapped anew upserted by key, the unchanged rows carried into this run
    (``run_id``, ``extracted_at``), and — for a full scan — every other row of the source deleted (the record is
    gone from the source, or quarantined now); then ``stage_inputs`` brought up to date. ``uncached``: source ids
    that must be mapped again next run whatever happens (quarantined or with a value left out).
    Returns the number of rows staged in the run."""
    table = ddl.staged_table(entity)
    frame = frame.copy()
    frame["source"] = source
    frame["run_id"] = run_id
    now = datetime.now(UTC)
    if "extracted_at" not in frame:
        frame["extracted_at"] = now
    mapped_ids = {str(sid) for sid in frame["source_id"]}
    with store.write() as con:
        replace_rows(con, table, frame, window=None, keys=("source", "source_id"), scope={"source": source})
        # id sets travel as registered frames and are matched by semi-join: a list parameter with
        # ``list_contains`` would compare every row with every id (quadratic at 100,000 donors)
        with writes.id_view(con, name="carried_ids", ids=unchanged) as carried:
            con.execute(f"UPDATE {table} SET run_id = ?, extracted_at = ? WHERE source = ? "
                        f"AND source_id IN (SELECT source_id FROM {carried})", [run_id, now, source])
        if full_scan:
            with writes.id_view(con, name="staged_ids", ids=mapped_ids | unchanged) as staged:
                con.execute(f"DELETE FROM {table} WHERE source = ? AND source_id NOT IN "
                            f"(SELECT source_id FROM {staged})", [source])
                con.execute("DELETE FROM stage_inputs WHERE source = ? AND entity = ? AND source_id NOT IN "
                            f"(SELECT source_id FROM {staged})", [source, source_entity])
        _remember(con, frame, source=source, source_entity=source_entity, run_id=run_id, mapping=mapping,
                  record_hash=record_hash, uncached=uncached)
    return len(frame) + len(unchanged)


def _remember(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, *, source: str, source_entity: str,
              run_id: str, mapping: str, record_hash: dict[str, str], uncached: set[str]) -> None:
    import pandas as pd

    with writes.id_view(con, name="restaged_ids", ids=uncached | {str(sid) for sid in frame["source_id"]}) as restaged:
        con.execute("DELETE FROM stage_inputs WHERE source = ? AND entity = ? AND source_id IN "
                    f"(SELECT source_id FROM {restaged})", [source, source_entity])
    ids = [str(s) for s in frame["source_id"]]
    rows = pd.DataFrame({"source": source, "entity": source_entity, "source_id": ids,
                         "record_hash": [record_hash.get(s) for s in ids], "mapping_hash": mapping,
                         "payload_hash": list(frame["payload_hash"].astype(str)), "run_id": run_id})
    rows = rows[rows["record_hash"].notna() & ~rows["source_id"].isin(uncached)]
    if len(rows):
        con.register("stage_inputs_incoming", rows)
        try:
            con.execute("INSERT INTO stage_inputs BY NAME SELECT * FROM stage_inputs_incoming")
        finally:
            con.unregister("stage_inputs_incoming")


def duplicate_keys(store: StagingStore, entity: str, run_id: str) -> int:
    """How many of the run's staged rows repeat a source and source id of another (0 in a sound table)."""
    table = ddl.staged_table(entity)
    with store.connect() as con:
        row = con.execute(f"SELECT count(*) - count(DISTINCT (source, source_id)) FROM {table} WHERE run_id = ?",
                          [run_id]).fetchone()
    return int(row[0]) if row else 0
