"""The ``reconciliation`` asset check on ``bloomerang_transactions``: do the totals agree after the load?

After each sync of an org, the last 30 days (org time zone) are reconciled exactly as ``bloom-pipeline
reconcile`` does (``bloom_pipeline.reconcile``): source, staged and Bloomerang totals per day and fund. The
mismatching days/funds and the records explaining them are the check's Markdown metadata, and the result is
kept in the org's ``reconciliation`` tables. A mismatch **warns** (it does not fail the run): the gifts are in
Bloomerang or quarantined with a reason, and a finance team decides what to do about an edit made there.

Partitioned like the asset it checks (one org per partition), for the reason ``checks.py`` gives; the preview
warning of partitioned checks is silenced where the check is declared, on purpose.
"""

import warnings

import dagster as dg

from bloom_pipeline.defs.metadata import markdown_table
from bloom_pipeline.defs.resources import OrgCredentials, SyncSettings
from bloom_pipeline.reconcile import render
from bloom_pipeline.reconcile.run import default_window, reconcile_org
from bloom_pipeline.reconcile.table import write_reconciliation
from bloom_pipeline.sync.endpoints import build_clients

RECONCILIATION = "reconciliation"
RECONCILED_ASSET = "bloomerang_transactions"
MAX_ROWS = 50  # Markdown kept readable in the UI; the tables in the org's DuckDB hold every row


def _table(header: tuple[str, ...], rows: list[tuple], what: str) -> str:
    shown = markdown_table(header, rows[:MAX_ROWS])
    return shown + (f"\n\n…and {len(rows) - MAX_ROWS} more {what} (see the `reconciliation` tables)"
                    if len(rows) > MAX_ROWS else "")


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The ``reconciliation`` check, for the org partitions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitions_def on a check: deliberate (docstring)

        @dg.asset_check(asset=RECONCILED_ASSET, name=RECONCILIATION, partitions_def=partitions_def,
                        description="source (WeGive, Handbid), staged and Bloomerang totals agree per day and fund "
                                    "over the last 30 days; every difference is explained by records")
        def reconciliation(context: dg.AssetCheckExecutionContext, sync_settings: SyncSettings,
                           credentials: OrgCredentials) -> dg.AssetCheckResult:
            org = sync_settings.org(context.partition_key)
            store = sync_settings.store(org.name)
            clients = build_clients(org, credentials.endpoints(org), budget_dir=store.path.parent / "ratelimit")
            try:
                result = reconcile_org(org, store, clients.bloomerang, default_window(org.timezone))
            finally:
                clients.close()
            write_reconciliation(store, result)
            mismatches = render.total_rows(result, only_mismatches=True)
            records = render.record_rows(result)
            return dg.AssetCheckResult(
                passed=result.matches,
                severity=dg.AssetCheckSeverity.WARN,
                description=render.summary(result),
                metadata={
                    "window": dg.MetadataValue.text(str(result.window)),
                    "mismatching days and funds": dg.MetadataValue.md(
                        _table(render.TOTAL_HEADER, mismatches, "days/funds") if mismatches
                        else "every day and fund matches"),
                    "explaining records": dg.MetadataValue.md(
                        _table(render.RECORD_HEADER, records, "records") if records else "none"),
                    "day/fund rows": dg.MetadataValue.int(len(result.totals)),
                    "records": dg.MetadataValue.int(len(records)),
                },
            )

    return [reconciliation]
