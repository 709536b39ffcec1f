"""Apply an org's mapping to a whole frame of source records: staged rows or rejections, never both.

Why vectorized: a backfill maps millions of records; every rule runs once per column (engine.py), JSON
payloads are assembled per column (jsonbuild.py). Each input record ends in exactly one of
`result.mapped` (canonical columns of docs/INTERFACES.md, `payload` = the Bloomerang v2 write body) or
`result.rejected` (kind 'invalid' with errors naming field and value, or kind 'excluded' for records that
are not gifts by an explicit `exclude_when` rule). The pull direction lives in reverse.py and is
re-exported here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bloom_pipeline.mapping import catalog, jsonbuild, parallel
from bloom_pipeline.mapping.engine import Evaluated, collect_errors, evaluate, norm_column
from bloom_pipeline.mapping.frames import element_frame, extract_columns, raw_json
from bloom_pipeline.mapping.parallel import PARALLEL_MIN_ROWS
from bloom_pipeline.mapping.reverse import reverse_map, to_source_payload
from bloom_pipeline.mapping.spec import EntitySpec, OrgConfig
from bloom_pipeline.mapping.transforms import Context, to_string

__all__ = ["MapResult", "map_frame", "reverse_map", "to_source_payload", "payload_hash"]

payload_hash = jsonbuild.payload_hash
CHUNK_ROWS = 100_000  # rows mapped at once: bounds intermediate memory, large enough to amortise per-call costs
REJECTED_COLUMNS = ["source", "entity", "source_id", "errors", "raw", "kind"]


@dataclass
class MapResult:
    mapped: pd.DataFrame
    rejected: pd.DataFrame


def context(org: OrgConfig) -> Context:
    return Context(timezone=org.timezone, phone_region=org.phone_region, event_choice=org.event_choice)


def _source_paths(spec: EntitySpec) -> set[str]:
    paths = {spec.id}
    for key in (spec.updated_at, spec.bloomerang_id, spec.branch_on, spec.status):
        if key:
            paths.add(key)
    paths |= {e.field for e in spec.exclude_when}
    for rules in [spec.fields, *spec.branches.values()]:
        for rule in rules.values():
            paths.update(rule.sources())
    des = spec.designations
    if des is not None:
        if des.list:
            paths.add(des.list)
        for rule in des.fields.values():
            for src in rule.sources():
                if src.startswith("parent."):
                    paths.add(src.removeprefix("parent."))
                elif des.list is None:
                    paths.add(src)
                else:
                    head, _, rest = src.partition(".")
                    if head in des.fallback:
                        paths.add(des.fallback[head] + (f".{rest}" if rest else ""))
    return paths


def _timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True, errors="coerce")
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def _encode_fields(ev: Evaluated, staged_only: set[str]) -> dict[str, tuple[Any, bool]]:
    return {t: (jsonbuild.encoded(v), ev.anchors.get(t, True)) for t, v in ev.values.items() if t not in staged_only}


def _custom_value(field_id: Any, ids: pd.Series) -> pd.Series:
    if field_id is None:
        return pd.Series(None, index=ids.index, dtype=object)
    fid = jsonbuild.dumps(field_id if isinstance(field_id, int) else f"ref:bloomerang.custom_fields:name={field_id}")
    return '[{"FieldId":' + fid + ',"Value":' + jsonbuild.encode(ids) + "}]"


def _per_record(separator: str, texts: pd.Series, parent: pd.Series) -> pd.Series:
    """Texts of designation rows joined per record (`parent` label), in row order; records without any are left
    out. Records with a single text skip the (slow, per-group Python) groupby."""
    if texts.empty:
        return pd.Series(dtype=object)
    owners = parent.loc[texts.index]
    counts = owners.map(owners.value_counts()).to_numpy()
    single = counts == 1
    out = pd.Series(texts[single].to_numpy(), index=owners[single].to_numpy(), dtype=object)
    if not single.all():
        many = jsonbuild.join_groups(texts[~single], owners[~single].to_numpy(), separator)
        out = pd.concat([out, many])
    return out


def _designations(org: OrgConfig, entity: str, spec: EntitySpec, src: pd.DataFrame, records: Any,
                  root: Evaluated, ids: pd.Series, ctx: Context) -> tuple[pd.Series, list[pd.Series], pd.Series]:
    """(JSON arrays per row, errors per row, fund source ids per row) of the transaction designations."""
    des = spec.designations
    assert des is not None
    d = element_frame(src, des)
    parent = d["_row"]
    ev = evaluate(des.fields, d, ctx)
    notes = root.notes.reindex(parent.to_numpy()).set_axis(d.index) if root.notes is not None else None
    if notes is not None and notes.notna().any():
        own = ev.values.get("Note", pd.Series(None, index=d.index, dtype=object))
        both = own.notna() & notes.notna()
        ev.values["Note"] = own.where(own.notna(), notes).where(~both, own + " | " + notes)
        ev.anchors["Note"] = True
    fields = _encode_fields(ev, set())
    field_id = org.custom_field("transaction", entity.split(".")[0])
    fields["CustomValues"] = (_custom_value(field_id, ids.reindex(parent.to_numpy()).set_axis(d.index)), True)
    objects, _ = jsonbuild.assemble(fields, d.index)
    arrays = jsonbuild.arrays(objects, parent, src.index)
    errors = [_per_record("; ", e[e.map(type).eq(str).to_numpy()], parent) for e in ev.errors]
    errors = [("Designations." + e).where(e.notna() & e.ne(""), None) for e in errors]
    if "Amount" in ev.values and "Amount" in root.values:
        total = pd.to_numeric(ev.values["Amount"], errors="coerce").groupby(parent.to_numpy()).sum(min_count=1)
        total = total.reindex(src.index)
        amount = pd.to_numeric(root.values["Amount"], errors="coerce")
        off = amount.notna() & total.notna() & ((amount * 100).round() != (total * 100).round())
        err = pd.Series(None, index=src.index, dtype=object)
        if off.any():
            err[off] = ("Amount: " + amount[off].map("{:.2f}".format) + " does not equal the sum of its designations ("
                        + total[off].map("{:.2f}".format) + ")")
        errors.append(err)
    funds = ev.canonical.get("fund_source_ids")
    if funds is None:
        fund_ids = pd.Series("[]", index=src.index, dtype=object)
    else:
        kept = funds[np.fromiter((x is not None for x in funds.to_numpy()), dtype=bool, count=len(funds))]
        codes, uniques = pd.factorize(kept, use_na_sentinel=False)
        quoted = pd.Series(np.array([json.dumps(str(u)) for u in uniques], dtype=object)[codes], index=kept.index)
        fund_ids = _per_record(", ", quoted, parent)
        fund_ids = ("[" + fund_ids + "]").reindex(src.index).fillna("[]")
    return arrays, errors, fund_ids


def _map_branch(org: OrgConfig, entity: str, spec: EntitySpec, branch: str | None, src: pd.DataFrame,
                records: Any, ctx: Context) -> tuple[pd.DataFrame, pd.Series]:
    table = catalog.ENTITY_TARGET[entity]
    source = entity.split(".")[0]
    ids = to_string(src[spec.id], ctx)[0]
    ev = evaluate(spec.branch_rules(branch), src, ctx)
    errors = list(ev.errors)
    fields = _encode_fields(ev, catalog.STAGED_ONLY_TARGETS)
    out = pd.DataFrame(index=src.index)
    if table == "constituents" and spec.correlation:
        fields["CustomValues"] = (_custom_value(org.custom_field("constituent", source), ids), True)
    if table == "transactions":
        arrays, des_errors, fund_ids = _designations(org, entity, spec, src, records, ev, ids, ctx)
        fields["Designations"] = (arrays, True)
        errors += des_errors
        out["fund_source_ids"] = fund_ids
    payload, _ = jsonbuild.assemble(fields, src.index)
    out["source"] = source
    out["source_id"] = ids
    out["payload"] = payload
    for column in catalog.CANONICAL_COLUMNS[table]:
        if column in ev.canonical:
            out[column] = ev.canonical[column]
        elif column not in out:
            out[column] = None
    if spec.status:
        out["status"] = src[spec.status]
    if table == "transactions":
        out["is_refunded"] = ev.values.get("IsRefunded", pd.Series(False, index=src.index)).eq(True)
        out["amount"] = pd.to_numeric(out["amount"], errors="coerce").astype(float)
    return out, collect_errors(errors, src.index)


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """pd.concat of the branch frames; all-object frames (donors) are stacked column by column with numpy,
    which skips pandas' per-value null checks (seconds at a million rows)."""
    if len(parts) == 1:
        return parts[0]
    columns = list(parts[0].columns)
    if any(list(p.columns) != columns or not all(d == np.dtype(object) for d in p.dtypes) for p in parts):
        return pd.concat(parts)
    index = np.concatenate([p.index.to_numpy() for p in parts])
    return pd.DataFrame({c: np.concatenate([p[c].to_numpy() for p in parts]) for c in columns},
                        index=pd.Index(index, dtype=parts[0].index.dtype), columns=columns)


