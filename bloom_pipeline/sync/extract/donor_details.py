"""WeGive donor details kept between runs, so a quiet night costs the donor list pages only.

Why: a WeGive donor list row (``DonorTableResource``) has ``first_name`` and ``name`` but no ``last_name``
or ``middle_name``, and the address only as an object and a string (contracts/wegive-handbid.md §1.4); the
person is in the detail, ``GET /dashboard/donors/{id}`` — one request per donor. So the extract scans the
list every run (WeGive has no modification filter for donors) and fetches the detail only of the donors
that need it; every other donor is staged from the detail stored here, and the rest of the pipeline sees
every donor every run, as before.

A donor needs its detail fetched when (``needs_detail``):

1. it is new (no stored detail);
2. its list row changed since the detail was stored (a hash of the row, without the giving totals a new
   gift moves — they are not contact fields and a gift should not cost a request);
3. its stored detail holds another ``bloomerang_id`` than the link in ``sync_state``: the run wrote the
   link back to WeGive, in a process that could not hand the answer to this table (a Dagster step other
   than the extract), or the write-back failed and must be looked at again;
4. a Bloomerang change was written to the donor (``sync_log``: ``to_source``) after its detail was stored,
   unless the stored detail is that write's own answer — a middle name or a link does not show in the list
   row, so without this the stored detail would go stale behind our own write;
5. its linked Bloomerang constituent changed since the last sync (the canonical values this run read
   differ from ``sync_state``'s Bloomerang snapshot): the merge may write that change to WeGive, and must
   weigh it against WeGive's current values, never against a stored detail that may miss a WeGive edit
   of a field the list row does not show (or it would overwrite that edit unseen).

Answers of our own writes (``WeGiveClient.on_donor_detail``) are stored as they come (``DetailRecorder``):
in the one-process run (``bloom-pipeline sync``) the write-back and merge answers keep the table current,
so the night after costs nothing. Rules 3 and 4 make it right when they are not handed over.

What it cannot see: an edit in WeGive of a field only the detail shows (middle name, birthdate, notes)
reaches the pipeline when the donor's list row next changes, or when Bloomerang changes the same donor.

Table ``wegive_donor_details`` (owned by this module, created on first use): ``source_id``, ``row_hash``
(the list row the detail was fetched for), ``detail`` (the ``DonorViewResource`` as WeGive answered it, with the
list-only fields of that row — ``do_not_contact`` — as the run stages it; the answer of a write until the next
run adds them), ``recorded_at``, ``run_id``, ``via`` (``read``: fetched by the extract; ``write``: the answer of our
write).

Why the staged record is stored and not the bare answer: a quiet night stages every donor, and the stored text
is then the donor's raw record as it is (``record_json`` of it, parsed once): 100,000 unchanged donors are not
serialised again. A stored detail without the list-only fields, or a row hash of an earlier version
(``_legacy_row_hash``), is brought up to date by the run that next reads it (``refresh`` of ``save``), without
a request.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.staging.store import StagingStore, transaction
from bloom_pipeline.staging.writes import record_json, replace_rows
from bloom_pipeline.sync.fields import CANONICAL_FIELDS, record_hash
from bloom_pipeline.sync.snapshot import snapshot_frame

TABLE = "wegive_donor_details"
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    source_id   VARCHAR PRIMARY KEY,
    row_hash    VARCHAR,
    detail      JSON NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR NOT NULL,
    via         VARCHAR NOT NULL CHECK (via IN ('read', 'write'))
)"""
# List-row fields a gift moves; the detail is fetched for contact fields, so these do not count as a change.
GIVING_KEYS = frozenset({"total_given", "total_given_this_year", "last_donation", "total_given_to_element"})

Record = dict[str, Any]


@dataclass(frozen=True)
class Stored:
    row_hash: str | None
    detail: Record
    text: str  # ``detail`` as stored (``record_json`` of it)


# A row hash of this version starts with it; one without it hashes json.dumps's text (earlier versions), which
# orjson's sorted text replaced (1.7 s of a 100,000-donor quiet night). Both are read (``same_row``).
ROW_HASH_PREFIX = "2:"


