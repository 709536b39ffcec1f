"""The code location as Dagster loads it: a snapshot of asset keys, checks, partitions, jobs, schedules and
sensors; loading with no secret set; org discovery from the mappings directory; credentials that stay in
the environment (an org whose variables are unset fails only its own runs, saying which variable); and
which sync run a step belongs to (a re-executed load applies the plan its original run stored).

A change to the graph that breaks these snapshots changes what operators see in the UI and what existing
runs, schedules and backfills refer to: update the snapshot deliberately, not by accident.
"""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from bloom_pipeline.defs.definitions_builder import build_definitions
from bloom_pipeline.defs.runs import sync_run_id
from bloom_pipeline.staging import ledgers, review
from bloom_pipeline.staging.store import StagingStore

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

REPO = Path(__file__).resolve().parents[2]
SECRET_ENV = ("DEMO_BLOOMERANG_API_KEY", "DEMO_WEGIVE_TOKEN", "DEMO_HANDBID_TOKEN", "ACME_BLOOMERANG_API_KEY",
              "ACME_WEGIVE_TOKEN", "ACME_HANDBID_TOKEN", "BLOOMERANG_API_URL", "WEGIVE_API_URL", "HANDBID_API_URL")

# asset -> (group, upstream assets)
GRAPH = {
    "raw_bloomerang": ("extract", set()),
    "raw_wegive": ("extract", {"raw_bloomerang"}),
    "raw_handbid": ("extract", {"raw_bloomerang"}),
    "stg_funds": ("staging", {"raw_bloomerang", "raw_wegive", "raw_handbid"}),
    "stg_constituents": ("staging", {"raw_bloomerang", "raw_wegive", "raw_handbid"}),
    "stg_transactions": ("staging", {"raw_bloomerang", "raw_wegive", "raw_handbid"}),
    "push_plan": ("plan", {"stg_funds", "stg_constituents", "stg_transactions"}),
    "bloomerang_funds": ("load", {"push_plan"}),
    "bloomerang_constituents": ("load", {"push_plan"}),
    "bloomerang_transactions": ("load", {"push_plan"}),
    "source_writebacks": ("load", {"push_plan"}),
    "donor_conflicts": ("review", {"source_writebacks"}),
    "review_queue": ("review", {"source_writebacks"}),
    "wegive_transactions_daily": ("backfill", set()),
}
CHECKS = {("stg_funds", "valid"): True, ("stg_constituents", "valid"): True, ("stg_transactions", "valid"): True,
          ("bloomerang_transactions", "row_accounting"): False,
          ("bloomerang_transactions", "reconciliation"): False,
          ("review_queue", "review_age"): False}  # -> blocking
ORG_SYNC_ASSETS = {name for name, (group, _) in GRAPH.items() if group != "backfill"}

ACME_YAML = """\
name: acme
extends: [defaults/wegive, defaults/handbid]
timezone: America/Chicago
schedule: {cron: "30 3 * * *"}
bloomerang: {api_key_env: ACME_BLOOMERANG_API_KEY}
wegive: {token_env: ACME_WEGIVE_TOKEN}
handbid: {token_env: ACME_HANDBID_TOKEN, organization_id: 12}
"""


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def two_orgs(tmp_path: Path) -> Path:
    """The repo's mappings plus org ``acme`` (no credentials set) and a broken org file."""
    mappings = tmp_path / "mappings"
    (mappings / "orgs").mkdir(parents=True)
    (mappings / "defaults").symlink_to(REPO / "mappings" / "defaults")
    (mappings / "orgs" / "demo.yaml").write_text((REPO / "mappings" / "orgs" / "demo.yaml").read_text())
    (mappings / "orgs" / "acme.yaml").write_text(ACME_YAML)
    (mappings / "orgs" / "broken.yaml").write_text("name: broken\ntimezone: Not/AZone\nextends: [defaults/nope]\n")
    return mappings


def _check_specs(defs: dg.Definitions) -> dict[tuple[str, str], bool]:
    specs = {}
    for definition in defs.assets or []:
        for spec in getattr(definition, "check_specs", []):
            specs[(spec.asset_key.to_user_string(), spec.name)] = spec.blocking
    return specs