def _empty_mapped(table: str) -> pd.DataFrame:
    cols = ["source", "source_id", "payload", "payload_hash", "source_updated_at", *catalog.CANONICAL_COLUMNS[table]]
    return pd.DataFrame(columns=cols)


def _rejected(records: Any, src: pd.DataFrame, rows: pd.Index, source: str, entity: str, ids: pd.Series,
              errors: pd.Series, kind: str) -> pd.DataFrame:
    return pd.DataFrame({"source": source, "entity": entity, "source_id": ids.loc[rows].to_numpy(),
                         "errors": errors.loc[rows].to_numpy(), "raw": raw_json(records, rows),
                         "kind": kind}, index=rows, columns=REJECTED_COLUMNS)


def map_frame(org: OrgConfig, entity: str, records: list[dict[str, Any]] | pd.DataFrame,
              chunk_rows: int | None = None, workers: int | None = None,
              parallel_min_rows: int = PARALLEL_MIN_ROWS) -> MapResult:
    """Map source records (as the API returns them, or a DataFrame of them) for `entity` ('wegive.donors').

    Records are mapped `chunk_rows` at a time (default CHUNK_ROWS; parallel.CHUNK_ROWS on several cores):
    every rule is row-local, so the result is the same as in one piece, and the intermediate columns of a
    chunk bound the memory the mapping needs beyond its input and output. Inputs of at least
    `parallel_min_rows` records are mapped by `workers` processes (this one included; default: two where
    there are two cores, see parallel.py) with the same result; smaller inputs, and `workers=1`, stay in
    this process."""
    if not isinstance(records, pd.DataFrame):
        records = list(records)
    count = (workers if workers is not None else parallel.default_workers()) if len(records) >= parallel_min_rows else 1
    size = max(1, chunk_rows or (parallel.CHUNK_ROWS if count > 1 else CHUNK_ROWS))
    if len(records) <= size:
        return _map_chunk(org, entity, records)
    chunks = [records.iloc[start:start + size] if isinstance(records, pd.DataFrame) else records[start:start + size]
              for start in range(0, len(records), size)]
    if count > 1:
        parts = parallel.map_chunks(_map_chunk, org, entity, chunks, count)
    else:
        parts = [_map_chunk(org, entity, chunk) for chunk in chunks]
    filled = [p.mapped for p in parts if len(p.mapped)] or [parts[0].mapped]
    bad = [p.rejected for p in parts if len(p.rejected)] or [parts[0].rejected]
    return MapResult(mapped=pd.concat(filled, ignore_index=True) if len(filled) > 1 else filled[0],
                     rejected=pd.concat(bad, ignore_index=True) if len(bad) > 1 else bad[0])


