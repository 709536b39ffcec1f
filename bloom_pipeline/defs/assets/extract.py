"""Layer ``extract``: the three APIs → the ``raw_*`` tables of the org's staging file, from the stored cursors.

``raw_bloomerang`` runs first: it opens the sync run in ``sync_runs`` and settles the writes a killed run
left pending, before anything is planned; ``raw_wegive`` and ``raw_handbid`` follow it.
"""

import dagster as dg

from bloom_pipeline.defs import metadata as md
from bloom_pipeline.defs.resources import OrgCredentials, SyncSettings
from bloom_pipeline.defs.runs import org_sync
from bloom_pipeline.sync.extract.bloomerang import extract_bloomerang
from bloom_pipeline.sync.extract.handbid import extract_handbid
from bloom_pipeline.sync.extract.retries import extract_retries
from bloom_pipeline.sync.extract.wegive import extract_wegive
from bloom_pipeline.sync.runner import OrgSync

GROUP = "extract"


def _extract_metadata(sync: OrgSync, prefix: str) -> dict[str, object]:
    counts = {k: len(v) for k, v in sorted(sync.extracted.records.items()) if k.startswith(prefix)}
    return {
        "dagster/row_count": dg.MetadataValue.int(sum(counts.values())),
        "rows": dg.MetadataValue.md(md.markdown_table(("source.entity", "rows"), list(counts.items()))),
    }


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(group_name=GROUP, kinds={"duckdb"}, partitions_def=partitions_def)
    def raw_bloomerang(context: dg.AssetExecutionContext, sync_settings: SyncSettings,
                       credentials: OrgCredentials) -> dg.MaterializeResult:
        """Bloomerang constituents changed since the cursor (upserted into the snapshot), funds,
        campaigns, appeals and custom fields. Opens the run in ``sync_runs`` and settles the writes a
        killed run left pending, before anything is planned."""
        with org_sync(context, context.partition_key, sync_settings, credentials, opens=True) as sync:
            sync.start()
            recovered = sync.recover()
            extract_bloomerang(sync.clients.bloomerang, sync.store, sync.run_id, sync.extracted)
            return dg.MaterializeResult(metadata={**_extract_metadata(sync, "bloomerang."),
                                                  "recovered pending writes": dg.MetadataValue.int(len(recovered))})

    @dg.asset(group_name=GROUP, kinds={"duckdb"}, deps=[raw_bloomerang], partitions_def=partitions_def)
    def raw_wegive(context: dg.AssetExecutionContext, sync_settings: SyncSettings,
                   credentials: OrgCredentials) -> dg.MaterializeResult:
        """WeGive donors (full scan), funds, fund allocations and transactions changed since the cursor."""
        with org_sync(context, context.partition_key, sync_settings, credentials) as sync:
            extract_wegive(sync.clients.wegive, sync.store, sync.run_id, sync.extracted,
                           read_connections=sync.org.wegive.read_connections)
            extract_retries(sync.store, sync.run_id, sync.extracted, ("wegive.transactions",))
            return dg.MaterializeResult(metadata=_extract_metadata(sync, "wegive."))

    @dg.asset(group_name=GROUP, kinds={"duckdb"}, deps=[raw_bloomerang], partitions_def=partitions_def)
    def raw_handbid(context: dg.AssetExecutionContext, sync_settings: SyncSettings,
                    credentials: OrgCredentials) -> dg.MaterializeResult:
        """Handbid contacts changed since the cursor; payments, receipts and items of reconciled auctions."""
        with org_sync(context, context.partition_key, sync_settings, credentials) as sync:
            extract_handbid(sync.clients.handbid, sync.store, sync.run_id, sync.extracted)
            extract_retries(sync.store, sync.run_id, sync.extracted, ("handbid.contacts",))
            return dg.MaterializeResult(metadata=_extract_metadata(sync, "handbid."))

    return [raw_bloomerang, raw_wegive, raw_handbid]
