"""Per day and fund totals of the three systems, and whether each day/fund matches.

Why per day and fund: that is how a finance team closes a month — the deposit of a day, split by fund —
and a difference small enough to hide in a monthly total is visible in its day. Money stays in integer
cents; a line whose amount cannot be read counts 0 here (its gift is listed by ``explain``, so the row
still reads "differs").

Columns (``TOTAL_COLUMNS``): for each system the gift total (completed gifts, refunded ones included) and
the refund total (the refunded gifts' amounts, on the gift's own day); ``difference`` is Bloomerang minus
the source for gifts, ``refund_difference`` the same for refunds; ``records`` is how many explaining rows the
day/fund has; ``status`` is ``match`` or ``differs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

SYSTEMS = ("source", "staged", "bloomerang")
TOTAL_COLUMNS = ("day", "fund_key", "source_cents", "source_refund_cents", "staged_cents", "staged_refund_cents",
                 "bloomerang_cents", "bloomerang_refund_cents", "difference_cents", "refund_difference_cents",
                 "records", "status")


@dataclass(frozen=True)
class DayWindow:
    """An inclusive range of calendar days in the org's time zone."""

    since: date
    until: date

    def __post_init__(self) -> None:
        if self.until < self.since:
            raise ValueError(f"the window ends ({self.until}) before it starts ({self.since})")

    def __str__(self) -> str:
        return f"{self.since}..{self.until}"


def in_window(lines: pd.DataFrame, window: DayWindow) -> pd.DataFrame:
    """The lines dated inside ``window`` (a line without a readable day is outside every window)."""
    if lines.empty:
        return lines
    days = lines["day"]
    keep = [d is not None and not pd.isna(d) and window.since <= d <= window.until for d in days]
    return lines[keep].reset_index(drop=True)


def _sums(lines: pd.DataFrame, system: str) -> pd.DataFrame:
    gift, refund = f"{system}_cents", f"{system}_refund_cents"
    if lines.empty:
        return pd.DataFrame(columns=["day", "fund_key", gift, refund])
    cents = pd.to_numeric(lines["cents"], errors="coerce").fillna(0).astype("int64")
    frame = pd.DataFrame({"day": lines["day"], "fund_key": lines["fund_key"], gift: cents,
                          refund: cents.where(lines["refunded"].astype(bool), 0)})
    return frame.groupby(["day", "fund_key"], as_index=False, sort=False)[[gift, refund]].sum()


def totals(source: pd.DataFrame, staged: pd.DataFrame, bloomerang: pd.DataFrame,
           explanations: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per day and fund that any system (or any explaining record) has, sorted by day then fund."""
    frames = [_sums(source, "source"), _sums(staged, "staged"), _sums(bloomerang, "bloomerang")]
    cells = pd.concat([f[["day", "fund_key"]] for f in frames]
                      + ([explanations[["day", "fund_key"]]] if explanations is not None else []),
                      ignore_index=True).drop_duplicates()
    if cells.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TOTAL_COLUMNS})
    out = cells
    for frame in frames:
        out = out.merge(frame, on=["day", "fund_key"], how="left")
    money = [c for c in TOTAL_COLUMNS if c.endswith("_cents") and "difference" not in c]
    out[money] = out[money].apply(pd.to_numeric).fillna(0).astype("int64")
    out["difference_cents"] = out["bloomerang_cents"] - out["source_cents"]
    out["refund_difference_cents"] = out["bloomerang_refund_cents"] - out["source_refund_cents"]
    if explanations is not None and len(explanations):
        counts = explanations.groupby(["day", "fund_key"], sort=False).size().rename("records").reset_index()
        out = out.merge(counts, on=["day", "fund_key"], how="left")
        out["records"] = out["records"].fillna(0).astype("int64")
    else:
        out["records"] = 0
    differs = ((out["difference_cents"] != 0) | (out["refund_difference_cents"] != 0)
               | (out["staged_cents"] != out["source_cents"]) | (out["records"] > 0))
    out["status"] = differs.map({True: "differs", False: "match"})
    out = out.sort_values(["day", "fund_key"], key=lambda s: s.astype(str)).reset_index(drop=True)
    return out[list(TOTAL_COLUMNS)]
