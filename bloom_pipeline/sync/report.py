"""Human-readable run summaries: the CLI table and the Markdown Dagster shows."""

from __future__ import annotations

import click

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


def print_report(report: RunReport, *, dry_run: bool = False) -> None:
    if dry_run and report.plan is not None:
        from bloom_pipeline.sync.plan.render import render_plan

        click.echo(render_plan(report.plan))
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