def _map_chunk(org: OrgConfig, entity: str, records: list[dict[str, Any]] | pd.DataFrame) -> MapResult:
    spec = org.entity(entity)
    source = entity.split(".")[0]
    table = catalog.ENTITY_TARGET[entity]
    ctx = context(org)
    src = extract_columns(records, _source_paths(spec))
    ids = to_string(src[spec.id], ctx)[0]
    rejected: list[pd.DataFrame] = []
    excluded = pd.Series(False, index=src.index)
    reasons = pd.Series(None, index=src.index, dtype=object)
    for rule in spec.exclude_when:
        hit = norm_column(src[rule.field]).isin([str(v).strip().lower() for v in rule.in_]) & ~excluded
        reasons[hit] = rule.field + ": '" + src[rule.field][hit].astype(str) + "' excluded — " + rule.reason
        excluded |= hit
    if excluded.any():
        rows = src.index[excluded.to_numpy()]
        why = reasons[excluded.to_numpy()].map(lambda r: [r])
        rejected.append(_rejected(records, src, rows, source, entity, ids, why, "excluded"))
    live = src[~excluded.to_numpy()] if excluded.any() else src
    parts: list[pd.DataFrame] = []
    error_parts: list[pd.Series] = []
    if spec.branch_on:
        keys = norm_column(live[spec.branch_on])
        matched = pd.Series(False, index=live.index)
        for branch in spec.branches:
            rows = keys.eq(str(branch).strip().lower())
            matched |= rows
            if rows.any():
                part, errs = _map_branch(org, entity, spec, branch, live[rows.to_numpy()], records, ctx)
                parts.append(part)
                error_parts.append(errs)
        if (~matched).any():
            lost = live.index[(~matched).to_numpy()]
            shown = live[spec.branch_on].loc[lost].astype(str)
            error_parts.append(pd.Series([[f"{spec.branch_on}: no mapping branch for '{v}'"] for v in shown],
                                         index=lost, dtype=object))
    elif len(live):
        part, errs = _map_branch(org, entity, spec, None, live, records, ctx)
        parts.append(part)
        error_parts.append(errs)
    errors = pd.concat(error_parts) if error_parts else pd.Series(dtype=object)
    mapped = _stack(parts) if parts else _empty_mapped(table)
    bad = errors.map(len).gt(0) if len(errors) else pd.Series(dtype=bool)
    if bad.any():
        rows = errors.index[bad.to_numpy()]
        rejected.append(_rejected(records, src, rows, source, entity, ids, errors, "invalid"))
        mapped = mapped.drop(index=rows, errors="ignore")
    mapped = mapped.sort_index()
    mapped["payload_hash"] = jsonbuild.hash_column(mapped["payload"]) if len(mapped) else []
    if spec.updated_at:
        mapped["source_updated_at"] = _timestamps(src[spec.updated_at]).reindex(mapped.index)
    else:
        mapped["source_updated_at"] = pd.Series(pd.NaT, index=mapped.index, dtype="datetime64[ns, UTC]")
    if spec.bloomerang_id:
        mapped["bloomerang_id"] = pd.to_numeric(src[spec.bloomerang_id], errors="coerce").reindex(
            mapped.index).astype("Int64")
    else:
        mapped["bloomerang_id"] = pd.array([pd.NA] * len(mapped), dtype="Int64")
    order = ["source", "source_id", "payload", "payload_hash", "source_updated_at", *catalog.CANONICAL_COLUMNS[table]]
    mapped = mapped[order].reset_index(drop=True)
    rejected_frame = (pd.concat(rejected).sort_index().reset_index(drop=True) if rejected
                      else pd.DataFrame(columns=REJECTED_COLUMNS))
    return MapResult(mapped=mapped, rejected=rejected_frame)

