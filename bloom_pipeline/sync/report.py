"""Human-readable run summaries: the CLI table and the Markdown Dagster shows."""

from __future__ import annotations

import click

from bloom_pipeline.sync.plan.named import report_lines
from bloom_pipeline.sync.runner import RunReport

COLUMNS = ("created", "updated", "unchanged", "quarantined", "failed")


def summary_rows(report: RunReport) -> list[tuple[str, dict[str, int]]]:
    rows = []
    for entity in ("funds", "constituents", "transactions"):
        counts = dict(report.counts.get(entity, {}))
        gate = report.gates.get(entity)
        counts["quarantined"] = gate.rejected if gate else 0
        counts["excluded"] = gate.excluded if gate else 0
        rows.append((entity, counts))
    return rows


def summary_markdown(report: RunReport) -> str:
    lines = ["| entity | " + " | ".join(COLUMNS) + " | excluded |", "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for entity, counts in summary_rows(report):
        cells = " | ".join(str(counts.get(c, 0)) for c in (*COLUMNS, "excluded"))
        lines.append(f"| {entity} | {cells} |")
    return "\n".join(lines)


STORY_REASONS = 3


def _top(reasons: list[tuple[str, int]]) -> str:
    return "; ".join(f"{text} (×{n})" for text, n in reasons[:STORY_REASONS])


def next_command(report: RunReport) -> str:
    """The one command to run after this run, in the order a person on call would take them."""
    org = report.org
    if report.review_items:
        return f"bloom-pipeline review list --org {org}"
    if report.status in ("failed", "halted") or report.failed_records or report.quarantined_records:
        return f"bloom-pipeline status --org {org} --failures"
    return f"bloom-pipeline reconcile --org {org}"


def people_line(report: RunReport) -> str | None:
    """What the people steps after the merge did (docs/cli.md "What a sync prints"), or None when nothing:
    opt-outs and org custom field values each way, Handbid interactions, donors created in WeGive."""
    c = report.counts
    comm, custom = c.get("communication", {}), c.get("custom_fields", {})
    events, creates = c.get("event_interactions", {}), c.get("wegive_creates", {})
    parts = []
    if comm.get("opted_out_in_bloomerang") or comm.get("opted_out_in_wegive"):
        parts.append(f"opt-outs {comm.get('opted_out_in_bloomerang', 0)} to Bloomerang, "
                     f"{comm.get('opted_out_in_wegive', 0)} to WeGive")
    if custom.get("updated_in_bloomerang") or custom.get("updated_in_wegive") or custom.get("values_quarantined"):
        parts.append(f"custom field values {custom.get('updated_in_bloomerang', 0)} to Bloomerang, "
                     f"{custom.get('updated_in_wegive', 0)} to WeGive, {custom.get('values_quarantined', 0)} "
                     "quarantined")
    if events.get("created") or events.get("updated"):
        parts.append(f"event interactions {events.get('created', 0)} created, {events.get('updated', 0)} updated")
    if creates.get("created"):
        parts.append(f"WeGive donors created from Bloomerang {creates['created']}")
    return "people: " + "; ".join(parts) if parts else None


def story(report: RunReport) -> list[str]:
    """The short story a person reads first, the same at the end of the CLI output and in Dagster: what changed
    on each side, what failed and why, what waits in review, and the next command."""
    pushed = {e: report.counts.get(e, {}) for e in ("funds", "constituents", "transactions")}
    created = sum(c.get("created", 0) for c in pushed.values())
    updated = sum(c.get("updated", 0) for c in pushed.values())
    detail = ", ".join(f"{e} {c.get('created', 0)}/{c.get('updated', 0)}" for e, c in pushed.items())
    pulled = report.counts.get("constituents", {}).get("merged_pull", 0)
    lines = [f"Bloomerang: {created} created, {updated} updated (created/updated: {detail})",
             f"WeGive / Handbid: {pulled} donor(s) updated from Bloomerang"]
    people = people_line(report)
    if people:
        lines.append(people)
    if report.failed_records:
        lines.append(f"failed: {report.failed_records}, retried on the next run — {_top(report.failure_reasons)}")
    if report.quarantined_records:
        reasons = sorted(((t, n) for g in report.gates.values() for t, n in g.top_reasons), key=lambda r: -r[1])
        lines.append(f"quarantined: {report.quarantined_records} — {_top(reasons)}")
    dropped = sum(g.fields_dropped for g in report.gates.values())
    if dropped:
        reasons = sorted(((t, n) for g in report.gates.values() for t, n in g.top_field_reasons), key=lambda r: -r[1])
        lines.append(f"values left out (their records synced): {dropped} — {_top(reasons)}")
    waiting = [m for m in report.missing_names if not m.created]
    if waiting:
        lines.append(f"blocked until Bloomerang has them: {_top([(f'{m.kind} {m.name!r}', m.gifts) for m in waiting])}"
                     " (or set bloomerang.create_missing: true)")
    halted = [g.blocked_reason for g in report.gates.values() if g.blocked_reason]
    if halted:
        lines.append(f"load stopped: {halted[0]}")
    lines.append(f"waiting in review: {report.review_items}")
    lines.append(f"next: {next_command(report)}")
    return lines


def story_markdown(report: RunReport) -> str:
    return "\n".join(f"- {line}" for line in story(report))


def print_report(report: RunReport, *, dry_run: bool = False) -> None:
    if dry_run and report.plan is not None:
        from bloom_pipeline.sync.plan.render import render_plan

        click.echo(render_plan(report.plan))
        for line in report_lines(report.missing_names):
            click.echo(line)
        click.echo("dry run: nothing was written (no API write, no cursor, no staging row)")
    width = max(len(c) for c in COLUMNS) + 2
    click.echo(f"run {report.run_id} for org {report.org}: {report.status}")
    click.echo("entity".ljust(14) + "".join(c.rjust(width) for c in COLUMNS))
    for entity, counts in summary_rows(report):
        click.echo(entity.ljust(14) + "".join(str(counts.get(c, 0)).rjust(width) for c in COLUMNS))
    merged = report.counts.get("constituents", {})
    if merged.get("merged_push") or merged.get("merged_pull"):
        click.echo(f"linked donors: {merged.get('merged_push', 0)} pushed to Bloomerang, "
                   f"{merged.get('merged_pull', 0)} written back to the sources")
    if report.relinked:
        click.echo(f"merged in Bloomerang: {report.relinked} links moved to the surviving constituent")
    deletions = report.counts.get("source_deletions", {})
    if deletions.get("recorded") or deletions.get("restored"):
        click.echo(f"archived in WeGive: {deletions.get('recorded', 0)} recorded, {deletions.get('inactivated', 0)} "
                   f"inactivated in Bloomerang, {deletions.get('restored', 0)} restored (table source_deletions)")
    renamed = report.counts.get("fund_names", {})
    if renamed:
        click.echo(f"fund names: {renamed.get('renamed_in_bloomerang', 0)} renamed in Bloomerang, "
                   f"{renamed.get('renamed_in_wegive', 0)} in WeGive, {renamed.get('failed', 0)} failed "
                   "(retried on the next run)")
    if report.conflicts or report.review_items:
        click.echo(f"conflicts: {report.conflicts}; queued for review: {report.review_items} "
                   f"(bloom-pipeline review list --org {report.org})")
    excluded = sum(g.excluded for g in report.gates.values())
    if excluded:
        click.echo(f"excluded by mapping rules (not gifts, e.g. failed payments): {excluded}")
    if report.message:
        click.echo(f"note: {report.message}")
    if report.database:
        click.echo(f"staging database: {report.database}")
    if report.snapshot:
        click.echo(f"analyst snapshot: {report.snapshot}")
    if not dry_run:
        click.echo("in short:")
        for line in story(report):
            click.echo(f"  {line}")
