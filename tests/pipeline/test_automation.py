"""Schedules and sensors (issue 6): per-org nightly schedules in each org's time zone, the sensor that
starts the Handbid sync when an auction becomes reconciled (against the sandbox over HTTP), and the
run-failure sensor that records the failure in sync_runs and posts to the org's webhook.

The jobs are tiny org-partitioned stand-ins, so these tests protect the automation, not the assets.
"""

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from bloom_pipeline.defs import alerts
from bloom_pipeline.defs.definitions_builder import build_automation
from bloom_pipeline.defs.sensors import org_of_run
from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.settings import HANDBID_SANDBOX_TOKEN
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

ORGS = ["acme", "zeta", "sandy"]
BLOOMERANG_SECRET = "acme-bloomerang-secret-5f2e9a"
WEBHOOK_URL_ENV = "ACME_ALERT_WEBHOOK"

# -- stand-in jobs ------------------------------------------------------------------------------------

ORG_PARTITIONS = dg.StaticPartitionsDefinition(ORGS)


@dg.asset(partitions_def=ORG_PARTITIONS)
def stand_in_sync(context: dg.AssetExecutionContext) -> None:
    """Fails like a sync whose API answered with an error message quoting the key (it must be redacted)."""
    if context.run.tags.get("fail") == "after_start":  # the run had started its sync_runs row
        with StagingStore.for_org(context.partition_key).write() as con:
            ledgers.start_run(con, context.run_id, org=context.partition_key, direction="pull")
    if context.run.tags.get("fail"):
        raise RuntimeError(f"Bloomerang refused key {os.environ.get('ACME_BLOOMERANG_API_KEY')}: 401")


@dg.asset(partitions_def=ORG_PARTITIONS)
def stand_in_handbid(context: dg.AssetExecutionContext) -> None:
    if context.run.tags.get("fail"):
        raise RuntimeError("Handbid payments of auction 3 could not be mapped")


SYNC_JOB = dg.define_asset_job("sync_job", selection=[stand_in_sync], partitions_def=ORG_PARTITIONS)
HANDBID_JOB = dg.define_asset_job("handbid_job", selection=[stand_in_handbid], partitions_def=ORG_PARTITIONS)
JOBS = dg.Definitions(assets=[stand_in_sync, stand_in_handbid], jobs=[SYNC_JOB, HANDBID_JOB])

# -- org YAML -------------------------------------------------------------------------------------------


def write_org(root: Path, name: str, body: str) -> None:
    (root / "orgs").mkdir(parents=True, exist_ok=True)
    (root / "orgs" / f"{name}.yaml").write_text(f"name: {name}\n{body}", encoding="utf-8")


def org_yaml(root: Path, handbid_url: str = "http://127.0.0.1:9", handbid_org_id: int = 7) -> None:
    write_org(root, "acme", f"""timezone: America/New_York
bloomerang: {{base_url: "http://127.0.0.1:9/v2", api_key_env: ACME_BLOOMERANG_API_KEY}}
wegive: {{base_url: "http://127.0.0.1:9/api", token_env: ACME_WEGIVE_TOKEN}}
handbid: {{base_url: "{handbid_url}", token_env: ACME_HANDBID_TOKEN, organization_id: {handbid_org_id}}}
alerts: {{webhook_url_env: {WEBHOOK_URL_ENV}}}
""")
    write_org(root, "zeta", """timezone: America/Los_Angeles
schedule: {cron: "30 4 * * 1-5", timezone: Pacific/Auckland}
bloomerang: {base_url: "http://127.0.0.1:9/v2", api_key_env: ZETA_BLOOMERANG_API_KEY}
wegive: {base_url: "http://127.0.0.1:9/api", token_env: ZETA_WEGIVE_TOKEN}
handbid: {base_url: "http://127.0.0.1:9", token_env: ZETA_HANDBID_TOKEN, organization_id: 8}
""")
    write_org(root, "sandy", """timezone: Europe/Berlin
sandbox_fallback: true
bloomerang: {api_key_env: SANDY_BLOOMERANG_API_KEY}
wegive: {token_env: SANDY_WEGIVE_TOKEN}
""")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BLOOMERANG_API_URL", "WEGIVE_API_URL", "HANDBID_API_URL", WEBHOOK_URL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BLOOM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ACME_BLOOMERANG_API_KEY", BLOOMERANG_SECRET)
    monkeypatch.setenv("ACME_WEGIVE_TOKEN", "acme-wegive-token")
    monkeypatch.setenv("ACME_HANDBID_TOKEN", HANDBID_SANDBOX_TOKEN)


