"""The dry-run text of a push plan: counts per entity and action, then what would change, record by record.

An admin reads this before the first real run of a new org, so it leads with the totals, lists creates
and updates with their field diffs (``old → new``), then every blocked/skipped record with its reason,
and cuts long lists with a "... N more" line instead of scrolling thousands of records past them.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

ORDER = ("funds", "constituents", "transactions")
SHOWN_ACTIONS = (("create", "+"), ("update", "~"), ("blocked", "!"), ("skipped", "-"))
COUNTED = ("create", "update", "unchanged", "blocked", "skipped")


def _value(value: Any, width: int = 60) -> str:
    text = "∅" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _diff_text(diff: Any, max_fields: int) -> list[str]:
    parsed = json.loads(diff) if isinstance(diff, str) and diff else (diff or {})
    lines = []
    for name in list(parsed)[:max_fields]:
        old, new = parsed[name]
        lines.append(f"{name}: {_value(new)}" if old is None else f"{name}: {_value(old)} → {_value(new)}")
    if len(parsed) > max_fields:
        lines.append(f"... {len(parsed) - max_fields} more fields")
    return lines


def _label(row: dict[str, Any]) -> str:
    label = f"{row['source']}:{row['source_id']}"
    bid = row.get("bloomerang_id")
    if bid is not None and not pd.isna(bid):
        label += f" → Bloomerang {int(bid)}"
    elif row.get("target_ref"):
        label += f" → with {str(row['target_ref']).removeprefix('ref:')}"
    return label


def render_plan(plan: pd.DataFrame, *, max_records: int = 20, max_fields: int = 12) -> str:
    """Human-readable dry-run text of a plan (one or several entities; ``entity`` column)."""
    if plan is None or plan.empty:
        return "Push plan: nothing to do (no staged records)."
    plan = plan.copy()
    if "entity" not in plan:
        plan["entity"] = "records"
    entities = [e for e in ORDER if e in set(plan["entity"])] + sorted(set(plan["entity"]) - set(ORDER))
    counts = plan.groupby(["entity", "action"]).size()
    requests = int(plan["action"].isin(["create", "update"]).sum())
    lines = [f"Push plan: {len(plan)} records, {requests} would be written (dry run: nothing was changed)", ""]
    width = max(len(e) for e in entities)
    lines.append(f"{'':{width}}  " + "  ".join(f"{a:>9}" for a in COUNTED))
    for entity in entities:
        lines.append(f"{entity:{width}}  " + "  ".join(f"{int(counts.get((entity, a), 0)):>9}" for a in COUNTED))
    for entity in entities:
        rows = plan[plan["entity"] == entity]
        for action, mark in SHOWN_ACTIONS:
            chosen = rows[rows["action"] == action].to_dict("records")
            if not chosen:
                continue
            lines += ["", f"{entity} — {action} ({len(chosen)})"]
            for row in chosen[:max_records]:
                reason = row.get("reason")
                has_reason = isinstance(reason, str) and reason
                lines.append(f"  {mark} {_label(row)}" + (f"  [{reason}]" if has_reason else ""))
                if action in ("create", "update"):
                    lines += [f"      {text}" for text in _diff_text(row.get("diff"), max_fields)]
            if len(chosen) > max_records:
                lines.append(f"  ... {len(chosen) - max_records} more")
    return "\n".join(lines)