def _giving_left_out(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in GIVING_KEYS}


def row_hash(row: Mapping[str, Any]) -> str:
    """Hash of one list row, the giving totals left out (see the module docstring)."""
    return ROW_HASH_PREFIX + hashlib.sha256(jsontext.digest_text(_giving_left_out(row), sort_keys=True)).hexdigest()


def _legacy_row_hash(row: Mapping[str, Any]) -> str:
    """The row hash earlier versions stored: sha256 of ``json.dumps`` of the row, sorted (``record_json``)."""
    return hashlib.sha256(record_json(_giving_left_out(row)).encode()).hexdigest()


def same_row(stored: str | None, row: Mapping[str, Any], hashed: str) -> bool:
    """The stored detail was fetched for this list row (``hashed`` is ``row_hash(row)``), whichever version of the
    hash it was stored with."""
    if stored is None:
        return False
    if stored.startswith(ROW_HASH_PREFIX):
        return stored == hashed
    return stored == _legacy_row_hash(row)


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def load_stored(con: duckdb.DuckDBPyConnection) -> dict[str, Stored]:
    """Every stored detail by donor id."""
    ensure_table(con)
    rows = con.execute(f"SELECT source_id, row_hash, detail FROM {TABLE}").fetchall()
    return {sid: Stored(hashed, jsontext.loads(detail), detail) for sid, hashed, detail in rows}