def automation(root: Path, webserver_url: str | None = None) -> tuple[dict, dict]:
    orgs = [load_org(name, mappings_dir=root) for name in ORGS]
    schedules, sensors = build_automation(orgs, sync_job=SYNC_JOB, handbid_job=HANDBID_JOB,
                                          mappings_dir=str(root), webserver_url=webserver_url)
    return {s.name: s for s in schedules}, {s.name: s for s in sensors}


def repository(root: Path) -> dg.RepositoryDefinition:
    """The stand-in jobs with the automation, as a code location would load them (partition keys checked)."""
    schedules, sensors = automation(root)
    return dg.Definitions(assets=[stand_in_sync, stand_in_handbid], jobs=[SYNC_JOB, HANDBID_JOB],
                          schedules=list(schedules.values()), sensors=list(sensors.values())).get_repository_def()


def schedule_tick(repo: dg.RepositoryDefinition, name: str, when: datetime) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo)
    return repo.get_schedule_def(name).evaluate_tick(context).run_requests


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    root = tmp_path / "mappings"
    org_yaml(root)
    return root


# -- schedules ------------------------------------------------------------------------------------------


def test_one_nightly_schedule_per_org_with_its_cron_and_time_zone(mappings: Path) -> None:
    schedules, _ = automation(mappings)

    assert sorted(schedules) == ["nightly_sync_acme", "nightly_sync_sandy", "nightly_sync_zeta"]
    acme, zeta, sandy = schedules["nightly_sync_acme"], schedules["nightly_sync_zeta"], schedules["nightly_sync_sandy"]
    assert (acme.cron_schedule, acme.execution_timezone) == ("0 2 * * *", "America/New_York")  # the default
    assert (zeta.cron_schedule, zeta.execution_timezone) == ("30 4 * * 1-5", "Pacific/Auckland")  # schedule tz wins
    assert sandy.execution_timezone == "Europe/Berlin"
    assert acme.job_name == zeta.job_name == "sync_job"
    # real orgs ship running; the sandbox-backed demo org ships stopped (no sandbox at 02:00)
    assert acme.default_status == zeta.default_status == dg.DefaultScheduleStatus.RUNNING
    assert sandy.default_status == dg.DefaultScheduleStatus.STOPPED


def test_default_schedule_ticks_at_two_in_the_morning_local_time(mappings: Path) -> None:
    acme = automation(mappings)[0]["nightly_sync_acme"]
    start = datetime(2026, 6, 30, 12, 0, tzinfo=UTC).timestamp()

    ticks = cron_string_iterator(start, acme.cron_schedule, acme.execution_timezone)
    first, second = next(ticks), next(ticks)

    assert (first.isoformat(), second.isoformat()) == ("2026-07-01T02:00:00-04:00", "2026-07-02T02:00:00-04:00")


def test_each_tick_requests_the_org_partition_of_the_bidirectional_sync(mappings: Path) -> None:
    repo = repository(mappings)
    new_york_two_am = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    auckland_four_thirty = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # Mon 2 Mar 04:30 NZDT

    acme = schedule_tick(repo, "nightly_sync_acme", new_york_two_am)
    zeta = schedule_tick(repo, "nightly_sync_zeta", auckland_four_thirty)

    assert [(r.partition_key, r.run_key) for r in acme] == [("acme", "nightly_sync:acme:2026-03-01T02:00-05:00")]
    assert [(r.partition_key, r.run_key) for r in zeta] == [("zeta", "nightly_sync:zeta:2026-03-02T04:30+13:00")]
    ours = {"org": "acme", "bloom/direction": "both", "bloom/trigger": "schedule"}
    assert acme[0].tags.items() >= {**ours, "dagster/partition": "acme"}.items()
    assert (zeta[0].tags["org"], zeta[0].tags["dagster/partition"]) == ("zeta", "zeta")