def test_dagster_validates_the_code_location_with_no_secret_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV and not k.startswith("DAGSTER_")}
    env.update(BLOOM_MAPPINGS_DIR=str(REPO / "mappings"), BLOOM_DATA_DIR=str(tmp_path / "data"))
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "definitions", "validate", "-m", "bloom_pipeline.definitions"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr
    assert not (tmp_path / "data").exists(), "loading the definitions must not touch the data directory"


def test_asset_graph_snapshot(no_secrets: None) -> None:
    defs = build_definitions(mappings_dir=REPO / "mappings")
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == set(GRAPH)
    for name, (group, upstream) in GRAPH.items():
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == group, name
        assert {k.to_user_string() for k in node.parent_keys} == upstream, name
    assert _check_specs(defs) == CHECKS

    org_parts = graph.get(dg.AssetKey("push_plan")).partitions_def
    assert isinstance(org_parts, dg.StaticPartitionsDefinition)
    assert org_parts.get_partition_keys() == ["demo"]
    for name in ORG_SYNC_ASSETS:
        assert graph.get(dg.AssetKey(name)).partitions_def == org_parts, name
    daily = graph.get(dg.AssetKey("wegive_transactions_daily"))
    assert isinstance(daily.partitions_def, dg.MultiPartitionsDefinition)
    dims = {d.name: d.partitions_def for d in daily.partitions_def.partitions_defs}
    assert set(dims) == {"date", "org"}
    assert isinstance(dims["date"], dg.DailyPartitionsDefinition) and dims["org"] == org_parts
    assert daily.backfill_policy is not None and daily.backfill_policy.max_partitions_per_run == 100


def test_jobs_schedules_and_sensors_snapshot(no_secrets: None) -> None:
    defs = build_definitions(mappings_dir=REPO / "mappings")
    sync_job = defs.resolve_job_def("org_sync_job")
    assert {k.to_user_string() for k in sync_job.asset_layer.selected_asset_keys} == ORG_SYNC_ASSETS
    assert sync_job.executor_def.name == "in_process"
    assert sync_job.tags.get("bloom/direction") == "both"
    handbid = defs.resolve_job_def("handbid_transactions_job")
    assert {k.to_user_string() for k in handbid.asset_layer.selected_asset_keys} == ORG_SYNC_ASSETS - {"raw_wegive"}
    backfill = defs.resolve_job_def("transactions_backfill_job")
    assert {k.to_user_string() for k in backfill.asset_layer.selected_asset_keys} == {"wegive_transactions_daily"}

    schedules = {s.name: s for s in defs.schedules or []}
    assert set(schedules) == {"nightly_sync_demo"}
    nightly = schedules["nightly_sync_demo"]
    assert (nightly.cron_schedule, nightly.execution_timezone, nightly.job_name) == \
        ("0 2 * * *", "America/Denver", "org_sync_job")
    sensors = {s.name for s in defs.sensors or []}
    assert sensors == {"handbid_reconciled_demo", "run_failure_alerts"}


def test_orgs_come_from_the_mapping_files_and_a_broken_one_is_skipped(two_orgs: Path, no_secrets: None) -> None:
    defs = build_definitions(mappings_dir=two_orgs)
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("push_plan")).partitions_def.get_partition_keys() == ["acme", "demo"]
    assert {s.name for s in defs.schedules or []} == {"nightly_sync_acme", "nightly_sync_demo"}
    assert set(defs.resources or {}) == {"sync_settings", "credentials"}
    dg.Definitions.validate_loadable(defs)


