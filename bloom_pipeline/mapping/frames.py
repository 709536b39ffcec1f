"""Turn source records (API dicts or a DataFrame) into the flat columns the rules read.

Why only the named paths: a record carries dozens of fields, a mapping reads a dozen; extracting just
those (`mailing_address.city`, `addresses.0.street1`) keeps a million-row frame small. Designations get
their own frame: one row per list element (`fund_allocations`), or one per record built from the
record's own fields when the list is empty (`fallback`), with `_row` pointing back at the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pandas.core.dtypes.cast import maybe_box_native

from bloom_pipeline.mapping.spec import DesignationSpec


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            return None
    return value


def extract(items: list[Any], path: str) -> list[Any]:
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return [item.get(key) if isinstance(item, dict) else None for item in items]
    return [_walk(item, parts) for item in items]


def _series(values: list[Any], index: pd.Index | None = None) -> pd.Series:
    series = pd.Series(values, index=index, dtype=object)
    inferred = series.infer_objects()
    return inferred if inferred.dtype.kind in "iub" else series


def extract_columns(records: list[dict[str, Any]] | pd.DataFrame, paths: Iterable[str]) -> pd.DataFrame:
    """One column per dotted path (missing → None)."""
    columns = extract_series(records, paths)
    index = pd.RangeIndex(len(records) if isinstance(records, pd.DataFrame) else len(list(records)))
    return pd.DataFrame(columns, index=index) if columns else pd.DataFrame(index=index)


def extract_series(records: list[dict[str, Any]] | pd.DataFrame, paths: Iterable[str]) -> dict[str, pd.Series]:
    """`extract_columns` as a dict of Series: no frame built (a frame of object columns is consolidated,
    i.e. copied, once more), for callers that read the columns one by one."""
    columns: dict[str, pd.Series] = {}
    if isinstance(records, pd.DataFrame):
        index = pd.RangeIndex(len(records))
        frame = records
        for path in paths:
            if path in frame.columns:
                column = frame[path]
                # a numpy column as its ndarray: `.array` wraps it, and the Series built from the wrapper asks it
                # for its null mask (a scan of every value, 2 ms per 50,000 texts, for each column of a chunk);
                # the values and the inferred dtype are the same. Extension columns (Int64, tz-aware) as they are.
                values = column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array
                columns[path] = pd.Series(values, index=index, copy=False)
            else:
                head, _, rest = path.partition(".")
                if head in frame.columns and rest:
                    columns[path] = _series(extract(frame[head].tolist(), rest))
                else:
                    columns[path] = pd.Series(None, index=index, dtype=object)
        return columns
    items = list(records)
    return {path: _series(extract(items, path)) for path in paths}


def designation_paths(des: DesignationSpec) -> tuple[list[str], list[str]]:
    sources = {s for rule in des.fields.values() for s in rule.sources()}
    return sorted(s for s in sources if not s.startswith("parent.")), sorted(s for s in sources
                                                                             if s.startswith("parent."))


def fallback_path(des: DesignationSpec, path: str) -> str | None:
    head, _, rest = path.partition(".")
    if head not in des.fallback:
        return None
    return des.fallback[head] + (f".{rest}" if rest else "")


def element_frame(src: pd.DataFrame, des: DesignationSpec) -> pd.DataFrame:
    relative, parents = designation_paths(des)
    if des.list is None:
        frame = pd.DataFrame({p: src[p].to_numpy() for p in relative}, index=src.index)
        frame["_row"] = src.index
    else:
        lists = src[des.list]
        has = lists.map(lambda v: isinstance(v, list) and len(v) > 0).astype(bool)
        exploded = lists[has].explode()
        items = exploded.tolist()
        listed = pd.DataFrame({p: _series(extract(items, p)) for p in relative}, index=range(len(items)))
        listed["_row"] = exploded.index.to_numpy()
        rows = src.index[~has.to_numpy()]
        fallback = pd.DataFrame(index=range(len(rows)))
        for p in relative:
            origin = fallback_path(des, p)
            fallback[p] = src[origin].loc[rows].to_numpy() if origin else None
        fallback["_row"] = rows.to_numpy()
        frame = pd.concat([listed, fallback], ignore_index=True)
    frame = frame.reset_index(drop=True)
    for p in parents:
        frame[p] = src[p.removeprefix("parent.")].reindex(frame["_row"].to_numpy()).to_numpy()
    return frame


def raw_json(records: list[dict[str, Any]] | pd.DataFrame, rows: pd.Index) -> list[str]:
    """The original records of the given rows, as JSON text (for the quarantine table)."""
    if isinstance(records, pd.DataFrame):
        return frame_json(records.iloc[list(rows)])
    return [_ENCODE(records[i]) for i in rows]


_ENCODE = json.JSONEncoder(default=str, sort_keys=True).encode  # what json.dumps(…, default=str, sort_keys=True)
_NATIVE = (str, type(None), dict, list, int, float, bool)
_QUOTE = json.encoder.encode_basestring_ascii  # how the encoder above writes a text (ensure_ascii)


def _column_values(frame: pd.DataFrame) -> list[list[Any]]:
    """Each column's values as `to_dict("records")` gives them (numpy scalars boxed to Python's)."""
    lists = []
    for j, dtype in enumerate(frame.dtypes):
        values = list(frame.iloc[:, j])  # what itertuples yields: Python scalars for numpy columns
        if (dtype == np.dtype(object) or isinstance(dtype, pd.api.extensions.ExtensionDtype)) and any(
                type(v) not in _NATIVE for v in values):
            values = [maybe_box_native(v) for v in values]
        lists.append(values)
    return lists


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame.to_dict("records")`, the same dicts, column by column: pandas boxes every value of an object
    column one by one (`maybe_box_native`), which only changes numpy scalars; here a column is boxed only
    when it holds something other than plain Python values."""
    columns = frame.columns.tolist()
    lists = _column_values(frame)
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)] if lists else \
        [{} for _ in range(len(frame))]


