"""The org-partitioned Dagster graph, run as operators run it: ``org_sync_job`` for the demo partition,
against the sandbox APIs over loopback HTTP (issue 4).

What it protects: the run loads Bloomerang; the UI tells the story (row counts, reject counts with their
top reasons, a Markdown run summary on the load assets); the blocking pandera checks pass and gate the
load; every row is accounted for; a rejected donor sits in ``quarantine`` with its reason and raw record;
a batch over the reject threshold stops the load before any write, and the check, the run log and
``sync_runs`` say why; an analyst holding the published snapshot open never blocks nor sees a half run.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

from bloom_pipeline.defs.definitions_builder import build_definitions
from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging import accounting
from bloom_pipeline.staging.store import StagingStore

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

REPO = Path(__file__).resolve().parents[2]
# 100 donors, seed 7: a few donors and contacts with malformed emails (under the demo's 5% reject limit)
DONORS, SEED = 100, 7
WEGIVE_DONOR_FIELD = 901  # the sandbox's "WeGive Donor ID" custom field, the demo org's correlation field
WRITES = {"POST", "PUT", "DELETE", "PATCH"}
LOAD_ASSETS = ("bloomerang_funds", "bloomerang_constituents", "bloomerang_transactions", "source_writebacks")

# A second org whose credentials are not set: it must not break the demo's runs.
ACME_YAML = """\
name: acme
extends: [defaults/wegive, defaults/handbid]
timezone: America/Chicago
bloomerang: {api_key_env: ACME_BLOOMERANG_API_KEY}
wegive: {token_env: ACME_WEGIVE_TOKEN}
handbid: {token_env: ACME_HANDBID_TOKEN, organization_id: 12}
"""


@dataclass
class DagsterWorld:
    sb: Sandbox
    mappings: Path
    data_dir: Path
    defs: dg.Definitions
    instance: dg.DagsterInstance

    @property
    def store(self) -> StagingStore:
        return StagingStore.for_org("demo", data_dir=self.data_dir)

    def run(self, **kwargs: Any) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def("org_sync_job")
        return job.execute_in_process(partition_key="demo", instance=self.instance, tags={"org": "demo"}, **kwargs)

    def frame(self, sql: str, params: list[Any] | None = None):
        return self.store.read_frame(sql, params or [])


def org_mappings(root: Path, sb: Sandbox, **demo_overrides: Any) -> Path:
    """A copy of the repo's mappings whose demo org knows the sandbox's Handbid organization."""
    mappings = root / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    demo = mappings / "orgs" / "demo.yaml"
    doc = yaml.safe_load(demo.read_text())
    doc.setdefault("handbid", {})["organization_id"] = sb.handbid_org_id
    doc.update(demo_overrides)
    demo.write_text(yaml.safe_dump(doc, sort_keys=False))
    (mappings / "orgs" / "acme.yaml").write_text(ACME_YAML)
    return mappings


def point_at(mp: pytest.MonkeyPatch, sb: Sandbox, data_dir: Path) -> None:
    mp.setenv("BLOOMERANG_API_URL", sb.urls["bloomerang"])
    mp.setenv("WEGIVE_API_URL", sb.urls["wegive"])
    mp.setenv("HANDBID_API_URL", sb.urls["handbid"])
    mp.setenv("BLOOM_DATA_DIR", str(data_dir))
    for name in ("DEMO_BLOOMERANG_API_KEY", "DEMO_WEGIVE_TOKEN", "DEMO_HANDBID_TOKEN",
                 "ACME_BLOOMERANG_API_KEY", "ACME_WEGIVE_TOKEN", "ACME_HANDBID_TOKEN"):
        mp.delenv(name, raising=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterWorld]:
    root = tmp_path_factory.mktemp("dagster")
    sb = Sandbox(donors=DONORS, seed=SEED, knobs=Knobs(rate_limit=None)).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            point_at(mp, sb, root / "data")
            mappings = org_mappings(root, sb)
            defs = build_definitions(mappings_dir=mappings, data_dir=str(root / "data"))
            yield DagsterWorld(sb, mappings, root / "data", defs, dg.DagsterInstance.ephemeral())
    finally:
        sb.stop()


@dataclass
class FirstRun:
    result: dg.ExecuteInProcessResult
    constituents_before: int


@pytest.fixture(scope="module")
def first_run(world: DagsterWorld) -> FirstRun:
    before = len(world.sb.stores["bloomerang"].constituents)
    return FirstRun(world.run(), before)


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def run_row(world: DagsterWorld, run_id: str) -> dict[str, Any]:
    rows = world.frame("SELECT * FROM sync_runs WHERE run_id = ?", [run_id]).to_dict("records")
    assert len(rows) == 1, f"expected one sync_runs row for {run_id}"
    return rows[0]


# -- a full run ------------------------------------------------------------------------------------------


def test_org_sync_job_loads_bloomerang(world: DagsterWorld, first_run: FirstRun) -> None:
    result = first_run.result
    assert result.success
    assert set(materializations(result)) >= {"raw_bloomerang", "raw_wegive", "raw_handbid", "stg_funds",
                                             "stg_constituents", "stg_transactions", "push_plan", *LOAD_ASSETS}
    row = run_row(world, result.run_id)
    created = json.loads(row["counts"])["constituents"]["created"]
    bloomerang = world.sb.stores["bloomerang"]
    assert created > 50
    assert len(bloomerang.constituents) - first_run.constituents_before == created
    assert len(bloomerang.transactions) > 0
    posts = world.sb.request_log.counts("bloomerang")
    assert posts[("bloomerang", "POST", "/v2/constituent")] == created


def test_stage_metadata_shows_row_counts_and_top_reject_reasons(first_run: FirstRun) -> None:
    meta = materializations(first_run.result)
    people = meta["stg_constituents"]
    assert people["dagster/row_count"] > 50
    assert people["extracted"] == people["dagster/row_count"] + people["quarantined"]
    assert people["values left out"] >= 1, "the world's malformed emails are left out, the donors staged"
    assert "is not a valid email address" in people["top reasons values were left out"]
    assert meta["stg_transactions"]["excluded by mapping rules"] >= 1  # failed / pending payments are no gifts
    assert meta["raw_wegive"]["dagster/row_count"] > 0


def test_the_load_reports_progress_in_the_run_log(world: DagsterWorld, first_run: FirstRun) -> None:
    """Plain progress lines per entity in the Dagster run log; the status file is gone once the run ends."""
    logs = [entry.user_message for entry in world.instance.all_logs(first_run.result.run_id)]
    assert any(m.startswith("apply constituents: ") and "writes" in m for m in logs), logs[-20:]
    assert any(m.startswith("apply transactions: ") for m in logs)
    assert not (world.data_dir / "demo_progress.json").exists()


def test_load_assets_carry_counts_and_a_markdown_run_summary(first_run: FirstRun) -> None:
    meta = materializations(first_run.result)
    for name in LOAD_ASSETS:
        summary = meta[name]["run summary"]
        assert "Sync of org `demo`: succeeded" in summary
        assert "| constituents |" in summary and "| transactions |" in summary
        assert "**In short**" in summary and "- next: bloom-pipeline " in summary  # the CLI's story, first
        assert "is not a valid email address" in summary  # the values left out, with their reasons
    people = meta["bloomerang_constituents"]
    assert people["created"] > 50 and people["failed"] == 0
    assert people["quarantined"] == meta["stg_constituents"]["quarantined"]
    assert meta["bloomerang_transactions"]["created"] > 0


def test_blocking_checks_and_row_accounting_pass(first_run: FirstRun) -> None:
    checks = check_evaluations(first_run.result)
    for entity in ("funds", "constituents", "transactions"):
        valid = checks[(f"stg_{entity}", "valid")]
        assert valid.passed, valid.description
        assert valid.metadata["schema valid"].value is True
    accounting_check = checks[("bloomerang_transactions", "row_accounting")]
    assert accounting_check.passed, accounting_check.description
    assert accounting_check.description == "every row accounted for"


def test_sync_runs_row_closes_the_run_with_its_counts(world: DagsterWorld, first_run: FirstRun) -> None:
    row = run_row(world, first_run.result.run_id)
    assert row["status"] == "succeeded"
    assert row["org"] == "demo" and row["direction"] == "both"
    assert row["ended_at"] is not None and row["message"] is None
    counts = json.loads(row["counts"])
    assert set(counts) >= {"funds", "constituents", "transactions"}
    assert counts["constituents"]["fields_dropped"] >= 1


def test_every_row_is_accounted_for(world: DagsterWorld, first_run: FirstRun) -> None:
    run_id = first_run.result.run_id
    with world.store.connect() as con:
        accounts = accounting.compute_accounts(con, run_id, direction="both")
    assert accounting.check_accounts(accounts) == []
    for name, a in accounts.items():
        assert a.extracted > 0, name
        assert a.extracted == a.staged + a.quarantined, name
        assert a.staged == a.created + a.updated + a.unchanged + a.skipped + a.failed, name
    frozen = json.loads(run_row(world, run_id)["counts"])
    assert {k: v["extracted"] for k, v in frozen.items()} == {k: a.extracted for k, a in accounts.items()}


def test_quarantine_holds_a_dropped_email_with_reason_and_raw_record(world: DagsterWorld,
                                                                     first_run: FirstRun) -> None:
    """A malformed email is left out with its reason (kind 'field'); the donor itself reaches Bloomerang."""
    rows = world.frame(
        "SELECT source_id, field, value, reasons, raw FROM quarantine WHERE run_id = ? AND source = 'wegive' "
        "AND entity = 'donors' AND kind = 'field' ORDER BY source_id", [first_run.result.run_id],
    ).to_dict("records")
    assert rows, "the sandbox world has donors with malformed emails"
    donor = rows[0]
    reasons = list(donor["reasons"])
    assert any("is not a valid email address" in r for r in reasons)
    assert donor["field"] == "PrimaryEmail.Value"
    raw = json.loads(donor["raw"])
    assert str(raw["id"]) == donor["source_id"]
    bad_email = reasons[0].split("'")[1]
    assert bad_email == donor["value"]
    assert bad_email in {raw.get("email"), raw.get("email_1"), raw.get("email_2")}
    bloomerang = world.sb.stores["bloomerang"]
    synced_ids = {
        str(value.get("Value", {}).get("Value") if isinstance(value.get("Value"), dict) else value.get("Value"))
        for cid in list(bloomerang.constituents)
        for value in bloomerang.render_constituent(cid).get("CustomValues") or []
        if value.get("FieldId") == WEGIVE_DONOR_FIELD
    }
    assert donor["source_id"] in synced_ids, "the donor and its gifts flow without the bad email"
    assert bad_email not in {e.get("Value") for e in bloomerang.emails.values()}, "nothing invalid is ever sent"


# -- the analyst snapshot --------------------------------------------------------------------------------

READER = r"""
import json, os, sys, time
import duckdb
path, stop = sys.argv[1], sys.argv[2]
con = duckdb.connect(path, read_only=True)
def look():
    runs = con.execute("SELECT list(run_id ORDER BY run_id) FROM sync_runs").fetchone()[0]
    staged = con.execute("SELECT count(*) FROM stg_constituents").fetchone()[0]
    return [runs, staged]
