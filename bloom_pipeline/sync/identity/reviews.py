"""Identity questions for a person: the review items of records the identity step could not settle.

Why apart from ``constituents``: resolution stays pure (frames in, a frame out), so it is tested on its
own and runs the same on a dry run's throw-away copy; this module is its bookkeeping against the org's
review queue, around it:

* ``decisions`` (before resolving): items whose record ``sync_state`` now links are closed first --
  ``applied`` by the run that linked it, so a link or create that failed keeps its question and its
  answer for the next run; then every resolved identity item becomes an ``IdentityDecision`` for the
  resolution (a chosen constituent Bloomerang no longer has reopens its item instead).
* ``queue`` (after resolving): every record that waits gets its item -- raised once, refreshed while it
  waits (its candidates may change), never a second one -- and the item's number goes into the plan's
  reason ("awaiting identity review #7"), for the record and for the records that wait with it.

An item shows what a reviewer needs to answer "which is it?": the staged record and every candidate
with name, e-mail, phone and address (``summary``), stored as JSON in ``source_value`` /
``bloomerang_value``.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from bloom_pipeline.staging import review
from bloom_pipeline.sync.fields import present
from bloom_pipeline.sync.identity.constituents import IdentityDecision, record_key

SUMMARY_FIELDS = ("constituent_type", "first_name", "middle_name", "last_name", "full_name", "email", "phone")
ADDRESS_FIELDS = ("street", "city", "state", "postal_code", "country")


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """Name, type, e-mail, phone and one-line address of a staged record or a snapshot row."""
    values = {name: present(record.get(name)) for name in (*SUMMARY_FIELDS, *ADDRESS_FIELDS)}
    person = " ".join(str(values[n]) for n in ("first_name", "middle_name", "last_name") if values[n])
    kind = values["constituent_type"]
    name = values["full_name"] if kind == "Organization" or not person else person
    street = " ".join(str(values["street"]).split()) if values["street"] else None
    region = " ".join(str(values[n]) for n in ("state", "postal_code") if values[n])
    address = ", ".join(p for p in (street, values["city"], region or None, values["country"]) if p)
    return {"type": kind, "name": name, "email": values["email"], "phone": values["phone"],
            "address": address or None}


def decisions(con: duckdb.DuckDBPyConnection, snapshot: pd.DataFrame, run_id: str
              ) -> dict[tuple[str, str], IdentityDecision]:
    """Close what ``sync_state`` settled, then the reviewers' answers still to apply, by record."""
    review.settle_identity_reviews(con, run_id)
    known = set(pd.to_numeric(snapshot["bloomerang_id"]).dropna().astype(int)) if len(snapshot) else set()
    out: dict[tuple[str, str], IdentityDecision] = {}
    for item in review.identity_decisions(con):
        chosen = item.decided_value if item.decision == "bloomerang" else None
        if chosen is not None and known and int(chosen) not in known:
            review.reopen_review(con, int(item.id or 0))  # merged away or deleted since: ask again
            continue
        out[(item.source, str(item.source_id))] = IdentityDecision(int(item.id or 0),
                                                                   None if chosen is None else int(chosen))
    return out


def queue(con: duckdb.DuckDBPyConnection, run_id: str, resolved: pd.DataFrame, staged: pd.DataFrame,
          snapshot: pd.DataFrame) -> pd.DataFrame:
    """Raise (or refresh) the identity item of every record that needs one; ``resolved`` with the item
    each waiting record waits on in ``review_id`` and its number in ``note``."""
    resolved = resolved.copy()
    resolved["review_id"] = pd.array([None] * len(resolved), dtype="Int64")
    if resolved.empty or resolved["waiting_for"].isna().all():
        return resolved
    # only the records asked about and their candidates become dicts: the org's whole snapshot would cost seconds
    asking = resolved[resolved["review"].map(lambda value: isinstance(value, dict))].to_dict("records")
    keys = {(str(row["source"]), str(row["source_id"])) for row in asking}
    wanted = {int(c) for row in asking for c in row["review"]["candidates"]}
    staged = staged.astype({"source_id": str})
    asked = pd.Series(list(zip(staged["source"].astype(str), staged["source_id"], strict=True)),
                      index=staged.index, dtype=object).isin(keys) if len(staged) else pd.Series(dtype=bool)
    records = {(str(r["source"]), str(r["source_id"])): r for r in staged[asked].to_dict("records")}
    snap = snapshot.dropna(subset=["bloomerang_id"]) if len(snapshot) else snapshot
    if len(snap):
        snap = snap[pd.to_numeric(snap["bloomerang_id"]).astype("int64").isin(wanted)]
    candidates = {int(r["bloomerang_id"]): r for r in snap.to_dict("records")} if len(snap) else {}
    items: dict[str, review.ReviewItem] = {}
    for row in asking:
        question = row["review"]
        key = (str(row["source"]), str(row["source_id"]))
        record = records.get(key, {})
        found = [candidates[c] for c in question["candidates"] if c in candidates]
        modified = [m for m in (present(c.get("last_modified")) for c in found) if m is not None]
        items[record_key(*key)] = review.ReviewItem(
            entity="constituents", source=key[0], source_id=key[1], field=review.IDENTITY_FIELD,
            source_value=summary(record),
            bloomerang_value=[{"id": int(c["bloomerang_id"]), **summary(c)} for c in found]
            or [{"id": c} for c in question["candidates"]],
            reason=question["reason"],
            bloomerang_id=question["candidates"][0] if len(question["candidates"]) == 1 else None,
            source_modified_at=present(record.get("source_updated_at")),
            bloomerang_modified_at=max(modified) if modified else None,
        )
    ids = dict(zip(items, review.add_reviews(con, run_id, list(items.values())), strict=True))
    for index, waiting_for in resolved["waiting_for"].items():
        item_id = ids.get(waiting_for) if isinstance(waiting_for, str) else None
        if item_id is None:
            continue
        resolved.at[index, "review_id"] = item_id
        note = resolved.at[index, "note"] or ""
        resolved.at[index, "note"] = (note.replace("awaiting identity review:", f"awaiting identity review #{item_id}:")
                                      .replace("which awaits identity review", f"which awaits identity review "
                                                                                f"#{item_id}"))
    return resolved


def settle(con: duckdb.DuckDBPyConnection, run_id: str) -> list[int]:
    """Close the identity items whose records are linked now (right after the constituents are applied,
    so ``review list`` shows them ``applied`` at once; the next run's ``decisions`` would otherwise)."""
    return review.settle_identity_reviews(con, run_id)
