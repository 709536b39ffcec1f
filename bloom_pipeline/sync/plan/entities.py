"""The run's push plan per entity: identity inputs assembled, then ``plan.plan_records`` decides.

Funds match Bloomerang by name (case-insensitive; names are unique per org in Bloomerang) or by the
``bloomerang_id`` WeGive stores; transactions are deduplicated by their source reference through
``sync_state`` (and the ``bloomerang_id`` the source may hold); constituents go through ``identity``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.mapping.jsonbuild import payload_hash
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.fields import CANONICAL_FIELDS, present
from bloom_pipeline.sync.identity import constituents as identity
from bloom_pipeline.sync.identity import reviews as identity_reviews
from bloom_pipeline.sync.identity.by_reference import resolve_funds, resolve_transactions
from bloom_pipeline.sync.merge.funds import owned_by_merge
from bloom_pipeline.sync.plan.records import PLAN_COLUMNS, REF_ENTITY, plan_records


def plan_funds(staged: pd.DataFrame, state: pd.DataFrame, bloomerang_funds: list[dict[str, Any]]) -> pd.DataFrame:
    """Funds: linked, else the Bloomerang id the source keeps, else the same name (Bloomerang keeps fund
    names unique), else create."""
    funds = pd.DataFrame({"bloomerang_id": [f.get("Id") for f in bloomerang_funds],
                          "name": [f.get("Name") for f in bloomerang_funds]})
    links = state.dropna(subset=["bloomerang_id"])[["source", "source_id", "bloomerang_id"]] if len(state) else None
    plan = plan_records("funds", staged, resolve_funds(staged, funds, links), state)
    return _names_by_merge(plan, owned_by_merge(state))


def _names_by_merge(plan: pd.DataFrame, owned: set[tuple[str, str]]) -> pd.DataFrame:
    """A linked fund's rename is the fund merge's (``merge/funds.py``, three-way, both directions): the push
    plan never PUTs it, or it would overwrite a Bloomerang rename or push over a conflict."""
    if plan.empty or not owned:
        return plan
    mine = pd.Series([(s, str(i)) in owned for s, i in zip(plan["source"], plan["source_id"], strict=True)],
                     index=plan.index) & plan["action"].eq("update")
    plan.loc[mine, "action"] = "unchanged"
    plan.loc[mine, "diff"] = "{}"
    plan.loc[mine, "payload"] = "{}"
    plan.loc[mine, "reason"] = "linked fund: a rename goes through the fund-name merge, both ways"
    return plan


def plan_constituents(staged: pd.DataFrame, resolved: pd.DataFrame, state: pd.DataFrame,
                      snapshot: pd.DataFrame, *, policies: dict[str, str]) -> pd.DataFrame:
    """Several staged records matching one existing constituent (a donor on WeGive and Handbid): the
    first — WeGive before Handbid — updates it as usual, the others only fill what is still empty, so
    the first sync does not let the last write win (and then pull that value into the other source).

    A record that waits for an identity review (``resolved.waiting_for``) is neither created nor linked:
    it is ``skipped`` with the reason "awaiting identity review #N" until a reviewer answers."""
    staged, waiting = _split_waiting(staged, resolved)
    ids = resolved["bloomerang_id"]
    order = (resolved["source"] != "wegive").astype(int)
    ranked = resolved.assign(_order=order).sort_values(["_order", "source_id"])
    later = ranked[ranked["bloomerang_id"].notna()].duplicated("bloomerang_id")
    later_keys = set(zip(ranked.loc[later[later].index, "source"], ranked.loc[later[later].index, "source_id"],
                         strict=True)) if ids.notna().any() else set()
    if not later_keys:
        return _with_waiting(plan_records("constituents", staged, resolved, state, snapshot, policies=policies),
                             waiting)
    is_later = pd.Series([(s, str(i)) in later_keys for s, i in zip(staged["source"], staged["source_id"],
                                                                    strict=True)], index=staged.index)
    fill = {name: ("review" if policy == "review" else "fill_empty") for name, policy in
            {**dict.fromkeys(CANONICAL_FIELDS, "overwrite"), **policies}.items()}
    first = plan_records("constituents", staged[~is_later], resolved, state, snapshot, policies=policies)
    rest = plan_records("constituents", staged[is_later], resolved, state, snapshot, policies=fill)
    return _with_waiting(pd.concat([first, rest], ignore_index=True), waiting)


def _split_waiting(staged: pd.DataFrame, resolved: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(staged rows to plan, skipped plan rows of the records awaiting an identity review)``."""
    if "waiting_for" not in resolved or resolved["waiting_for"].isna().all():
        return staged, pd.DataFrame(columns=list(PLAN_COLUMNS))
    reasons = {}
    for row in resolved[resolved["waiting_for"].notna()].to_dict("records"):
        item = present(row.get("review_id"))
        reason = f"awaiting identity review #{int(item)}" if item is not None else "awaiting identity review"
        if row["waiting_for"] != identity.record_key(str(row["source"]), str(row["source_id"])):
            reason += f" (same person as {row['waiting_for']})"
        reasons[(str(row["source"]), str(row["source_id"]))] = reason
    keys = pd.Series(list(zip(staged["source"].astype(str), staged["source_id"].astype(str), strict=True)),
                     index=staged.index)
    held = keys.isin(set(reasons))
    skipped = pd.DataFrame([{
        "entity": "constituents", "source": source, "source_id": source_id, "bloomerang_id": None,
        "action": "skipped", "diff": "{}", "payload": "{}", "payload_hash": present(record.get("payload_hash")),
        "reason": reasons[(source, source_id)], "create_key": None, "target_ref": None, "link": False,
    } for (source, source_id), record in zip(keys[held], staged[held].to_dict("records"), strict=True)],
        columns=list(PLAN_COLUMNS))
    return staged[~held], skipped


