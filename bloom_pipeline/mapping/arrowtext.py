"""Text kernels on Arrow arrays for the mapping's hot path (trim, blank tests, JSON quoting and assembly).

Why: pandas string methods on object columns run a Python call per value; at a million rows trimming,
JSON quoting and payload concatenation dominated the mapping. pyarrow's compute kernels do the same work
in C++. Each kernel here is exact with respect to the pure-pandas code it replaces: `trim` strips the very
characters `str.strip()` strips (every `str.isspace()` code point), and JSON text is only produced by
quoting strings that need no escaping, the rest going through `json.dumps`. Columns that are not plain
text (ints in a text column, lists) are not converted: `as_text` returns None and callers keep the pandas
path. Without pyarrow installed everything falls back to pandas (`ENABLED` is False).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd

try:  # pyarrow is the fast path; the pandas path stays complete without it
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - exercised only where pyarrow is missing
    pa = None
    pc = None

ENABLED = pa is not None
# The Arrow array behind each object column `to_series` made, so that converting it back (the usual next
# step: strip, then JSON-quote) is free. Keyed by the numpy array's id, checked by a weak reference, and the
# numpy array is made read-only, so a cached pair can never disagree: in-place writes raise.
_ARROW_OF: dict[int, tuple[weakref.ref, Any]] = {}
# every code point str.isspace() is true of (what str.strip() strips), written out: computing it scanned all
# 1.1M code points at import, a third of a second on every run (tests/unit/mapping/test_arrowtext_whitespace.py)
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
              "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
NEEDS_ESCAPE = r'["\\\x00-\x1f]'
CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"  # limits.CONTROL in RE2 syntax (code points, as in Python)


def as_text(values: pd.Series) -> Any:
    """The column as an Arrow string array when every non-null value is a str (NaN counts as null), else None."""
    if not ENABLED or values.dtype != object:
        return None
    raw = values.values
    known = _ARROW_OF.get(id(raw))
    if known is not None and known[0]() is raw:
        return known[1]
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    return pa.array(values.to_numpy(), type=pa.string(), from_pandas=True)


def ints_as_text(values: pd.Series) -> Any:
    """Integer columns (no nulls) as decimal text, as `str(int)` gives it."""
    if not ENABLED or not pd.api.types.is_integer_dtype(values) or values.dtype.kind not in "iu":
        return None
    return pa.array(values.to_numpy()).cast(pa.string())


def to_series(array: Any, index: pd.Index) -> pd.Series:
    """Back to an object Series with None for nulls (what the rest of the engine expects)."""
    values = array.to_numpy(zero_copy_only=False)
    values.flags.writeable = False
    key = id(values)
    _ARROW_OF[key] = (weakref.ref(values, lambda _, key=key: _ARROW_OF.pop(key, None)), array)
    return pd.Series(values, index=index, dtype=object, copy=False)


def trim(array: Any) -> Any:
    """`str.strip()` per value; blank becomes null."""
    trimmed = pc.utf8_trim(array, characters=WHITESPACE)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def present_mask(array: Any) -> np.ndarray:
    """Non-null and not blank (the same test as transforms.present)."""
    trimmed = pc.utf8_trim(array, characters=WHITESPACE)
    return pc.fill_null(pc.not_equal(trimmed, ""), False).to_numpy(zero_copy_only=False)


def _text_bytes(array: Any) -> np.ndarray | None:
    """The UTF-8 bytes of all the values of a string array (one buffer), or None when not at hand."""
    if not isinstance(array, pa.Array) or array.type != pa.string():
        return None
    data = array.buffers()[2]
    return np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)


def _none_can_match(array: Any, suspect: np.ndarray) -> bool:
    """True when no byte of the values' buffer is `suspect` (a 256-entry table): then a pattern that needs
    such a byte matches no value, and the per-value regex is skipped (one pass over the bytes instead)."""
    data = _text_bytes(array)
    return data is not None and not suspect[data].any()


_ESCAPE_BYTES = np.zeros(256, dtype=bool)
_ESCAPE_BYTES[[*range(0x20), 0x22, 0x5C]] = True  # NEEDS_ESCAPE: in UTF-8 these bytes are those characters only
_CONTROL_BYTES = np.zeros(256, dtype=bool)
_CONTROL_BYTES[[c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + [0x7F, 0xC2]] = True  # CONTROL; U+0080-
# U+009F are 0xC2 0x80-0x9F in UTF-8 (0xC2 alone is a suspect: other characters start with it too)


def contains_control(array: Any) -> np.ndarray:
    """Per value: holds a control character `limits.CONTROL` removes (null → False)."""
    if _none_can_match(array, _CONTROL_BYTES):
        return np.zeros(len(array), dtype=bool)
    return pc.fill_null(pc.match_substring_regex(array, CONTROL), False).to_numpy(zero_copy_only=False)


def lengths(array: Any) -> np.ndarray:
    """Code points per value (what `len` gives a str), NaN for nulls."""
    return pc.utf8_length(array).to_numpy(zero_copy_only=False).astype(float)


def quote(array: Any) -> tuple[Any, np.ndarray]:
    """JSON strings for values that need no escaping, plus the mask of values that do (left to json.dumps)."""
    quoted = pc.binary_join_element_wise('"', array, '"', "")
    if _none_can_match(array, _ESCAPE_BYTES):
        return quoted, np.zeros(len(array), dtype=bool)
    needs = pc.fill_null(pc.match_substring_regex(array, NEEDS_ESCAPE), False)
    return quoted, needs.to_numpy(zero_copy_only=False)


def member(key: str, encoded: Any) -> Any:
    """`,"key":<value>` where the value is present, null otherwise."""
    return pc.binary_join_element_wise(',"' + key + '":', encoded, "")


def json_object(members: list[Any], length: int) -> Any:
    """'{' + the present members (each with its leading comma, the first one's replaced by '{') + '}' per row.

    Not `null_handling="skip"`: in pyarrow 26 it drops rows whose members are all null."""
    if not members:
        return pa.array(["{}"] * length, type=pa.string())
    body = pc.binary_join_element_wise(*members, "", null_handling="replace", null_replacement="") if len(
        members) > 1 else pc.fill_null(members[0], "")
    return pc.binary_join_element_wise(pc.binary_replace_slice(body, 0, 1, "{"), "}", "")


def join_lines(parts: list[Any]) -> Any:
    """Present parts joined by newlines ('' when none): what transforms.join_lines gives for trimmed parts."""
    pieces = [parts[0]] + [pc.binary_join_element_wise("\n", p, "") for p in parts[1:]]
    joined = pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="") if len(
        pieces) > 1 else pc.fill_null(pieces[0], "")
    out = pc.utf8_trim(joined, characters="\n")
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def mask_array(mask: pd.Series | np.ndarray) -> Any:
    return pa.array(np.asarray(mask, dtype=bool))


def where(mask: Any, array: Any) -> Any:
    """The values where mask holds, null elsewhere."""
    return pc.if_else(mask, array, pa.scalar(None, array.type))
