"""``bloom-pipeline reconcile``: do the three systems' totals agree, per day and fund, and if not, why.

Exit status: 0 when every day and fund matches and no record needs explaining, 1 when anything differs (or
Bloomerang could not be read), 2 for a configuration error — an unknown org, a mapping that does not load,
missing credentials, no staging database yet — reported in one line before any API call, never with a
traceback or a key.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    from bloom_pipeline.reconcile.run import parse_day

    try:
        return parse_day(value)
    except ValueError as exc:
        raise click.BadParameter("expected an ISO date, e.g. 2026-11-01") from exc


def _config_error(message: str) -> None:
    click.echo(f"configuration error: {message}", err=True)
    sys.exit(2)


@click.command("reconcile")
@click.option("--org", "org_name", required=True, help="Org name: mappings/orgs/<org>.yaml.")
@click.option("--since", callback=_day, help="First day (org time zone). Default: 30 days ending --until.")
@click.option("--until", callback=_day, help="Last day (org time zone), included. Default: today.")
@click.option("--data-dir", envvar="BLOOM_DATA_DIR", default=None, help="Default ./data.")
@click.option("--mappings-dir", envvar="BLOOM_MAPPINGS_DIR", default=None, help="Default ./mappings.")
def reconcile_command(org_name: str, since: date | None, until: date | None, data_dir: str | None,
                      mappings_dir: str | None) -> None:
    """Compare the source, staged and Bloomerang totals per day and fund, and list the records explaining
    every difference; the result is kept in the org's `reconciliation` tables."""
    from datetime import timedelta

    from bloom_pipeline import settings
    from bloom_pipeline.clients.http import AuthError
    from bloom_pipeline.errors import ApiError, ConfigurationError
    from bloom_pipeline.mapping.loader import MappingError, load_org
    from bloom_pipeline.reconcile.render import text_lines
    from bloom_pipeline.reconcile.run import DEFAULT_DAYS, default_window, reconcile_org
    from bloom_pipeline.reconcile.table import write_reconciliation
    from bloom_pipeline.reconcile.totals import DayWindow
    from bloom_pipeline.staging.store import StagingStore
    from bloom_pipeline.sync.endpoints import build_clients, resolve_endpoints

    try:
        org = load_org(org_name, mappings_dir=mappings_dir)
    except MappingError as exc:
        first = str(exc.problems[0]) if exc.problems else str(exc)
        more = f" (and {len(exc.problems) - 1} more: bloom-pipeline mapping validate)" if len(exc.problems) > 1 else ""
        _config_error(f"org {org_name!r}: {first}{more}")
    except FileNotFoundError as exc:
        _config_error(str(exc))
    end = until or default_window(org.timezone).until
    start = since or end - timedelta(days=DEFAULT_DAYS - 1)
    try:
        window = DayWindow(start, end)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from exc
    root = settings.data_dir(data_dir)
    store = StagingStore.for_org(org.name, data_dir=root)
    if not store.path.exists():
        _config_error(f"no staging database for org {org.name!r} at {store.path}; "
                      f"run `bloom-pipeline sync --org {org.name}` first")
    try:
        endpoints = resolve_endpoints(org)
    except ConfigurationError as exc:
        _config_error(str(exc))
    clients = build_clients(org, endpoints, budget_dir=Path(root) / "ratelimit")
    try:
        result = reconcile_org(org, store, clients.bloomerang, window)
    except ConfigurationError as exc:  # e.g. a correlation custom field Bloomerang lacks
        _config_error(str(exc))
    except AuthError as exc:  # a key Bloomerang refuses is a configuration problem too
        _config_error(str(exc))
    except ApiError as exc:  # its text never holds a key
        click.echo(f"error: Bloomerang could not be read: {exc}", err=True)
        sys.exit(1)
    finally:
        clients.close()
    write_reconciliation(store, result)
    for line in text_lines(result):
        click.echo(line)
    sys.exit(result.exit_code)


def register(group: click.Group) -> None:
    group.add_command(reconcile_command)
