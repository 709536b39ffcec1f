"""The push plan: what the load will do to each staged record, decided before anything is written.

Pure: the same inputs give the same plan, and ``sync --dry-run`` prints it and stops (nothing written,
cursors included); a real run hands this very frame to ``apply.apply_plan``. One row per staged record:

* ``blocked``   -- failed validation (the caller passes the ids), or depends on a record that is
                   blocked / failed (a transaction of a blocked donor: any ``ref:`` in its payload
                   listed in ``blocked_refs``).
* ``create``    -- no link and no match (and, for records that are one new constituent, only the
                   ``create_key`` leader).
* ``update``    -- matched but never synced, or the source changed since the last sync: ``diff`` holds
                   ``{field: [old, new]}`` and ``payload`` only what changes. Per-field policies apply:
                   ``overwrite``, ``fill_empty`` (only into an empty target) or ``review`` (never pushed);
                   a blank source value never erases a Bloomerang value. For a linked record whose
                   stored source snapshot is known, a field the *source* did not change since the last
                   sync is not pushed -- a differing Bloomerang value is a Bloomerang edit (it flows back
                   on pull / through ``merge``), not something to revert. Followers of a ``create_key``
                   are ``update`` rows with no id and ``target_ref`` naming the leader
                   (``ref:wegive.donors:1012``): apply resolves it once the leader exists, PUTs the
                   payload if it is not empty, and records the link.
* ``unchanged`` -- nothing to send (no request). ``link`` is True when ``sync_state`` does not yet hold
                   this pair, so apply should record it anyway.
* ``skipped``   -- the only differences are fields under a ``review`` policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.sync.apply.refs import refs_in
from bloom_pipeline.sync.constituent_body import constituent_body
from bloom_pipeline.sync.fields import CANONICAL_FIELDS, is_blank, record_hash, same
from bloom_pipeline.sync.identity.constituents import _id_order, record_key

ACTIONS = ("create", "update", "unchanged", "blocked", "skipped")
PLAN_COLUMNS = ("entity", "source", "source_id", "bloomerang_id", "action", "diff", "payload", "payload_hash",
                "reason", "create_key", "target_ref", "link")
ENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "constituents": CANONICAL_FIELDS,
    "transactions": ("donor_source_id", "date", "amount", "method", "is_refunded", "fund_source_ids"),
    "funds": ("name",),
}
# how a staged record of each entity is named in a ``ref:`` (docs/INTERFACES.md)
REF_ENTITY = {("constituents", "wegive"): "donors", ("constituents", "handbid"): "contacts",
              ("transactions", "wegive"): "transactions", ("transactions", "handbid"): "payments",
              ("funds", "wegive"): "funds", ("funds", "handbid"): "funds"}


def apply_order() -> tuple[str, ...]:
    """Entities in load order: a transaction needs its constituent's and its fund's Bloomerang ids."""
    return ("funds", "constituents", "transactions")


def _clean(value: Any) -> Any:
    return None if is_blank(value) else (value.item() if hasattr(value, "item") else value)


def _loads(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if is_blank(value):
        return {}
    return jsontext.loads(value)


def _by_key(frame: pd.DataFrame | None, entity: str) -> dict[tuple[str, str], dict[str, Any]]:
    if frame is None or frame.empty:
        return {}
    if "entity" in frame:
        frame = frame[frame["entity"] == entity]
    return {(str(r["source"]), str(r["source_id"])): r for r in frame.to_dict("records")}


def _of_keys(frame: pd.DataFrame | None, keys: set[tuple[str, str]]) -> pd.DataFrame | None:
    """The rows of ``frame`` whose (source, source_id) is one of ``keys``: the plan looks up only those, and
    turning every ``sync_state`` row into a dict was most of a quiet night's plan (done again per pass)."""
    if frame is None or frame.empty or not {"source", "source_id"} <= set(frame.columns):
        return frame
    wanted = [key in keys for key in zip(frame["source"].astype(str), frame["source_id"].astype(str), strict=True)]
    return frame[wanted]


