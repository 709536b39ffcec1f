"""Layer ``plan``: ``push_plan``, per record create / update (with the field diff) / unchanged / blocked.

Identity and planning are one step of the core (``OrgSync.plan``); the plan it stores is what the load
applies, so a load re-executed from failure applies exactly this plan.
"""

import dagster as dg
import pandas as pd

from bloom_pipeline.defs.resources import OrgCredentials, SyncSettings
from bloom_pipeline.defs.runs import org_sync

GROUP = "plan"


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(group_name=GROUP, kinds={"duckdb"}, deps=["stg_funds", "stg_constituents", "stg_transactions"],
              partitions_def=partitions_def)
    def push_plan(context: dg.AssetExecutionContext, sync_settings: SyncSettings,
                  credentials: OrgCredentials) -> dg.MaterializeResult:
        """Per record create / update (with the field diff) / unchanged / blocked — what the load applies."""
        with org_sync(context, context.partition_key, sync_settings, credentials) as sync:
            plan = sync.plan()
        counts = plan.groupby(["entity", "action"]).size().unstack(fill_value=0) if len(plan) else pd.DataFrame()
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(len(plan)),
            "by action": dg.MetadataValue.md(counts.to_markdown() if len(counts) else "nothing to do"),
        })

    return [push_plan]
