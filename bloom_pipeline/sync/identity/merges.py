"""Bloomerang merges: links that point at a constituent Bloomerang no longer has move to the survivor.

When staff merge two constituents in Bloomerang, the API does not say so (contracts/bloomerang-v2.md: how a
UI merge shows through the API is not documented). What the sync can see is the reading the people issue
builds to: the merged-away id answers 404 / is gone from lists, and the survivor holds what it had -- its
gifts, and maybe its correlation custom value (the WeGive donor id / Handbid contact id), or only its own.
Left alone, every link to the old id would fail (or, with the data folder lost, create the person again).

So before identity, ``relink_merged`` checks the linked ids that look merged -- cheap signals, no request
per record on a quiet night:

* the id is not in the stored Bloomerang snapshot (a full re-read no longer lists it);
* another constituent, changed since the last run, now holds the link's correlation value (the survivor took
  it);
* a gift of the linked donor, changed since the last run, is on another constituent (the merge moved the
  gifts, which bumps them into the incremental pull);
* the last run's write to the id failed with a 404.

Those ids are asked for in one list request (``GET /constituents?id=..``, 50 a page); each one Bloomerang no
longer has is *merged*. Its survivor is, first, the one constituent holding the link's correlation value
(``GET /constituents?customFieldId=..&customFieldValue=..``), else the one constituent the donor's gifts now
belong to. Every link to the old id then moves to the survivor (``sync_state``; open ``review_queue`` rows;
WeGive's ``bloomerang_id`` follows through the write-back), the old id leaves the stored snapshot, and each
move is recorded in ``constituent_merges``. Nothing is created and no gift is posted again: gifts are linked
by their own ids and correlation values, and their ``AccountId`` resolves through the moved link.

The survivor's current values become the link's Bloomerang baseline: the staff member who merged chose what
the survivor keeps, so the merge itself is not an edit to send to WeGive, and nothing WeGive holds is pushed
over it unless WeGive changes. Two source records ending on one survivor is what Bloomerang decided (one
person): recorded, never split. A merged id whose survivor cannot be told (no constituent holds the value, the
gifts say nothing or disagree) keeps its link and is recorded with ``survivor_id`` NULL; its writes fail with
Bloomerang's 404 (retried nightly) until someone sets the correlation value on the survivor -- better than a
duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline.errors import ApiError
from bloom_pipeline.staging import ddl, ledgers
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.fields import CANONICAL_FIELDS, present, record_hash
from bloom_pipeline.sync.identity.constituents import CORRELATION_COLUMNS
from bloom_pipeline.sync.snapshot import snapshot_frame

log = logging.getLogger(__name__)

MERGES_DDL = """
CREATE TABLE IF NOT EXISTS constituent_merges (
    run_id      VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    source_id   VARCHAR NOT NULL,
    merged_id   BIGINT NOT NULL,
    survivor_id BIGINT,
    found_by    VARCHAR CHECK (found_by IN ('correlation_value', 'moved_gifts')),
    note        VARCHAR,
    detected_at TIMESTAMPTZ NOT NULL
)"""
PAGE = 50  # ids per GET /constituents?id=a|b|.. (take's maximum)


@dataclass(frozen=True)
class Relink:
    """One link found pointing at a merged-away constituent, and where it went (None: not known)."""

    source: str
    source_id: str
    merged_id: int
    survivor_id: int | None
    found_by: str | None
    note: str | None = None


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MERGES_DDL)


def suspect_ids(links: pd.DataFrame, snapshot: pd.DataFrame, gift_accounts: Mapping[tuple[str, str], set[int]],
                failed_404: Iterable[int] = (), changed: set[int] | None = None) -> set[int]:
    """Linked Bloomerang ids that may have been merged away (pure: the signals of the module docstring).

    ``changed``: the constituents this run's pull saw change; only those count as new holders of a link's
    correlation value (a merge changes the survivor), so an old copy holding it costs no request every night.
    ``gift_accounts`` should likewise hold only the gifts this run's pull saw change."""
    known = set(pd.to_numeric(snapshot["bloomerang_id"]).dropna().astype(int)) if len(snapshot) else set()
    holders: dict[tuple[str, str], set[int]] = {}
    for source, column in CORRELATION_COLUMNS.items():
        if column not in snapshot:
            continue
        for value, bid in zip(snapshot[column], snapshot["bloomerang_id"], strict=True):
            if present(value) is None or present(bid) is None or (changed is not None and int(bid) not in changed):
                continue
            holders.setdefault((source, str(value).strip()), set()).add(int(bid))
    suspects = {int(b) for b in failed_404}
    for source, source_id, bid in zip(links["source"], links["source_id"].astype(str), links["bloomerang_id"],
                                      strict=True):
        bid = int(bid)
        key = (str(source), source_id)
        if (known and bid not in known) or holders.get(key, set()) - {bid} or gift_accounts.get(key, set()) - {bid}:
            suspects.add(bid)
    return suspects