def _linked_ids(resolutions: Mapping[tuple[str, str], Mapping[str, Any]],
                states: Mapping[tuple[str, str], Mapping[str, Any]], keys: set[tuple[str, str]]) -> set[int]:
    """Every Bloomerang id a record of ``keys`` can be planned against (its resolution's or its state's)."""
    ids = set()
    for found in (resolutions, states):
        for key in keys:
            bid = _clean(found.get(key, {}).get("bloomerang_id"))
            if bid is not None:
                ids.add(int(bid))
    return ids


def _of_ids(current: Mapping[int, Mapping[str, Any]] | pd.DataFrame | None,
            ids: set[int]) -> Mapping[int, Mapping[str, Any]] | pd.DataFrame | None:
    """The canonical snapshot rows of ``ids`` only (a frame; a mapping is already cheap to look up)."""
    if not isinstance(current, pd.DataFrame) or current.empty or "bloomerang_id" not in current:
        return current
    wanted = [not is_blank(bid) and int(bid) in ids for bid in current["bloomerang_id"]]
    return current[wanted]


def _current(current: Mapping[int, Mapping[str, Any]] | pd.DataFrame | None) -> dict[int, dict[str, Any]]:
    if current is None:
        return {}
    if isinstance(current, pd.DataFrame):
        records = current.dropna(subset=["bloomerang_id"]).to_dict("records")
        return {int(r["bloomerang_id"]): {k: _clean(v) for k, v in r.items()} for r in records}
    return {int(k): {f: _clean(v) for f, v in dict(v).items()} for k, v in current.items()}


def _policy(policies: Mapping[str, Any], field: str) -> str:
    rule = policies.get(field, policies.get("*", "overwrite"))
    if isinstance(rule, tuple | list):  # (policy, direction) as OrgConfig.field_policy gives it
        return "pull_only" if len(rule) > 1 and rule[1] == "pull" else str(rule[0])
    return str(rule)


def field_diff(fields: Iterable[str], new: Mapping[str, Any], old: Mapping[str, Any], policies: Mapping[str, Any],
               base: Mapping[str, Any] | None = None) -> tuple[dict[str, list[Any]], list[str]]:
    """``({field: [old, new]}, review_fields)``: what to push from ``new`` onto ``old``."""
    diff: dict[str, list[Any]] = {}
    review: list[str] = []
    for name in fields:
        value, target = _clean(new.get(name)), _clean(old.get(name))
        if value is None or same(name, value, target):  # a blank never erases
            continue
        if base is not None and name in base and same(name, base[name], value):
            continue  # the source did not change it: the differing target is a Bloomerang-side edit
        policy = _policy(policies, name)
        if policy == "pull_only" or (policy == "fill_empty" and target is not None):
            continue
        if policy == "review":
            review.append(name)
            continue
        diff[name] = [target, value]
    return diff, review


def _constituent_body(diff: Mapping[str, list[Any]], staged_payload: Mapping[str, Any],
                      current: Mapping[str, Any]) -> dict[str, Any]:
    changes = {name: new for name, (_, new) in diff.items()}
    return constituent_body(changes, current, staged_payload.get("Type"), staged_payload)


def _bloomerang_changed(state: Mapping[str, Any], current: Mapping[str, Any] | None, fields: Iterable[str]) -> bool:
    """Whether Bloomerang's record moved since the last sync (unknown counts as unchanged)."""
    if current is None:
        return False
    snapshot = _loads(state.get("bloomerang_snapshot"))
    if snapshot:
        return any(not same(f, snapshot.get(f), current.get(f)) for f in fields if f in snapshot)
    stored = _clean(state.get("bloomerang_hash"))
    return stored is not None and record_hash(current, tuple(fields)) != stored


def _blocked_reason(key: tuple[str, str], payload: Any, blocked: Mapping[tuple[str, str], str],
                    blocked_refs: Mapping[str, str]) -> str | None:
    if key in blocked:
        return blocked[key] or "failed validation"
    for ref in sorted(refs_in(payload)):
        if ref in blocked_refs:
            return f"depends on {ref}, which is {blocked_refs[ref] or 'blocked'}"
    return None


