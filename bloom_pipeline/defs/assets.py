"""The sync as Dagster assets: a thin shell over ``bloom_pipeline.sync`` (no logic of its own here).

Org-partitioned graph (the nightly bidirectional job): ``raw_bloomerang``, ``raw_wegive``,
``raw_handbid`` → ``stg_funds`` / ``stg_constituents`` / ``stg_transactions`` (blocking pandera checks:
a table that failed, or a batch over the org's reject threshold, stops the load) → ``push_plan`` →
``bloomerang_funds`` / ``bloomerang_constituents`` / ``bloomerang_transactions`` / ``source_writebacks``
(with the row-accounting check). Every step reads and writes the org's DuckDB staging file, keyed by
the sync run id — the Dagster run id, or for a re-execution of part of a run the id of the run that
extracted (``sync_run_id``) — so the steps are the same functions the CLI runs in one process, and a
load re-executed from failure applies exactly the plan its run stored.

``wegive_transactions_daily`` is partitioned by date × org for backfills: a multi-run backfill policy
hands one run up to 100 days, which it extracts with one created-date window.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date

import dagster as dg
import pandas as pd

from bloom_pipeline.defs import metadata as md
from bloom_pipeline.defs import partitions
from bloom_pipeline.defs.resources import SyncSettings, api_resource_key
from bloom_pipeline.staging import accounting, ledgers
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.sync.endpoints import build_clients
from bloom_pipeline.sync.extract.bloomerang import extract_bloomerang
from bloom_pipeline.sync.extract.handbid import extract_handbid
from bloom_pipeline.sync.extract.records import load_extracted
from bloom_pipeline.sync.extract.wegive import extract_wegive
from bloom_pipeline.sync.plan.push_plan import stored_plan
from bloom_pipeline.sync.runner import OrgSync, RunOptions, run_sync

DIRECTION_TAG = "bloom/direction"
STAGED = ("funds", "constituents", "transactions")
OPENER = "raw_bloomerang"  # the step that opens a sync run in ``sync_runs``
FINISHED = ("succeeded", "halted")


@contextmanager
def _org_sync(context: dg.AssetExecutionContext, org_name: str, *, window: Window | None = None,
              direction: str | None = None, opens: bool = False) -> Iterator[OrgSync]:
    """The run's ``OrgSync`` for one org, with what earlier steps extracted read back from staging.

    Every step but the opener checks that its sync run was opened and is not finished, so a lone
    materialization of a later asset fails with a reason instead of loading nothing or loading twice."""
    settings: SyncSettings = context.resources.sync_settings
    org = settings.org(org_name)
    store = settings.store(org_name)
    run_id = sync_run_id(context)
    if not opens:
        _require_open_run(store, run_id)
    keys = getattr(context.resources, api_resource_key(org_name))
    clients = build_clients(org, keys.endpoints(org), budget_dir=store.path.parent / "ratelimit")
    try:
        options = RunOptions(direction=direction or run_direction(context), window=window)
        sync = OrgSync(org, store, clients, options, run_id=run_id)
        sync.ctx.extracted = load_extracted(store, sync.run_id)
        yield sync
    finally:
        clients.close()


def run_direction(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    return context.run.tags.get(DIRECTION_TAG, "both")


def _opens_sync(run: dg.DagsterRun) -> bool:
    if run.step_keys_to_execute is not None:
        return OPENER in run.step_keys_to_execute
    if run.asset_selection is not None:
        return dg.AssetKey(OPENER) in run.asset_selection
    return True


def sync_run_id(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> str:
    """The sync run (``sync_runs.run_id``) a step belongs to: its own Dagster run, or — when the run
    re-executes part of an earlier one ("re-execute from failure" in the UI) — the nearest ancestor run
    that extracted, so the re-executed load applies exactly the plan that run staged."""
    run = context.run
    while not _opens_sync(run) and run.parent_run_id:
        parent = context.instance.get_run_by_id(run.parent_run_id)
        if parent is None:
            break
        run = parent
    return run.run_id


def _require_open_run(store: StagingStore, run_id: str) -> None:
    with store.connect() as con:
        row = ledgers.get_run(con, run_id)
    if row is None:
        raise dg.Failure(f"sync run {run_id} was never opened: materialize the org's whole graph (org_sync_job) "
                         f"or re-execute a run that extracted, not a later asset on its own")
    if row["status"] in FINISHED:
        raise dg.Failure(f"sync run {run_id} already finished ({row['status']}); start a new run of org_sync_job")


def _extract_metadata(sync: OrgSync, prefix: str) -> dict[str, object]:
    counts = {k: len(v) for k, v in sorted(sync.extracted.records.items()) if k.startswith(prefix)}
    return {
        "dagster/row_count": dg.MetadataValue.int(sum(counts.values())),
        "rows": dg.MetadataValue.md(md.markdown_table(("source.entity", "rows"), list(counts.items()))),
    }


def build_assets(orgs: Sequence[str]) -> list:
    """Every asset and check of the code location, for the given orgs."""
    org_parts = partitions.org_partitions(list(orgs))
    daily_parts = partitions.org_day_partitions(list(orgs))
    resource_keys = {"sync_settings", *(api_resource_key(o) for o in orgs)}
    common = {"partitions_def": org_parts, "required_resource_keys": resource_keys}

    @dg.asset(group_name="extract", kinds={"duckdb"}, **common)
    def raw_bloomerang(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Bloomerang constituents changed since the cursor (upserted into the snapshot), funds,
        campaigns, appeals and custom fields. Opens the run in ``sync_runs`` and settles the writes a
        killed run left pending, before anything is planned."""
        with _org_sync(context, context.partition_key, opens=True) as sync:
            sync.start()
            recovered = sync.recover()
            extract_bloomerang(sync.clients.bloomerang, sync.store, sync.run_id, sync.extracted)
            return dg.MaterializeResult(metadata={**_extract_metadata(sync, "bloomerang."),
                                                  "recovered pending writes": dg.MetadataValue.int(len(recovered))})

    @dg.asset(group_name="extract", kinds={"duckdb"}, deps=[raw_bloomerang], **common)
    def raw_wegive(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """WeGive donors (full scan), funds, fund allocations and transactions changed since the cursor."""
        with _org_sync(context, context.partition_key) as sync:
            extract_wegive(sync.clients.wegive, sync.store, sync.run_id, sync.extracted)
            return dg.MaterializeResult(metadata=_extract_metadata(sync, "wegive."))

    @dg.asset(group_name="extract", kinds={"duckdb"}, deps=[raw_bloomerang], **common)
    def raw_handbid(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Handbid contacts changed since the cursor; payments, receipts and items of reconciled auctions."""
        with _org_sync(context, context.partition_key) as sync:
            extract_handbid(sync.clients.handbid, sync.store, sync.run_id, sync.extracted)
            return dg.MaterializeResult(metadata=_extract_metadata(sync, "handbid."))

    @dg.multi_asset(
        specs=[dg.AssetSpec(f"stg_{e}", group_name="staging", kinds={"duckdb", "pandera"},
                            deps=[raw_bloomerang, raw_wegive, raw_handbid],
                            description=f"Staged {e}: mapped with the org YAML, one row per valid record")
               for e in STAGED],
        check_specs=[dg.AssetCheckSpec("valid", asset=f"stg_{e}", blocking=True,
                                       description="pandera schema (lazy) and the org's reject threshold; "
                                                   "a failure stops the load")
                     for e in STAGED],
        can_subset=False,
        **common,
    )
    def staged(context: dg.AssetExecutionContext):
        """Map with the org YAML, stage, quarantine rejects with reasons, validate each table.

        A table that fails its pandera model, or a batch over the org's reject threshold, fails its
        blocking ``valid`` check: Dagster then runs nothing downstream, so nothing is written to
        Bloomerang from it. The run is closed in ``sync_runs`` as 'halted' with the reason."""
        with _org_sync(context, context.partition_key) as sync:
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
                yield dg.AssetCheckResult(
                    asset_key=f"stg_{entity}", check_name="valid", passed=gate.passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=(f"{gate.blocked_reason}; the load was stopped" if gate.blocked_reason
                                 else "schema valid and rejects within the org's threshold"),
                    metadata=md.check_metadata(gate, limit, sample),
                )

    @dg.asset(group_name="plan", kinds={"duckdb"}, deps=["stg_funds", "stg_constituents", "stg_transactions"],
              **common)
    def push_plan(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Per record create / update (with the field diff) / unchanged / blocked — what the load applies."""
        with _org_sync(context, context.partition_key) as sync:
            plan = sync.plan()
        counts = plan.groupby(["entity", "action"]).size().unstack(fill_value=0) if len(plan) else pd.DataFrame()
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(len(plan)),
            "by action": dg.MetadataValue.md(counts.to_markdown() if len(counts) else "nothing to do"),
        })

    load_specs = [dg.AssetSpec(name, group_name="load", deps=[push_plan], kinds={"bloomerang"},
                               description=f"Bloomerang {name.removeprefix('bloomerang_')} written by this sync")
                  for name in ("bloomerang_funds", "bloomerang_constituents", "bloomerang_transactions")]
    load_specs.append(dg.AssetSpec("source_writebacks", group_name="load", deps=[push_plan],
                                   kinds={"wegive", "handbid"},
                                   description="Bloomerang changes written back to WeGive donors and Handbid contacts"))

    @dg.multi_asset(specs=load_specs, can_subset=False, **common)
    def bloomerang_load(context: dg.AssetExecutionContext):
        """Apply the stored plan in dependency order, then merge linked donors both ways; finish the run
        (row accounting into ``sync_runs``, cursors, analyst snapshot)."""
        with _org_sync(context, context.partition_key) as sync:
            sync.report.plan = stored_plan(sync.store, sync.run_id)
            sync.apply()
            sync.report.gates = md.stored_gates(sync.store, sync.run_id)
            report = sync.finish()
        summary = md.run_summary(report, sync.options.direction)
        context.log.info(f"sync of org {report.org}: {report.status}" + (f" ({report.message})" if report.message
                                                                         else ""))
        for name in ("bloomerang_funds", "bloomerang_constituents", "bloomerang_transactions"):
            yield dg.MaterializeResult(asset_key=name,
                                       metadata=md.load_metadata(report, name.removeprefix("bloomerang_"), summary))
        merged = report.counts.get("constituents", {})
        yield dg.MaterializeResult(asset_key="source_writebacks", metadata={
            "pulled": dg.MetadataValue.int(int(merged.get("merged_pull", 0))),
            "conflicts": dg.MetadataValue.int(report.conflicts),
            "queued for review": dg.MetadataValue.int(report.review_items),
            "run summary": dg.MetadataValue.md(summary)})

    @dg.asset_check(asset="bloomerang_transactions", required_resource_keys=resource_keys,
                    description="extracted = staged + quarantined; staged = created + updated + unchanged + "
                                "skipped + failed, per entity, for this run")
    def row_accounting(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        org = _org_from_run(context)
        store = context.resources.sync_settings.store(org)
        with store.connect() as con:
            accounts = accounting.compute_accounts(con, sync_run_id(context), direction=run_direction(context))
        problems = accounting.check_accounts(accounts)
        return dg.AssetCheckResult(passed=not problems, description="; ".join(problems) or "every row accounted for",
                                   metadata={"counts": dg.MetadataValue.json(accounting.counts_json(accounts)),
                                             "accounts": dg.MetadataValue.md(md.accounting_markdown(accounts))})

    @dg.asset(group_name="backfill", kinds={"wegive", "bloomerang"}, partitions_def=daily_parts,
              backfill_policy=partitions.TRANSACTION_BACKFILL_POLICY, required_resource_keys=resource_keys)
    def wegive_transactions_daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """WeGive transactions created on the partition days, pushed to Bloomerang (donors and funds first).
        One run covers every day the backfill hands it, with one created-date window per org."""
        summaries = {}
        for org_name, days in partitions.days_by_org(context).items():
            window = Window(date.fromisoformat(days[0]), date.fromisoformat(days[-1]))
            with _org_sync(context, org_name, window=window, direction="push", opens=True) as base:
                report = run_sync(base.org, base.store, base.clients, base.options,
                                  run_id=f"{context.run.run_id}-{org_name}")
            summaries[org_name] = {"days": len(days), "window": f"{window.start}..{window.end}",
                                   "status": report.status, **report.counts.get("transactions", {})}
            if report.status != "succeeded":
                raise dg.Failure(f"{org_name}: {report.message}")
        return dg.MaterializeResult(metadata={"orgs": dg.MetadataValue.json(summaries)})

    return [raw_bloomerang, raw_wegive, raw_handbid, staged, push_plan, bloomerang_load, row_accounting,
            wegive_transactions_daily]


def _org_from_run(context: dg.AssetCheckExecutionContext) -> str:
    tags = context.run.tags
    key = tags.get("dagster/partition") or tags.get("org")
    if key is None:
        raise dg.Failure("the row-accounting check needs an org-partitioned run")
    return key.split("|")[-1]
