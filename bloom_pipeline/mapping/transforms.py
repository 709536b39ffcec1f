"""The fixed registry of named transforms the mapping YAML may use.

Why a registry: the YAML never carries code, and nothing in it is evaluated; a rule names a transform,
and only names listed here exist. Each transform works on a whole pandas Series (vectorized); where a
library forces per-value Python (email-validator, phonenumbers) the work is done once per *unique*
value behind a vectorized fast path for the common shapes. A transform returns the new values and, per
row, an error text (or None); nulls pass through untouched. `inverse` (when defined) is what the pull
direction applies to turn a Bloomerang value back into the source's form.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from bloom_pipeline.mapping import arrowtext, validators

Result = tuple[pd.Series, pd.Series | None]


@dataclass(frozen=True)
class Context:
    """What transforms may read besides their input: org settings, never credentials."""

    timezone: str = "UTC"
    phone_region: str = "US"
    event_choice: Callable[[Any, Any, str], Any] | None = None


@dataclass(frozen=True)
class Transform:
    fn: Callable[..., Result]
    inverse: Callable[..., Any] | None = None
    arg: tuple[str, ...] | None = None  # allowed argument values; () = any text; None = takes no argument
    combines: bool = False  # takes the list of `from` columns instead of their coalesced value
    doc: str = ""


def present(values: pd.Series) -> pd.Series:
    """Non-null and, for text, non-blank."""
    text = arrowtext.as_text(values)
    if text is not None:
        return pd.Series(arrowtext.present_mask(text), index=values.index)
    mask = values.notna()
    if values.dtype == object and mask.any():
        try:
            stripped = values.str.strip()  # NaN for non-text values, which count as present
        except AttributeError:  # no text at all (ids, numbers, lists)
            return mask
        mask &= stripped.isna() | stripped.ne("")
    return mask


def map_unique(values: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """Apply a per-value Python function once per distinct value (nulls stay null)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) == 0:
        return pd.Series([None] * len(values), index=values.index, dtype=object)
    out = np.array([fn(u) for u in uniques] + [None], dtype=object)
    return pd.Series(out[codes], index=values.index, dtype=object)


def _errors(values: pd.Series, bad: pd.Series, message: Callable[[Any], str]) -> pd.Series:
    errs = pd.Series(None, index=values.index, dtype=object)
    if bad.any():
        errs[bad] = map_unique(values[bad], message)
    return errs


def _nulls(values: pd.Series) -> pd.Series:
    """Object dtype with None (not NaN) for missing values, so JSON and comparisons see nulls."""
    return values.astype(object).where(values.notna(), None)


def _text(values: pd.Series) -> pd.Series:
    keep = values.notna()
    out = pd.Series(None, index=values.index, dtype=object)
    out[keep] = values[keep].astype(str)
    return out