def _encoded_values(values: list[Any]) -> list[str]:
    """`_ENCODE(v)` for each value; texts, nulls and whole numbers (the usual columns) without a call each."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return list(map(_QUOTE, values))
    if kinds <= {str, type(None)}:
        return [_QUOTE(v) if v is not None else "null" for v in values]
    if kinds <= {int}:
        return list(map(int.__repr__, values))
    if kinds <= {float}:  # the encoder's float text: repr, and NaN / Infinity / -Infinity for the others
        return [_FLOAT_SPECIAL.get(text, text) for text in map(float.__repr__, values)]
    return [_ENCODE(v) if v is not None else "null" for v in values]


_FLOAT_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def frame_json(frame: pd.DataFrame) -> list[str]:
    """`_ENCODE(record)` for each record of `frame_records(frame)`, built a column at a time.

    Why: a rejected record keeps its raw JSON, and a tenth of generated WeGive transactions are excluded
    (failed gifts): building a dict per record and encoding it cost 0.1 s per 50,000-row chunk. The encoder
    writes a dict with sorted keys as `{"key": value, …}` (separators ", " and ": "), each value as it would
    write the value alone, so the texts are the same (tests/unit/mapping/test_raw_json.py)."""
    columns = frame.columns.tolist()
    if not columns or len(set(columns)) != len(columns) or any(type(c) is not str for c in columns):
        return [_ENCODE(item) for item in frame_records(frame)]  # keys the column-wise build does not cover
    lists = _column_values(frame)
    parts = []
    for j in sorted(range(len(columns)), key=columns.__getitem__):
        key = _QUOTE(columns[j]) + ": "
        parts.append([key + text for text in _encoded_values(lists[j])])
    return ["{" + ", ".join(row) + "}" for row in zip(*parts, strict=True)]
