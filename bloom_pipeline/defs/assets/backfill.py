"""Layer ``backfill``: ``wegive_transactions_daily``, WeGive transactions by created day × org.

Its multi-run backfill policy hands one run up to 100 days, which it extracts with one created-date window
per org and syncs (steps 1–5, push only) with ``run_sync`` — the CLI's one-process path — under the run id
``<dagster run id>-<org>``, since one Dagster run may cover several orgs.
"""

from datetime import date

import dagster as dg

from bloom_pipeline.defs import partitions
from bloom_pipeline.defs.resources import OrgCredentials, SyncSettings
from bloom_pipeline.defs.runs import org_sync
from bloom_pipeline.staging.store import Window
from bloom_pipeline.sync.runner import run_sync

GROUP = "backfill"


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(group_name=GROUP, kinds={"wegive", "bloomerang"}, partitions_def=partitions_def,
              backfill_policy=partitions.TRANSACTION_BACKFILL_POLICY)
    def wegive_transactions_daily(context: dg.AssetExecutionContext, sync_settings: SyncSettings,
                                  credentials: OrgCredentials) -> dg.MaterializeResult:
        """WeGive transactions created on the partition days, pushed to Bloomerang (donors and funds first).
        One run covers every day the backfill hands it, with one created-date window per org."""
        summaries = {}
        for org_name, days in partitions.days_by_org(context).items():
            window = Window(date.fromisoformat(days[0]), date.fromisoformat(days[-1]))
            with org_sync(context, org_name, sync_settings, credentials, window=window, direction="push",
                          opens=True) as base:
                report = run_sync(base.org, base.store, base.clients, base.options,
                                  run_id=f"{context.run.run_id}-{org_name}")
            summaries[org_name] = {"days": len(days), "window": f"{window.start}..{window.end}",
                                   "status": report.status, **report.counts.get("transactions", {})}
            if report.status != "succeeded":
                raise dg.Failure(f"{org_name}: {report.message}")
        return dg.MaterializeResult(metadata={"orgs": dg.MetadataValue.json(summaries)})

    return [wegive_transactions_daily]
