"""Attribute every difference to records: which gift, in which system, and why.

Pure functions over gift lines (``lines.LINE_COLUMNS``) and a :class:`Ledger` of what the staging database
knows about each gift (its last quarantine or failure, the Bloomerang transaction the sync linked, whether
the staged version is the one the sync loaded). A finance team needs the record, not only the total: a
day that is $50 short is closed by the one gift that explains it.

Each gift is compared as a whole across the systems (its lines grouped by day and fund), so a gift moved to
another fund shows once as "fund differs" on both rows it touches, not as two unrelated differences.
Reasons (``reason`` column; ``detail`` says more, in words a finance director reads):

* ``not_synced`` — in the source, not in Bloomerang, nothing went wrong yet (not staged / not loaded).
* ``quarantined`` — in the source, held back by a rule; ``detail`` holds the quarantine reasons.
* ``failed`` — in the source, Bloomerang refused it or was unreachable; ``detail`` holds the error.
* ``deleted_in_bloomerang`` — the sync created or linked it, Bloomerang no longer has it in the window.
* ``amount_differs`` / ``fund_differs`` / ``date_differs`` / ``refund_differs`` — in both, not the same;
  ``detail`` says whether it was edited in Bloomerang or the source changed since the last sync.
* ``duplicate_in_bloomerang`` — more than one Bloomerang transaction carries the gift's correlation value.
* ``bloomerang_only`` — in Bloomerang with our correlation value, not a completed gift in the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

Key = tuple[str, str]

NOT_SYNCED = "not_synced"
QUARANTINED = "quarantined"
FAILED = "failed"
DELETED = "deleted_in_bloomerang"
AMOUNT = "amount_differs"
FUND = "fund_differs"
DATE = "date_differs"
REFUND = "refund_differs"
DUPLICATE = "duplicate_in_bloomerang"
BLOOMERANG_ONLY = "bloomerang_only"
REASONS = (NOT_SYNCED, QUARANTINED, FAILED, DELETED, AMOUNT, FUND, DATE, REFUND, DUPLICATE, BLOOMERANG_ONLY)

EXPLANATION_COLUMNS = ("day", "fund_key", "source", "source_id", "bloomerang_id", "reason", "detail",
                       "source_cents", "staged_cents", "bloomerang_cents")
_NAMES = {"wegive": "WeGive", "handbid": "Handbid"}


@dataclass(frozen=True)
class Ledger:
    """What the staging database says about each gift, keyed ``(source, source_id)``.

    ``outcomes``: the gift's latest outcome when it is a quarantine or a failure: ``(reason, detail)``.
    ``linked``: the Bloomerang transaction id the sync linked. ``pushed``: gifts whose staged version is the
    one the sync last loaded. ``not_gifts``: records in the source that are not completed gifts (their status).
    """

    outcomes: Mapping[Key, tuple[str, str]] = field(default_factory=dict)
    linked: Mapping[Key, int] = field(default_factory=dict)
    pushed: frozenset[Key] = frozenset()
    not_gifts: Mapping[Key, str] = field(default_factory=dict)


def money(cents: int | None) -> str:
    """``12345`` → ``$123.45``; None → ``?`` (an amount the source wrote that is not one)."""
    if cents is None:
        return "?"
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


class _Line(NamedTuple):
    """One line of one gift, its missing values already told apart (pandas' ``isna``, once per frame)."""

    day: Any
    fund_key: Any
    cents: Any  # None when unreadable
    refunded: bool
    bloomerang_id: int | None


def _cells(values: pd.Series) -> list[Any]:
    """A grouping column as ``groupby(dropna=False)`` keys it: values as they are, every missing one as NaN."""
    missing = values.isna().to_numpy()
    return [np.nan if gone else value for value, gone in zip(values.tolist(), missing, strict=True)]


def _by_record(lines: pd.DataFrame) -> dict[Key, list[_Line]]:
    """Each gift's lines, in their order, keyed ``(source, source_id)`` as text.

    Why plain tuples and not a pandas group per gift: a window of a few thousand gifts made one ``groupby`` per
    gift and system (~0.5 ms each) — most of the demo's reconciliation CPU — for sums over one to three lines.
    """
    if lines.empty:
        return {}
    cents, refunded = lines["cents"], lines["refunded"]
    rows = zip(lines["source"].astype(str).tolist(), lines["source_id"].astype(str).tolist(),
               _cells(lines["day"]), _cells(lines["fund_key"]), cents.tolist(), cents.isna().to_numpy(),
               refunded.tolist(), refunded.isna().to_numpy(), lines["bloomerang_id"].tolist(),
               lines["bloomerang_id"].isna().to_numpy(), strict=True)
    out: dict[Key, list[_Line]] = {}
    for source, source_id, day, fund, cent, no_cents, refund, no_refund, bloomerang_id, no_id in rows:
        line = _Line(day, fund, None if no_cents else cent, False if no_refund else bool(refund),
                     None if no_id else int(bloomerang_id))
        out.setdefault((source, source_id), []).append(line)
    return out


def _shape(lines: list[_Line] | None) -> dict[tuple[Any, str], tuple[int | None, bool]]:
    """A gift's lines as ``{(day, fund_key): (cents, refunded)}`` — what comparing two systems compares:
    per day and fund the sum of the line amounts (None when any of them is unreadable) and whether any
    line is refunded."""
    if not lines:
        return {}
    shape: dict[tuple[Any, str], tuple[int | None, bool]] = {}
    for line in lines:
        cell = (line.day, line.fund_key)
        cents, refunded = shape.get(cell, (0, False))
        cents = None if cents is None or line.cents is None else cents + int(line.cents)
        shape[cell] = (cents, refunded or line.refunded)
    return shape


def _total(shape: Mapping[tuple[Any, str], tuple[int | None, bool]]) -> int | None:
    values = [cents for cents, _ in shape.values()]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _difference(src: dict, bloom: dict) -> tuple[str, str] | None:
    """The first way two shapes of one gift differ (amount, date, fund, refund), worded; None when equal."""
    if src == bloom:
        return None
    s_total, b_total = _total(src), _total(bloom)
    if s_total != b_total:
        return AMOUNT, f"{money(s_total)} in the source, {money(b_total)} in Bloomerang"
    s_days, b_days = {d for d, _ in src}, {d for d, _ in bloom}
    if s_days != b_days:
        return DATE, (f"dated {', '.join(map(str, sorted(s_days)))} in the source, "
                      f"{', '.join(map(str, sorted(b_days)))} in Bloomerang")
    s_funds = {(d, f): c for (d, f), (c, _) in src.items()}
    b_funds = {(d, f): c for (d, f), (c, _) in bloom.items()}
    if s_funds != b_funds:
        return FUND, "designated to other funds (or other splits) in Bloomerang than in the source"
    s_ref, b_ref = any(r for _, r in src.values()), any(r for _, r in bloom.values())
    return REFUND, ("refunded in the source, not in Bloomerang" if s_ref and not b_ref
                    else "refunded in Bloomerang, not in the source")


def _rows(key: Key, cells: set[tuple[Any, str]], reason: str, detail: str, bloomerang_id: int | None,
          shapes: tuple[dict, dict, dict]) -> list[dict[str, Any]]:
    src, staged, bloom = shapes
    return [{"day": day, "fund_key": fund, "source": key[0], "source_id": key[1], "bloomerang_id": bloomerang_id,
             "reason": reason, "detail": detail,
             "source_cents": src.get((day, fund), (None, False))[0],
             "staged_cents": staged.get((day, fund), (None, False))[0],
             "bloomerang_cents": bloom.get((day, fund), (None, False))[0]}
            for day, fund in sorted(cells, key=lambda c: (str(c[0]), c[1]))]


def explain(source: pd.DataFrame, staged: pd.DataFrame, bloomerang: pd.DataFrame,
            ledger: Ledger | None = None) -> pd.DataFrame:
    """One row per gift and day/fund it makes differ (``EXPLANATION_COLUMNS``); empty when all agree.

    The lines are those of the reconciled window already (``totals.in_window``); a gift is compared across
    the three systems as a whole, and its rows name each day and fund it touches in any of them.
    """
    ledger = ledger or Ledger()
    by_source, by_staged, by_bloom = _by_record(source), _by_record(staged), _by_record(bloomerang)
    rows: list[dict[str, Any]] = []
    for key in sorted(set(by_source) | set(by_staged) | set(by_bloom)):
        name = _NAMES.get(key[0], key[0])
        src_lines = by_source.get(key)
        if src_lines is None:
            src_lines = by_staged.get(key)
        shapes = (_shape(src_lines), _shape(by_staged.get(key)), _shape(by_bloom.get(key)))
        src, staged_shape, bloom = shapes
        bloom_lines = by_bloom.get(key)
        bloomerang_ids = sorted({line.bloomerang_id for line in bloom_lines or () if line.bloomerang_id is not None})
        linked = ledger.linked.get(key)
        outcome = ledger.outcomes.get(key)
        cells = set(src) | set(bloom)
        if not bloom:
            if outcome is not None:
                reason, detail = outcome
            elif linked is not None:
                reason, detail = DELETED, (f"the sync linked Bloomerang transaction {linked}; Bloomerang no longer "
                                           "has it in this window (deleted there, or its date moved)")
            elif staged_shape:
                reason, detail = NOT_SYNCED, f"staged from {name}, not yet loaded into Bloomerang"
            else:
                reason, detail = NOT_SYNCED, f"extracted from {name}, not yet staged"
            rows += _rows(key, cells, reason, detail, linked, shapes)
            continue
        first = bloomerang_ids[0] if bloomerang_ids else None
        if by_source.get(key) is None and by_staged.get(key) is None:
            status = ledger.not_gifts.get(key)
            detail = (f"{name} status is {status!r}: not a completed gift" if status is not None
                      else f"no completed {name} gift {key[1]} in this window (entered or re-dated in Bloomerang, "
                           f"or deleted in {name})")
            rows += _rows(key, cells, BLOOMERANG_ONLY, detail, first, shapes)
            continue
        if len(bloomerang_ids) > 1:
            rows += _rows(key, cells, DUPLICATE,
                          f"Bloomerang transactions {', '.join(map(str, bloomerang_ids))} all carry this gift",
                          first, shapes)
            continue
        difference = _difference(src, bloom)
        if difference is None:
            continue
        reason, detail = difference
        if outcome is not None and outcome[0] == FAILED:
            reason, detail = FAILED, f"{detail}; the last update failed: {outcome[1]}"
        elif by_source.get(key) is not None and src != staged_shape:
            detail = f"{detail}; changed in {name} since it was staged: the next sync updates it"
        elif key in ledger.pushed:
            detail = f"{detail}; edited in Bloomerang after the sync loaded it"
        else:
            detail = f"{detail}; the change is staged, not yet loaded"
        rows += _rows(key, cells, reason, detail, first, shapes)
    return pd.DataFrame(rows, columns=list(EXPLANATION_COLUMNS))
