"""Layer ``staging``: the ``raw_*`` tables mapped with the org YAML into ``stg_*``, rejects quarantined.

One multi-asset for the three tables, because mapping, quarantining and validating are one step of the
core (``OrgSync.stage``); it also reports the blocking ``valid`` check of each table (declared in
``defs/checks.py``), since the gate is computed by the same step.
"""

import dagster as dg

from bloom_pipeline.defs import checks
from bloom_pipeline.defs import metadata as md
from bloom_pipeline.defs.resources import OrgCredentials, SyncSettings
from bloom_pipeline.defs.runs import org_sync

GROUP = "staging"
STAGED = ("funds", "constituents", "transactions")
UPSTREAM = ("raw_bloomerang", "raw_wegive", "raw_handbid")


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        specs=[dg.AssetSpec(f"stg_{e}", group_name=GROUP, kinds={"duckdb", "pandera"}, deps=list(UPSTREAM),
                            description=f"Staged {e}: mapped with the org YAML, one row per valid record")
               for e in STAGED],
        check_specs=checks.valid_specs([f"stg_{e}" for e in STAGED]),
        can_subset=False,
        partitions_def=partitions_def,
    )
    def staged(context: dg.AssetExecutionContext, sync_settings: SyncSettings, credentials: OrgCredentials):
        """Map with the org YAML, stage, quarantine rejects with reasons, validate each table.

        A table that fails its pandera model, or a batch over the org's reject threshold, fails its
        blocking ``valid`` check: Dagster then runs nothing downstream, so nothing is written to
        Bloomerang from it. The run is closed in ``sync_runs`` as 'halted' with the reason."""
        with org_sync(context, context.partition_key, sync_settings, credentials) as sync:
            gates = sync.stage()
            halted = [g.blocked_reason for g in gates.values() if not g.passed]
            if halted:
                sync.finish(status="halted")
                context.log.error(f"load halted for org {sync.org.name}: " + "; ".join(map(str, halted)))
            limit = sync.org.thresholds.max_reject_share
            for entity in STAGED:
                gate = gates[entity]
                yield dg.MaterializeResult(asset_key=f"stg_{entity}", metadata=md.staged_metadata(gate))
                sample = md.quarantine_sample(sync.store, sync.run_id, entity)
                yield checks.valid_result(f"stg_{entity}", gate, md.check_metadata(gate, limit, sample))

    return [staged]
