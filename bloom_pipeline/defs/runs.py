"""Which sync run a Dagster step belongs to, and the ``OrgSync`` every asset step works on.

Every step of the org graph reads and writes the org's DuckDB staging file keyed by the sync run id — the
Dagster run id, or for a re-execution of part of a run the id of the run that extracted
(:func:`sync_run_id`) — so the steps are the same functions the CLI runs in one process, and a load
re-executed from failure applies exactly the plan its run stored. Shared by the asset modules and the
row-accounting check, which is why it is a module of its own and not part of one layer.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from bloom_pipeline.defs.resources import OrgCredentials, SyncSettings
from bloom_pipeline.defs.tags import DIRECTION_TAG
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.sync.endpoints import build_clients
from bloom_pipeline.sync.extract.records import load_extracted
from bloom_pipeline.sync.garbage import fewer_collections
from bloom_pipeline.sync.runner import OrgSync, RunOptions

OPENER = "raw_bloomerang"  # the step that opens a sync run in ``sync_runs``
FINISHED = ("succeeded", "halted")

StepContext = dg.AssetExecutionContext | dg.AssetCheckExecutionContext


@contextmanager
def org_sync(context: dg.AssetExecutionContext, org_name: str, settings: SyncSettings, credentials: OrgCredentials,
             *, window: Window | None = None, direction: str | None = None, opens: bool = False) -> Iterator[OrgSync]:
    """The run's ``OrgSync`` for one org, with what earlier steps extracted read back from staging.

    The org's keys are read here, when its step runs (``credentials.endpoints``). Every step but the opener
    checks that its sync run was opened and is not finished, so a lone materialization of a later asset fails
    with a reason instead of loading nothing or loading twice."""
    org = settings.org(org_name)
    store = settings.store(org_name)
    run_id = sync_run_id(context)
    if not opens:
        _require_open_run(store, run_id)
    clients = build_clients(org, credentials.endpoints(org), budget_dir=store.path.parent / "ratelimit")
    try:
        options = RunOptions(direction=direction or run_direction(context), window=window)
        sync = OrgSync(org, store, clients, options, run_id=run_id)
        # the step's many connections share one open database (StagingStore.kept_open); sync/garbage.py
        with store.kept_open(), fewer_collections():
            sync.ctx.extracted = load_extracted(store, sync.run_id)
            yield sync
    finally:
        clients.close()


def run_direction(context: StepContext) -> str:
    return context.run.tags.get(DIRECTION_TAG, "both")


def _opens_sync(run: dg.DagsterRun) -> bool:
    if run.step_keys_to_execute is not None:
        return OPENER in run.step_keys_to_execute
    if run.asset_selection is not None:
        return dg.AssetKey(OPENER) in run.asset_selection
    return True


def sync_run_id(context: StepContext) -> str:
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