def test_credentials_stay_in_the_environment(two_orgs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_BLOOMERANG_API_KEY", "acme-bloomerang-secret-93c1")
    defs = build_definitions(mappings_dir=two_orgs)
    resources = repr(defs.resources)
    assert "acme-bloomerang-secret-93c1" not in resources
    assert "ACME_BLOOMERANG_API_KEY" in resources  # the UI shows which variable, never its value


def test_an_org_without_credentials_fails_only_its_own_run(two_orgs: Path, no_secrets: None,
                                                            tmp_path: Path) -> None:
    defs = build_definitions(mappings_dir=two_orgs, data_dir=str(tmp_path / "data"))
    result = defs.resolve_job_def("org_sync_job").execute_in_process(
        partition_key="acme", instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["raw_bloomerang"]
    error = failures[0].event_specific_data.error.to_string()
    assert "ConfigurationError" in error and "ACME_BLOOMERANG_API_KEY" in error


# -- which sync run a step belongs to -----------------------------------------------------------------


def _stored_run(instance: dg.DagsterInstance, run_id: str, steps: list[str] | None = None,
                parent: str | None = None) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="org_sync_job", run_id=run_id, step_keys_to_execute=steps,
                        parent_run_id=parent, root_run_id=None if parent is None else "full")
    instance.add_run(run)
    return run


def test_a_re_executed_load_belongs_to_the_run_that_extracted() -> None:
    instance = dg.DagsterInstance.ephemeral()
    _stored_run(instance, "full")
    _stored_run(instance, "from-failure", ["bloomerang_load", "bloomerang_transactions_row_accounting"], "full")
    again = _stored_run(instance, "from-failure-again", ["bloomerang_load"], "from-failure")
    everything = _stored_run(instance, "re-execute-all", ["raw_bloomerang", "raw_wegive", "bloomerang_load"], "full")

    def step(run: dg.DagsterRun) -> SimpleNamespace:
        return SimpleNamespace(run=run, instance=instance)

    assert sync_run_id(step(again)) == "full"  # applies the plan the extracting run stored
    assert sync_run_id(step(everything)) == "re-execute-all"  # extracted again: a sync run of its own
    assert sync_run_id(step(instance.get_run_by_id("full"))) == "full"


def test_a_later_asset_on_its_own_fails_with_the_reason(no_secrets: None, tmp_path: Path) -> None:
    defs = build_definitions(mappings_dir=REPO / "mappings", data_dir=str(tmp_path / "data"))
    result = defs.resolve_job_def("org_sync_job").execute_in_process(
        partition_key="demo", instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        asset_selection=[dg.AssetKey("push_plan")])
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["push_plan"]
    assert "was never opened" in failures[0].event_specific_data.error.message


# -- the review layer ---------------------------------------------------------------------------------


def test_the_review_layer_shows_what_the_merge_wrote_and_warns_on_old_items(no_secrets: None, tmp_path: Path) -> None:
    """``donor_conflicts`` shows this run's decisions only; ``review_queue`` the open items; ``review_age`` warns
    once one waited longer than the org's ``review.max_age_days`` (the demo's default, 7)."""
    run_id = "5c1d7a3e-0b1e-4c2d-9e3f-000000000016"
    store = StagingStore.for_org("demo", data_dir=tmp_path / "data")
    decided = dict(entity="constituents", source="wegive", source_id="17", field="phone", bloomerang_id=204,
                   source_value="3035550155", bloomerang_value="(720) 555-0166")
    with store.connect() as con:
        ledgers.append_conflicts(con, "an-earlier-run", [ledgers.Conflict(**decided, rule="later_wins",
                                                                          winner="source")])
        ledgers.append_conflicts(con, run_id, [ledgers.Conflict(**decided, rule="within_skew", winner="review")])
        review.add_review(con, run_id, review.ReviewItem(**decided, reason="within_skew"))
        con.execute("UPDATE review_queue SET created_at = created_at - INTERVAL 8 DAY")
    defs = build_definitions(mappings_dir=REPO / "mappings", data_dir=str(tmp_path / "data"))
    result = defs.resolve_job_def("org_sync_job").execute_in_process(
        partition_key="demo", instance=dg.DagsterInstance.ephemeral(), run_id=run_id,
        asset_selection=[dg.AssetKey("donor_conflicts"), dg.AssetKey("review_queue")])
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    conflicts, queue = meta["donor_conflicts"], meta["review_queue"]
    assert conflicts["dagster/row_count"].value == 1 and conflicts["sent to review"].value == 1
    assert "constituents wegive:17 ↔ bloomerang:204" in conflicts["decisions"].value
    assert "later_wins" not in conflicts["decisions"].value  # the earlier run's decision is not this run's
    assert queue["dagster/row_count"].value == 1 and queue["oldest wait (days)"].value >= 8
    assert "bloom-pipeline review resolve --org demo" in queue["open items"].value
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed, check.severity) == ("review_age", False, dg.AssetCheckSeverity.WARN)
    assert "waited longer than 7 day(s)" in check.description
    assert check.metadata["overdue items"].value == 1
