"""Evaluate a set of field rules over a whole frame of source columns (no per-row loop).

Why its own module: the same evaluation serves record roots (constituents, transactions, funds) and
designations. Order: rules without `when` first, then those with it; then `requires` + `fallback`
(e.g. Method Check without a check number becomes None with a note); then `when` masks drop fields (and
their errors) that do not apply to the row's final values.

Each error is either the record's (it rejects the record) or the field's: an invalid value of a field whose
`on_invalid` is `drop_field` (the default for optional fields, `FieldRule.invalid_policy`) is left out — the
field is empty, its `default` applies, `requires` sees it missing — and is reported in `Evaluated.dropped`
with the source value, so the record and everything that depends on it (a donor's gifts) still flow.
Error texts are made safe to print here (`safe_text`): control characters escaped, bounded length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bloom_pipeline.mapping import arrowtext
from bloom_pipeline.mapping.limits import CONTROL, text_limit
from bloom_pipeline.mapping.spec import FieldRule
from bloom_pipeline.mapping.transforms import REGISTRY, Context, map_unique, present

TRIMMING = {"strip", "lower", "email", "phone", "phone_formatted"}  # transforms that begin by trimming (blank → empty)
MAX_MESSAGE = 300  # characters of one error text
MAX_VALUE = 80  # characters of a value shown in `quarantine.value`


def safe_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` with control and other non-printable characters escaped (a newline shows as \\n), cut to
    `limit` characters with '…': a source value can never forge a log line or flood a terminal."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown_value(value: Any) -> str | None:
    """A source value as `quarantine.value` shows it: text as is, anything else as JSON; safe and short."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return safe_text(text, MAX_VALUE)


