"""The pull direction, derived from the same rules: Bloomerang constituents → source contact fields.

Why derived, not written twice: one rule (`FirstName: from first_name, default FNU`) states both
directions, so they cannot drift. A rule is reversible when it reads source fields and each of its
transforms has an inverse (`phone` → national digits, `join_lines` → street lines, a `default` such as
"FNU" → empty); only canonical fields whose org policy direction is `pull` or `both` flow back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from bloom_pipeline.mapping import catalog
from bloom_pipeline.mapping.frames import extract_columns
from bloom_pipeline.mapping.spec import EntitySpec, FieldRule, OrgConfig
from bloom_pipeline.mapping.transforms import REGISTRY, Context, join_lines_inverse

PULL_ENTITY = {"wegive": "wegive.donors", "handbid": "handbid.contacts"}


def _split(ref: Any) -> tuple[str, Any]:
    return (ref, None) if isinstance(ref, str) else next(iter(ref.items()))


def invert(rule: FieldRule, values: pd.Series, ctx: Context) -> dict[str, pd.Series] | None:
    """Source field → values for one rule, or None when the rule cannot be reversed."""
    if rule.from_ is None or rule.const is not None or rule.cases:
        return None
    froms = [rule.from_] if isinstance(rule.from_, str) else list(rule.from_)
    if any(f.startswith("parent.") for f in froms):
        return None
    v = values.astype(object).where(values.notna(), None)
    if rule.default is not None and rule.required:  # a placeholder for a required field (FNU/LNU): not data
        v = v.where(v != rule.default, None)
    if rule.lookup is not None:
        back = {value: key for key, value in reversed(list(rule.lookup.items()))}
        v = v.map(back).astype(object).where(v.isin(list(back)), None)
    for ref in reversed(rule.transform):
        name, _ = _split(ref)
        spec = REGISTRY[name]
        if spec.combines:
            if name != "join_lines":
                return None
            return dict(zip(froms, join_lines_inverse(v, ctx, len(froms)), strict=True))
        if spec.inverse is None:
            return None
        v = spec.inverse(v, ctx)
    return {froms[0]: v}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(out)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def _pull_rules(org: OrgConfig, spec: EntitySpec, branch: str | None) -> dict[str, FieldRule]:
    rules = spec.branch_rules(branch)
    return {t: r for t, r in rules.items()
            if r.canonical and org.field_policy("constituents", r.canonical)[1] in ("pull", "both")}


def _branch_for(spec: EntitySpec, kind: Any) -> str | None:
    for branch, rules in spec.branches.items():
        if "Type" in rules and rules["Type"].const == kind:
            return branch
    return None


def _correlation(records: list[dict[str, Any]], field: int | str | None) -> list[Any]:
    found = []
    for record in records:
        value = None
        for cv in record.get("CustomValues") or []:
            if field is not None and (cv.get("FieldId") == field or cv.get("FieldText") == field):
                raw = cv.get("Value")
                value = raw.get("Value") if isinstance(raw, dict) else raw
        found.append(value)
    return found


def reverse_map(org: OrgConfig, entity: str, constituents: list[dict[str, Any]]) -> pd.DataFrame:
    """Bloomerang constituents (read shape) → one row each: `bloomerang_id`, `correlation_id` (the source id
    kept in the org's custom field), the canonical constituent columns, `source_updated_at` and
    `source_payload` (JSON: the source's contact PUT body)."""
    from bloom_pipeline.mapping.compile import context

    spec = org.entity(entity)
    source = entity.split(".")[0]
    ctx = context(org)
    records = list(constituents)
    targets = {t for b in [None, *spec.branches] for t in spec.branch_rules(b)}
    cols = extract_columns(records, targets | {"Type", "Id", "AuditTrail.LastModifiedDate"})
    out = pd.DataFrame(index=cols.index)
    out["source"] = "bloomerang"
    out["bloomerang_id"] = pd.to_numeric(cols["Id"], errors="coerce").astype("Int64")
    out["correlation_id"] = _correlation(records, org.custom_field("constituent", source))
    out["constituent_type"] = cols["Type"]
    for column in catalog.CANONICAL_COLUMNS["constituents"]:
        if column not in out:
            out[column] = None
    payload_parts: list[pd.Series] = []
    for branch in [*spec.branches] or [None]:
        rows = cols.index if branch is None else cols.index[cols["Type"].eq(
            spec.branches[branch]["Type"].const if "Type" in spec.branches[branch] else None).to_numpy()]
        if len(rows) == 0:
            continue
        sub = cols.loc[rows]
        flat: dict[str, pd.Series] = {}
        if spec.branch_on and branch is not None:
            flat[spec.branch_on] = pd.Series(branch, index=rows, dtype=object)
        for target, rule in _pull_rules(org, spec, branch).items():
            out.loc[rows, rule.canonical] = sub[target].to_numpy()
            fields = invert(rule, sub[target], ctx)
            for path, values in (fields or {}).items():
                flat.setdefault(path, values)
        keys = list(flat)
        payload_parts.append(pd.Series(
            [json.dumps(_nest({k: _clean(v) for k, v in zip(keys, row, strict=True)}), sort_keys=True)
             for row in zip(*(flat[k].to_numpy() for k in keys), strict=True)] if keys else ["{}"] * len(rows),
            index=rows, dtype=object))
    out["source_payload"] = pd.concat(payload_parts).reindex(out.index) if payload_parts else None
    out["source_updated_at"] = pd.to_datetime(cols["AuditTrail.LastModifiedDate"], utc=True, errors="coerce",
                                              format="ISO8601")
    return out.reset_index(drop=True)


def to_source_payload(source: str, canonical: Mapping[str, Any], org: OrgConfig | None = None,
                      mappings_dir: str | None = None) -> dict[str, Any]:
    """The source's contact write body (WeGive donor PUT, Handbid contact PUT) from canonical constituent
    columns. Without `org`, the packaged default mapping for `source` is used."""
    from bloom_pipeline.mapping.compile import context
    from bloom_pipeline.mapping.loader import default_org

    org = org or default_org(source, mappings_dir)
    entity = PULL_ENTITY[source]
    spec = org.entity(entity)
    ctx = context(org)
    branch = _branch_for(spec, canonical.get("constituent_type"))
    flat: dict[str, Any] = {}
    if spec.branch_on and branch is not None:
        flat[spec.branch_on] = branch
    for rule in _pull_rules(org, spec, branch).values():
        fields = invert(rule, pd.Series([canonical.get(rule.canonical)], dtype=object), ctx)
        for path, values in (fields or {}).items():
            flat.setdefault(path, _clean(values.iloc[0]))
    if spec.bloomerang_id and canonical.get("bloomerang_id") is not None:
        flat[spec.bloomerang_id] = int(canonical["bloomerang_id"])
    return _nest(flat)


def payload_keys_by_field(source: str, org: OrgConfig, constituent_type: str | None,
                          samples: Mapping[str, Any], names: Iterable[str]) -> dict[str, frozenset[str]]:
    """Canonical field -> the top-level keys of the source's write body that change when only that field is set.

    The same answer as comparing ``to_source_payload({type, name: sample})`` with ``to_source_payload({type})``
    for every name, but each pull rule is inverted at most twice (its baseline value and its sample) instead of
    once per name: building a whole body per field inverted every rule eleven times, most of a quiet night's
    merge. A rule of another field contributes its baseline value to both bodies, so only the rules of ``name``
    are re-inverted; the first rule that writes a path still wins, as in ``to_source_payload``.
    """
    from bloom_pipeline.mapping.compile import context

    spec = org.entity(PULL_ENTITY[source])
    ctx = context(org)
    branch = _branch_for(spec, constituent_type)
    rules = list(_pull_rules(org, spec, branch).values())
    base_canonical = {"constituent_type": constituent_type}

    def inverted(rule: FieldRule, value: Any) -> list[tuple[str, Any]]:
        fields = invert(rule, pd.Series([value], dtype=object), ctx)
        return [(path, _clean(values.iloc[0])) for path, values in (fields or {}).items()]

    base_parts = [inverted(rule, base_canonical.get(rule.canonical)) for rule in rules]
    prefix = {spec.branch_on: branch} if spec.branch_on and branch is not None else {}

    def body(overrides: Mapping[int, list[tuple[str, Any]]]) -> dict[str, Any]:
        flat = dict(prefix)
        for index, parts in enumerate(base_parts):
            for path, value in overrides.get(index, parts):
                flat.setdefault(path, value)
        return _nest(flat)

    baseline = body({})
    keys: dict[str, frozenset[str]] = {}
    for name in names:
        sample = samples.get(name, "Sample")
        overrides = {i: inverted(rule, sample) for i, rule in enumerate(rules) if rule.canonical == name}
        if not overrides:
            continue  # no rule reads this field: its body is the baseline
        changed = body(overrides)
        touched = frozenset(k for k in changed if changed.get(k) != baseline.get(k))
        if touched:
            keys[name] = touched
    return keys
