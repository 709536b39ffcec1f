"""The three jobs operators launch, and what the schedules and sensors request.

* ``org_sync_job`` — the whole org graph (extract → staging → plan → load), bidirectional; the nightly
  schedule's job.
* ``handbid_transactions_job`` — the same graph without the WeGive extract, push only; the reconciled-auction
  sensor's job.
* ``transactions_backfill_job`` — ``wegive_transactions_daily``, by day × org.

All use the in-process executor: a run is one org's sequence of steps on one DuckDB file, so a process per
step only costs start-up time (~8 s per run on 2 cores, STACK.md trap 9).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import dagster as dg

from bloom_pipeline.defs.tags import DIRECTION_TAG

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

# what ``define_asset_job`` returns is not exported by dagster; the alias is for readers and type checkers
Job: TypeAlias = "dg.JobDefinition | UnresolvedAssetJobDefinition"

ORG_SELECTION = dg.AssetSelection.groups("extract", "staging", "plan", "load", "review")
HANDBID_SELECTION = dg.AssetSelection.assets(
    "raw_bloomerang", "raw_handbid", "stg_funds", "stg_constituents", "stg_transactions", "push_plan",
    "bloomerang_funds", "bloomerang_constituents", "bloomerang_transactions", "source_writebacks",
    "donor_conflicts", "review_queue",
)


@dataclass(frozen=True)
class Jobs:
    sync: Job
    handbid: Job
    backfill: Job

    def all(self) -> list[Job]:
        return [self.sync, self.handbid, self.backfill]


def build_jobs(*, note: str = "") -> Jobs:
    """The jobs; ``note`` (Markdown) is appended to every description — how the code location tells operators
    about org files it skipped. Each job's partitions are its assets' (Dagster infers them)."""
    in_process = dg.in_process_executor
    suffix = f"\n\n{note}" if note else ""
    return Jobs(
        sync=dg.define_asset_job(
            "org_sync_job", selection=ORG_SELECTION, executor_def=in_process,
            tags={DIRECTION_TAG: "both"},
            description="Nightly bidirectional sync of one org: extract, stage, validate, plan, load, pull back."
                        + suffix,
        ),
        handbid=dg.define_asset_job(
            "handbid_transactions_job", selection=HANDBID_SELECTION, executor_def=in_process,
            tags={DIRECTION_TAG: "push"},
            description="Sync the Handbid contacts and payments of reconciled auctions of one org." + suffix,
        ),
        backfill=dg.define_asset_job(
            "transactions_backfill_job", selection=dg.AssetSelection.assets("wegive_transactions_daily"),
            executor_def=in_process,
            description="Push WeGive transactions by created day (use the UI's backfill for date ranges)." + suffix,
        ),
    )