def _as_mapping(value: Mapping[tuple[str, str], str] | Iterable[Any] | None) -> dict[Any, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {(tuple(map(str, k)) if isinstance(k, tuple) else k): str(v or "") for k, v in value.items()}
    return {(tuple(map(str, k)) if isinstance(k, tuple) else k): "" for k in value}


def plan_records(
    entity: str,
    staged: pd.DataFrame,
    resolved: pd.DataFrame | None,
    state: pd.DataFrame | None = None,
    current: Mapping[int, Mapping[str, Any]] | pd.DataFrame | None = None,
    *,
    policies: Mapping[str, Any] | None = None,
    blocked: Mapping[tuple[str, str], str] | Iterable[tuple[str, str]] | None = None,
    blocked_refs: Mapping[str, str] | Iterable[str] | None = None,
) -> pd.DataFrame:
    """One plan row per staged record of ``entity`` (columns ``PLAN_COLUMNS``); see the module doc.

    ``resolved``: ``identity.resolve_*`` output. ``state``: ``sync_state`` rows (filtered by an
    ``entity`` column if present). ``current``: canonical Bloomerang values per id (dict or a frame
    with ``bloomerang_id``, e.g. the canonical snapshot). ``blocked``: ``{(source, source_id): reason}``
    (or just the keys); ``blocked_refs``: ``{"ref:wegive.donors:7": "blocked: invalid email"}``.
    """
    fields = ENTITY_FIELDS.get(entity, ())
    policies = policies or {}
    blocked_map, refs_map = _as_mapping(blocked), _as_mapping(blocked_refs)
    staged = staged.astype({"source_id": str}).drop_duplicates(["source", "source_id"], keep="last")
    keys = set(zip(staged["source"].astype(str), staged["source_id"], strict=True))
    resolutions, states = _by_key(resolved, entity), _by_key(_of_keys(state, keys), entity)
    currents = _current(_of_ids(current, _linked_ids(resolutions, states, keys)))
    leaders = {record_key(str(r["source"]), str(r["source_id"])): r for r in staged.to_dict("records")}
    _promote_leaders(resolutions, blocked_map)
    rows = []
    for rec in staged.to_dict("records"):
        key = (str(rec["source"]), str(rec["source_id"]))
        payload = _loads(rec.get("payload"))
        res, st = resolutions.get(key, {}), states.get(key, {})
        row: dict[str, Any] = {"entity": entity, "source": key[0], "source_id": key[1], "bloomerang_id": None,
                               "diff": {}, "payload": payload, "payload_hash": _clean(rec.get("payload_hash")),
                               "reason": _clean(res.get("note")), "create_key": _clean(res.get("create_key")),
                               "target_ref": None, "link": False}
        bid = _clean(res.get("bloomerang_id"))
        bid = _clean(st.get("bloomerang_id")) if bid is None else bid
        row["bloomerang_id"] = None if bid is None else int(bid)
        reason = _blocked_reason(key, payload, blocked_map, refs_map)
        if reason is not None:
            row.update(action="blocked", reason=reason, payload={})
        elif bid is None:
            _plan_new(row, rec, fields, policies, leaders, entity)
        else:
            _plan_matched(row, rec, res, st, currents.get(int(bid)), fields, policies, entity)
        rows.append(row)
    plan = pd.DataFrame(rows, columns=list(PLAN_COLUMNS))
    plan["bloomerang_id"] = pd.array(plan["bloomerang_id"].tolist(), dtype="Int64")
    for column in ("diff", "payload"):
        plan[column] = [json.dumps(v, sort_keys=True, default=str) for v in plan[column]]
    return plan


def _promote_leaders(resolutions: dict[tuple[str, str], dict[str, Any]], blocked: Mapping[Any, str]) -> None:
    """A blocked leader creates nothing: the next member of its group (same order) leads instead."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for key, res in resolutions.items():
        if _clean(res.get("create_key")) is not None:
            groups.setdefault(res["create_key"], []).append(key)
    for create_key, members in groups.items():
        source, source_id = create_key.split(":", 1)
        if (source, source_id) not in blocked:
            continue
        open_members = sorted((m for m in members if m not in blocked), key=lambda m: _id_order(*m))
        for member in members:
            resolutions[member] = {**resolutions[member],
                                   "create_key": record_key(*open_members[0]) if open_members else None}


def _plan_new(row: dict[str, Any], rec: Mapping[str, Any], fields: tuple[str, ...], policies: Mapping[str, Any],
              leaders: Mapping[str, Mapping[str, Any]], entity: str) -> None:
    own = record_key(row["source"], row["source_id"])
    leader_key = row["create_key"] or own
    leader = leaders.get(leader_key)
    if leader_key == own or leader is None:
        row.update(action="create", create_key=leader_key, link=True,
                   diff={f: [None, _clean(rec.get(f))] for f in fields if _clean(rec.get(f)) is not None})
        return
    leader_source, leader_id = leader_key.split(":", 1)
    row["target_ref"] = f"ref:{leader_source}.{REF_ENTITY.get((entity, leader_source), entity)}:{leader_id}"
    fill = {f: "fill_empty" for f in fields}
    diff, _ = field_diff(fields, rec, leader, {**fill, **{f: p for f, p in policies.items() if p == "review"}})
    payload = _constituent_body(diff, row["payload"], leader) if entity == "constituents" else {}
    custom = row["payload"].get("CustomValues")
    if custom and leader_source != row["source"]:  # its own correlation field, distinct from the leader's
        payload["CustomValues"] = custom
    row.update(action="update", diff=diff, payload=payload, link=True,
               reason=f"same record as {leader_key}: linked to what is created for it")


def _plan_matched(row: dict[str, Any], rec: Mapping[str, Any], res: Mapping[str, Any], st: Mapping[str, Any],
                  current: Mapping[str, Any] | None, fields: tuple[str, ...], policies: Mapping[str, Any],
                  entity: str) -> None:
    stored_id, stored_hash = _clean(st.get("bloomerang_id")), _clean(st.get("source_hash"))
    synced = stored_id is not None and int(stored_id) == row["bloomerang_id"] and stored_hash is not None
    if synced and row["payload_hash"] == stored_hash:
        moved = _bloomerang_changed(st, current, fields)
        row.update(action="unchanged", payload={}, reason=(
            "only Bloomerang changed since the last sync: nothing to push (it flows back on pull)" if moved else None))
        return
    if not synced and current is None and entity != "constituents":
        row.update(action="unchanged", payload={}, link=True,
                   reason=f"already in Bloomerang (matched by {res.get('rule') or 'state'}); linked, not rewritten")
        return
    base = _loads(st.get("source_snapshot")) if synced else None
    old = current if current is not None else (_loads(st.get("bloomerang_snapshot")) or base or {})
    if entity == "constituents":
        skip = {"constituent_type"} | ({"full_name"} if (_clean(rec.get("constituent_type")) or "Individual")
                                       == "Individual" else set())
        fields = tuple(f for f in fields if f not in skip)
    diff, review = field_diff(fields, rec, old, policies, base or None)
    payload = _constituent_body(diff, row["payload"], old) if entity == "constituents" else (
        row["payload"] if diff or current is None else {})
    corr = f"corr_{row['source']}"
    # write our correlation id so the next run matches by it -- never over another record's id
    stale = current is not None and corr in current and current.get(corr) is None
    if stale and row["payload"].get("CustomValues"):
        payload["CustomValues"] = row["payload"]["CustomValues"]
        diff["correlation_id"] = [current.get(corr), row["source_id"]]
    notes = [f"matched by {res['rule']}"] if res.get("rule") and res["rule"] != "linked" else []
    notes += [n for n in (row["reason"],) if n]
    if review:
        notes.append("awaiting review: " + ", ".join(review))
    row.update(link=not synced, reason="; ".join(notes) or None)
    if synced and not diff and not review and entity != "constituents" and not old:
        diff = {"payload_hash": [stored_hash, row["payload_hash"]]}  # changed, but nothing to compare with
        payload = row["payload"]
    if diff and payload:
        row.update(action="update", diff=diff, payload=payload)
    else:
        row.update(action="skipped" if review else "unchanged", diff={}, payload={})
