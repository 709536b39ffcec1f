"""A donor archived or deleted in WeGive: what Bloomerang does about it (org YAML ``on_source_delete``).

WeGive archives a donor as a soft delete (``deleted_at`` on its list row; only ``view=archived|both`` lists it,
contracts/wegive-handbid.md §1.3), so the extract asks for ``view=both`` and keeps the archived rows apart
(``raw_wegive_archived_donors``): an archived donor is never staged, so no step writes to it -- no merge pull,
no Bloomerang-id write-back, no communication flag -- and a new one is never created in Bloomerang.

For an archived donor linked to a constituent, ``source_deletions`` records it once, which is the mark that
the link belongs to an archived WeGive donor:

* ``keep`` (the default): nothing changes in Bloomerang. The constituent and every gift stay as they are.
* ``inactivate``: the constituent gets ``Status: Inactive`` (one PUT, read first: a constituent already
  Inactive or **Deceased** is left as it is -- Deceased must never become Inactive). A failed PUT is recorded
  with Bloomerang's message and tried again next run.

Gifts are never deleted or changed by this step. A donor restored in WeGive is staged and synced again from
the next run (its row gets ``restored_at``), but its constituent is **not** reactivated: an archive is often
a person's request to be left alone, Bloomerang staff may have confirmed the status since, and a wrong
"Inactive" costs a mailing while a wrong "Active" contacts someone who asked not to be -- staff reactivate by
hand (``bloom-pipeline query`` shows ``source_deletions`` rows with ``restored_at`` set and action
``inactivated``). A donor gone from every view (hard-deleted) cannot be told from a list that failed to show
it, so it is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from bloom_pipeline.errors import ApiError
from bloom_pipeline.staging import ledgers
from bloom_pipeline.sync.context import RunContext

log = logging.getLogger(__name__)

DELETIONS_DDL = """
CREATE TABLE IF NOT EXISTS source_deletions (
    source          VARCHAR NOT NULL,
    source_id       VARCHAR NOT NULL,
    bloomerang_id   BIGINT,
    deleted_at      VARCHAR,
    policy          VARCHAR NOT NULL CHECK (policy IN ('keep', 'inactivate')),
    action          VARCHAR NOT NULL CHECK (action IN ('kept', 'inactivated', 'failed')),
    note            VARCHAR,
    error           VARCHAR,
    run_id          VARCHAR NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    restored_at     TIMESTAMPTZ,
    restored_run_id VARCHAR,
    PRIMARY KEY (source, source_id)
)"""
ACTIVE = "Active"


@dataclass
class DeletionOutcome:
    recorded: int = 0
    inactivated: int = 0
    failed: int = 0
    restored: int = 0


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DELETIONS_DDL)


def needs_action(policy: str, previous: dict[str, Any] | None, linked: bool) -> str | None:
    """What to do for an archived donor this run (pure): ``"record"`` (first seen, or archived again after a
    restore, with ``keep``), ``"inactivate"`` (``inactivate`` and linked, not yet done or failed last time), or
    None (already handled)."""
    fresh = previous is None or previous.get("restored_at") is not None
    if policy == "inactivate" and linked and (fresh or previous.get("action") in ("kept", "failed")):
        return "inactivate"
    return "record" if fresh else None


def _status_body(current: dict[str, Any]) -> dict[str, Any]:
    """The PUT body that sets Status Inactive: Type and names as Bloomerang holds them (the live PUT example
    sends them along), nothing else."""
    keys = ("FirstName", "LastName") if current.get("Type") == "Individual" else ("FullName",)
    return {"Type": current.get("Type"), **{k: current[k] for k in keys if current.get(k)}, "Status": "Inactive"}


def sync_source_deletions(ctx: RunContext, con: duckdb.DuckDBPyConnection) -> DeletionOutcome:
    """Record archived WeGive donors, inactivate their constituents if the org says so, note restores."""
    ensure_table(con)
    outcome = DeletionOutcome()
    listed = ctx.extracted.records.get("wegive.donors")
    if listed is None:  # this run did not read the donor list (a partition run)
        return outcome
    archived = ctx.extracted.records.get("wegive.archived_donors") or []  # read back only when there were some
    policy = ctx.org.on_source_delete
    links = ledgers.links_frame(con, "constituents", "wegive")
    linked = {str(s): int(b) for s, b in zip(links["source_id"], links["bloomerang_id"], strict=True)}
    cursor = con.execute("SELECT * FROM source_deletions WHERE source = 'wegive'")
    names = [d[0] for d in cursor.description]
    previous = {str(r[names.index("source_id")]): dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
    now = datetime.now(UTC)
    for row in archived:
        source_id = str(row.get("id"))
        bloomerang_id = linked.get(source_id)
        todo = needs_action(policy, previous.get(source_id), bloomerang_id is not None)
        if todo is None:
            continue
        action, note, error = "kept", None, None
        if todo == "inactivate" and ctx.pushing:
            action, note, error = _inactivate(ctx, int(bloomerang_id))
        elif todo == "inactivate":
            note = "inactivate waits for a run that pushes to Bloomerang"
        outcome.recorded += 1
        outcome.inactivated += action == "inactivated"
        outcome.failed += action == "failed"
        con.execute(
            "INSERT OR REPLACE INTO source_deletions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            ["wegive", source_id, bloomerang_id, row.get("deleted_at"), policy, action, note, error, ctx.run_id, now])
    active = {str(r.get("id")) for r in listed if isinstance(r, dict)}
    for source_id, prev in previous.items():
        if source_id in active and prev.get("restored_at") is None:
            con.execute("UPDATE source_deletions SET restored_at = ?, restored_run_id = ? WHERE source = 'wegive' "
                        "AND source_id = ?", [now, ctx.run_id, source_id])
            outcome.restored += 1
            if prev.get("action") == "inactivated":
                log.warning("WeGive donor %s was restored; its Bloomerang constituent %s stays Inactive "
                            "(reactivate it by hand if that is right)", source_id, prev.get("bloomerang_id"))
    return outcome


def _inactivate(ctx: RunContext, bloomerang_id: int) -> tuple[str, str | None, str | None]:
    """``(action, note, error)`` of setting one constituent Inactive (read first, so nothing else changes)."""
    client = ctx.clients.bloomerang
    try:
        current = client.get_constituent(bloomerang_id)
        status = current.get("Status") or ACTIVE
        if status != ACTIVE:
            return "inactivated", f"already {status} in Bloomerang; left as it is", None
        client.update_constituent(bloomerang_id, _status_body(current))
    except ApiError as exc:
        log.warning("could not inactivate Bloomerang constituent %s: %s", bloomerang_id, exc)
        return "failed", None, str(exc)
    return "inactivated", None, None