def norm(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def norm_column(values: pd.Series) -> pd.Series:
    if values.dtype == object and len(values) and pd.api.types.infer_dtype(values, skipna=True).startswith("mixed"):
        # a hash table takes True for 1: a column mixing true/false with numbers is normed in two parts
        flags = np.fromiter((isinstance(v, bool | np.bool_) for v in values.to_numpy()), dtype=bool,
                            count=len(values))
        if flags.any() and not flags.all():
            out = pd.Series(None, index=values.index, dtype=object)
            out[flags] = map_unique(values[flags], norm).to_numpy()
            out[~flags] = map_unique(values[~flags], norm).to_numpy()
            return out
    return map_unique(values, norm)


@dataclass(frozen=True)
class Dropped:
    """The invalid values of one `drop_field` target: per row the error text (None where fine) and the
    source value it came from."""

    target: str
    messages: pd.Series
    values: pd.Series


@dataclass
class Evaluated:
    values: dict[str, pd.Series] = field(default_factory=dict)
    canonical: dict[str, pd.Series] = field(default_factory=dict)
    errors: list[pd.Series] = field(default_factory=list)  # record level: a text rejects the row's record
    notes: pd.Series | None = None
    anchors: dict[str, bool] = field(default_factory=dict)
    dropped: list[Dropped] = field(default_factory=list)  # field level: the value was left out


# One error Series of a target and what it does: "reject_record" or "drop_field".
Tagged = tuple[pd.Series, str]


def _describe(rule: FieldRule) -> str:
    if isinstance(rule.from_, list):
        return "from " + " / ".join(rule.from_)
    return f"from {rule.from_}" if rule.from_ else ""


def _prefix(target: str, rule: FieldRule, errs: pd.Series | None) -> pd.Series | None:
    if errs is None or not errs.notna().any():
        return None
    where = _describe(rule)
    out = pd.Series(None, index=errs.index, dtype=object)
    bad = errs.notna()
    out[bad] = (f"{target}: " + errs[bad].astype(str) + (f" ({where})" if where else "")).map(safe_text)
    return out


def _split_ref(ref: Any) -> tuple[str, Any]:
    return (ref, None) if isinstance(ref, str) else next(iter(ref.items()))


def _sendable_text(target: str, values: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """Text as Bloomerang can take it (``limits``): control characters removed, and an error for a text over
    the field's bound."""
    if values.dtype != object or not len(values):
        return values, None
    text = arrowtext.as_text(values)
    if text is not None:  # all text (the usual case): the same tests in Arrow's kernels, no Python per value
        return _sendable_arrow(target, values, text)
    try:
        lengths = values.str.len()  # NaN for what is not text
    except AttributeError:  # no text at all (numbers, booleans, references)
        return values, None
    if not lengths.notna().any():
        return values, None
    dirty = values.str.contains(CONTROL, na=False)
    if dirty.any():
        values = values.copy()
        values[dirty] = values[dirty].str.replace(CONTROL, "", regex=True)
        lengths = values.str.len()
    limit = text_limit(target)
    over = lengths > limit
    if not over.any():
        return values, None
    err = pd.Series(None, index=values.index, dtype=object)
    err[over] = lengths[over].astype(int).map(lambda n: f"{n:,} characters, more than Bloomerang's {limit:,}")
    return values, err


def _sendable_arrow(target: str, values: pd.Series, text: Any) -> tuple[pd.Series, pd.Series | None]:
    """`_sendable_text` for a column of text only: rows with a control character (rare) are cleaned by the
    pandas path, so the cleaned text is exactly `CONTROL.sub`'s; lengths are code points, as `len` counts."""
    if text.null_count == len(text):
        return values, None
    dirty = arrowtext.contains_control(text)
    if dirty.any():
        values = values.copy()
        values[dirty] = values[dirty].str.replace(CONTROL, "", regex=True)
        text = arrowtext.as_text(values)
    lengths = arrowtext.lengths(text)
    limit = text_limit(target)
    over = np.nan_to_num(lengths, nan=0) > limit
    if not over.any():
        return values, None
    err = pd.Series(None, index=values.index, dtype=object)
    err[over] = [f"{int(n):,} characters, more than Bloomerang's {limit:,}" for n in lengths[over]]
    return values, err


def evaluate_rule(target: str, rule: FieldRule, src: pd.DataFrame, ctx: Context
                  ) -> tuple[pd.Series, pd.Series | None, list[Tagged], pd.Series]:
    """Values, the canonical (pre-`ref`) values, the prefixed error Series each tagged with what it does
    (`FieldRule.invalid_policy`), and the source values the rule read (for showing a dropped one)."""
    index = src.index
    errors: list[Tagged] = []
    transforms = list(rule.transform)
    on_transform, on_lookup = rule.invalid_policy(), rule.invalid_policy(lookup=True)
    if rule.const is not None:
        const = np.empty(len(index), dtype=object)
        const.fill(rule.const)  # one shared object (np.full would turn a list into rows)
        values = pd.Series(const, index=index, dtype=object)
        original = values
    elif rule.cases:
        conditions = [present(src[c.if_present]).to_numpy() for c in rule.cases]
        chosen = np.select(conditions, [np.array(c.value, dtype=object) for c in rule.cases], default=None)
        values = pd.Series(chosen, index=index, dtype=object)
        original = values
    elif rule.from_ is not None:
        columns = [src[p] for p in ([rule.from_] if isinstance(rule.from_, str) else rule.from_)]
        first = REGISTRY[_split_ref(transforms[0])[0]] if transforms else None
        original = columns[0]
        if first is not None and first.combines:
            values, errs = first.fn(columns, ctx, _split_ref(transforms.pop(0))[1])
            errors.append((_prefix(target, rule, errs), on_transform))
        elif len(columns) == 1 and transforms and _split_ref(transforms[0])[0] in TRIMMING:
            values = columns[0]  # the transform trims and empties blanks itself: the same values, one pass less
        else:
            values = columns[0].where(present(columns[0]), None).astype(object)
            for column in columns[1:]:
                values = values.where(present(values), column)
            original = values
    else:
        values = pd.Series(None, index=index, dtype=object)
        original = values
    canonical = None
    for ref in transforms:
        name, arg = _split_ref(ref)
        if name == "ref":
            canonical = REGISTRY["to_string"].fn(values, ctx)[0]
        values, errs = REGISTRY[name].fn(values, ctx, arg)
        errors.append((_prefix(target, rule, errs), on_transform))
    if rule.lookup is not None:
        table = {norm(k): v for k, v in rule.lookup.items()}
        keys = norm_column(values)
        known = keys.isin(list(table))
        missing = keys.notna() & ~known
        shown = values[missing].astype(str)
        mapped = keys.map(table).astype(object)
        values = mapped.where(known, None)
        if missing.any():
            err = pd.Series(None, index=index, dtype=object)
            err[missing] = "no rule for '" + shown + "'"
            errors.append((_prefix(target, rule, err), on_lookup))
    if rule.const is None:
        values, too_long = _sendable_text(target, values)
        if too_long is not None:
            errors.append((_prefix(target, rule, too_long), on_transform))
    errors = [(e, policy) for e, policy in errors if e is not None]
    for err, policy in errors:
        if policy == "drop_field":  # left out: empty, so the default applies and `requires` sees it missing
            values = values.where(err.isna(), None)
    if rule.default is not None:
        values = values.where(present(values), rule.default)
    if rule.required:
        empty = ~present(values)
        for err, _ in errors:
            empty &= err.isna()
        if empty.any():
            err = pd.Series(None, index=index, dtype=object)
            err[empty] = "required but empty"
            errors.append((_prefix(target, rule, err), "reject_record"))
    return values, canonical, [(e, policy) for e, policy in errors if e is not None], original


def evaluate(rules: dict[str, FieldRule], src: pd.DataFrame, ctx: Context) -> Evaluated:
    out = Evaluated()
    errs_by_target: dict[str, list[Tagged]] = {}
    originals: dict[str, pd.Series] = {}
    order = [t for t, r in rules.items() if not r.when] + [t for t, r in rules.items() if r.when]
    for target in order:
        rule = rules[target]
        values, canonical, errs, originals[target] = evaluate_rule(target, rule, src, ctx)
        out.values[target] = values
        errs_by_target[target] = errs
        out.anchors[target] = rule.const is None and rule.default is None
        if rule.canonical:
            out.canonical[rule.canonical] = canonical if canonical is not None else values
    notes = pd.Series(None, index=src.index, dtype=object)
    for target, rule in rules.items():
        if rule.note and isinstance(rule.from_, str):
            table = {norm(k): v for k, v in rule.note.items()}
            notes = notes.where(notes.notna(), norm_column(src[rule.from_]).map(table))
        for method, needed in (rule.requires or {}).items():
            lacking = pd.Series(False, index=src.index)
            for name in needed:
                lacking |= ~present(out.values[name])
            fall = out.values[target].eq(method) & lacking
            if fall.any():
                out.values[target] = out.values[target].where(~fall, rule.fallback)
                if rule.fallback_note:
                    notes = notes.where(~fall, rule.fallback_note.format(method=method, missing=", ".join(needed)))
        if rule.canonical and rule.requires:
            out.canonical[rule.canonical] = out.values[target]
    for target, rule in rules.items():
        if not rule.when:
            continue
        applies = pd.Series(True, index=src.index)
        for key, allowed in rule.when.items():
            applies &= out.values[key].isin(allowed)
        out.values[target] = out.values[target].where(applies, None)
        if rule.canonical:
            out.canonical[rule.canonical] = out.canonical[rule.canonical].where(applies, None)
        errs_by_target[target] = [(e.where(applies, None), policy) for e, policy in errs_by_target[target]]
    for target, errs in errs_by_target.items():
        for err, policy in errs:
            if policy == "drop_field":
                if err.notna().any():
                    out.dropped.append(Dropped(target, err, originals[target]))
            else:
                out.errors.append(err)
    out.notes = notes
    return out


def dropped_rows(dropped: list[Dropped], owners: pd.Series | None = None, prefix: str = "") -> pd.DataFrame:
    """The dropped values in long form: one row per (record, field) with `row` (the record's label; `owners`
    maps element rows to their record, for designations), `field`, `value` (shown safely) and `reason`."""
    parts = []
    for item in dropped:
        bad = item.messages.notna()
        if not bad.any():
            continue
        rows = item.messages.index[bad.to_numpy()]
        parts.append(pd.DataFrame({
            "row": (owners.loc[rows] if owners is not None else pd.Series(rows, index=rows)).to_numpy(),
            "field": prefix + item.target,
            "value": [shown_value(v) for v in item.values.reindex(rows).to_numpy()],
            "reason": [prefix + m for m in item.messages[bad].to_numpy()],
        }))
    if not parts:
        return pd.DataFrame(columns=["row", "field", "value", "reason"])
    return pd.concat(parts, ignore_index=True)


def collect_errors(errors: list[pd.Series], index: pd.Index) -> pd.Series:
    """Per row, the list of error texts (empty list when the row is fine)."""
    lists = pd.Series([[]] * len(index), index=index, dtype=object)
    if not errors:
        return lists
    frame = pd.DataFrame({i: e.reindex(index) for i, e in enumerate(errors)}, index=index)
    bad = frame.notna().any(axis=1)
    if bad.any():
        rows = frame[bad]
        found = [[x for x in row if isinstance(x, str)] for row in rows.itertuples(index=False)]
        lists[bad] = pd.Series(found, index=rows.index, dtype=object)
    return lists