seen, times, errors = [], [], []
print(json.dumps(look()), flush=True)
while not os.path.exists(stop):
    try:
        observed = look()
        if observed not in seen:
            seen.append(observed)
        times.append(time.time())
    except Exception as exc:
        errors.append(repr(exc))
    time.sleep(0.02)
print(json.dumps({"seen": seen, "times": times, "errors": errors}), flush=True)
"""


def test_analyst_holds_the_snapshot_open_across_a_full_sync(world: DagsterWorld, first_run: FirstRun,
                                                            tmp_path: Path) -> None:
    snapshot = world.data_dir / "demo.duckdb"
    assert snapshot.exists(), "the first run publishes the analyst snapshot"
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(snapshot), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line = reader.stdout.readline()  # the reader holds the file open from here on
        assert first_line, reader.stderr.read()
        before = json.loads(first_line)
        assert before[0] == [first_run.result.run_id]
        started = time.time()
        second = world.run()
        finished = time.time()
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=30)
    assert reader.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert second.success
    assert report["errors"] == []
    assert report["seen"] == [before], "the reader saw only the old, complete run"
    assert sum(started < t < finished for t in report["times"]) > 5, "the reader kept querying during the run"
    # a new connection after the run sees the new run
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS snap (READ_ONLY)", [str(snapshot)])
        runs = con.execute("SELECT run_id, status FROM snap.sync_runs ORDER BY started_at").fetchall()
    finally:
        con.close()
    assert runs == [(first_run.result.run_id, "succeeded"), (second.run_id, "succeeded")]


def test_handbid_job_pushes_handbid_only_and_rewrites_nothing(world: DagsterWorld, first_run: FirstRun) -> None:
    """The reconciled-auction sensor's job: no WeGive extract, a push-only run; after the nightly sync
    every Handbid record is unchanged, so it writes nothing to Bloomerang."""
    writes_before = sum(n for k, n in world.sb.request_log.counts("bloomerang").items() if k[1] in WRITES)
    result = world.defs.resolve_job_def("handbid_transactions_job").execute_in_process(
        partition_key="demo", instance=world.instance, tags={"org": "demo", "bloom/trigger": "test"})
    assert result.success
    done = materializations(result)
    assert "raw_wegive" not in done and "raw_handbid" in done
    assert done["bloomerang_transactions"]["created"] == 0
    assert check_evaluations(result)[("bloomerang_transactions", "row_accounting")].passed
    row = run_row(world, result.run_id)
    assert (row["direction"], row["status"]) == ("push", "succeeded")
    writes_after = sum(n for k, n in world.sb.request_log.counts("bloomerang").items() if k[1] in WRITES)
    assert writes_after == writes_before


# -- a batch over the reject threshold -------------------------------------------------------------------


def test_a_batch_over_the_reject_threshold_stops_the_load(tmp_path: Path) -> None:
    sb = Sandbox(donors=60, seed=SEED, knobs=Knobs(rate_limit=None)).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            point_at(mp, sb, tmp_path / "data")
            # the org asks that a malformed email rejects its donor; the threshold has no floor
            reject_bad_emails = {"wegive": {"donors": {"branches": {
                "individual": {"PrimaryEmail.Value": {"on_invalid": "reject_record"}}}}}}
            mappings = org_mappings(tmp_path, sb, thresholds={"max_reject_share": 0.0, "min_rejects": 0},
                                    mappings=reject_bad_emails)
            defs = build_definitions(mappings_dir=mappings, data_dir=str(tmp_path / "data"))
            instance = dg.DagsterInstance.ephemeral()
            world = DagsterWorld(sb, mappings, tmp_path / "data", defs, instance)
            before = len(sb.stores["bloomerang"].constituents)
            result = world.run(raise_on_error=False)
            logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
            writes = [e for e in sb.request_log.entries if e.method in WRITES]
            after = len(sb.stores["bloomerang"].constituents)
    finally:
        sb.stop()

    assert not result.success
    assert writes == [], "nothing may be written anywhere when the load is stopped"
    assert after == before
    done = set(materializations(result))
    assert "stg_constituents" in done
    assert done.isdisjoint({"push_plan", *LOAD_ASSETS}), "the load assets must not run"

    valid = check_evaluations(result)[("stg_constituents", "valid")]
    assert not valid.passed
    assert "over the org's limit of 0.0%" in valid.description and "the load was stopped" in valid.description
    assert "is not a valid email address" in valid.metadata["top reject reasons"].value
    assert "is not a valid email address" in valid.metadata["rejected records (sample)"].value
    assert valid.metadata["max reject share"].value == 0.0
    assert any("load halted for org demo" in m and "over the org's limit" in m for m in logs)

    row = run_row(world, result.run_id)
    assert row["status"] == "halted"
    assert "constituents records were rejected" in row["message"]
    people = json.loads(row["counts"])["constituents"]
    assert people["extracted"] == people["staged"] + people["quarantined"]
    assert os.path.exists(tmp_path / "data" / "demo.duckdb"), "a halted run still publishes what it staged"