def strip(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    fast = arrowtext.as_text(values)
    if fast is None:
        fast = arrowtext.ints_as_text(values)
    if fast is not None:
        return arrowtext.to_series(arrowtext.trim(fast), values.index), None
    text = _text(values).str.strip()
    return text.where(text.ne("") & text.notna(), None), None


def lower(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    text, _ = strip(values, ctx)
    return text.str.lower(), None


def to_string(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """Ids as text ('1012', never '1012.0')."""
    if pd.api.types.is_float_dtype(values):
        values = values.astype("Int64")
    elif values.dtype == object and arrowtext.as_text(values) is None:  # text columns: strip gives the same
        if arrowtext.ENABLED and pd.api.types.infer_dtype(values, skipna=False) == "integer":
            try:  # ints in an object column (coalesced `from` ids): str(int) for each, vectorized
                return strip(values.astype("int64"), ctx)
            except OverflowError:
                pass
        return map_unique(values, _id_text), None
    return strip(values, ctx)


def _id_text(value: Any) -> str | None:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def email(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    text, _ = strip(values, ctx)
    ok = validators.emails_valid(text)
    bad = text.notna() & ~ok
    return text.where(~bad, None), _errors(text, bad, lambda v: f"'{v}' is not a valid email address")


def phone(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """The source's own text, trimmed: the reference's "Phone numbers: Flexible formatting, stored as
    provided". Extensions and the punctuation a person typed stay; comparisons are by digits
    (``sync.fields.same``), so the same number in another format is never a change either way."""
    text, _ = strip(values, ctx)
    return text, None


def phone_formatted(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """For an org that asks for it: valid numbers formatted for its phone_region ('(303) 555-1212'),
    international otherwise; numbers phonenumbers cannot validate kept as provided."""
    text, _ = strip(values, ctx)
    return validators.format_phones(text, ctx.phone_region), None


def phone_inverse(values: pd.Series, ctx: Context) -> pd.Series:
    """The pull direction: what Bloomerang holds, as it holds it (a pull of the same number in another format
    is no change, and a new number is written as the person typed it there)."""
    text, _ = strip(values, ctx)
    return text


# Amounts: whole cents from 1 to MAX_CENTS (either sign here; `positive` refuses the rest). Why this bound:
# the staged column is DECIMAL(18,2) and Bloomerang's `currency` is a .NET decimal, but an amount travels as
# a JSON number (an IEEE double) in the payload and as a float in the staged frame, which holds every cent
# exactly only below 2**53 cents (~9.007e15). 10**15 - 1 cents ($9,999,999,999,999.99, thirteen digits of
# dollars) is the round bound under that: every accepted amount is exact everywhere it goes.
MAX_CENTS = 10**15 - 1
# A number written as text: digits with an optional sign and decimal point, nothing else (no exponent, no
# 'NaN' / 'Infinity', no thousands separators or currency signs). WeGive's OpenAPI types `amount` as a bare
# string (contracts/wegive-handbid.md §1.5: untyped Scramble output) and Handbid sends decimal strings
# ("250.00", §2.2), so such text is an amount; anything looser is not.
_NUMBER_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_EPOCH_BOUND = 9.2e9  # seconds either side of 1970 that a pandas timestamp holds (years 1677..2262)
_INT64 = 2**63


def _shown(value: Any) -> str:
    """A value inside an error text: text quoted, anything else as JSON (true, {"a": 1}, 1e+300)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return f"'{value}'"
    try:
        return json.dumps(value, default=str, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


def _quoted(value: Any) -> str:
    """A scalar as the older error texts show it ('12.5', 'x'); other values as `_shown`."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return f"'{value}'"
    return _shown(value)


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _decimal(value: Any) -> Decimal | str | None:
    """A finite number as an exact Decimal, None for a null, or the reason it is not a number."""
    if _is_null(value):
        return None
    if isinstance(value, bool | np.bool_):
        return f"not a number: {_shown(bool(value))} is a true/false value"
    if isinstance(value, int | np.integer):
        return Decimal(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return f"not a number: {_shown(float(value))}"
        return Decimal(repr(float(value)))  # the shortest text that reads back as this float: 12.34, not 12.339…
    if isinstance(value, Decimal):
        return value if value.is_finite() else f"not a number: {value}"
    if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()):
        return Decimal(value.strip())
    return f"not a number: {_shown(value)}"


def _per_unique(values: pd.Series, fn: Callable[[Any], tuple[Any, str | None]]) -> tuple[pd.Series, pd.Series]:
    """(results, error texts) of `fn` applied once per distinct value; objects and lists are handled too
    (they cannot be hashed, so those rows go one by one)."""
    out = pd.Series(None, index=values.index, dtype=object)
    errs = pd.Series(None, index=values.index, dtype=object)
    todo = values[values.notna().to_numpy()] if len(values) else values
    if todo.empty:
        return out, errs
    if todo.dtype == object and pd.api.types.infer_dtype(todo, skipna=True).startswith("mixed"):
        # True == 1 for a hash table, so true/false values are kept apart from numbers (one JSON `true` must
        # never share the verdict of the amount 1)
        flags = np.fromiter((isinstance(v, bool | np.bool_) for v in todo.to_numpy()), dtype=bool, count=len(todo))
        if flags.any():
            for part in (todo[flags], todo[~flags]):
                if len(part):
                    got, why = _unique_results(part, fn)
                    out.loc[part.index], errs.loc[part.index] = got.to_numpy(), why.to_numpy()
            return out, errs
    got, why = _unique_results(todo, fn)
    out.loc[todo.index], errs.loc[todo.index] = got.to_numpy(), why.to_numpy()
    return out, errs


def _unique_results(todo: pd.Series, fn: Callable[[Any], tuple[Any, str | None]]) -> tuple[pd.Series, pd.Series]:
    try:
        codes, uniques = pd.factorize(todo, use_na_sentinel=True)
        results = [fn(u) for u in uniques]
        picked = codes
    except TypeError:  # an unhashable value (a dict, a list) somewhere in the column: one by one
        results = [fn(v) for v in todo.to_numpy()]
        picked = np.arange(len(results))
    got = np.array([r[0] for r in results] + [None], dtype=object)[picked]
    why = np.array([r[1] for r in results] + [None], dtype=object)[picked]
    return pd.Series(got, index=todo.index, dtype=object), pd.Series(why, index=todo.index, dtype=object)


def _plain_numbers(values: pd.Series) -> pd.Series | None:
    """The column as integers or floats when every value in it is a number (nulls aside) and none is a
    true/false value, for the vectorised paths; None otherwise (text, objects, booleans: value by value)."""
    if values.dtype.kind in "iuf" or isinstance(values.dtype, pd.Int64Dtype):
        return values
    if values.dtype == object:
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind == "integer":
            try:
                return values.astype("Int64")
            except (OverflowError, TypeError, ValueError):  # beyond int64: value by value
                return None
        if kind in ("floating", "mixed-integer-float"):
            return pd.to_numeric(values, errors="coerce")
    return None


def _cents_of(values: pd.Series, scale: int) -> tuple[pd.Series, pd.Series]:
    """Exact integer cents (Int64) from cents (`scale` 1) or dollars (`scale` 100), and per row the error
    text of a value that is not such an amount (None where fine). Plain numbers of the usual shapes are
    converted column-wise; every other value (text, true/false, out of range, a fraction, a third decimal to
    round) goes through `one` once per distinct value."""
    unit = "cents" if scale == 1 else "dollars"
    data = np.zeros(len(values), dtype="int64")
    missing = np.ones(len(values), dtype=bool)  # the Int64 mask: True = no amount
    slow = values.notna().to_numpy()
    numbers = _plain_numbers(values)
    if numbers is not None and len(values):
        if numbers.dtype.kind in "iu" or isinstance(numbers.dtype, pd.Int64Dtype):
            limit = MAX_CENTS // scale
            ok = (numbers.notna() & (numbers <= limit) & (numbers >= -limit)).fillna(False).to_numpy(dtype=bool)
            data[ok] = numbers[ok].astype("int64").to_numpy() * scale
        else:
            f = numbers.astype(float).to_numpy()
            with np.errstate(invalid="ignore", over="ignore"):
                whole = np.round(f * scale)
                ok = np.isfinite(f) & (np.abs(f) <= MAX_CENTS / scale) & (whole / scale == f)
            data[ok] = whole[ok].astype("int64")
        missing[ok] = False
        slow &= ~ok

    def one(value: Any) -> tuple[Any, str | None]:
        amount = _decimal(value)
        if amount is None or isinstance(amount, str):
            return None, amount
        if scale == 1 and amount != amount.to_integral_value():
            return None, f"{_quoted(value)} is not an amount in whole cents"
        try:
            whole = int((amount * scale).quantize(Decimal(1)))  # dollars: half-even to the cent
        except InvalidOperation:  # more digits than a Decimal context holds
            return None, _out_of_range(value, unit)
        if abs(whole) > MAX_CENTS:
            return None, _out_of_range(value, unit)
        return whole, None

    errs = pd.Series(None, index=values.index, dtype=object)
    if slow.any():
        got, why = _per_unique(values[slow], one)
        found = got.notna().to_numpy()
        rows = np.flatnonzero(slow)
        data[rows[found]] = got[found].astype("int64").to_numpy()
        missing[rows[found]] = False
        errs[slow] = why.to_numpy()
    return pd.Series(pd.arrays.IntegerArray(data, missing), index=values.index), errs


def _out_of_range(value: Any, unit: str) -> str:
    top = f"{MAX_CENTS / 100:,.2f}"
    return f"amount out of range: {_shown(value)} {unit} is more than {top} dollars, the largest amount accepted"


def _money(values: pd.Series, scale: int) -> Result:
    cents, errs = _cents_of(values, scale)
    dollars = (cents.astype("Float64") / 100).round(2).astype(object).where(cents.notna(), None)
    return dollars, errs


def cents_to_dollars(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """Integer cents (numbers, or digits as text) → dollars with 2 places; a fraction of a cent, a true/false
    value, a text that is not a plain number, or more than MAX_CENTS is an error, never an amount."""
    return _money(values, 1)


def dollars(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """Dollar amounts rounded half-even to the cent; the same refusals as `cents_to_dollars`."""
    return _money(values, 100)


def positive(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    def one(value: Any) -> tuple[Any, str | None]:
        amount = _decimal(value)
        if isinstance(amount, str) and not isinstance(value, str):  # true/false, infinity, an object
            return None, amount
        if isinstance(amount, Decimal) and amount <= 0:
            return None, f"{value} must be a positive amount"
        return value, None

    suspect = values.notna().to_numpy()
    numbers = _plain_numbers(values)
    if numbers is not None and len(values):  # the usual case: amounts from `cents_to_dollars`, column-wise
        f = numbers.astype(float).to_numpy()
        with np.errstate(invalid="ignore"):
            suspect &= ~(np.isfinite(f) & (f > 0))
    out = values.astype(object).where(values.notna(), None)
    errs = pd.Series(None, index=values.index, dtype=object)
    if suspect.any():
        checked, why = _per_unique(values[suspect], one)
        out[suspect] = checked.where(why.isna(), None).to_numpy()
        errs[suspect] = why.to_numpy()
    return out, errs


def _to_local_date(moments: pd.Series, raw: pd.Series, ctx: Context) -> Result:
    bad = raw.notna() & moments.isna()
    # numpy prints datetime64[D] as YYYY-MM-DD (pandas' years are 1677..2262, always four digits): far
    # faster than strftime per value.
    days = moments.dt.tz_convert(ctx.timezone).dt.tz_localize(None).to_numpy().astype("datetime64[D]").astype(str)
    local = pd.Series(days.astype(object), index=moments.index)
    return local.where(moments.notna(), None), _errors(raw, bad, lambda v: f"'{v}' is not a date")


def to_date(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """ISO-8601 timestamp (UTC when naive) → the calendar date in the org's time zone. Anything that is not
    one — '31/02/2025', '2026-13-45', a number, a year outside 1677..2262 — is an error."""
    text = _text(values)
    moments = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    return _to_local_date(moments, text, ctx)


def _epoch(value: Any) -> tuple[Any, str | None]:
    number = _decimal(value)
    if isinstance(number, Decimal) and abs(number) <= _EPOCH_BOUND:
        return float(number), None
    return None, "bad"


def epoch_to_date(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """Epoch seconds (a number, or digits as text) → the calendar date in the org's time zone; a true/false
    value or a time outside the years 1677..2262 is an error."""
    if values.dtype.kind in "iuf":
        numeric = values.astype(float).where(values.astype(float).abs() <= _EPOCH_BOUND)
    else:
        numeric = pd.to_numeric(_per_unique(values, _epoch)[0], errors="coerce")
    moments = pd.to_datetime(numeric, unit="s", utc=True, errors="coerce")
    return _to_local_date(moments, _text(values), ctx)


def ref(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """A reference to another source record, resolved by the sync: 'ref:wegive.donors:1012'."""
    text, _ = to_string(values, ctx)
    return (f"ref:{arg}:" + text).where(text.notna(), None), None


def named_ref(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """A Bloomerang record *by name*, resolved by the sync: 'ref:bloomerang.tributes:name=Jane Doe' (a name of
    digits stays a name, never an id)."""
    text, _ = strip(values, ctx)
    return (f"ref:bloomerang.{arg}:name=" + text).where(text.notna(), None), None


def ref_inverse(values: pd.Series, ctx: Context) -> pd.Series:
    return _text(values).str.rsplit(":", n=1).str[-1]


def join_lines(columns: list[pd.Series], ctx: Context, arg: Any = None) -> Result:
    """Street lines (address_1, address_2, …) → one multi-line Bloomerang Street."""
    parts = [strip(c, ctx)[0] for c in columns]
    texts = [arrowtext.as_text(p) for p in parts]
    if all(t is not None for t in texts):
        return arrowtext.to_series(arrowtext.join_lines(texts), parts[0].index), None
    out = parts[0].fillna("")
    for part in parts[1:]:
        out = out + ("\n" + part).fillna("")
    out = out.str.strip("\n")
    return out.where(out.ne(""), None), None


def join_lines_inverse(values: pd.Series, ctx: Context, count: int) -> list[pd.Series]:
    split = _text(values).str.split("\n", n=count - 1)
    return [split.str[i].where(split.str.len() > i, None) for i in range(count)]


def note_list(columns: list[pd.Series], ctx: Context, arg: Any = None) -> Result:
    """Event name then item names, separated by '; ' (Handbid's designation note)."""
    def flat(v: Any) -> list[str]:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return []
        if isinstance(v, list | tuple | np.ndarray):
            return [str(x).strip() for x in v if x is not None and str(x).strip()]
        return [str(v).strip()] if str(v).strip() else []

    pieces = [columns[0].map(flat)]
    for column in columns[1:]:
        pieces.append(column.map(flat))
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = joined + piece
    out = joined.map("; ".join)
    return out.where(out.ne(""), None), None


def event_setting(columns: list[pd.Series], ctx: Context, arg: Any = None) -> Result:
    """The org YAML's per-event fund / appeal / campaign (by auction id, then name, else the default).
    Names become 'ref:bloomerang.funds:name=…' for the sync to resolve; integers are Bloomerang ids."""
    if ctx.event_choice is None:
        raise ValueError("event_setting needs the org configuration")
    plural = {"fund": "funds", "appeal": "appeals", "campaign": "campaigns"}[arg]
    ids = columns[0]
    names = columns[1] if len(columns) > 1 else pd.Series(None, index=ids.index, dtype=object)
    keys = pd.Series(list(zip(ids.astype(object), names.astype(object), strict=True)), index=ids.index)

    def choose(key: tuple[Any, Any]) -> Any:
        value = ctx.event_choice(key[0], key[1], arg)
        return f"ref:bloomerang.{plural}:name={value}" if isinstance(value, str) else value

    return map_unique(keys, choose), None


_FALSE = {"false", "0", "no", "n", "f"}


def _flag_false(value: Any) -> bool:
    """Whether a source flag says *no* (False, 0, "false", "no"); a missing or unreadable flag does not."""
    if isinstance(value, bool | np.bool_):
        return not bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and not _is_null(value):
        return value == 0
    return isinstance(value, str) and value.strip().lower() in _FALSE


def non_deductible(columns: list[pd.Series], ctx: Context, arg: Any = None) -> Result:
    """The part of a gift that is not tax-deductible, in dollars, from ``[amount, is_tax_deductible, has_fmv,
    fmv]`` (amount and fmv in ``arg`` units, cents by default): the whole amount when the gift is not
    deductible; else the fund's fair-market value (the benefit the donor received) capped at the amount;
    else empty — Bloomerang's own default of nothing non-deductible, and a value typed there is kept."""
    scale = 1 if arg == "dollars" else 100
    padded = list(columns) + [pd.Series(None, index=columns[0].index, dtype=object)] * (4 - len(columns))
    if all((c.dtype == object or c.dtype == np.float64) and not c.notna().any() for c in padded[1:3]):
        # no deductibility flag and no fair-market-value flag on any row (the usual export): `one` gives None
        # for every row whatever the amount, so skip building and factorizing a tuple per row
        return pd.Series(None, index=columns[0].index, dtype=object), None
    rows = pd.Series(list(zip(*(c.astype(object) for c in padded[:4]), strict=True)), index=columns[0].index)

    def one(row: tuple[Any, Any, Any, Any]) -> Any:
        amount, deductible, has_fmv, fmv = row
        total = _decimal(amount)
        if not isinstance(total, Decimal) or total <= 0:
            return None
        if _flag_false(deductible):
            return float((total / scale).quantize(Decimal("0.01")))
        value = _decimal(fmv)
        if not _flag_false(has_fmv) and not _is_null(has_fmv) and isinstance(value, Decimal) and value > 0:
            return float((min(value, total) / scale).quantize(Decimal("0.01")))
        return None

    return map_unique(rows, one), None


_CARD_TYPES = {"visa": "Visa", "mastercard": "MasterCard", "master card": "MasterCard", "mc": "MasterCard",
               "amex": "AmericanExpress", "american express": "AmericanExpress", "americanexpress": "AmericanExpress",
               "discover": "Discover", "diners": "DinersClub", "diners club": "DinersClub", "dinersclub": "DinersClub",
               "jcb": "JCB"}


def card_type(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """Card brand → Bloomerang CreditCardType; an unknown brand is left empty (the Method rule falls back)."""
    return _nulls(lower(values, ctx)[0].map(_CARD_TYPES)), None


def account_type(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    return _nulls(lower(values, ctx)[0].map({"checking": "Checking", "savings": "Savings"})), None


def last_four(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    digits = _text(values).str.replace(r"\D", "", regex=True)
    return _nulls(digits.str[-4:].where(digits.str.len() >= 4, None)), None


def digits_only(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """'check #1042' → '1042'; no digits → empty."""
    digits = _text(values).str.extract(r"(\d+)", expand=False)
    return _nulls(digits), None


def integer(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """A whole number (a number, or digits as text) within int64; a true/false value, a fraction, infinity or
    anything larger is an error (never a wrapped-around value)."""
    values = strip(values, ctx)[0] if values.dtype == object else values

    def one(value: Any) -> tuple[Any, str | None]:
        number = _decimal(value)
        if isinstance(number, Decimal) and number == number.to_integral_value() and abs(number) < _INT64:
            return int(number), None
        return None, f"{_quoted(value)} is not a whole number"

    out, errs = _per_unique(values, one)
    return _nulls(out), errs


def _identity(values: pd.Series, ctx: Context) -> pd.Series:
    return values


def _cents_inverse(values: pd.Series, ctx: Context) -> pd.Series:
    return (pd.to_numeric(values, errors="coerce") * 100).round(0).astype("Int64")


_NAME = re.compile(r"^[a-z_]+$")

_EXPIRY = re.compile(r"^\s*(?:(?P<month>\d{1,2})\s*[/-]\s*(?P<year>\d{4}|\d{2})"  # MM/YY, MM/YYYY
                     r"|(?P<iso_year>\d{4})-(?P<iso_month>\d{1,2})(?:-\d{1,2}(?:[T ].*)?)?)\s*$")  # an ISO date


def card_expiry(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """A card expiry → its month (1–12) or its four-digit year (``arg``): WeGive's ``expiration`` "MM/YY"
    (also "MM/YYYY"), or an ISO date such as ``expires_at``. Anything else is left empty, not an error:
    the Method rule then falls back with a note instead of rejecting the gift."""
    parts = _text(values).str.extract(_EXPIRY)
    month = pd.to_numeric(parts["month"], errors="coerce").fillna(pd.to_numeric(parts["iso_month"], errors="coerce"))
    year = pd.to_numeric(parts["year"], errors="coerce").fillna(pd.to_numeric(parts["iso_year"], errors="coerce"))
    year = year.where(year >= 100, year + 2000)
    ok = month.between(1, 12) & year.notna()
    picked = month if arg == "month" else year
    out = pd.Series(None, index=values.index, dtype=object)
    out[ok] = picked[ok].astype("int64").astype(object)
    return _nulls(out), None


def routing_number(values: pd.Series, ctx: Context, arg: Any = None) -> Result:
    """A US (ABA) routing number: nine digits with a valid check digit, else empty (e.g. a Canadian
    five-digit transit number), so an EFT without one falls back instead of posting a wrong number."""
    digits = _text(values).str.replace(r"\D", "", regex=True)

    def valid(text: Any) -> Any:
        if not isinstance(text, str) or len(text) != 9:
            return None
        d = [int(c) for c in text]
        checksum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]
        return text if checksum % 10 == 0 else None

    return map_unique(digits, valid), None


REGISTRY: dict[str, Transform] = {
    "strip": Transform(strip, _identity, doc="trim spaces; blank becomes empty"),
    "lower": Transform(lower, _identity, doc="trim and lower-case"),
    "to_string": Transform(to_string, _identity, doc="ids as text"),
    "email": Transform(email, _identity, doc="validate (email-validator); invalid rejects the record"),
    "phone": Transform(phone, phone_inverse, doc="as provided (trimmed; extensions kept), compared by digits"),
    "phone_formatted": Transform(phone_formatted, phone_inverse,
                                 doc="valid numbers formatted for the org's phone_region; others as provided"),
    "cents_to_dollars": Transform(cents_to_dollars, _cents_inverse,
                                  doc="integer cents → dollars, 2 places; 1 cent to $9,999,999,999,999.99"),
    "dollars": Transform(dollars, _identity, doc="dollar amounts rounded half-even to 2 places"),
    "positive": Transform(positive, _identity, doc="reject amounts ≤ 0 (and true/false values)"),
    "to_date": Transform(to_date, None, doc="ISO timestamp → YYYY-MM-DD in the org time zone"),
    "epoch_to_date": Transform(epoch_to_date, None, doc="epoch seconds → YYYY-MM-DD in the org time zone"),
    "ref": Transform(ref, ref_inverse, arg=(), doc="'ref:<source.entity>:<id>' for the sync to resolve"),
    "named_ref": Transform(named_ref, None, arg=("tributes", "funds", "campaigns", "appeals"),
                           doc="'ref:bloomerang.<entity>:name=<text>': a Bloomerang record by name"),
    "join_lines": Transform(join_lines, None, combines=True, doc="join street lines with a newline"),
    "note_list": Transform(note_list, None, combines=True, doc="join texts and lists of texts with '; '"),
    "event_setting": Transform(event_setting, None, arg=("fund", "appeal", "campaign"), combines=True,
                               doc="per-event fund/appeal/campaign from the org YAML (auction id, name)"),
    "non_deductible": Transform(non_deductible, None, arg=("cents", "dollars"), combines=True,
                                doc="[amount, is_tax_deductible, has_fmv, fmv] → the non-deductible dollars"),
    "card_type": Transform(card_type, None, doc="card brand → CreditCardType"),
    "account_type": Transform(account_type, None, doc="checking/savings → Checking/Savings"),
    "last_four": Transform(last_four, None, doc="last four digits"),
    "digits_only": Transform(digits_only, None, doc="first run of digits ('check #1042' → '1042')"),
    "integer": Transform(integer, _identity, doc="whole number"),
    "card_expiry": Transform(card_expiry, None, arg=("month", "year"),
                             doc="card expiry 'MM/YY' (or an ISO date) → month or four-digit year"),
    "routing_number": Transform(routing_number, None, doc="a valid nine-digit US routing number, else empty"),
}
