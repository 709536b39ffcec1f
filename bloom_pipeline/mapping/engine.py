"""Evaluate a set of field rules over a whole frame of source columns (no per-row loop).

Why its own module: the same evaluation serves record roots (constituents, transactions, funds) and
designations. Order: rules without `when` first, then those with it; then `requires` + `fallback`
(e.g. Method Check without a check number becomes None with a note); then `when` masks drop fields (and
their errors) that do not apply to the row's final values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bloom_pipeline.mapping.spec import FieldRule
from bloom_pipeline.mapping.transforms import REGISTRY, Context, map_unique, present

TRIMMING = {"strip", "lower", "email", "phone"}  # transforms that begin by trimming (blank → empty)


def norm(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def norm_column(values: pd.Series) -> pd.Series:
    return map_unique(values, norm)


@dataclass
class Evaluated:
    values: dict[str, pd.Series] = field(default_factory=dict)
    canonical: dict[str, pd.Series] = field(default_factory=dict)
    errors: list[pd.Series] = field(default_factory=list)
    notes: pd.Series | None = None
    anchors: dict[str, bool] = field(default_factory=dict)


def _describe(rule: FieldRule) -> str:
    if isinstance(rule.from_, list):
        return "from " + " / ".join(rule.from_)
    return f"from {rule.from_}" if rule.from_ else ""


def _prefix(target: str, rule: FieldRule, errs: pd.Series | None) -> pd.Series | None:
    if errs is None or not errs.notna().any():
        return None
    where = _describe(rule)
    return (f"{target}: " + errs + (f" ({where})" if where else "")).where(errs.notna(), None)


def _split_ref(ref: Any) -> tuple[str, Any]:
    return (ref, None) if isinstance(ref, str) else next(iter(ref.items()))


def evaluate_rule(target: str, rule: FieldRule, src: pd.DataFrame, ctx: Context
                  ) -> tuple[pd.Series, pd.Series | None, list[pd.Series]]:
    """Values, the canonical (pre-`ref`) values, and prefixed error Series for one target."""
    index = src.index
    errors: list[pd.Series] = []
    transforms = list(rule.transform)
    if rule.const is not None:
        const = np.empty(len(index), dtype=object)
        const.fill(rule.const)  # one shared object (np.full would turn a list into rows)
        values = pd.Series(const, index=index, dtype=object)
    elif rule.cases:
        conditions = [present(src[c.if_present]).to_numpy() for c in rule.cases]
        chosen = np.select(conditions, [np.array(c.value, dtype=object) for c in rule.cases], default=None)
        values = pd.Series(chosen, index=index, dtype=object)
    elif rule.from_ is not None:
        columns = [src[p] for p in ([rule.from_] if isinstance(rule.from_, str) else rule.from_)]
        first = REGISTRY[_split_ref(transforms[0])[0]] if transforms else None
        if first is not None and first.combines:
            values, errs = first.fn(columns, ctx, _split_ref(transforms.pop(0))[1])
            errors.append(_prefix(target, rule, errs))
        elif len(columns) == 1 and transforms and _split_ref(transforms[0])[0] in TRIMMING:
            values = columns[0]  # the transform trims and empties blanks itself: the same values, one pass less
        else:
            values = columns[0].where(present(columns[0]), None).astype(object)
            for column in columns[1:]:
                values = values.where(present(values), column)
    else:
        values = pd.Series(None, index=index, dtype=object)
    canonical = None
    for ref in transforms:
        name, arg = _split_ref(ref)
        if name == "ref":
            canonical = REGISTRY["to_string"].fn(values, ctx)[0]
        values, errs = REGISTRY[name].fn(values, ctx, arg)
        errors.append(_prefix(target, rule, errs))
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
            errors.append(_prefix(target, rule, err))
    if rule.default is not None:
        values = values.where(present(values), rule.default)
    if rule.required:
        empty = ~present(values)
        for err in errors:
            if err is not None:
                empty &= err.isna()
        if empty.any():
            err = pd.Series(None, index=index, dtype=object)
            err[empty] = "required but empty"
            errors.append(_prefix(target, rule, err))
    return values, canonical, [e for e in errors if e is not None]


def evaluate(rules: dict[str, FieldRule], src: pd.DataFrame, ctx: Context) -> Evaluated:
    out = Evaluated()
    errs_by_target: dict[str, list[pd.Series]] = {}
    order = [t for t, r in rules.items() if not r.when] + [t for t, r in rules.items() if r.when]
    for target in order:
        rule = rules[target]
        values, canonical, errs = evaluate_rule(target, rule, src, ctx)
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
        errs_by_target[target] = [e.where(applies, None) for e in errs_by_target[target]]
    out.errors = [e for errs in errs_by_target.values() for e in errs]
    out.notes = notes
    return out


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
