"""Build compact, key-sorted JSON documents for a whole column at once.

Why not json.dumps per row: at a million rows the per-row dict building dominates the mapping. Here
each target field is encoded once per column (strings that need escaping, and odd types, go through
json.dumps), and objects are assembled by string concatenation in sorted key order, so the text is
byte-for-byte what `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` gives —
which is what `payload_hash` hashes (tests hold the two equal).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import numpy as np
import pandas as pd

from bloom_pipeline.mapping import arrowtext

_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def dumps(obj: Any) -> str:
    """The canonical JSON text of one payload."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_hash(payload: Any) -> str:
    """sha256 hex of the canonical JSON text (accepts the text or the object)."""
    text = payload if isinstance(payload, str) else dumps(payload)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_column(texts: pd.Series) -> pd.Series:
    return pd.Series([hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts], index=texts.index,
                     dtype=object)


def encode(values: pd.Series) -> pd.Series:
    """Each non-null value as JSON text; nulls stay None (the key is then omitted)."""
    enc = encoded(values)
    return enc if isinstance(enc, pd.Series) else arrowtext.to_series(enc, values.index)


def encoded(values: pd.Series) -> Any:
    """`encode`, as an Arrow string array when pyarrow is there (what `assemble` consumes without copies)."""
    text = arrowtext.as_text(values)
    if text is None or text.null_count == len(text):
        enc = _encode_pandas(values)
        return arrowtext.as_text(enc) if arrowtext.ENABLED else enc
    quoted, needs = arrowtext.quote(text)
    if needs.any():
        fixed = quoted.to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(needs)
        fixed[rows] = [dumps(v) for v in values.to_numpy()[rows]]
        return arrowtext.pa.array(fixed, type=arrowtext.pa.string())
    return quoted


def _encode_pandas(values: pd.Series) -> pd.Series:
    out = pd.Series(None, index=values.index, dtype=object)
    mask = values.notna()
    if not mask.any():
        return out
    v = values[mask]
    kind = pd.api.types.infer_dtype(v, skipna=True)
    if kind == "string":
        text = v.astype(str)
        enc = '"' + text + '"'
        needs = text.str.contains(_NEEDS_ESCAPE, regex=True)
        if needs.any():
            enc[needs] = text[needs].map(dumps)
        out[mask] = enc
    elif kind == "boolean":
        out[mask] = np.where(v.astype(bool), "true", "false")
    elif kind == "integer":
        out[mask] = v.astype("int64").astype(str)
    elif kind == "floating" and np.isfinite(v.astype(float)).all():
        out[mask] = v.astype(float).astype(str)
    else:
        out[mask] = v.map(dumps)
    return out


def const(value: Any, index: pd.Index) -> pd.Series:
    return pd.Series(dumps(value), index=index, dtype=object) if value is not None else pd.Series(
        None, index=index, dtype=object)


