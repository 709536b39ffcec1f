"""What the Dagster UI shows about a run: row counts, reject counts with their top reasons, why a load was
stopped, and the Markdown run summary on the load assets.

Why a module of its own: each asset step is a separate function call (and in a multi-process executor a
separate process), so the load step cannot see the gates the staging step computed in memory. It reads
them back from the tables the run wrote (``stg_*``, ``quarantine``, ``raw_*``), which is also what an
analyst would query, so the UI and the staging file never disagree.
"""

import json
from collections import Counter
from typing import Any

import dagster as dg
import pandas as pd

from bloom_pipeline.staging import accounting
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.report import story_markdown, summary_markdown
from bloom_pipeline.sync.runner import RunReport
from bloom_pipeline.sync.stage import EntityGate

TOP_REASONS = 5
SAMPLE_ROWS = 10


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def reasons_markdown(top_reasons: list[tuple[str, int]], none: str = "no record was rejected") -> str:
    if not top_reasons:
        return none
    return markdown_table(("reason", "records"), list(top_reasons))


NO_VALUE_DROPPED = "no value was left out"


def _reasons(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return [str(v) for v in (value if value is not None else [])]


def stored_gates(store: StagingStore, run_id: str) -> dict[str, EntityGate]:
    """The gates of a run as the staging step left them (counts and top reasons; not pandera's verdict)."""
    with store.connect() as con:
        accounts = accounting.compute_accounts(con, run_id)
        rows = con.execute("SELECT source, entity, kind, reasons FROM quarantine WHERE run_id = ?", [run_id]).fetchall()
    gates = {name: EntityGate(name, staged=a.staged, extracted=a.extracted) for name, a in accounts.items()}
    reasons: dict[str, Counter[str]] = {}
    dropped: dict[str, Counter[str]] = {}
    for source, entity, kind, row_reasons in rows:
        target = accounting.stg_entity_of(source, entity)
        gate = gates.setdefault(target, EntityGate(target))
        if kind == "excluded":
            gate.excluded += 1
        elif kind == "field":  # a value left out of a record that was staged: not a rejected record
            gate.fields_dropped += 1
            dropped.setdefault(gate.entity, Counter()).update(_reasons(row_reasons))
        else:
            gate.rejected += 1
            reasons.setdefault(gate.entity, Counter()).update(_reasons(row_reasons))
    for name, counter in reasons.items():
        gates[name].top_reasons = counter.most_common(TOP_REASONS)
    for name, counter in dropped.items():
        gates[name].top_field_reasons = counter.most_common(TOP_REASONS)
    return gates


def staged_metadata(gate: EntityGate) -> dict[str, Any]:
    return {
        "dagster/row_count": dg.MetadataValue.int(gate.staged),
        "extracted": dg.MetadataValue.int(gate.extracted),
        "quarantined": dg.MetadataValue.int(gate.rejected),
        "excluded by mapping rules": dg.MetadataValue.int(gate.excluded),
        "reject share": dg.MetadataValue.float(round(gate.reject_share, 4)),
        "top reject reasons": dg.MetadataValue.md(reasons_markdown(gate.top_reasons)),
        "values left out": dg.MetadataValue.int(gate.fields_dropped),
        "top reasons values were left out": dg.MetadataValue.md(
            reasons_markdown(gate.top_field_reasons, NO_VALUE_DROPPED)),
    }


def quarantine_sample(store: StagingStore, run_id: str, entity: str) -> str:
    """A few of the run's rejected records of one staged entity, with their reasons (no raw payload)."""
    frame = store.read_frame(
        "SELECT source, entity, source_id, reasons FROM quarantine WHERE run_id = ? AND kind = 'invalid' "
        "ORDER BY source, entity, source_id",
        [run_id],
    )
    rows = [(r["source"], r["entity"], r["source_id"], "; ".join(_reasons(r["reasons"])))
            for r in frame.to_dict("records") if accounting.stg_entity_of(r["source"], r["entity"]) == entity]
    if not rows:
        return "none"
    return markdown_table(("source", "entity", "source_id", "reasons"), rows[:SAMPLE_ROWS])


def check_metadata(gate: EntityGate, max_share: float, sample: str) -> dict[str, Any]:
    failures = gate.failure_cases
    has_failures = isinstance(failures, pd.DataFrame) and len(failures) > 0
    shown = failures.head(20).astype(str) if has_failures else None
    return {
        "schema valid": dg.MetadataValue.bool(gate.schema_ok),
        "failure case count": dg.MetadataValue.int(len(failures) if has_failures else 0),
        "failure cases": dg.MetadataValue.md(shown.to_markdown(index=False) if shown is not None else "none"),
        "quarantined": dg.MetadataValue.int(gate.rejected),
        "reject share": dg.MetadataValue.float(round(gate.reject_share, 4)),
        "max reject share": dg.MetadataValue.float(float(max_share)),
        "top reject reasons": dg.MetadataValue.md(reasons_markdown(gate.top_reasons)),
        "rejected records (sample)": dg.MetadataValue.md(sample),
    }


def run_summary(report: RunReport, direction: str) -> str:
    """The Markdown story of a finished run, shown on every load asset."""
    parts = [f"### Sync of org `{report.org}`: {report.status}",
             f"Run `{report.run_id}`, direction `{direction}`.", "", "**In short**", "", story_markdown(report), "",
             summary_markdown(report), ""]
    reasons, dropped = Counter[str](), Counter[str]()
    for gate in report.gates.values():
        reasons.update(dict(gate.top_reasons))
        dropped.update(dict(gate.top_field_reasons))
    parts += ["**Top quarantine reasons**", "", reasons_markdown(reasons.most_common(TOP_REASONS)), ""]
    parts += ["**Values left out of synced records** (the record synced without them)", "",
              reasons_markdown(dropped.most_common(TOP_REASONS), NO_VALUE_DROPPED), ""]
    merged = report.counts.get("constituents", {})
    parts.append(f"Linked donors: {merged.get('merged_push', 0)} pushed to Bloomerang, "
                 f"{merged.get('merged_pull', 0)} written back to the sources. Conflicts: {report.conflicts}; "
                 f"queued for review: {report.review_items}.")
    if report.message:
        parts += ["", f"**Note:** {report.message}"]
    if report.snapshot:
        parts += ["", f"Analyst snapshot: `{report.snapshot}`"]
    return "\n".join(parts)


def load_metadata(report: RunReport, entity: str, summary: str) -> dict[str, Any]:
    counts = report.counts.get(entity, {})
    gate = report.gates.get(entity)
    return {
        **{action: dg.MetadataValue.int(int(counts.get(action, 0)))
           for action in ("created", "updated", "unchanged", "skipped", "failed")},
        "quarantined": dg.MetadataValue.int(gate.rejected if gate else 0),
        "run status": dg.MetadataValue.text(report.status),
        "run summary": dg.MetadataValue.md(summary),
    }


def accounting_markdown(accounts: dict[str, accounting.EntityAccount]) -> str:
    rows = [(name, a.extracted, a.staged, a.quarantined, a.created, a.updated, a.unchanged, a.skipped, a.failed)
            for name, a in accounts.items()]
    return markdown_table(("entity", "extracted", "staged", "quarantined", "created", "updated", "unchanged",
                           "skipped", "failed"), rows)