def _with_waiting(plan: pd.DataFrame, waiting: pd.DataFrame) -> pd.DataFrame:
    if waiting.empty:
        return plan
    waiting = waiting.astype({"bloomerang_id": "Int64"})
    return pd.concat([plan, waiting], ignore_index=True) if len(plan) else waiting.reset_index(drop=True)


def awaiting_review_refs(plan: pd.DataFrame) -> dict[str, str]:
    """``ref:`` of every constituent the plan holds for an identity review → why (for ``blocked_refs`` of
    ``plan_transactions``): a gift of a donor that is neither created nor linked waits with it, blocked,
    instead of failing on a reference nothing resolves."""
    if plan.empty:
        return {}
    held = plan[(plan["entity"] == "constituents") & (plan["action"] == "skipped")
                & plan["reason"].fillna("").str.startswith("awaiting identity review")]
    return {f"ref:{s}.{ref_entity('constituents', s)}:{i}": str(r)
            for s, i, r in zip(held["source"], held["source_id"], held["reason"], strict=True)}


def resolve_constituents(staged: pd.DataFrame, snapshot: pd.DataFrame, links: pd.DataFrame, *,
                         store: StagingStore | None = None, run_id: str | None = None,
                         accounts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Step 3 for donors and contacts (``identity.constituents``), with the org's identity reviews when
    ``store`` is given: the reviewers' decisions are applied, answered items closed, and each record that
    must wait gets its item (raised once) — ``review_id`` names it. Without ``store``: pure, no items."""
    if store is None:
        return identity.resolve_constituents(staged, snapshot, links, accounts=accounts)
    if not run_id:
        raise ValueError("resolve_constituents needs the run id with a store (it stamps the review items)")
    with store.write() as con:
        decided = identity_reviews.decisions(con, snapshot, run_id)
    resolved = identity.resolve_constituents(staged, snapshot, links, decided, accounts=accounts)
    with store.write() as con:
        return identity_reviews.queue(con, run_id, resolved, staged, snapshot)


def plan_transactions(staged: pd.DataFrame, state: pd.DataFrame, blocked_refs: dict[str, str] | None = None,
                      bloomerang: pd.DataFrame | None = None,
                      blocked: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """Dedupe by source reference, whatever the local state holds: a transaction is the Bloomerang one
    linked before, the one the source names (WeGive ``bloomerang_id``) or the one whose correlation custom
    value holds its source id (``bloomerang``: ``snapshot.transaction_frame``), and is never created twice.
    Gifts of a quarantined donor are blocked with the donor's reason, and ``blocked`` gifts with theirs (a
    fund the org YAML names that Bloomerang lacks: ``plan/named.py``). A refund is part of what is planned
    (see ``_with_refunds``); a gift found in Bloomerang unrefunded whose source refunded it gets the refund."""
    staged, unrefunded_hash = _with_refunds(staged)
    links = state.dropna(subset=["bloomerang_id"])[["source", "source_id", "bloomerang_id"]] if len(state) else None
    resolved = resolve_transactions(staged, bloomerang, links) if len(staged) else None
    plan = plan_records("transactions", staged, resolved, state, blocked=blocked, blocked_refs=blocked_refs)
    plan = _refund_only_updates(plan, state, unrefunded_hash)
    return _refunds_of_found(plan, staged, bloomerang)


def _refunds_of_found(plan: pd.DataFrame, staged: pd.DataFrame, bloomerang: pd.DataFrame | None) -> pd.DataFrame:
    """A gift linked by what Bloomerang holds (no local state) is not rewritten — but a refund the source
    recorded and Bloomerang lacks is still owed: plan the refund alone."""
    if plan.empty or bloomerang is None or bloomerang.empty or "is_refunded" not in staged:
        return plan
    refunded_there = dict(zip(bloomerang["bloomerang_id"].astype(int), bloomerang["is_refunded"], strict=True))
    refunded_here = {(str(s), str(i)): p for s, i, r, p in zip(staged["source"], staged["source_id"],
                                                                staged["is_refunded"].fillna(False),
                                                                staged["payload"], strict=True) if r}
    found = (plan["action"] == "unchanged") & plan["link"].astype(bool) & plan["bloomerang_id"].notna()
    for index in plan.index[found]:
        key = (str(plan.at[index, "source"]), str(plan.at[index, "source_id"]))
        bid = int(plan.at[index, "bloomerang_id"])
        if key in refunded_here and refunded_there.get(bid) is False:
            plan.at[index, "action"] = "update"
            plan.at[index, "payload"] = json.dumps(_refund_only(refunded_here[key]))
            plan.at[index, "diff"] = json.dumps({"is_refunded": [False, True]})
    return plan


def _refund_only(payload: Any) -> dict[str, Any]:
    """The planned payload of a refund sent alone: ``IsRefunded`` and the refund the mapping planned
    (``Refund.Date`` from WeGive ``refunded_at``), so a gift refunded after it was synced is dated by its
    refund, not by the gift."""
    if isinstance(payload, str):
        try:
            payload = jsontext.loads(payload)
        except ValueError:
            payload = {}
    refund = payload.get("Refund") if isinstance(payload, dict) else None
    return {"IsRefunded": True, **({"Refund": refund} if isinstance(refund, dict) and refund else {})}


def _with_refunds(staged: pd.DataFrame) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Carry the staged ``is_refunded`` into the planned payload (``"IsRefunded": true``) and its hash.

    The mapping keeps ``IsRefunded`` out of the payload (it is read-only in Bloomerang: a refund is its own
    ``POST /refund``), so without this a gift refunded in the source after it was synced would hash the
    same and never be refunded, and a create would never know to refund. The hash of a refunded record
    is derived from its unrefunded hash, so records that are not refunded keep their stored hashes.
    """
    if staged.empty or "is_refunded" not in staged:
        return staged, {}
    staged = staged.copy()
    refunded = staged["is_refunded"].fillna(False).astype(bool)
    before = dict(zip(zip(staged["source"].astype(str), staged["source_id"].astype(str), strict=True),
                      staged["payload_hash"], strict=True))
    for index in staged.index[refunded]:
        payload = jsontext.loads(staged.at[index, "payload"])
        if "Refund" in payload:  # the gift as synced before its refund had no refund date: that is its hash
            key = (str(staged.at[index, "source"]), str(staged.at[index, "source_id"]))
            before[key] = payload_hash({k: v for k, v in payload.items() if k != "Refund"})
        payload["IsRefunded"] = True
        staged.at[index, "payload"] = json.dumps(payload, sort_keys=True)
        staged.at[index, "payload_hash"] = hashlib.sha256(f"{staged.at[index, 'payload_hash']}:refunded".encode()
                                                          ).hexdigest()
    return staged, {key: str(value) for key, value in before.items()}