def _written_since(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Donors we wrote a Bloomerang change to after their detail was stored (rule 4)."""
    rows = con.execute(
        f"SELECT DISTINCT l.source_id FROM sync_log l JOIN {TABLE} d ON d.source_id = l.source_id "
        "WHERE l.entity = 'constituents' AND l.source = 'wegive' AND l.action = 'updated' "
        "AND coalesce(json_extract_string(l.field_diff, '$.to_source'), '{}') NOT IN ('{}', 'null') "
        "AND l.logged_at > d.recorded_at AND NOT (d.via = 'write' AND l.run_id = d.run_id)"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _links(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The Bloomerang id each linked WeGive donor has in ``sync_state`` (rule 3)."""
    rows = con.execute(
        "SELECT source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' AND source = 'wegive' "
        "AND bloomerang_id IS NOT NULL"
    ).fetchall()
    return {str(sid): int(bid) for sid, bid in rows}


def _bloomerang_changed(con: duckdb.DuckDBPyConnection, constituents: list[Record]) -> set[str]:
    """Linked donors whose Bloomerang constituent, as read this run, differs from the last sync (rule 5).

    Compared on the canonical values as the merge compares them, so the read-back of our own writes
    (Bloomerang's ``lastModified`` filter returns them once) is no change."""
    if not constituents:
        return set()
    current = {int(row["bloomerang_id"]): row for row in snapshot_frame(constituents, {}).to_dict("records")
               if row.get("bloomerang_id") is not None}
    rows = con.execute(
        "SELECT source_id, bloomerang_id, bloomerang_snapshot FROM sync_state WHERE entity = 'constituents' "
        "AND source = 'wegive' AND bloomerang_id IS NOT NULL AND bloomerang_snapshot IS NOT NULL"
    ).fetchall()
    changed = set()
    for sid, bid, text in rows:
        if int(bid) in current:
            base = jsontext.loads(text)
            names = [n for n in CANONICAL_FIELDS if n in base]  # the fields the merge keeps a base of
            if record_hash(current[int(bid)], names) != record_hash(base, names):
                changed.add(str(sid))
    return changed


def needs_detail(con: duckdb.DuckDBPyConnection, rows: Iterable[Record], stored: Mapping[str, Stored],
                 bloomerang_constituents: list[Record] | None = None, hashes: Mapping[str, str] | None = None
                 ) -> list[str]:
    """Ids (as text) of the listed donors whose detail must be fetched this run, in list order.

    ``bloomerang_constituents``: the constituents this run read as changed since the cursor (rule 5);
    ``hashes``: ``row_hash`` of each row by id, when the caller has them."""
    ensure_table(con)
    written, links = _written_since(con), _links(con)
    changed = _bloomerang_changed(con, bloomerang_constituents or [])
    out = []
    for row in rows:
        sid = str(row["id"])
        have = stored.get(sid)
        hashed = hashes[sid] if hashes is not None else row_hash(row)
        if (have is None or not same_row(have.row_hash, row, hashed) or sid in written or sid in changed
                or (sid in links and "bloomerang_id" in have.detail
                    and str(have.detail.get("bloomerang_id") or "") != str(links[sid]))):
            out.append(sid)
    return out


def save(con: duckdb.DuckDBPyConnection, fetched: Mapping[str, tuple[str, str]], listed: Iterable[str], *,
         run_id: str, refresh: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Store the details fetched this run (``id -> (row hash, detail text)``, the text ``record_json`` of the
    record as staged), bring ``refresh``-ed ones up to date (same shape: a stored detail this run did not fetch,
    with its current row hash and staged text; when and by whom it was recorded stay), and forget donors no
    longer listed."""
    ensure_table(con)
    now = datetime.now(UTC)
    frame = pd.DataFrame(
        [{"source_id": sid, "row_hash": hashed, "detail": text, "recorded_at": now, "run_id": run_id, "via": "read"}
         for sid, (hashed, text) in fetched.items()],
        columns=["source_id", "row_hash", "detail", "recorded_at", "run_id", "via"])
    keep = pd.DataFrame({"source_id": sorted(set(listed))}, columns=["source_id"])
    refreshed = pd.DataFrame([{"source_id": sid, "row_hash": hashed, "detail": text}
                              for sid, (hashed, text) in (refresh or {}).items()],
                             columns=["source_id", "row_hash", "detail"])
    with transaction(con):
        replace_rows(con, TABLE, frame, window=None, keys=("source_id",))
        if len(refreshed):
            con.register("refreshed_details", refreshed)
            try:
                con.execute(f"UPDATE {TABLE} SET row_hash = r.row_hash, detail = r.detail FROM refreshed_details r "
                            f"WHERE {TABLE}.source_id = r.source_id")
            finally:
                con.unregister("refreshed_details")
        con.register("listed_donors", keep)
        try:
            con.execute(f"DELETE FROM {TABLE} WHERE source_id NOT IN (SELECT source_id FROM listed_donors)")
        finally:
            con.unregister("listed_donors")


class DetailRecorder:
    """``WeGiveClient.on_donor_detail``: keeps the detail a write answered for a donor already stored.

    The list row it belongs to is not known here, so the stored row hash stays: a write that changed the
    list row (a new phone) still has the detail fetched the next run, one that did not (a middle name, the
    Bloomerang id) costs nothing.
    """

    def __init__(self, store: StagingStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._table_ready = False

    def __call__(self, detail: Record) -> None:
        self.record_many([detail])

    def record_many(self, details: list[Record]) -> None:
        """Keep several answers in one transaction and one statement (the pooled write-back hands them over in
        batches). One ``UPDATE`` joined to a registered frame, not ``executemany``: DuckDB runs an executemany
        as one statement per row, ~3 ms each — the 2,000 answers of a first load's write-back cost 11 s."""
        now = datetime.now(UTC)
        latest = {str(detail["id"]): detail for detail in details}  # the last answer of a donor wins
        if not latest:
            return
        frame = pd.DataFrame(
            [{"source_id": sid, "detail": record_json(detail)}
             for sid, detail in latest.items()], columns=["source_id", "detail"])
        with self.store.write() as con:
            if not self._table_ready:
                ensure_table(con)
                self._table_ready = True
            con.register("_written_details", frame)
            try:
                con.execute(
                    f"UPDATE {TABLE} SET detail = w.detail, recorded_at = ?, run_id = ?, via = 'write' "
                    f"FROM _written_details w WHERE {TABLE}.source_id = w.source_id",
                    [now, self.run_id],
                )
            finally:
                with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses even this; the error stands
                    con.unregister("_written_details")