def test_a_tick_evaluated_twice_asks_for_the_same_run_and_the_next_night_for_a_new_one(mappings: Path) -> None:
    repo = repository(mappings)

    def run_key(when: datetime) -> str:
        return schedule_tick(repo, "nightly_sync_acme", when)[0].run_key

    tonight = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    assert run_key(tonight) == run_key(tonight)
    assert run_key(tonight) != run_key(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))


def test_an_unusable_cron_names_the_org(tmp_path: Path) -> None:
    org = OrgConfig(name="acme", timezone="UTC", schedule={"cron": "61 2 * * *"})

    with pytest.raises(ValueError, match=r"org 'acme': schedule.cron '61 2 \* \* \*'"):
        build_automation([org], sync_job=SYNC_JOB, handbid_job=HANDBID_JOB, mappings_dir=str(tmp_path))


def test_automation_loads_in_definitions_with_the_jobs(mappings: Path) -> None:
    repo = repository(mappings)

    # acme and zeta use Handbid; sandy (WeGive only) gets no Handbid sensor
    assert sorted(s.name for s in repo.sensor_defs) == ["handbid_reconciled_acme", "handbid_reconciled_zeta",
                                                         "run_failure_alerts"]
    assert repo.get_sensor_def("handbid_reconciled_acme").minimum_interval_seconds == 300
    assert repo.get_sensor_def("run_failure_alerts").default_status == dg.DefaultSensorStatus.RUNNING


# -- reconciled-auction sensor -----------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(donors=30, seed=11) as sb:
        yield sb


def reconciled_ids(sb: Sandbox) -> list[str]:
    auctions = sb.stores["handbid"].auctions.values()
    return sorted((str(a["id"]) for a in auctions if a["status"] == "reconciled"), key=int)


class Ticker:
    """Evaluates one sensor of the repository the way the daemon does, cursor in, cursor out."""

    def __init__(self, root: Path, name: str) -> None:
        self.repo = repository(root)
        self.sensor = self.repo.get_sensor_def(name)

    def __call__(self, cursor: str | None) -> Any:  # SensorExecutionData (not exported)
        context = dg.build_sensor_context(cursor=cursor, sensor_name=self.sensor.name, repository_def=self.repo)
        return self.sensor.evaluate_tick(context)


def test_reconciled_sensor_requests_each_newly_reconciled_auction_once(
    env: None, tmp_path: Path, sandbox: Sandbox
) -> None:
    root = tmp_path / "hb"
    org_yaml(root, sandbox.urls["handbid"], sandbox.handbid_org_id)
    tick = Ticker(root, "handbid_reconciled_acme")
    already = reconciled_ids(sandbox)
    assert len(already) >= 2

    first = tick(None)
    [request] = first.run_requests
    assert request.partition_key == "acme"
    ours = {"org": "acme", "bloom/trigger": "auction_reconciled", "bloom/auctions": ",".join(already)}
    assert request.tags.items() >= ours.items()
    assert request.run_key.startswith("handbid_reconciled:acme:")

    second = tick(first.cursor)
    assert second.run_requests == []
    assert "no newly reconciled" in second.skip_message

    closed = next(a for a in sandbox.stores["handbid"].auctions.values() if a["status"] == "closed")
    sandbox.stores["handbid"].set_auction_status(closed["id"], "reconciled")
    third = tick(second.cursor)
    [request] = third.run_requests
    assert request.tags["bloom/auctions"] == str(closed["id"])
    assert tick(third.cursor).run_requests == []


def test_an_event_the_org_sends_none_of_starts_no_run(env: None, tmp_path: Path, sandbox: Sandbox) -> None:
    """Handbid staff choose what goes to the CRM: an event with `send: none` in the org YAML is skipped."""
    root = tmp_path / "hb"
    org_yaml(root, sandbox.urls["handbid"], sandbox.handbid_org_id)
    held, *sent = reconciled_ids(sandbox)
    acme = root / "orgs" / "acme.yaml"
    acme.write_text(acme.read_text().replace(
        f"organization_id: {sandbox.handbid_org_id}}}",
        f"organization_id: {sandbox.handbid_org_id}, events: {{'{held}': {{send: none}}}}}}"))
    tick = Ticker(root, "handbid_reconciled_acme")
    [request] = tick(None).run_requests
    assert request.tags["bloom/auctions"] == ",".join(sent) and held not in request.tags["bloom/auctions"]


