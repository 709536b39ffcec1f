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
                columns[path] = pd.Series(frame[path].array, index=index, copy=False)
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
    frame = isinstance(records, pd.DataFrame)
    items = frame_records(records.iloc[list(rows)]) if frame else [records[i] for i in rows]
    encode = json.JSONEncoder(default=str, sort_keys=True).encode  # what json.dumps(…) builds per call
    return [encode(item) for item in items]


_NATIVE = (str, type(None), dict, list, int, float, bool)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame.to_dict("records")`, the same dicts, column by column: pandas boxes every value of an object
    column one by one (`maybe_box_native`), which only changes numpy scalars; here a column is boxed only
    when it holds something other than plain Python values."""
    columns = frame.columns.tolist()
    lists = []
    for j, dtype in enumerate(frame.dtypes):
        values = list(frame.iloc[:, j])  # what itertuples yields: Python scalars for numpy columns
        if (dtype == np.dtype(object) or isinstance(dtype, pd.api.extensions.ExtensionDtype)) and any(
                type(v) not in _NATIVE for v in values):
            values = [maybe_box_native(v) for v in values]
        lists.append(values)
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)] if lists else \
        [{} for _ in range(len(frame))]
