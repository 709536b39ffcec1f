"""Echo suppression: deciding whether a side *really* changed since the last sync.

A write we make bumps the target's last-modified time, so timestamps alone would make every value we
wrote look like a fresh edit on the next pull and the two systems would ping-pong it forever. Instead,
change is judged by comparing each side's current values with the snapshot of that side stored after
the last successful sync (``sync_state``). Values are normalised first, so formatting noise -- a blank
versus a missing key, surrounding whitespace, e-mail case, phone punctuation -- is never a change.

The snapshot keeps one dict per side (``{"source": {...}, "bloomerang": {...}}``): after a sync the
sides can legitimately disagree on a field (a blank that may not erase, a ``fill_empty`` target that
keeps its value, a field waiting for review) and each side must be compared with what *it* held.

``record_hash`` gives the lead a cheap per-side fingerprint to store next to the snapshot; rows whose
both hashes are unchanged skip the field-level merge entirely (see ``merge.merge_frame``).

The small data types the merge and the review loop share (``FieldRule``, ``Decision``) live at the end
of this module, so ``merge`` holds only the algorithm; ``merge`` re-exports them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pandas import isna as pd_isna

# Canonical person fields of ``stg_constituents`` (docs/INTERFACES.md) that the merge compares.
CANONICAL_FIELDS: tuple[str, ...] = (
    "first_name",
    "middle_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "street",
    "city",
    "state",
    "postal_code",
    "country",
)

SOURCE = "source"
BLOOMERANG = "bloomerang"

_CASE_INSENSITIVE = frozenset({"email", "state", "country", "postal_code"})


def is_blank(value: Any) -> bool:
    """True for None, NaN/NA/NaT and strings that are empty or only whitespace."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas.NA / NaT, without importing pandas
        return True
    try:  # numpy NaN and friends are unequal to themselves
        return bool(value != value)  # noqa: PLR0124
    except (TypeError, ValueError):
        return False


def normalise(field: str, value: Any) -> Any:
    """Comparison form of ``value``: None for blanks, whitespace collapsed, per-field canonical form.

    E-mail, state, country and postal code compare case-insensitively; phones compare by digits only
    (a leading NANP ``1`` on an 11-digit number is dropped, so ``+1 (555) 010-2030`` equals
    ``555.010.2030``). Names keep their case: fixing ``mcdonald`` to ``McDonald`` is a real edit.
    """
    if is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return int(number) if number.is_integer() else number
    text = " ".join(str(value).split())
    if field == "phone":
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        return digits or None
    if field in _CASE_INSENSITIVE:
        return text.casefold()
    return text


def same(field: str, left: Any, right: Any) -> bool:
    """Whether two values are equal once normalised (i.e. differ by formatting only)."""
    return normalise(field, left) == normalise(field, right)


def _hash_payload(pairs: Iterable[tuple[str, Any]]) -> str:
    text = json.dumps(list(pairs), default=str, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_hash(fields: Mapping[str, Any] | None, names: Sequence[str] = CANONICAL_FIELDS) -> str:
    """Stable sha256 hex over the normalised values of ``names`` (a missing key counts as blank).

    Two records that differ only by formatting hash the same, so the stored hash of a side's snapshot
    equals the hash of that side's next read unless something really changed.
    """
    fields = fields or {}
    return _hash_payload((name, normalise(name, fields.get(name))) for name in names)


def column_hashes(columns: Mapping[str, Sequence[Any]], names: Sequence[str], length: int) -> list[str]:
    """``record_hash`` for many rows at once; ``columns[name]`` holds one value per row (absent = blank).

    Normalisation is cached per distinct value, which keeps wide frames of repetitive data cheap.
    Produces exactly what ``record_hash`` gives for each row (tests hold the two together).
    """
    normalised: list[list[Any]] = []
    for name in names:
        values = columns.get(name)
        if values is None:
            normalised.append([None] * length)
            continue
        cache: dict[Any, Any] = {}
        out = []
        for value in values:
            try:
                out.append(cache[value])
            except (KeyError, TypeError):
                result = normalise(name, value)
                with contextlib.suppress(TypeError):  # unhashable values are just not cached
                    cache[value] = result
                out.append(result)
        normalised.append(out)
    return (
        [_hash_payload(zip(names, row, strict=True)) for row in zip(*normalised, strict=True)]
        if names
        else [_hash_payload([]) for _ in range(length)]
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


def as_utc(value: Any) -> datetime | None:
    """A last-modified value as an aware UTC datetime (naive means UTC; numbers are epoch seconds)."""
    if is_blank(value):
        return None
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        stamp = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise TypeError(f"unsupported last-modified value of type {type(value).__name__}")
    if hasattr(stamp, "to_pydatetime"):  # pandas Timestamp -> plain datetime
        stamp = stamp.to_pydatetime()
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


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


# -- the vocabulary of the merge: field rules and reviewers' decisions ------------------------------

Policy = Literal["overwrite", "fill_empty", "review"]
Direction = Literal["push", "pull", "both"]


@dataclass(frozen=True)
class FieldRule:
    """How one field merges: ``policy`` on the receiving side, where it may flow, may a blank erase."""

    policy: Policy = "overwrite"
    direction: Direction = "both"
    allow_blank: bool = False

    def __post_init__(self) -> None:
        if self.policy not in ("overwrite", "fill_empty", "review"):
            raise ValueError(f"unknown merge policy {self.policy!r}")
        if self.direction not in ("push", "pull", "both"):
            raise ValueError(f"unknown direction {self.direction!r}")


DEFAULT_RULE = FieldRule()


@dataclass(frozen=True)
class Decision:
    """A reviewer's choice for one field: take the source's value, Bloomerang's, or a typed value."""

    take: Literal["source", "bloomerang", "value"]
    value: str | None = None

    def __post_init__(self) -> None:
        if self.take not in (SOURCE, BLOOMERANG, "value"):
            raise ValueError(f"take must be source, bloomerang or value:TEXT, not {self.take!r}")
        if (self.take == "value") != (self.value is not None):
            raise ValueError("a value is given exactly when take is 'value'")


DecisionLike = Decision | str | tuple[str, str]


def parse_take(text: str) -> Decision:
    """Parse the CLI's ``--take source|bloomerang|value:TEXT`` (``value:`` alone means clear it)."""
    if text in (SOURCE, BLOOMERANG):
        return Decision(text)  # type: ignore[arg-type]
    if text.startswith("value:"):
        return Decision("value", text[len("value:") :])
    raise ValueError(f"--take must be source, bloomerang or value:TEXT, not {text!r}")


def as_decision(decision: DecisionLike) -> Decision:
    if isinstance(decision, Decision):
        return decision
    if isinstance(decision, str):
        return parse_take(decision)
    take, value = decision
    return Decision(take, value)  # type: ignore[arg-type]


def apply_decision(value_source: Any, value_bloomerang: Any, decision: DecisionLike) -> Any:
    """The value a decision settles on, given both sides' current values."""
    chosen = as_decision(decision)
    if chosen.take == SOURCE:
        return value_source
    if chosen.take == BLOOMERANG:
        return value_bloomerang
    return chosen.value


def present(value: Any) -> Any:
    """``value``, or None for pandas' missing markers (NaN / NA / NaT) — frames hand those out for nulls."""
    if value is None or isinstance(value, (str, list, dict)):
        return value
    try:
        return None if pd_isna(value) else value
    except (TypeError, ValueError):  # array-likes: not a missing marker
        return value
