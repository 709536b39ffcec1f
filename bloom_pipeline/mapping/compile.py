"""Apply an org's mapping to a whole frame of source records: staged rows or rejections, never both.

Why vectorized: a backfill maps millions of records; every rule runs once per column (engine.py), JSON
payloads are assembled per column (jsonbuild.py). Each input record ends in exactly one of
`result.mapped` (canonical columns of docs/INTERFACES.md, `payload` = the Bloomerang v2 write body) or
`result.rejected` (kind 'invalid' with errors naming field and value, or kind 'excluded' for records that
are not gifts by an explicit `exclude_when` rule). A record without a usable id, and every copy of an id
that occurs more than once in the input, is rejected before any rule runs (`id_problems`): which copy is
current cannot be known, so none is staged. `result.fields` lists, per staged record, each optional value
left out of its payload (`on_invalid: drop_field`) with the value and the reason; a rejected record carries
those reasons among its own. The pull direction lives in reverse.py and is re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bloom_pipeline.mapping import arrowtext, catalog, jsonbuild, parallel, sqlpath
from bloom_pipeline.mapping.engine import (
    Evaluated,
    collect_errors,
    dropped_rows,
    evaluate,
    norm_column,
    safe_text,
    shown_value,
)
from bloom_pipeline.mapping.frames import element_frame, extract, extract_columns, extract_series, raw_json
from bloom_pipeline.mapping.parallel import PARALLEL_MIN_ROWS
from bloom_pipeline.mapping.reverse import reverse_map, to_source_payload
from bloom_pipeline.mapping.spec import EntitySpec, OrgConfig
from bloom_pipeline.mapping.transforms import Context, present

__all__ = ["MapResult", "id_problems", "map_frame", "map_stream", "payload_hash", "repeated_ids", "reverse_map",
           "to_source_payload"]

payload_hash = jsonbuild.payload_hash
CHUNK_ROWS = 100_000  # rows mapped at once: bounds intermediate memory, large enough to amortise per-call costs
REJECTED_COLUMNS = ["source", "entity", "source_id", "errors", "raw", "kind"]
FIELD_COLUMNS = ["source", "entity", "source_id", "field", "value", "errors", "raw", "kind"]
INT64_MAX = 2**63 - 1


def _no_fields() -> pd.DataFrame:
    return pd.DataFrame(columns=FIELD_COLUMNS)


@dataclass
class MapResult:
    mapped: pd.DataFrame
    rejected: pd.DataFrame
    fields: pd.DataFrame = field(default_factory=_no_fields)  # kind 'field': one row per dropped value


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


_EPOCH_BOUND = 9.2e9  # seconds either side of 1970 that a pandas timestamp holds


def _timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 text or epoch seconds → aware UTC timestamps; anything else (a date pandas cannot hold, an
    object, true/false) → NaT, never an exception."""
    if values.dtype.kind in "iuf":
        seconds = values.astype(float)
        return _epoch_seconds(seconds.where(seconds.abs() <= _EPOCH_BOUND))
    if values.dtype.kind == "b":
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # the usual case, vectorised
        return pd.to_datetime(values.astype(object), utc=True, errors="coerce", format="ISO8601")
    items = values.to_numpy()
    texts = pd.Series([v if isinstance(v, str) else None for v in items], index=values.index, dtype=object)
    numbers = pd.Series([float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                         for v in items], index=values.index, dtype=float)
    out = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
    if numbers.notna().any():
        epoch = _epoch_seconds(numbers.where(numbers.abs() <= _EPOCH_BOUND))
        out = out.where(out.notna(), epoch)
    return out


def _epoch_seconds(seconds: pd.Series) -> pd.Series:
    """Epoch seconds (floats within pandas' bounds, NaN for none) → aware UTC timestamps.

    Why the retry: pandas converts a float column under `errstate(over="raise")`, and now and then (hostile
    inputs, after an out-of-range date was parsed or a C kernel ran in this thread) a floating-point flag left
    raised makes it report an overflow no value has; the value-by-value conversion of the same numbers gives
    the same timestamps without that check."""
    sqlpath.clear_float_flags()
    try:
        return pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    except FloatingPointError:
        return pd.to_datetime(seconds.astype(object), unit="s", utc=True, errors="coerce")


def _id_text(value: Any) -> str | None:
    """A source id as text; None when the value cannot be an id (the same reading as the raw write's
    ``staging.writes.id_text``: whole numbers and trimmed text are ids; true/false, fractions, NaN,
    blanks, objects and lists are not)."""
    if value is None or isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if np.isfinite(value) and float(value).is_integer() else None
    if isinstance(value, str):
        return value.strip() or None
    return None


