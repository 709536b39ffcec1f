"""Layer ``load``: the stored plan applied to Bloomerang, linked donors merged both ways, the run finished.

One multi-asset, because applying in dependency order (funds → constituents → transactions), the merge and
the end of the run (row accounting into ``sync_runs``, cursors, analyst snapshot) are one step of the core;
each load asset carries its counts and the Markdown run summary. The ``row_accounting`` check on
``bloomerang_transactions`` is in ``defs/checks.py``.
"""

from typing import Any

import dagster as dg

from bloom_pipeline.defs import metadata as md
from bloom_pipeline.defs.resources import OrgCredentials, SyncSettings
from bloom_pipeline.defs.runs import org_sync
from bloom_pipeline.sync.plan.push_plan import stored_plan
from bloom_pipeline.sync.progress import Progress, reporting, state_path
from bloom_pipeline.sync.runner import attach_progress

GROUP = "load"
BLOOMERANG_ASSETS = ("bloomerang_funds", "bloomerang_constituents", "bloomerang_transactions")
WRITEBACKS = "source_writebacks"


class _LogLines:
    """A text stream whose complete lines go to the Dagster run log (the progress reporter writes lines)."""

    def __init__(self, log: Any) -> None:
        self.log, self._pending = log, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self.log.info(line.strip())
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    specs = [dg.AssetSpec(name, group_name=GROUP, deps=["push_plan"], kinds={"bloomerang"},
                          description=f"Bloomerang {name.removeprefix('bloomerang_')} written by this sync")
             for name in BLOOMERANG_ASSETS]
    specs.append(dg.AssetSpec(WRITEBACKS, group_name=GROUP, deps=["push_plan"], kinds={"wegive", "handbid"},
                              description="Bloomerang changes written back to WeGive donors and Handbid contacts"))

    @dg.multi_asset(specs=specs, can_subset=False, partitions_def=partitions_def)
    def bloomerang_load(context: dg.AssetExecutionContext, sync_settings: SyncSettings,
                        credentials: OrgCredentials):
        """Apply the stored plan in dependency order, then merge linked donors both ways; finish the run
        (row accounting into ``sync_runs``, cursors, analyst snapshot)."""
        with org_sync(context, context.partition_key, sync_settings, credentials) as sync:
            sync.report.plan = stored_plan(sync.store, sync.run_id)
            # progress as plain lines in the run's log, and the file `bloom-pipeline status` reads
            progress = Progress(_LogLines(context.log), live=False,
                                state_file=state_path(sync.store.path.parent, sync.org.name))
            attach_progress(progress, sync)
            with reporting(progress):
                sync.apply()
            sync.report.gates = md.stored_gates(sync.store, sync.run_id)
            report = sync.finish()
        summary = md.run_summary(report, sync.options.direction)
        context.log.info(f"sync of org {report.org}: {report.status}" + (f" ({report.message})" if report.message
                                                                         else ""))
        for name in BLOOMERANG_ASSETS:
            yield dg.MaterializeResult(asset_key=name,
                                       metadata=md.load_metadata(report, name.removeprefix("bloomerang_"), summary))
        merged = report.counts.get("constituents", {})
        yield dg.MaterializeResult(asset_key=WRITEBACKS, metadata={
            "pulled": dg.MetadataValue.int(int(merged.get("merged_pull", 0))),
            "conflicts": dg.MetadataValue.int(report.conflicts),
            "queued for review": dg.MetadataValue.int(report.review_items),
            "run summary": dg.MetadataValue.md(summary)})

    return [bloomerang_load]
