"""What the staging step last made of each record: the record's content hash, the mapping it was mapped with,
and the staged row it gave (``stage_inputs``). A record whose content and mapping are the same as then is not
mapped or validated again: its staged row is carried into the run as it is.

Why a table of its own, and why it is safe: a row here says "record R (content hash H) of source S, mapped by
mapping M, gave the ``stg_*`` row whose ``payload_hash`` is P". It is trusted only while all three hold — the
record's hash now is H, the org's resolved mapping and the code now hash to M (``mapping_hash``), and the staged
row is still there with payload hash P — so any other writer of ``stg_*`` (a backfill window, a restore, a hand
edit) simply makes the record be mapped again. Losing this table costs one full mapping, nothing else.

A record the mapping quarantined whole, or staged with an optional value left out (a 'field' quarantine row), has
its verdict remembered beside (``stage_verdicts``: the quarantine rows it gave, and whether it gave a staged row
too), trusted on the same terms: while the record's hash and the mapping hash hold (and, for one staged, the staged
row is still there), the run writes those quarantine rows as its own instead of mapping the record again — the
mapping and the pandera models are a function of the record and the code, so the verdict would be the same. Every
run still quarantines it (its rows, the log, the gate's counts), as before; a record the mapping code crashed on
(``could not be mapped``) is never remembered: that is the code's fault, retried every run.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from bloom_pipeline import jsontext
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


# what of a quarantine row a verdict keeps: the rest (source, entity, source id) is the record's own
VERDICT_KEYS = ("kind", "field", "value", "errors", "raw")


@dataclass(frozen=True)
class Verdict:
    """A remembered verdict (``stage_verdicts``): whether it still holds for the record as received now (same
    content hash, same mapping), whether the record also gave a staged row, and the quarantine rows it gave."""

    holds: bool
    staged: bool
    rows: list[dict[str, Any]]


def verdicts(store: StagingStore, source: str, source_entity: str, mapping: str,
             hashes: dict[str, str]) -> dict[str, Verdict]:
    """The remembered verdicts of the source ids among ``hashes`` (source id -> record hash now); the rows are
    parsed only for those that hold."""
    if not hashes:
        return {}
    with store.connect() as con:
        found = con.execute(
            "SELECT source_id, record_hash, mapping_hash, staged, verdict FROM stage_verdicts "
            "WHERE source = ? AND entity = ?", [source, source_entity]).fetchall()
    out = {}
    for sid, digest, mapped_by, staged, verdict in found:
        if sid in hashes:
            holds = hashes[sid] == digest and mapped_by == mapping
            out[sid] = Verdict(holds, bool(staged), jsontext.loads(verdict) if holds else [])
    return out


def verdict_rows(frames: Iterable[pd.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    """The quarantine rows of ``frames`` (the stage's rejected / field rows) grouped by source id, as a verdict
    keeps them (``VERDICT_KEYS``; errors as a list of texts)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for frame in frames:
        if not len(frame):
            continue
        columns = [key for key in VERDICT_KEYS if key in frame]
        for sid, *values in zip(frame["source_id"].astype(str), *(frame[key] for key in columns), strict=True):
            row = {key: _plain(value) for key, value in zip(columns, values, strict=True)}
            out.setdefault(sid, []).append(row)
    return out


def _plain(value: Any) -> Any:
    """A frame cell as JSON keeps it: lists of texts stay lists, a missing value is None."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        return [str(v) for v in value.tolist()]
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value


def write_changes(store: StagingStore, entity: str, frame: pd.DataFrame, *, source: str, source_entity: str,
                  run_id: str, unchanged: set[str], full_scan: bool, mapping: str, record_hash: dict[str, str],
                  uncached: set[str], judged: dict[str, list[dict[str, Any]]] | None = None,
                  kept: set[str] = frozenset()) -> int:
    """In one transaction: the rows mapped anew upserted by key, the unchanged rows carried into this run
    (``run_id``, ``extracted_at``), and — for a full scan — every other row of the source deleted (the record is
    gone from the source, or quarantined now); then ``stage_inputs`` and ``stage_verdicts`` brought up to date.
    ``uncached``: source ids that must be mapped again next run whatever happens (the mapping code crashed on
    them); ``judged``: the quarantine rows of each record mapped now that gave any (its verdict, remembered);
    ``kept``: the records whose remembered verdict this run used (left as they are).
    Returns the number of rows staged in the run."""
    table = ddl.staged_table(entity)
    judged = judged or {}
    frame = frame.copy()
    frame["source"] = source
    frame["run_id"] = run_id
    now = datetime.now(UTC)
    if "extracted_at" not in frame:
        frame["extracted_at"] = now
    mapped_ids = {str(sid) for sid in frame["source_id"]}
    with store.write() as con:
        if len(frame):
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
            with writes.id_view(con, name="judged_ids", ids=set(judged) | set(kept)) as still:
                con.execute("DELETE FROM stage_verdicts WHERE source = ? AND entity = ? AND source_id NOT IN "
                            f"(SELECT source_id FROM {still})", [source, source_entity])
        _remember(con, frame, source=source, source_entity=source_entity, run_id=run_id, mapping=mapping,
                  record_hash=record_hash, uncached=uncached, judged=judged)
    return len(frame) + len(unchanged)


def _remember(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, *, source: str, source_entity: str,
              run_id: str, mapping: str, record_hash: dict[str, str], uncached: set[str],
              judged: dict[str, list[dict[str, Any]]]) -> None:
    import pandas as pd

    ids = [str(s) for s in frame["source_id"]]
    if not (ids or uncached or judged):
        return  # nothing mapped anew (a quiet night): nothing to forget, nothing to remember
    with writes.id_view(con, name="restaged_ids", ids=uncached | set(ids) | set(judged)) as restaged:
        con.execute("DELETE FROM stage_inputs WHERE source = ? AND entity = ? AND source_id IN "
                    f"(SELECT source_id FROM {restaged})", [source, source_entity])
        con.execute("DELETE FROM stage_verdicts WHERE source = ? AND entity = ? AND source_id IN "
                    f"(SELECT source_id FROM {restaged})", [source, source_entity])
    staged_ids = set(ids)
    verdicts_now = pd.DataFrame(
        [(source, source_entity, sid, record_hash[sid], mapping, sid in staged_ids, json.dumps(rows), run_id)
         for sid, rows in judged.items() if sid in record_hash and sid not in uncached],
        columns=["source", "entity", "source_id", "record_hash", "mapping_hash", "staged", "verdict", "run_id"])
    writes.insert_frame(con, "stage_verdicts", verdicts_now)
    rows = pd.DataFrame({"source": source, "entity": source_entity, "source_id": ids,
                         "record_hash": [record_hash.get(s) for s in ids], "mapping_hash": mapping,
                         "payload_hash": list(frame["payload_hash"].astype(str)), "run_id": run_id})
    writes.insert_frame(con, "stage_inputs", rows[rows["record_hash"].notna() & ~rows["source_id"].isin(uncached)])


def duplicate_keys(store: StagingStore, entity: str, run_id: str) -> int:
    """How many of the run's staged rows repeat a source and source id of another (0 in a sound table)."""
    table = ddl.staged_table(entity)
    with store.connect() as con:
        row = con.execute(f"SELECT count(*) - count(DISTINCT (source, source_id)) FROM {table} WHERE run_id = ?",
                          [run_id]).fetchone()
    return int(row[0]) if row else 0
