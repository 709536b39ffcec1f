"""``bloom-pipeline sync`` and ``bloom-pipeline demo``.

``sync`` exit status: 0 when every record succeeded, 1 when any record failed or was quarantined (or
the load was halted by a validation gate), 2 for a configuration error — reported before any API call.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter("expected an ISO date, e.g. 2026-11-01 or 2026-11-01T00:00:00Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _config_error(message: str) -> None:
    click.echo(f"configuration error: {message}", err=True)
    sys.exit(2)


def run_org(org_name: str, *, direction: str, dry_run: bool, since: datetime | None, mappings_dir: str | None,
            data_dir: str | None, urls: dict[str, str] | None = None, quiet: bool = False,
            overrides: dict[str, int] | None = None, progress: Any = None):
    """Load the org, resolve its endpoints, run the sync; configuration problems exit 2.

    ``progress``: a ``sync.progress.Progress`` showing the run as it goes (None: silent). It always publishes
    its state beside the org's files for ``bloom-pipeline status``, which cannot open the staging file while
    the sync holds it."""
    from bloom_pipeline.errors import ConfigurationError
    from bloom_pipeline.mapping.loader import MappingError, load_org
    from bloom_pipeline.staging.store import StagingStore, data_dir_from_env
    from bloom_pipeline.sync.endpoints import build_clients, resolve_endpoints
    from bloom_pipeline.sync.report import print_report
    from bloom_pipeline.sync.run_lock import RunInProgressError
    from bloom_pipeline.sync.runner import RunOptions, run_sync

    try:
        org = load_org(org_name, mappings_dir=mappings_dir)
    except MappingError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    except FileNotFoundError as exc:
        _config_error(str(exc))
    try:
        endpoints = resolve_endpoints(org, urls=urls, handbid_org_id=(overrides or {}).get("handbid_org_id"))
    except ConfigurationError as exc:
        _config_error(str(exc))
    root = data_dir_from_env(data_dir)
    store = StagingStore.for_org(org.name, data_dir=root)
    clients = build_clients(org, endpoints, budget_dir=Path(root) / "ratelimit")
    if progress is not None and not dry_run:
        from bloom_pipeline.sync.progress import state_path

        progress.state_file = state_path(root, org.name)
    try:
        report = run_sync(org, store, clients, RunOptions(direction=direction, dry_run=dry_run, since=since),
                          progress=progress)
        report.requests = clients.bloomerang.request_counts
    except ConfigurationError as exc:  # e.g. a correlation custom field Bloomerang lacks
        _config_error(str(exc))
    except RunInProgressError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        clients.close()
    if not quiet:
        print_report(report, dry_run=dry_run)
    return report


@click.command("sync")
@click.option("--org", "org_name", required=True, help="Org name: mappings/orgs/<org>.yaml.")
@click.option("--direction", type=click.Choice(["push", "pull", "both"]), default="both", show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing anywhere, cursors included.")
@click.option("--since", callback=_since, help="Re-read changes since this date instead of the stored cursors.")
@click.option("--mappings-dir", default=None, metavar="DIR",
              help="Default $BLOOM_MAPPINGS_DIR, else ./mappings, else the mappings shipped in the package.")
@click.option("--data-dir", default=None, metavar="DIR", help="Default $BLOOM_DATA_DIR, else ./data.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show progress on stderr: a live line on a terminal, a line every 30 s / 10 % otherwise.")
def sync_command(org_name: str, direction: str, dry_run: bool, since: datetime | None, mappings_dir: str | None,
                 data_dir: str | None, progress: bool) -> None:
    """Sync one org in-process against its configured endpoints."""
    from bloom_pipeline.sync.progress import Progress

    report = run_org(org_name, direction=direction, dry_run=dry_run, since=since, mappings_dir=mappings_dir,
                     data_dir=data_dir, progress=Progress(click.get_text_stream("stderr"), quiet=not progress))
    sys.exit(report.exit_code)


@click.command("demo")
@click.option("--donors", type=click.IntRange(min=10), default=2000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--data-dir", default=None, metavar="DIR", help="Default $BLOOM_DATA_DIR, else ./data.")
def demo_command(donors: int, seed: int, data_dir: str | None) -> None:
    """Start the sandbox APIs with generated data and run the demo org's full bidirectional sync."""
    from bloom_pipeline.sync.demo import run_demo

    sys.exit(run_demo(donors=donors, seed=seed, data_dir=data_dir))


def register(group: click.Group) -> None:
    group.add_command(sync_command)
    group.add_command(demo_command)