def _refund_only_updates(plan: pd.DataFrame, state: pd.DataFrame,
                         unrefunded_hash: dict[tuple[str, str], str]) -> pd.DataFrame:
    """A synced gift whose only change is its refund: send the refund alone, not the whole transaction."""
    if plan.empty or state is None or state.empty:
        return plan
    stored = dict(zip(zip(state["source"].astype(str), state["source_id"].astype(str), strict=True),
                      state["source_hash"], strict=True))
    for index in plan.index[plan["action"] == "update"]:
        key = (str(plan.at[index, "source"]), str(plan.at[index, "source_id"]))
        payload = jsontext.loads(plan.at[index, "payload"])
        if payload.get("IsRefunded") and stored.get(key) is not None and stored.get(key) == unrefunded_hash.get(key):
            plan.at[index, "payload"] = json.dumps(_refund_only(payload))
            plan.at[index, "diff"] = json.dumps({"is_refunded": [False, True]})
    return plan


def ref_entity(entity: str, source: str) -> str:
    """How a record of ``entity`` from ``source`` is named in a ``ref:`` (``constituents``/wegive → donors)."""
    return REF_ENTITY.get((entity, source), entity)


def leaders_first(rows: pd.DataFrame) -> pd.DataFrame:
    """Creates and direct updates before followers that link to a record created in the same run."""
    if "target_ref" not in rows or rows.empty:
        return rows
    follower = rows["target_ref"].notna()
    return pd.concat([rows[~follower], rows[follower]])


def canonical_snapshots(staged: pd.DataFrame, entity: str = "constituents") -> dict[tuple[str, str, str], dict]:
    """``(entity, source, source_id) → {canonical field: value}`` of the staged source records."""
    if entity != "constituents" or staged.empty:
        return {}
    out = {}
    columns = [c for c in CANONICAL_FIELDS if c in staged]
    for record in staged[["source", "source_id", *columns]].to_dict("records"):
        values = {name: present(record.get(name)) for name in CANONICAL_FIELDS}
        out[(entity, str(record["source"]), str(record["source_id"]))] = values
    return out