def test_an_auction_reconciled_again_is_synced_again(env: None, tmp_path: Path, sandbox: Sandbox) -> None:
    root = tmp_path / "hb"
    org_yaml(root, sandbox.urls["handbid"], sandbox.handbid_org_id)
    tick = Ticker(root, "handbid_reconciled_acme")
    store = sandbox.stores["handbid"]
    auction_id = int(reconciled_ids(sandbox)[0])
    first = tick(None)

    store.set_auction_status(auction_id, "closed")  # reopened to fix a payment ...
    reopened = tick(first.cursor)
    assert reopened.run_requests == []
    store.clock = lambda: datetime(2031, 1, 1, tzinfo=UTC)
    store.set_auction_status(auction_id, "reconciled")  # ... and reconciled again
    again = tick(reopened.cursor)

    [request] = again.run_requests
    assert request.tags["bloom/auctions"] == str(auction_id)
    assert request.run_key not in {r.run_key for r in first.run_requests}


def test_handbid_errors_skip_the_tick_without_leaking_the_token(
    env: None, tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "hb"
    org_yaml(root, sandbox.urls["handbid"], sandbox.handbid_org_id)
    tick = Ticker(root, "handbid_reconciled_acme")
    first = tick(None)
    monkeypatch.setenv("ACME_HANDBID_TOKEN", "wrong-token-9f8e7d6c")

    refused = tick(first.cursor)

    assert refused.run_requests == []
    assert "could not list Handbid auctions of org acme" in refused.skip_message
    assert "ACME_HANDBID_TOKEN" in refused.skip_message
    assert "wrong-token-9f8e7d6c" not in refused.skip_message
    assert refused.cursor == first.cursor  # nothing is forgotten: the next good tick carries on


def test_missing_handbid_credentials_skip_with_the_variable_to_set(env: None, mappings: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZETA_HANDBID_TOKEN", raising=False)
    tick = Ticker(mappings, "handbid_reconciled_zeta")

    skipped = tick(None)

    assert skipped.run_requests == []
    assert "ZETA_HANDBID_TOKEN" in skipped.skip_message


# -- run-failure sensor ---------------------------------------------------------------------------------


class Webhook:
    """A loopback HTTP server that records JSON POST bodies and answers with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.statuses = list(statuses or [])
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/secret-path"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Webhook":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def webhook(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    with Webhook() as hook:
        monkeypatch.setenv(WEBHOOK_URL_ENV, hook.url)
        yield hook


def fail_and_alert(sensor: dg.SensorDefinition, job_name: str, org: str, tags: dict[str, str]) -> tuple[str, object]:
    """Run a job that fails in an ephemeral instance, then hand its failure to the sensor."""
    instance = dg.DagsterInstance.ephemeral()
    result = JOBS.resolve_job_def(job_name).execute_in_process(
        instance=instance, partition_key=org, tags={"fail": "yes", **tags}, raise_on_error=False)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=result.get_run_failure_event(), dagster_instance=instance,
        dagster_run=result.dagster_run).for_run_failure()
    return result.run_id, sensor(context)


def sync_run(org: str, run_id: str) -> dict:
    with StagingStore.for_org(org).connect() as con:
        return ledgers.get_run(con, run_id)


def test_failed_sync_is_recorded_and_posted_to_the_org_webhook(mappings: Path, webhook: Webhook) -> None:
    sensor = automation(mappings, webserver_url="http://dagster.example:3000/")[1]["run_failure_alerts"]

    run_id, _ = fail_and_alert(sensor, "sync_job", "acme", {"org": "acme", "bloom/direction": "both"})

    [body] = webhook.bodies
    assert {k: body[k] for k in ("org", "job", "run_id", "dagster_url")} == {
        "org": "acme", "job": "sync_job", "run_id": run_id, "dagster_url": f"http://dagster.example:3000/runs/{run_id}"}
    assert "stand_in_sync: RuntimeError: Bloomerang refused key ***: 401" in body["error"]
    assert body["text"] == f"bloom_pipeline: sync_job failed for org acme (run {run_id}): " \
        "stand_in_sync: RuntimeError: Bloomerang refused key ***: 401"  # the cause, for chat webhooks
    row = sync_run("acme", run_id)
    assert (row["org"], row["direction"], row["status"]) == ("acme", "both", "failed")
    assert row["ended_at"] is not None
    assert "Bloomerang refused key ***" in row["message"]
    assert BLOOMERANG_SECRET not in json.dumps(body) + row["message"]


def test_a_started_run_row_is_finished_as_failed(mappings: Path, webhook: Webhook) -> None:
    sensor = automation(mappings)[1]["run_failure_alerts"]

    run_id, _ = fail_and_alert(sensor, "sync_job", "acme", {"org": "acme", "fail": "after_start"})

    row = sync_run("acme", run_id)
    assert (row["direction"], row["status"]) == ("pull", "failed")  # the run's own row, now closed
    assert "RuntimeError" in row["message"]
    assert "dagster_url" not in webhook.bodies[0]


def test_org_without_webhook_is_recorded_without_a_post(mappings: Path, webhook: Webhook) -> None:
    sensor = automation(mappings)[1]["run_failure_alerts"]

    run_id, _ = fail_and_alert(sensor, "handbid_job", "zeta",
                               {"org": "zeta", "bloom/trigger": "auction_reconciled", "bloom/auctions": "3"})

    assert webhook.bodies == []
    row = sync_run("zeta", run_id)
    assert (row["direction"], row["status"]) == ("push", "failed")  # Handbid payments flow into Bloomerang
    assert "could not be mapped" in row["message"]


def test_run_without_org_tag_is_attributed_by_its_partition(mappings: Path, webhook: Webhook) -> None:
    sensor = automation(mappings)[1]["run_failure_alerts"]

    run_id, _ = fail_and_alert(sensor, "sync_job", "acme", {})  # e.g. materialized by hand in the UI

    assert sync_run("acme", run_id)["status"] == "failed"
    assert webhook.bodies[0]["org"] == "acme"


def test_run_of_no_org_is_skipped(mappings: Path, env: None, tmp_path: Path) -> None:
    sensor = automation(mappings)[1]["run_failure_alerts"]
    instance = dg.DagsterInstance.ephemeral()

    @dg.op
    def explode() -> None:
        raise RuntimeError("housekeeping failed")

    result = dg.GraphDefinition("housekeeping", node_defs=[explode]).to_job().execute_in_process(
        instance=instance, raise_on_error=False)
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=result.get_run_failure_event(), dagster_instance=instance,
        dagster_run=result.dagster_run).for_run_failure()

    skipped = sensor(context)

    assert isinstance(skipped, dg.SkipReason) and "belongs to no org" in skipped.skip_message
    assert not (tmp_path / "data").exists()


def test_org_of_run_reads_tags_then_partition_keys() -> None:
    known = ["acme", "zeta"]
    assert org_of_run({"org": "zeta", "dagster/partition": "acme"}, known) == "zeta"
    assert org_of_run({"dagster/partition": "2025-03-01|acme"}, known) == "acme"
    assert org_of_run({"dagster/asset_partition_range_start": "2025-01-01|zeta"}, known) == "zeta"
    assert org_of_run({"dagster/partition": "2025-03-01"}, known) is None
    assert org_of_run({"org": "../etc"}, known) is None


def test_webhook_is_retried_once_and_never_raises(tmp_path: Path) -> None:
    payload = alerts.failure_payload("acme", "sync_job", "r1", "boom")
    with Webhook(statuses=[503, 200]) as flaky:
        assert alerts.post_webhook(flaky.url, payload, sleep=lambda _: None)
        assert len(flaky.bodies) == 2
    with Webhook(statuses=[500, 500, 500]) as down:
        assert not alerts.post_webhook(down.url, payload, sleep=lambda _: None)
        assert len(down.bodies) == 2  # one retry, then give up
    with Webhook(statuses=[404]) as wrong:
        assert not alerts.post_webhook(wrong.url, payload, sleep=lambda _: None)
        assert len(wrong.bodies) == 1  # a client error is not retried
    org = OrgConfig(name="acme", timezone="UTC", alerts={"webhook_url": "http://127.0.0.1:9/nothing-listens"})
    outcome = alerts.alert_failure("acme", org, job="sync_job", run_id="r2", error="boom", direction="both",
                                   data_dir=str(tmp_path))
    assert outcome.recorded == "created" and outcome.posted is False
    assert all("nothing-listens" not in problem for problem in outcome.problems)