def id_texts(values: pd.Series) -> pd.Series:
    """`_id_text` over a column (whole numbers or text only, the usual cases, in one vectorised step)."""
    if values.dtype.kind == "i":
        return values.astype(str).astype(object)
    kind = pd.api.types.infer_dtype(values, skipna=True) if values.dtype.kind in "OU" else ""
    if kind == "integer":  # ints with a null among them
        try:
            ints = values.astype("Int64")
        except (OverflowError, TypeError, ValueError):
            pass
        else:
            return ints.astype(str).astype(object).where(ints.notna(), None)
    if kind == "string":
        text = values.astype(object).where(values.notna(), None)
        stripped = text.str.strip()
        return stripped.where(stripped.notna() & stripped.ne(""), None).astype(object)
    return pd.Series([_id_text(v) for v in values.to_numpy()], index=values.index, dtype=object)


def _record_ids(records: list[dict[str, Any]] | pd.DataFrame, path: str) -> pd.Series:
    if isinstance(records, pd.DataFrame):
        column = extract_columns(records, [path])[path]
        return pd.Series(column.to_numpy(), index=pd.RangeIndex(len(records)), dtype=column.dtype)
    return pd.Series(extract(records, path), index=pd.RangeIndex(len(records)), dtype=object)


def ids_are_clean(records: list[dict[str, Any]] | pd.DataFrame, path: str = "id") -> bool:
    """True when every record has a whole-number id and no id repeats: the usual input, checked on the
    numbers themselves (no id text built for a million records)."""
    raw = _record_ids(records, path)
    return raw.dtype.kind == "i" and not raw.duplicated().any()


def id_problems(records: list[dict[str, Any]] | pd.DataFrame, path: str = "id") -> tuple[pd.Series, pd.Series]:
    """Per record (by position): its id as text (None when it has none) and why it cannot be staged (None when
    it can): `missing id`, or `duplicate id` for every record whose id occurs more than once in `records`."""
    raw = _record_ids(records, path)
    texts = id_texts(raw)
    repeated = texts.notna() & texts.duplicated(keep=False)
    return texts, _id_reasons(raw, texts, path, texts[repeated].value_counts() if repeated.any() else {})


def _id_reasons(raw: pd.Series, texts: pd.Series, path: str, counts: Mapping[str, int]) -> pd.Series:
    """Why each record cannot be staged (None when it can), given how often each repeated id occurs in the
    whole input (`counts`: only ids seen more than once; a stream's come from a pass over all of it)."""
    why = pd.Series(None, index=raw.index, dtype=object)
    missing = texts.isna()
    if missing.any():
        why[missing] = [f"{path}: missing id" if v is None or (isinstance(v, float) and np.isnan(v))
                        or (isinstance(v, str) and not v.strip())
                        else f"{path}: missing id ({shown_value(v)} is not an id)" for v in raw[missing].to_numpy()]
    repeated = texts.notna() & texts.isin(list(counts.keys())) if len(counts) else None
    if repeated is not None and repeated.any():
        why[repeated] = [safe_text(f"{path}: duplicate id '{t}' ({counts[t]} records of this extract carry it; "
                                   "none is staged)") for t in texts[repeated].to_numpy()]
    return why


def repeated_ids(batches: Iterable[list[dict[str, Any]] | pd.DataFrame], path: str = "id") -> dict[str, int]:
    """The id texts that occur more than once over all `batches`, with how often: one pass over the id column
    only, so a stream can reject every copy of a repeated id (as `map_frame` does) without holding the
    records. Whole-number ids (the usual case) are counted as numbers: no text for ten million ids."""
    numbers: list[np.ndarray] = []
    texts: list[np.ndarray] = []
    for batch in batches:
        raw = _record_ids(batch if isinstance(batch, pd.DataFrame) else list(batch), path)
        if raw.dtype.kind == "i" and not texts:
            numbers.append(raw.to_numpy())
            continue
        if numbers:  # a batch of other ids: count everything as text from here on
            texts += [id_texts(pd.Series(n)).to_numpy() for n in numbers]
            numbers = []
        texts.append(id_texts(raw).to_numpy())
    if numbers:
        values, counts = np.unique(np.concatenate(numbers), return_counts=True)
        many = counts > 1
        return {str(int(v)): int(c) for v, c in zip(values[many], counts[many], strict=True)}
    if not texts:
        return {}
    counted = pd.Series(np.concatenate(texts), dtype=object).dropna().value_counts()
    return {str(k): int(v) for k, v in counted[counted > 1].items()}