def choose_survivor(merged_id: int, holding_value: Iterable[int], gift_owners: Iterable[int],
                    existing: set[int]) -> tuple[int | None, str | None]:
    """The survivor of ``merged_id``: the one existing constituent holding the link's correlation value, else
    the one the donor's gifts now belong to; ``(None, None)`` when neither names exactly one (pure)."""
    for candidates, found_by in ((holding_value, "correlation_value"), (gift_owners, "moved_gifts")):
        found = {int(c) for c in candidates if int(c) != merged_id and int(c) in existing}
        if len(found) == 1:
            return found.pop(), found_by
    return None, None


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0])


def gift_accounts(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> dict[tuple[str, str], set[int]]:
    """``(source, donor source id)`` → the Bloomerang accounts its linked gifts are on in the stored snapshot
    (with ``run_id``: only the gifts that run's pull saw change)."""
    raw = ddl.raw_table("bloomerang", "transactions")
    if not (_table_exists(con, raw) and _table_exists(con, "stg_transactions")):
        return {}
    rows = con.execute(
        f"""SELECT DISTINCT g.source, g.donor_source_id,
                   TRY_CAST(json_extract_string(b.record, '$.AccountId') AS BIGINT)
            FROM (SELECT DISTINCT source, source_id, donor_source_id FROM stg_transactions) g
            JOIN sync_state s ON s.entity = 'transactions' AND s.source = g.source AND s.source_id = g.source_id
            JOIN {raw} b ON b.source_id = CAST(s.bloomerang_id AS VARCHAR)
            WHERE g.donor_source_id IS NOT NULL AND s.bloomerang_id IS NOT NULL
              AND (CAST(? AS VARCHAR) IS NULL OR b.run_id = ?)""", [run_id, run_id]
    ).fetchall()
    out: dict[tuple[str, str], set[int]] = {}
    for source, donor, account in rows:
        if account is not None:
            out.setdefault((str(source), str(donor)), set()).add(int(account))
    return out


def _failed_404(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Constituents the last finished run's writes were refused with a 404 for."""
    rows = con.execute(
        "SELECT DISTINCT bloomerang_id FROM sync_log WHERE entity = 'constituents' AND action = 'failed' "
        "AND bloomerang_id IS NOT NULL AND error LIKE '% -> 404:%' AND run_id = (SELECT run_id FROM sync_runs "
        "WHERE status <> 'running' AND NOT dry_run ORDER BY started_at DESC LIMIT 1)"
    ).fetchall()
    return {int(r[0]) for r in rows}


def _existing(client: Any, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The records Bloomerang still has among ``ids`` (one list request per 50 ids)."""
    wanted = sorted({int(i) for i in ids})
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), PAGE):
        for record in client.iter_constituents(ids=wanted[start:start + PAGE]):
            found[int(record["Id"])] = record
    return found


def _canonical(record: Mapping[str, Any], field_ids: Mapping[str, int]) -> dict[str, Any]:
    row = snapshot_frame([dict(record)], field_ids).iloc[0]
    return {name: present(row[name]) for name in CANONICAL_FIELDS}


def relink_merged(ctx: RunContext) -> list[Relink]:
    """Find linked constituents Bloomerang merged away and move their links to the survivors (see module)."""
    store, client = ctx.store, ctx.clients.bloomerang
    with store.connect() as con:
        ensure_table(con)
        links = ledgers.links_frame(con, "constituents")
        if links.empty:
            return []
        moved = gift_accounts(con, ctx.run_id)  # gifts this run's pull saw change
        failed = _failed_404(con)
    changed = {int(r["Id"]) for r in ctx.extracted.records.get("bloomerang.constituents", []) if r.get("Id")}
    suspects = suspect_ids(links, ctx.bloomerang_snapshot(), moved, failed, changed)
    if not suspects:
        return []
    existing = _existing(client, suspects)
    gone = sorted(suspects - set(existing))
    if not gone:
        return []
    with store.connect() as con:  # where every linked donor's gifts are: read only once a merge is certain
        gifts = gift_accounts(con)
    fields = ctx.fields.constituent
    moves: list[Relink] = []
    survivors: dict[int, dict[str, Any]] = {}
    for merged_id in gone:
        on_it = links[links["bloomerang_id"].astype(int) == merged_id]
        for source, source_id in zip(on_it["source"], on_it["source_id"].astype(str), strict=True):
            holders: list[int] = []
            if source in fields:
                try:
                    found = client.find_constituents_by_custom_field(fields[source], source_id)
                except ApiError as exc:
                    log.warning("could not look up %s %s by correlation value: %s", source, source_id, exc)
                    found = []
                for record in found:
                    survivors[int(record["Id"])] = record
                    holders.append(int(record["Id"]))
            owners = gifts.get((source, source_id), set()) - {merged_id}
            unknown = owners - set(survivors) - set(existing)
            if unknown:
                existing.update(_existing(client, unknown))
            survivor, found_by = choose_survivor(merged_id, holders, owners, set(survivors) | set(existing))
            note = None if survivor is not None else (
                f"constituent {merged_id} is gone from Bloomerang (merged?) and no one constituent holds "
                f"{source} id {source_id} or its gifts; link kept")
            moves.append(Relink(source, source_id, merged_id, survivor, found_by, note))
    _record(ctx, moves, {**existing, **survivors}, fields, gone)
    return moves


def _record(ctx: RunContext, moves: list[Relink], records: Mapping[int, dict[str, Any]],
            fields: Mapping[str, int], gone: list[int]) -> None:
    """Move the links, drop the merged ids from the stored snapshot, record every move (one transaction)."""
    store, run_id, now = ctx.store, ctx.run_id, datetime.now(UTC)
    survivors = {m.survivor_id for m in moves if m.survivor_id is not None}
    store.write_raw("bloomerang", "constituents", [records[s] for s in sorted(survivors) if s in records],
                    run_id=run_id, id_key="Id")
    with store.connect() as con, transaction(con):
        links = ledgers.links_frame(con, "constituents")
        sharing = {int(b): sorted(f"{s}:{i}" for s, i in zip(g["source"], g["source_id"], strict=True))
                   for b, g in links.groupby(links["bloomerang_id"].astype(int))}
        for move in moves:
            note = move.note
            if move.survivor_id is not None:
                state = ledgers.get_state(con, "constituents", move.source, move.source_id)
                if state is not None:
                    state.bloomerang_id = move.survivor_id
                    if move.survivor_id in records:
                        state.bloomerang_snapshot = _canonical(records[move.survivor_id], fields)
                        state.bloomerang_hash = record_hash(state.bloomerang_snapshot)
                    state.last_run_id, state.synced_at = run_id, None
                    ledgers.upsert_state(con, state, clear_pending=False)
                con.execute("UPDATE review_queue SET bloomerang_id = ? WHERE bloomerang_id = ? AND status = 'open'",
                            [move.survivor_id, move.merged_id])
                others = [k for k in sharing.get(move.survivor_id, []) if k != f"{move.source}:{move.source_id}"]
                if others:
                    note = f"survivor also linked to {', '.join(others)}: one person in Bloomerang, not split"
                log.info("%s %s: Bloomerang constituent %s was merged into %s (%s); link moved", move.source,
                         move.source_id, move.merged_id, move.survivor_id, move.found_by)
            else:
                log.warning("%s %s: %s", move.source, move.source_id, note)
            con.execute("INSERT INTO constituent_merges VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [run_id, move.source, move.source_id, move.merged_id, move.survivor_id, move.found_by,
                         note, now])
        raw = ddl.raw_table("bloomerang", "constituents")
        if _table_exists(con, raw):
            con.executemany(f"DELETE FROM {raw} WHERE source_id = ?", [[str(g)] for g in gone])
    ctx.snapshot_changed()
