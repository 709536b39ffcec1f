"""The canonical donor fields and how their values compare, hash and read — shared by every step.

``CANONICAL_FIELDS`` are the person fields of ``stg_constituents`` (docs/DATA_DICTIONARY.md) that identity,
planning and the merge compare. Values are normalised before any comparison, so formatting noise -- a
blank versus a missing key, surrounding whitespace, e-mail case, phone punctuation -- is never a change.
``record_hash`` is a cheap per-record fingerprint of those values.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pandas import isna as pd_isna

from bloom_pipeline.staging import ddl

CANONICAL_FIELDS = ddl.CANONICAL_FIELDS

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
    normalised = normalised_columns(columns, names, length)
    return (
        [_hash_payload(zip(names, row, strict=True)) for row in zip(*normalised, strict=True)]
        if names
        else [_hash_payload([]) for _ in range(length)]
    )


def normalised_columns(columns: Mapping[str, Sequence[Any]], names: Sequence[str], length: int) -> list[list[Any]]:
    """``normalise`` of every value of ``columns`` (one list per name in ``names``, absent = blank), cached
    per distinct value: what ``column_hashes`` hashes, for a caller that can compare values before hashing."""
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
    return normalised


def hash_normalised(names: Sequence[str], values: Sequence[Any]) -> str:
    """``record_hash`` of a record whose values of ``names`` are already normalised (in that order)."""
    return _hash_payload(zip(names, values, strict=True))


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


def present(value: Any) -> Any:
    """``value``, or None for pandas' missing markers (NaN / NA / NaT) — frames hand those out for nulls."""
    if value is None or isinstance(value, (str, list, dict)):
        return value
    try:
        return None if pd_isna(value) else value
    except (TypeError, ValueError):  # array-likes: not a missing marker
        return value
