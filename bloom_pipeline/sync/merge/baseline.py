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

from collections.abc import Mapping, Sequence
from typing import Any

from bloom_pipeline import jsontext
from bloom_pipeline.sync.fields import (
    BLOOMERANG,
    CANONICAL_FIELDS,
    SOURCE,
    hash_normalised,
    normalise,
    normalised_columns,
    record_hash,
)


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
        base = jsontext.loads(base)
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
) -> Any:
    """Rows of a joined frame where neither side moved since its stored snapshot (pandas, no merge).

    ``frame`` holds ``<field><suffix>`` columns for each side and ``base_column`` (the stored snapshot),
    or ready-made ``base_source_hash`` / ``base_bloomerang_hash`` columns from ``sync_state``.
    Returns the boolean mask: a side is unchanged when its current values hash as its snapshot does
    (``record_hash``). Against a snapshot the normalised values are compared first and only a row whose
    values differ is hashed (a quiet night hashes nothing): values that are the same type and equal serialise
    the same, so they hash the same; anything else is left to the hashes, so the answer is theirs.
    """
    import pandas as pd  # local: keeps the scalar helpers above importable without pandas

    length = len(frame)
    current = [
        list(zip(*normalised_columns(
            {name: frame[name + suffix].tolist() for name in names if name + suffix in frame.columns},
            names, length), strict=True)) if names else [()] * length
        for suffix in suffixes
    ]
    if {"base_source_hash", "base_bloomerang_hash"} <= set(frame.columns):
        stored = zip(frame["base_source_hash"].tolist(), frame["base_bloomerang_hash"].tolist(), strict=True)
        same = [hash_normalised(names, now_source) == source_hash
                and hash_normalised(names, now_bloomerang) == bloomerang_hash
                for now_source, now_bloomerang, (source_hash, bloomerang_hash) in zip(*current, stored, strict=True)]
    else:
        bases = frame[base_column].tolist() if base_column in frame.columns else [None] * length
        cache: dict[tuple[str, Any], Any] = {}
        same = [_side_unchanged(names, now_source, then[0], cache) and _side_unchanged(names, now_bloomerang, then[1],
                                                                                         cache)
                if (then := _snapshot_sides(base, names)) is not None else False
                for now_source, now_bloomerang, base in zip(*current, bases, strict=True)]
    return pd.Series(same, index=frame.index, dtype=bool)


def _snapshot_sides(base: Any, names: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A stored base's two sides, or None when it cannot vouch for ``names`` (as ``base_hashes``)."""
    sides = split_base(base)
    if sides is None or any(name not in side for side in sides for name in names):
        return None
    return sides


# The exact types `normalise` returns whose equal values always serialise alike (a float may not: 0.0 == -0.0).
_EXACT = (str, int, bool)


def _side_unchanged(names: Sequence[str], now: Sequence[Any], snapshot: Mapping[str, Any],
                    cache: dict[tuple[str, Any], Any]) -> bool:
    """Whether one side's normalised current values hash as its snapshot does (``record_hash``)."""
    then = []
    for name in names:
        value = snapshot.get(name)
        try:
            then.append(cache[(name, type(value), value)])
        except KeyError:
            then.append(cache.setdefault((name, type(value), value), normalise(name, value)))
        except TypeError:  # an unhashable value (a list) is just not cached
            then.append(normalise(name, value))
    if all(a is b or (type(a) is type(b) and type(a) in _EXACT and a == b) for a, b in zip(now, then, strict=True)):
        return True
    return hash_normalised(names, now) == hash_normalised(names, then)
