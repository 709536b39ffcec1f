"""Build the one ``Definitions`` of the code location from the org files in the mappings directory.

Orgs are discovered from ``mappings/orgs/*.yaml`` when the definitions are built (no code change to add
an org); an org whose YAML does not load is skipped with a warning, so one bad file never takes the
whole code location down (``bloom-pipeline mapping validate`` names the problem).
"""

import logging
import os
from pathlib import Path

import dagster as dg

from bloom_pipeline.defs import partitions
from bloom_pipeline.defs.assets import DIRECTION_TAG, build_assets
from bloom_pipeline.defs.automation import build_automation
from bloom_pipeline.defs.resources import build_resources
from bloom_pipeline.mapping.loader import MappingError, load_org

log = logging.getLogger(__name__)

ORG_SELECTION = dg.AssetSelection.groups("extract", "staging", "plan", "load")


def build_definitions(mappings_dir: str | Path | None = None, data_dir: str | None = None) -> dg.Definitions:
    """Assets, jobs, schedules, sensors and resources for every org in ``<mappings_dir>/orgs`` (default
    ``$BLOOM_MAPPINGS_DIR`` or ``./mappings``); ``data_dir`` None means ``$BLOOM_DATA_DIR`` or ``./data``,
    read when a run starts. Reads no secret: the definitions load with no credential set."""
    root = Path(mappings_dir or os.environ.get("BLOOM_MAPPINGS_DIR") or "mappings")
    orgs = []
    for name in partitions.discover_orgs(root):
        try:
            orgs.append(load_org(name, mappings_dir=root))
        except (MappingError, FileNotFoundError) as exc:
            log.warning("skipping org %s: %s", name, exc)
    names = [org.name for org in orgs] or ["demo"]
    assets = build_assets(names)
    org_parts = partitions.org_partitions(names)
    in_process = dg.in_process_executor  # ~8 s saved per run on 2 cores (STACK.md trap 9)
    sync_job = dg.define_asset_job(
        "org_sync_job", selection=ORG_SELECTION, partitions_def=org_parts, executor_def=in_process,
        tags={DIRECTION_TAG: "both"},
        description="Nightly bidirectional sync of one org: extract, stage, validate, plan, load, pull back.",
    )
    handbid_job = dg.define_asset_job(
        "handbid_transactions_job",
        selection=dg.AssetSelection.assets("raw_bloomerang", "raw_handbid", "stg_funds", "stg_constituents",
                                           "stg_transactions", "push_plan", "bloomerang_funds",
                                           "bloomerang_constituents", "bloomerang_transactions",
                                           "source_writebacks"),
        partitions_def=org_parts, executor_def=in_process, tags={DIRECTION_TAG: "push"},
        description="Sync the Handbid contacts and payments of reconciled auctions of one org.",
    )
    backfill_job = dg.define_asset_job(
        "transactions_backfill_job", selection=dg.AssetSelection.assets("wegive_transactions_daily"),
        partitions_def=partitions.org_day_partitions(names), executor_def=in_process,
        description="Push WeGive transactions by created day (use the UI's backfill for date ranges).",
    )
    schedules, sensors = build_automation(orgs, sync_job=sync_job, handbid_job=handbid_job, mappings_dir=str(root))
    return dg.Definitions(
        assets=assets,
        jobs=[sync_job, handbid_job, backfill_job],
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(str(root.resolve()), orgs, names, data_dir=data_dir),
    )