def _screen(records: list[dict[str, Any]] | pd.DataFrame, entity: str, path: str,
            counts: Mapping[str, int] | None = None) -> tuple[Any, pd.DataFrame | None]:
    """(the records that have a usable, unrepeated id; the rejected rows of the others, or None when none).
    `counts`: the repeated ids of the whole input (default: those repeated within `records`)."""
    if counts is None:
        if ids_are_clean(records, path):
            return records, None
        ids, why = id_problems(records, path)
    else:
        raw = _record_ids(records, path)
        if raw.dtype.kind == "i" and not counts:
            return records, None
        ids = id_texts(raw)
        why = _id_reasons(raw, ids, path, counts)
    if not why.notna().any():
        return records, None
    bad = why.notna().to_numpy()
    screened = pd.DataFrame({"source": entity.split(".")[0], "entity": entity,
                             "source_id": ids[bad].to_numpy(), "errors": [[w] for w in why[bad]],
                             "raw": raw_json(records, why.index[bad]), "kind": "invalid"},
                            columns=REJECTED_COLUMNS)
    keep = np.flatnonzero(~bad)
    return (records.iloc[keep] if isinstance(records, pd.DataFrame) else [records[i] for i in keep]), screened


def _with_screened(result: MapResult, screened: pd.DataFrame | None) -> MapResult:
    if screened is None:
        return result
    rejected = pd.concat([r for r in (result.rejected, screened) if len(r)], ignore_index=True)
    return MapResult(mapped=result.mapped, rejected=rejected, fields=result.fields)


