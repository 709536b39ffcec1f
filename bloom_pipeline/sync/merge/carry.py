"""Linked donors whose merge inputs are exactly what they were when the merge last found them unchanged are
carried past the merge: no normalising, no snapshot parsing, no per-field comparison.

Why: on a quiet night nearly every linked donor is unchanged, and ``baseline.unchanged_mask`` still costs a
quarter of a millisecond a donor (every value normalised, every snapshot parsed) — half a minute at 100,000
donors, the whole nightly budget. ``unchanged_mask`` is a pure function of the record's inputs: both sides'
canonical values, the stored base (``sync_state`` snapshots, as their JSON text) and the fields its group
merges. So a fingerprint of those inputs, stored the night the merge found the record unchanged, proves it
unchanged on any later night the inputs fingerprint the same. The fingerprint is computed for every row at
once with pandas' vectorised hashing (64 bits; each value's type is part of it, so ``1`` and ``"1"``
differ) and salted with the source of the comparison code (``sync/fields.py``,
``merge/baseline.py``): a release that compares differently merges everything once.

What is never carried: a record with a reviewer's decision waiting (it always merges), and any record sharing
its constituent with one that is not carried (an earlier wave may write to that constituent this run, and the
later record must see it). Losing the table (or the data folder) only costs one full merge pass.

State: ``merge_unchanged`` (one row per linked source record: the fingerprint of the inputs the merge last
found unchanged), created on first use.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

import duckdb
import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

DDL = """
CREATE TABLE IF NOT EXISTS merge_unchanged (
    source       VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL,
    fingerprint  VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL,
    noted_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, source_id)
)"""
_KEY = "bloom-mergecarry"  # 16 characters, as pandas hashing wants
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it loses no bits
_STRINGS = frozenset({"string", "empty"})


@lru_cache(maxsize=1)
def _code_salt() -> str:
    """A digest of the code that decides "unchanged": when it changes, no stored fingerprint vouches any more."""
    from bloom_pipeline.sync import fields
    from bloom_pipeline.sync.merge import baseline

    text = "\n".join(inspect.getsource(module) for module in (fields, baseline))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _typed(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """One column as exact hashable text and its null mask (a null and the text ``"None"`` differ): a text column
    as it is; any other as each value's type name and repr (``1``, ``1.0`` and ``"1"`` differ)."""
    values = values.reset_index(drop=True).astype(object)
    nulls = values.isna()
    if infer_dtype(values, skipna=True) not in _STRINGS:
        values = values.map(lambda v: f"{type(v).__name__}\x1f{v!r}")
    return values.where(~nulls, ""), nulls.to_numpy()


def fingerprints(frame: pd.DataFrame, columns: Sequence[str], groups: Mapping[tuple, str],
                 group_of: Sequence[tuple]) -> list[str]:
    """Per row of ``frame`` a fingerprint of ``columns`` (absent columns count as all-null) and of the row's
    group label (``groups[group_of[i]]``: the fields its merge compares).

    One vectorised 64-bit hash of the row's texts, its null masks (packed, 60 columns to a word) and its group;
    a collision — a changed record hashing as its unchanged self did — is a 2**-64 chance a record a night."""
    length = len(frame)
    if not length:
        return []
    hashed = np.zeros(length, dtype=np.uint64)
    masks = [np.zeros(length, dtype=np.uint64)]
    for n, column in enumerate(columns):
        series = frame[column] if column in frame.columns else pd.Series([None] * length, dtype=object)
        texts, nulls = _typed(series)
        hashed = _combine(hashed, texts.to_numpy())
        if n and n % 60 == 0:
            masks.append(np.zeros(length, dtype=np.uint64))
        masks[-1] |= nulls.astype(np.uint64) << np.uint64(n % 60)
    for mask in masks:
        hashed = _combine(hashed, mask)
    salt = _code_salt()
    hashed = _combine(hashed, np.array([f"{salt}\x1f{groups[key]}" for key in group_of], dtype=object))
    return [f"{value:016x}" for value in hashed.tolist()]


def _combine(hashed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fold one column into the rows' running hash (order matters; uint64 arithmetic wraps)."""
    column = pd.util.hash_array(values, hash_key=_KEY, categorize=False)
    return (hashed ^ column) * _MULTIPLIER + column


def stored(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """The stored fingerprints, by (source, source id)."""
    con.execute(DDL)
    rows = con.execute("SELECT source, source_id, fingerprint FROM merge_unchanged").fetchall()
    return {(str(source), str(sid)): str(fingerprint) for source, sid, fingerprint in rows}


def carried_mask(keys: Sequence[tuple[str, str]], prints: Sequence[str], known: Mapping[tuple[str, str], str],
                 constituents: Sequence[object], never: Iterable[tuple[str, str]]) -> list[bool]:
    """Which rows are carried: the fingerprint is the one stored, no decision waits (``never``), and every
    row linked to the same constituent is carried too."""
    never = set(never)
    candidate = [known.get(key) == fingerprint and key not in never
                 for key, fingerprint in zip(keys, prints, strict=True)]
    blocked = {constituent for constituent, ok in zip(constituents, candidate, strict=True) if not ok}
    return [ok and constituent not in blocked for constituent, ok in zip(constituents, candidate, strict=True)]


def remember(con: duckdb.DuckDBPyConnection, run_id: str, rows: Iterable[tuple[str, str, str]],
             known: Mapping[tuple[str, str], str]) -> int:
    """Store the fingerprints of the records the merge found unchanged this run (those already stored as they
    are cost nothing); one statement. Returns how many were written."""
    fresh = [(source, sid, fingerprint) for source, sid, fingerprint in rows
             if known.get((source, sid)) != fingerprint]
    if not fresh:
        return 0
    frame = pd.DataFrame(fresh, columns=["source", "source_id", "fingerprint"])
    frame = frame.drop_duplicates(["source", "source_id"], keep="last")
    frame["run_id"] = run_id
    frame["noted_at"] = pd.Timestamp(datetime.now(UTC))
    con.execute(DDL)
    con.register("_merge_unchanged_batch", frame)
    try:
        con.execute("INSERT OR REPLACE INTO merge_unchanged "
                    "SELECT source, source_id, fingerprint, run_id, noted_at FROM _merge_unchanged_batch")
    finally:
        con.unregister("_merge_unchanged_batch")
    return len(frame)