def assemble(fields: dict[str, tuple[Any, bool]], index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Objects from {dotted key: (encoded values, anchors)}.

    A nested object (`PrimaryEmail.Value`, `PrimaryEmail.Type`) is emitted only when one of its
    anchoring fields (those that come from source data, not constants) is present. Returns the JSON
    texts and, per row, whether any anchoring field was present. Encoded values are Series (`encode`) or
    Arrow arrays (`encoded`).
    """
    if arrowtext.ENABLED:
        body, anchored = _assemble_arrow(fields, len(index))
        return arrowtext.to_series(body, index), pd.Series(anchored, index=index)
    fields = {k: (v if isinstance(v, pd.Series) else arrowtext.to_series(v, index), a) for k, (v, a) in fields.items()}
    return _assemble_pandas(fields, index)


def split_dotted(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A payload's dotted member names split into this level's leaves and the groups one level down
    (``{"a": 1, "b.c": 2}`` → ``{"a": 1}``, ``{"b": {"c": 2}}``): one nesting rule for both builders."""
    groups: dict[str, dict[str, Any]] = {}
    leaves: dict[str, Any] = {}
    for key, item in fields.items():
        head, dot, rest = key.partition(".")
        if dot:
            groups.setdefault(head, {})[rest] = item
        else:
            leaves[key] = item
    return leaves, groups


def _assemble_arrow(fields: dict[str, tuple[Any, bool]], length: int) -> tuple[Any, np.ndarray]:
    """The objects as one DuckDB SQL projection over the encoded columns (an Arrow table, no copy).

    Why SQL: DuckDB's `concat` skips nulls, so an object is `'{' || substr(concat(member, ...), 2) || '}'`
    with `member = ',"key":' || value` (null when the value is): one pass over the rows for the whole
    object, nested ones included, where Arrow's element-wise joins took one pass (and one intermediate
    array) per member, the mapping's largest cost at a million donors. Plain byte concatenation, so the text
    is the one the Arrow joins made (the tests hold it to `dumps`)."""
    columns: dict[str, Any] = {}
    expression, anchored = _object_sql(fields, length, columns)
    if not columns:
        return arrowtext.pa.array(["{}"] * length, type=arrowtext.pa.string()), anchored
    con = _duckdb()
    con.register("encoded_members", arrowtext.pa.table(columns))
    try:
        body = con.sql(f"SELECT {expression} AS body FROM encoded_members").to_arrow_table().column(0)
    finally:
        con.unregister("encoded_members")
    return body.combine_chunks(), anchored


def _object_sql(fields: dict[str, tuple[Any, bool]], length: int, columns: dict[str, Any]) -> tuple[str, np.ndarray]:
    """(SQL text of the objects, per row whether an anchoring field is present); adds the columns it reads."""
    leaves, groups = split_dotted(fields)
    members = []
    anchored = np.zeros(length, dtype=bool)
    for key in sorted(set(leaves) | set(groups)):
        if key in leaves:
            enc, anchors = leaves[key]
            if isinstance(enc, pd.Series):
                enc = arrowtext.as_text(enc)
            if anchors:
                anchored |= enc.is_valid().to_numpy(zero_copy_only=False)
            name = f"c{len(columns)}"
            columns[name] = enc
            value = name
        else:
            inner_sql, inner = _object_sql(groups[key], length, columns)
            name = f"c{len(columns)}"
            columns[name] = arrowtext.mask_array(inner)
            value = f"CASE WHEN {name} THEN {inner_sql} END"
            anchored |= inner
        members.append(_sql_text(',"' + key + '":') + " || " + value)
    if not members:
        return "'{}'", anchored
    return "'{' || substr(concat(" + ", ".join(members) + "), 2) || '}'", anchored


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_local = threading.local()


def _duckdb() -> Any:
    """This thread's in-memory DuckDB connection (a connection is not for concurrent use). One thread: the
    mapping runs one process per core already (parallel.py)."""
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = duckdb.connect(config={"threads": 1})
        _local.con = con
    return con


def _assemble_pandas(fields: dict[str, tuple[pd.Series, bool]], index: pd.Index) -> tuple[pd.Series, pd.Series]:
    leaves, groups = split_dotted(fields)
    body = pd.Series("", index=index, dtype=object)
    anchored = pd.Series(False, index=index)
    for key in sorted(set(leaves) | set(groups)):
        if key in leaves:
            enc, anchors = leaves[key]
            if anchors:
                anchored |= enc.notna()
        else:
            enc, inner = _assemble_pandas(groups[key], index)
            enc = enc.where(inner, None)
            anchored |= inner
        body = body + (',"' + key + '":' + enc).fillna("")
    return "{" + body.str[1:] + "}", anchored


def arrays(objects: pd.Series, parent: pd.Series, index: pd.Index) -> pd.Series:
    """JSON arrays of `objects` grouped by their `parent` row label (order kept); rows with none → '[]'."""
    out = pd.Series("[]", index=index, dtype=object)
    if objects.empty:
        return out
    counts = parent.value_counts()
    single = parent.map(counts).eq(1)
    if single.any():
        out.loc[parent[single].to_numpy()] = ("[" + objects[single] + "]").to_numpy()
    multi = ~single
    if multi.any():
        joined = join_groups(objects[multi], parent[multi].to_numpy(), ",")
        out.loc[joined.index] = ("[" + joined + "]").to_numpy()
    return out


def join_groups(texts: pd.Series, owners: np.ndarray, separator: str) -> pd.Series:
    """Per owner, its texts in row order joined by `separator` (indexed by owner; order of owners unspecified).

    What `texts.groupby(owners).agg(separator.join)` gives, without a Python call per group: rows are put in
    owner order (stable), and Arrow joins each owner's run of texts."""
    arrow = arrowtext.as_text(texts)
    if arrow is None or arrow.null_count:
        return texts.groupby(owners, sort=False).agg(separator.join)
    order = np.argsort(owners, kind="stable")
    keys, starts = np.unique(owners[order], return_index=True)
    offsets = np.append(starts, len(order)).astype(np.int64)
    lists = arrowtext.pa.ListArray.from_arrays(arrowtext.pa.array(offsets), arrow.take(arrowtext.pa.array(order)))
    joined = arrowtext.pc.binary_join(lists, separator)
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=keys, dtype=object)