def _positive_ids(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Stored Bloomerang ids (whole numbers > 0 within int64, or their digits) as Int64, and per row the
    value that is no such id (None where fine or empty)."""
    if values.dtype.kind == "i":
        ok = values > 0
        return values.where(ok).astype("Int64"), values.astype(object).where(~ok, None)
    kind = pd.api.types.infer_dtype(values, skipna=True) if values.dtype.kind in "OU" else ""
    if kind in ("integer", "empty"):  # stored ids with nulls among them: vectorised
        try:
            ints = values.astype("Int64")
        except (OverflowError, TypeError, ValueError):
            pass
        else:
            ok = ints.gt(0).fillna(False).astype(bool)
            bad = ints.notna() & ~ok
            return ints.where(ok, pd.NA), values.astype(object).where(bad.to_numpy(), None)

    def one(value: Any) -> tuple[int | None, bool]:
        if value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str)
                                                                              and not value.strip()):
            return None, False
        text = _id_text(value)
        if text is not None and text.isdigit() and 0 < int(text) <= INT64_MAX:
            return int(text), False
        return None, True

    results = [one(v) for v in values.to_numpy()]
    ids = pd.array([r[0] for r in results], dtype="Int64")
    bad = pd.Series([r[1] for r in results], index=values.index, dtype=bool)
    return pd.Series(ids, index=values.index), values.astype(object).where(bad, None)


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
                  root: Evaluated, ids: pd.Series, ctx: Context
                  ) -> tuple[pd.Series, list[pd.Series], pd.Series, pd.DataFrame]:
    """(JSON arrays per row, errors per row, fund source ids per row, dropped values) of the transaction
    designations."""
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
    return arrays, errors, fund_ids, dropped_rows(ev.dropped, owners=parent, prefix="Designations.")


def _map_branch(org: OrgConfig, entity: str, spec: EntitySpec, branch: str | None, src: pd.DataFrame,
                records: Any, ctx: Context, ids: pd.Series) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(mapped rows, record errors per row, dropped values) of the rows of one branch (`ids`: theirs)."""
    table = catalog.ENTITY_TARGET[entity]
    source = entity.split(".")[0]
    ev = evaluate(spec.branch_rules(branch), src, ctx)
    errors = list(ev.errors)
    drops = [dropped_rows(ev.dropped)]
    fields = _encode_fields(ev, catalog.STAGED_ONLY_TARGETS)
    out = pd.DataFrame(index=src.index)
    if table == "constituents" and spec.correlation:
        fields["CustomValues"] = (_custom_value(org.custom_field("constituent", source), ids), True)
    if table == "transactions":
        arrays, des_errors, fund_ids, des_drops = _designations(org, entity, spec, src, records, ev, ids, ctx)
        fields["Designations"] = (arrays, True)
        errors += des_errors
        drops.append(des_drops)
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
    found = [d for d in drops if len(d)]
    return out, collect_errors(errors, src.index), (pd.concat(found, ignore_index=True) if found
                                                    else dropped_rows([]))


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

    Records without a usable id and every copy of a repeated id are rejected first (`id_problems`); the rest
    are mapped `chunk_rows` at a time (default CHUNK_ROWS; parallel.CHUNK_ROWS on several cores):
    every rule is row-local, so the result is the same as in one piece, and the intermediate columns of a
    chunk bound the memory the mapping needs beyond its input and output. Inputs of at least
    `parallel_min_rows` records are mapped by `workers` processes (this one included; default: two where
    there are two cores, see parallel.py) with the same result; smaller inputs, and `workers=1`, stay in
    this process."""
    if not isinstance(records, pd.DataFrame):
        records = list(records)
    records, screened = _screen(records, entity, org.entity(entity).id)
    return _with_screened(_map_all(org, entity, records, chunk_rows, workers, parallel_min_rows), screened)


def map_stream(org: OrgConfig, entity: str, batches: Callable[[], Iterable[list[dict[str, Any]] | pd.DataFrame]],
               chunk_rows: int | None = None, workers: int | None = None,
               repeated: Mapping[str, int] | None = None) -> Iterator[MapResult]:
    """`map_frame` over an input too large for memory: `batches()` opens the input (it is read twice: once for
    the ids, see `repeated_ids`, then for the records), and one MapResult is yielded per chunk of
    `chunk_rows` records, in input order, mapped by `workers` processes (default as `map_frame`'s).

    Why: ten million donors are 8 GB as a frame and more as mapped rows; here only the chunks in flight and
    their results are held, so memory is bounded by the chunk size. The results concatenated are
    `map_frame`'s over the concatenated input — same mapped rows, dropped values and rejections (a missing
    or repeated id's rejection comes with its own chunk's, not after all of them). `repeated`: the
    `repeated_ids` of the input when the caller has counted them (e.g. from the id column alone), which saves
    the first pass."""
    path = org.entity(entity).id
    counts = repeated_ids(batches(), path) if repeated is None else repeated
    count = workers if workers is not None else parallel.default_workers()
    size = max(1, chunk_rows or (parallel.CHUNK_ROWS if count > 1 else CHUNK_ROWS))

    def pieces() -> Iterator[tuple[Any, pd.DataFrame | None]]:
        for batch in batches():
            rows = batch if isinstance(batch, pd.DataFrame) else list(batch)
            for start in range(0, len(rows), size):
                piece = rows.iloc[start:start + size] if isinstance(rows, pd.DataFrame) else rows[start:start + size]
                yield _screen(piece, entity, path, counts)

    yield from parallel.map_stream(_map_screened, org, entity, pieces(), count)


def _map_screened(org: OrgConfig, entity: str, item: tuple[Any, pd.DataFrame | None]) -> MapResult:
    """One chunk of a stream: its records with usable ids mapped, the others' rejections added."""
    records, screened = item
    return _with_screened(_map_chunk(org, entity, records), screened)


def _map_all(org: OrgConfig, entity: str, records: list[dict[str, Any]] | pd.DataFrame, chunk_rows: int | None,
             workers: int | None, parallel_min_rows: int) -> MapResult:
    count = (workers if workers is not None else parallel.default_workers()) if len(records) >= parallel_min_rows else 1
    size = max(1, chunk_rows or (parallel.CHUNK_ROWS if count > 1 else CHUNK_ROWS))
    if len(records) <= size:
        return _map_chunk(org, entity, records)
    starts = range(0, len(records), size)
    chunks = [records.iloc[start:start + size] if isinstance(records, pd.DataFrame) else records[start:start + size]
              for start in starts]
    if count > 1:
        parts = parallel.map_chunks(_map_deferring, org, entity, chunks, count)
    else:
        parts = [_map_deferring(org, entity, chunk) for chunk in chunks]
    if any(left is not None for _, left in parts):
        return _with_left(org, entity, records, list(starts), parts)
    return _stacked([p for p, _ in parts])


def _stacked(parts: list[MapResult]) -> MapResult:
    filled = [p.mapped for p in parts if len(p.mapped)] or [parts[0].mapped]
    bad = [p.rejected for p in parts if len(p.rejected)] or [parts[0].rejected]
    dropped = [p.fields for p in parts if len(p.fields)] or [parts[0].fields]
    return MapResult(mapped=pd.concat(filled, ignore_index=True) if len(filled) > 1 else filled[0],
                     rejected=pd.concat(bad, ignore_index=True) if len(bad) > 1 else bad[0],
                     fields=pd.concat(dropped, ignore_index=True) if len(dropped) > 1 else dropped[0])


DEFER_ROWS = 1_000  # a chunk's rows for the Python engine, when at most this many, are mapped with all the others


@dataclass
class _Left:
    """What a chunk left for the Python engine (`_map_deferring`): those rows, and where in the chunk the rows of
    its (partial) result come from."""

    rows: np.ndarray
    mapped_at: np.ndarray
    rejected_at: np.ndarray


def _map_deferring(org: OrgConfig, entity: str, records: list[dict[str, Any]] | pd.DataFrame
                   ) -> tuple[MapResult, _Left | None]:
    """`_map_chunk`, except that a few rows for the Python engine (at most DEFER_ROWS) are left out of the result
    and named: `_map_all` maps those of all chunks at once (`_with_left`).

    Why: the Python engine costs about 0.14 s per call however few rows it maps (a thousand pandas operations),
    and the usual chunk has a few: 0.5% of the benchmark's generated donors carry an email that is no email (a
    dropped value, which only Python writes). The twenty chunks of a million donors paid that twenty times
    (2.9 s, a tenth of the mapping's CPU); one call over their 4,533 rows costs 0.4 s. The merge in input
    order is one take over the whole result, in this process."""
    return _map_chunk(org, entity, records, defer=True)


def _with_left(org: OrgConfig, entity: str, records: list[dict[str, Any]] | pd.DataFrame, starts: list[int],
               parts: list[tuple[MapResult, _Left | None]]) -> MapResult:
    """The chunks' results with the rows they left mapped by the Python engine, all in input order: the same
    rows, in the same order, as when each chunk maps its own (tests/unit/mapping/test_sql_path_differential.py)."""
    left = np.concatenate([start + lf.rows for start, (_, lf) in zip(starts, parts, strict=True) if lf is not None])
    subset = records.iloc[left] if isinstance(records, pd.DataFrame) else [records[i] for i in left]
    pieces = [subset[i:i + CHUNK_ROWS] if not isinstance(subset, pd.DataFrame) else subset.iloc[i:i + CHUNK_ROWS]
              for i in range(0, len(left), CHUNK_ROWS)]
    extra = _stacked([_map_python(org, entity, piece) for piece in pieces])
    spec = org.entity(entity)
    where = pd.Series(left, index=id_texts(_record_ids(subset, spec.id)).to_numpy())  # ids: screened, unique

    def ordered(frames: list[pd.DataFrame], keys: list[np.ndarray], extra_frame: pd.DataFrame) -> pd.DataFrame:
        """The frames and `extra_frame` stacked in input order: each chunk's rows keyed by their position
        (a chunk that left nothing: all by its start, which keeps them in their order, before the next chunk's)."""
        if len(extra_frame):
            frames = [*frames, extra_frame]
            keys = [*keys, where.loc[extra_frame["source_id"].to_numpy()].to_numpy()]
        kept = [(f, k) for f, k in zip(frames, keys, strict=True) if len(f)]
        if not kept:
            return frames[0]
        if len(kept) == 1:
            return kept[0][0]
        both = pd.concat([f for f, _ in kept], ignore_index=True)
        return _renumbered(both.iloc[np.argsort(np.concatenate([k for _, k in kept]), kind="stable")])

    def keys(name: str) -> list[np.ndarray]:
        out = []
        for start, (part, lf) in zip(starts, parts, strict=True):
            n = len(getattr(part, name))
            at = getattr(lf, f"{name}_at") if lf is not None and name != "fields" else None
            out.append(start + at if at is not None else np.full(n, start, dtype=np.int64))
        return out

    return MapResult(mapped=ordered([p.mapped for p, _ in parts], keys("mapped"), extra.mapped),
                     rejected=ordered([p.rejected for p, _ in parts], keys("rejected"), extra.rejected),
                     fields=ordered([p.fields for p, _ in parts], keys("fields"), extra.fields))


def _map_chunk(org: OrgConfig, entity: str, records: list[dict[str, Any]] | pd.DataFrame, defer: bool = False
               ) -> Any:
    """One chunk: the rows the compiled SQL maps exactly (sqlpath.py) from its query, the others — errors,
    dropped values, shapes the SQL leaves alone — by the Python engine (`_map_python`), merged in input order.
    The result is `_map_python`'s over the whole chunk (tests/unit/mapping/test_sql_path_differential.py).
    `defer`: (result, rows left) as `_map_deferring` returns them."""
    def done(result: MapResult, left: _Left | None = None) -> Any:
        return (result, left) if defer else result

    if len(records) < sqlpath.MIN_ROWS or not arrowtext.ENABLED:
        return done(_map_python(org, entity, records))
    spec = org.entity(entity)
    src = extract_series(records, _source_paths(spec))
    ids = id_texts(src[spec.id])
    if not ids_are_clean(records, spec.id) and (ids.isna().any() or ids.duplicated().any()):  # not screened
        return done(_map_python(org, entity, records))
    fast = sqlpath.map_rows(org, entity, spec, src, ids, context(org))
    if fast is None or not len(fast.positions):
        return done(_map_python(org, entity, records))
    take = np.zeros(len(ids), dtype=bool)
    take[fast.positions] = True
    stamps = _timestamps(src[spec.updated_at]) if spec.updated_at else None
    if stamps is not None:  # a last-modified time that is no time is a dropped value: Python writes it
        take &= ~(stamps.isna().to_numpy() & present(src[spec.updated_at]).to_numpy())
    stored = None
    if spec.bloomerang_id:
        stored, bad = _positive_ids(src[spec.bloomerang_id])
        take &= bad.isna().to_numpy()
    keep = take[fast.positions]
    mapped = _fast_frame(entity, spec, src, ids, fast, keep, stamps, stored)
    index = pd.RangeIndex(len(ids))
    excluded, reasons = _exclusions(spec, src, index)  # an excluded record: one rejected row, nothing else
    out = excluded.to_numpy()
    rejected = pd.DataFrame(columns=REJECTED_COLUMNS)
    if out.any():
        rows = index[out]
        rejected = _rejected(records, None, rows, entity.split(".")[0], entity, ids,
                             reasons[out].map(lambda r: [r]), "excluded").reset_index(drop=True)
    slow_rows = np.flatnonzero(~take & ~out)
    if not len(slow_rows):
        return done(MapResult(mapped=mapped, rejected=rejected, fields=_no_fields()))
    if defer and len(slow_rows) <= DEFER_ROWS:
        return done(MapResult(mapped=mapped, rejected=rejected, fields=_no_fields()),
                    _Left(slow_rows, fast.positions[keep], np.flatnonzero(out)))
    subset = records.iloc[slow_rows] if isinstance(records, pd.DataFrame) else [records[i] for i in slow_rows]
    slow = _map_python(org, entity, subset)
    where = pd.Series(slow_rows, index=ids.to_numpy()[slow_rows])
    if len(slow.mapped):
        positions = np.concatenate([fast.positions[keep], where.loc[slow.mapped["source_id"].to_numpy()].to_numpy()])
        both = pd.concat([mapped, slow.mapped], ignore_index=True) if len(mapped) else slow.mapped
        mapped = _renumbered(both.iloc[np.argsort(positions, kind="stable")]) if len(mapped) else both
    if len(slow.rejected) and len(rejected):
        positions = np.concatenate([np.flatnonzero(out), where.loc[slow.rejected["source_id"].to_numpy()].to_numpy()])
        both = pd.concat([rejected, slow.rejected], ignore_index=True)
        rejected = both.iloc[np.argsort(positions, kind="stable")].reset_index(drop=True)
    elif len(slow.rejected):
        rejected = slow.rejected
    return done(MapResult(mapped=mapped, rejected=rejected, fields=slow.fields))


def _renumbered(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame.reset_index(drop=True)` without its copy, for a frame this module has just built (a take or a
    selection of columns: its own values, shared with no one). Why: copying an object column touches every
    object it holds (its reference count), a cache miss each: 50 ms per 50,000 mapped donors, on every
    chunk that merges rows of both engines."""
    frame.index = pd.RangeIndex(len(frame))
    return frame


def _fast_frame(entity: str, spec: EntitySpec, src: dict[str, pd.Series], ids: pd.Series, fast: sqlpath.FastRows,
                keep: np.ndarray, stamps: pd.Series | None, stored: pd.Series | None) -> pd.DataFrame:
    """The mapped rows of the SQL's records, in `_map_python`'s columns and types."""
    table = catalog.ENTITY_TARGET[entity]
    rows = fast.positions[keep]
    index = pd.RangeIndex(len(rows))
    out: dict[str, Any] = {
        "source": pd.Series(entity.split(".")[0], index=index, dtype=object),
        "source_id": pd.Series(ids.to_numpy()[rows], index=index, dtype=object),
        "payload": pd.Series(fast.columns["payload"][keep], index=index, dtype=object),
        "payload_hash": jsonbuild.hash_column(pd.Series(fast.columns["payload"][keep], index=index, dtype=object)),
        "source_updated_at": (stamps.iloc[rows].set_axis(index) if stamps is not None
                              else pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")),
    }
    for column in catalog.CANONICAL_COLUMNS[table]:
        computed = fast.columns.get(f"k_{column}")
        if column == "bloomerang_id":
            out[column] = (stored.iloc[rows].set_axis(index).astype("Int64") if stored is not None
                           else pd.Series(pd.array([pd.NA] * len(rows), dtype="Int64"), index=index))
        elif column == "status" and spec.status:
            out[column] = src[spec.status].iloc[rows].set_axis(index)
        elif column == "amount" and table == "transactions":
            values = computed[keep] if computed is not None else np.full(len(rows), np.nan)
            out[column] = pd.Series(np.asarray(values, dtype=float), index=index)
        elif column == "is_refunded" and table == "transactions":
            out[column] = pd.Series(np.asarray(computed[keep], dtype=bool), index=index)
        elif computed is not None:
            out[column] = pd.Series(computed[keep], index=index, dtype=object)
        else:
            out[column] = pd.Series(None, index=index, dtype=object)
    return pd.DataFrame(out, index=index)


def _map_python(org: OrgConfig, entity: str, records: list[dict[str, Any]] | pd.DataFrame) -> MapResult:
    """The Python engine over a chunk (every record: errors, dropped values, the rows SQL leaves alone)."""
    spec = org.entity(entity)
    source = entity.split(".")[0]
    table = catalog.ENTITY_TARGET[entity]
    ctx = context(org)
    src = extract_columns(records, _source_paths(spec))
    ids = id_texts(src[spec.id])
    rejected: list[pd.DataFrame] = []
    excluded, reasons = _exclusions(spec, src, src.index)
    if excluded.any():
        rows = src.index[excluded.to_numpy()]
        why = reasons[excluded.to_numpy()].map(lambda r: [r])
        rejected.append(_rejected(records, src, rows, source, entity, ids, why, "excluded"))
    live = src[~excluded.to_numpy()] if excluded.any() else src
    parts: list[pd.DataFrame] = []
    error_parts: list[pd.Series] = []
    drop_parts: list[pd.DataFrame] = []
    if spec.branch_on:
        keys = norm_column(live[spec.branch_on])
        matched = pd.Series(False, index=live.index)
        for branch in spec.branches:
            rows = keys.eq(str(branch).strip().lower())
            matched |= rows
            if rows.any():
                picked = live[rows.to_numpy()]
                part, errs, drops = _map_branch(org, entity, spec, branch, picked, records, ctx, ids.loc[picked.index])
                parts.append(part)
                error_parts.append(errs)
                drop_parts.append(drops)
        if (~matched).any():
            lost = live.index[(~matched).to_numpy()]
            shown = live[spec.branch_on].loc[lost].astype(str)
            error_parts.append(pd.Series([[safe_text(f"{spec.branch_on}: no mapping branch for '{v}'")] for v in shown],
                                         index=lost, dtype=object))
    elif len(live):
        part, errs, drops = _map_branch(org, entity, spec, None, live, records, ctx, ids.loc[live.index])
        parts.append(part)
        error_parts.append(errs)
        drop_parts.append(drops)
    stamps = _timestamps(src[spec.updated_at]) if spec.updated_at else None
    drop_parts += _key_drops(spec, src, excluded, stamps)
    errors = pd.concat(error_parts) if error_parts else pd.Series(dtype=object)
    drops = pd.concat([d for d in drop_parts if len(d)], ignore_index=True) if any(len(d) for d in drop_parts) \
        else dropped_rows([])
    mapped = _stack(parts) if parts else _empty_mapped(table)
    bad = errors.map(len).gt(0) if len(errors) else pd.Series(dtype=bool)
    if bad.any():
        rows = errors.index[bad.to_numpy()]
        failing = set(rows)
        if len(drops):  # a rejected record lists its dropped values among its reasons: one fix-up for everything
            lost = drops[drops["row"].isin(failing)]
            extra = lost.groupby("row", sort=False)["reason"].agg(list)
            errors = errors.copy()
            for i, more in extra.items():
                errors.at[i] = [*errors.at[i], *more]
            drops = drops[~drops["row"].isin(failing)]
        rejected.append(_rejected(records, src, rows, source, entity, ids, errors, "invalid"))
        mapped = mapped.drop(index=rows, errors="ignore")
    mapped = mapped.sort_index()
    mapped["payload_hash"] = jsonbuild.hash_column(mapped["payload"]) if len(mapped) else []
    if stamps is not None:
        mapped["source_updated_at"] = stamps.reindex(mapped.index)
    else:
        mapped["source_updated_at"] = pd.Series(pd.NaT, index=mapped.index, dtype="datetime64[ns, UTC]")
    if spec.bloomerang_id:
        mapped["bloomerang_id"] = _positive_ids(src[spec.bloomerang_id])[0].reindex(mapped.index).astype("Int64")
    else:
        mapped["bloomerang_id"] = pd.array([pd.NA] * len(mapped), dtype="Int64")
    order = ["source", "source_id", "payload", "payload_hash", "source_updated_at", *catalog.CANONICAL_COLUMNS[table]]
    mapped = _renumbered(mapped[order])
    rejected_frame = (pd.concat(rejected).sort_index().reset_index(drop=True) if rejected
                      else pd.DataFrame(columns=REJECTED_COLUMNS))
    return MapResult(mapped=mapped, rejected=rejected_frame, fields=_field_rows(records, drops, source, entity, ids))


def _exclusions(spec: EntitySpec, src: Mapping[str, pd.Series], index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Per record whether an `exclude_when` rule excludes it, and the reason (the first rule that does)."""
    excluded = pd.Series(False, index=index)
    reasons = pd.Series(None, index=index, dtype=object)
    for rule in spec.exclude_when:
        hit = norm_column(src[rule.field]).isin([str(v).strip().lower() for v in rule.in_]) & ~excluded
        reasons[hit] = [safe_text(f"{rule.field}: '{v}' excluded — {rule.reason}")
                        for v in src[rule.field][hit].astype(str)]
        excluded |= hit
    return excluded, reasons


def _key_drops(spec: EntitySpec, src: pd.DataFrame, excluded: pd.Series, stamps: pd.Series | None
               ) -> list[pd.DataFrame]:
    """Dropped values of the record's keys that are not field rules: a stored Bloomerang id that is no id
    (it would link the record to the wrong constituent), a last-modified time that is no time.

    The values are shown as Python objects (``tolist``): a numpy integer — what a column of whole numbers
    holds, e.g. Handbid epoch seconds of year 9999 with no other type among them — is no JSON type, and
    ``shown_value`` would show it as the quoted text ``"253402214400"`` instead of the number the API sent."""
    out = []
    if spec.bloomerang_id:
        _, bad = _positive_ids(src[spec.bloomerang_id])
        bad = bad[bad.notna() & ~excluded]
        if len(bad):
            out.append(_key_drop_frame(bad, "bloomerang_id", "is not a Bloomerang id (a whole number above 0)",
                                       spec.bloomerang_id))
    if spec.updated_at and stamps is not None and stamps.isna().any():
        unread = stamps.isna().to_numpy() & ~excluded.to_numpy()
        column = src[spec.updated_at][unread]
        bad = column[present(column).to_numpy()]
        if len(bad):
            out.append(_key_drop_frame(bad, "source_updated_at", "is not a time", spec.updated_at))
    return out


def _key_drop_frame(bad: pd.Series, name: str, problem: str, source: str) -> pd.DataFrame:
    """Drop rows of one staged key column: its values (as plain Python values, see ``_key_drops``) and why."""
    values = bad.tolist()
    return pd.DataFrame({
        "row": bad.index, "field": name, "value": [shown_value(v) for v in values],
        "reason": [safe_text(f"{name}: {shown_value(v)!r} {problem}; left out (from {source})") for v in values]})


def _field_rows(records: Any, drops: pd.DataFrame, source: str, entity: str, ids: pd.Series) -> pd.DataFrame:
    if not len(drops):
        return _no_fields()
    # in input order (each record's values in rule order), whatever branch or step dropped them: the same
    # rows in the same order however the input was chunked
    position = ids.index.get_indexer(pd.Index(drops["row"].to_numpy()))
    drops = drops.iloc[np.argsort(position, kind="stable")]
    rows = pd.Index(drops["row"].to_numpy())
    return pd.DataFrame({"source": source, "entity": entity, "source_id": ids.loc[rows].to_numpy(),
                         "field": drops["field"].to_numpy(), "value": drops["value"].to_numpy(),
                         "errors": [[r] for r in drops["reason"]], "raw": raw_json(records, rows), "kind": "field"},
                        columns=FIELD_COLUMNS)
