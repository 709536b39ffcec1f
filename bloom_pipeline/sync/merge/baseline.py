"""Echo suppression: deciding whether a side *really* changed since the last sync.

A write we make bumps the target's last-modified time, so timestamps alone would make every value we
wrote look like a fresh edit on the next pull and the two systems would ping-pong it forever. Instead,
change is judged by comparing each side's current values with the snapshot of that side stored after
the last successful sync (``sync_state``), the *baseline*.

The baseline keeps one dict per side (``{"source": {...}, "bloomerang": {...}}``): after a sync the
sides can legitimately disagree on a field (a blank that may not erase, a ``fill_empty`` target that
keeps its value, a field waiting for review) and each side must be compared with what *it* held.
Rows whose both hashes are unchanged skip the field-level merge entirely (``three_way.merge_frame``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bloom_pipeline.sync.fields import BLOOMERANG, CANONICAL_FIELDS, SOURCE, column_hashes, record_hash


def split_base(base: Mapping[str, Any] | str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (source, bloomerang) snapshots of a stored base, or None when the record was never synced.

    Accepts the per-side form ``{"source": {...}, "bloomerang": {...}}`` (what ``MergeResult.new_base``
    holds), its JSON text, or a flat ``{field: value}`` dict meaning both sides held those values.
    """
    if base is None:
        return None
    if isinstance(base, str):
        if not base.strip():
            return None
        base = json.loads(base)
    if is_split_base(base):
        return dict(base[SOURCE]), dict(base[BLOOMERANG])
    flat = dict(base)
    return flat, dict(flat)


def is_split_base(base: Any) -> bool:
    """True for the per-side snapshot form ``{"source": {...}, "bloomerang": {...}}``."""
    return (
        isinstance(base, Mapping)
        and set(base) == {SOURCE, BLOOMERANG}
        and isinstance(base[SOURCE], Mapping)
        and isinstance(base[BLOOMERANG], Mapping)
    )


def base_hashes(
    base: Mapping[str, Any] | str | None, names: Sequence[str] = CANONICAL_FIELDS
) -> tuple[str, str] | None:
    """``(source_hash, bloomerang_hash)`` of a stored snapshot, or None if there is none.

    A snapshot that lacks one of ``names`` cannot vouch for it, so it has no hash: the record must go
    through the merge (a field added to the mapping later is then treated as never synced).
    """
    sides = split_base(base)
    if sides is None or any(name not in side for side in sides for name in names):
        return None
    return record_hash(sides[0], names), record_hash(sides[1], names)


def unchanged_mask(
    frame: Any,
    names: Sequence[str],
    suffixes: tuple[str, str] = ("_source", "_bloomerang"),
    base_column: str = "base",
) -> tuple[Any, list[str], list[str]]:
    """Rows of a joined frame where neither side moved since its stored snapshot (pandas, no merge).

    ``frame`` holds ``<field><suffix>`` columns for each side and ``base_column`` (the stored snapshot),
    or ready-made ``base_source_hash`` / ``base_bloomerang_hash`` columns from ``sync_state``.
    Returns the boolean mask plus the current source and Bloomerang hashes of every row.
    """
    import pandas as pd  # local: keeps the scalar helpers above importable without pandas

    length = len(frame)
    current = []
    for suffix in suffixes:
        columns = {name: frame[name + suffix].tolist() for name in names if name + suffix in frame.columns}
        current.append(column_hashes(columns, names, length))
    if {"base_source_hash", "base_bloomerang_hash"} <= set(frame.columns):
        stored_source = frame["base_source_hash"].tolist()
        stored_bloomerang = frame["base_bloomerang_hash"].tolist()
    else:
        bases = frame[base_column].tolist() if base_column in frame.columns else [None] * length
        stored = [base_hashes(base, names) for base in bases]
        stored_source = [pair[0] if pair else None for pair in stored]
        stored_bloomerang = [pair[1] if pair else None for pair in stored]
    mask = (pd.Series(current[0], index=frame.index) == pd.Series(stored_source, index=frame.index)) & (
        pd.Series(current[1], index=frame.index) == pd.Series(stored_bloomerang, index=frame.index)
    )
    return mask, current[0], current[1]
