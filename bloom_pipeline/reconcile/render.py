"""How a reconciliation reads: the CLI's aligned text and the rows of the Dagster check's Markdown tables.

Kept apart from the computation so the words and columns a finance team reads are in one place: the CLI and
the asset check show the same rows (``TOTAL_HEADER`` / ``RECORD_HEADER``), only the format differs.
"""

from __future__ import annotations

from typing import Any

from bloom_pipeline.reconcile.explain import money
from bloom_pipeline.reconcile.run import Reconciliation

TOTAL_HEADER = ("day", "fund", "source", "source refunds", "staged", "staged refunds", "Bloomerang",
                "Bloomerang refunds", "difference", "refund difference", "records", "status")
RECORD_HEADER = ("day", "fund", "source", "record", "Bloomerang id", "reason", "source amount", "staged amount",
                 "Bloomerang amount", "detail")


def _cents(value: Any) -> int | None:
    try:
        return None if value is None or value != value else int(value)  # NaN / <NA> != itself
    except (TypeError, ValueError):
        return None


def _signed(cents: int) -> str:
    return money(cents) if cents <= 0 else "+" + money(cents)


def total_rows(result: Reconciliation, *, only_mismatches: bool = False) -> list[tuple[Any, ...]]:
    frame = result.mismatches() if only_mismatches else result.totals
    return [(str(r["day"]), r["fund"], money(r["source_cents"]), money(r["source_refund_cents"]),
             money(r["staged_cents"]), money(r["staged_refund_cents"]), money(r["bloomerang_cents"]),
             money(r["bloomerang_refund_cents"]), _signed(int(r["difference_cents"])),
             _signed(int(r["refund_difference_cents"])), int(r["records"]), r["status"])
            for r in frame.to_dict("records")]


def record_rows(result: Reconciliation) -> list[tuple[Any, ...]]:
    return [(str(r["day"]), r["fund"], r["source"], str(r["source_id"]),
             "" if _cents(r["bloomerang_id"]) is None else str(_cents(r["bloomerang_id"])), r["reason"],
             "" if _cents(r["source_cents"]) is None else money(_cents(r["source_cents"])),
             "" if _cents(r["staged_cents"]) is None else money(_cents(r["staged_cents"])),
             "" if _cents(r["bloomerang_cents"]) is None else money(_cents(r["bloomerang_cents"])), r["detail"])
            for r in result.explanations.to_dict("records")]


def _aligned(header: tuple[str, ...], rows: list[tuple[Any, ...]], right: set[int]) -> list[str]:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    out = []
    for row in cells:
        parts = [row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i]) for i in range(len(header))]
        out.append("  ".join(parts).rstrip())
    return out


def summary(result: Reconciliation) -> str:
    differing = len(result.mismatches())
    gifts = result.explanations[["source", "source_id"]].drop_duplicates() if len(result.explanations) else []
    if result.matches:
        return (f"{result.org} {result.window}: every day and fund matches "
                f"({len(result.totals)} day/fund rows, {result.bloomerang_read} Bloomerang transactions read)")
    return (f"{result.org} {result.window}: {differing} of {len(result.totals)} day/fund rows differ; "
            f"{len(gifts)} record(s) explain them")


def text_lines(result: Reconciliation) -> list[str]:
    """The CLI output: a summary line, the day/fund table, then the explaining records (if any)."""
    lines = [summary(result), ""]
    if len(result.totals):
        lines += _aligned(TOTAL_HEADER, total_rows(result), right=set(range(2, 11)))
    else:
        lines.append("no gifts in this window in any system")
    if len(result.explanations):
        header = RECORD_HEADER[:-1]
        rows = record_rows(result)
        lines += ["", "records explaining the differences:"]
        table = _aligned(header, [r[:-1] for r in rows], right={6, 7, 8})
        lines.append(table[0])
        for text, row in zip(table[1:], rows, strict=True):
            lines += [text, f"    {row[-1]}"]
    return lines
