"""The Dagster UI, checked in a real browser: what an operator sees after the demo org's nightly sync.

One module-scoped stack: the sandbox APIs on loopback, ``dagster dev -m bloom_pipeline.definitions`` (webserver,
daemon, code server) on a free port with a temporary ``DAGSTER_HOME`` holding a copy of the repo's
``dagster.yaml``, and a copy of ``mappings/`` whose demo org knows the sandbox's Handbid organization. The
demo partition of ``org_sync_job`` is launched through the GraphQL API (as the UI's "Materialize" does, with
the tags a run launched by hand carries) and must succeed; then Chromium (Playwright) opens the pages an
operator reads: the asset graph with every layer, the ``stg_*`` checks with their metadata, the run's sync
summary, the conflict assets, the schedules and sensors, and a backfill of two days.

The browser comes from the system's packages (Debian ``chromium``, ``/usr/bin/chromium``; override with
``BLOOM_CHROMIUM``) and Playwright is driven with ``executable_path``: nothing is downloaded at run time. With
no browser the tests skip, or fail when ``BLOOM_TEST_REQUIRE_BROWSER`` is set (CI sets it).

Screenshots go to ``tests/ui/artifacts/`` (ignored by git; ``BLOOM_UI_ARTIFACTS`` overrides); the folder is
printed. The UI is a React app: every assertion waits for text with a timeout rather than sleeping.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging.store import StagingStore

pytestmark = pytest.mark.slow  # starts the sandbox, a Dagster instance and a browser

REPO = Path(__file__).resolve().parents[2]
ORG = "demo"
DONORS, SEED = 40, 20260
BROWSERS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
REQUIRE_BROWSER = "BLOOM_TEST_REQUIRE_BROWSER"
KEY_ENV = {"bloomerang": "DEMO_BLOOMERANG_API_KEY", "wegive": "DEMO_WEGIVE_TOKEN", "handbid": "DEMO_HANDBID_TOKEN"}
URL_ENV = {"bloomerang": "BLOOMERANG_API_URL", "wegive": "WEGIVE_API_URL", "handbid": "HANDBID_API_URL"}
LAYERS = ("extract", "staging", "plan", "load", "review", "backfill")  # the asset groups of bloom_pipeline/defs
STAGED = ("stg_funds", "stg_constituents", "stg_transactions")
BACKFILL_DAYS = ("2025-03-01", "2025-03-02")
START_TIMEOUT, RUN_TIMEOUT = 90.0, 120.0
UI_TIMEOUT_MS = 30_000


def browser_path() -> str | None:
    """The system's Chromium (``BLOOM_CHROMIUM`` first), or None."""
    for candidate in (os.environ.get("BLOOM_CHROMIUM"), *BROWSERS, shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def no_browser(reason: str) -> None:
    """Skip — or, when CI requires the browser (``BLOOM_TEST_REQUIRE_BROWSER``), fail — with the fix."""
    message = (f"{reason}: the UI test needs Playwright for Python and the system's Chromium "
               "(`apt-get install chromium`; `pip install -e .[dev]`), nothing is downloaded at run time")
    if os.environ.get(REQUIRE_BROWSER):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("BLOOM_UI_ARTIFACTS") or REPO / "tests" / "ui" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def demo_mappings(root: Path, sandbox: Sandbox) -> Path:
    """A copy of the repo's mappings whose demo org uses the sandbox's Handbid organization."""
    mappings = root / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    demo = mappings / "orgs" / f"{ORG}.yaml"
    doc = yaml.safe_load(demo.read_text())
    doc.setdefault("handbid", {})["organization_id"] = sandbox.handbid_org_id
    demo.write_text(yaml.safe_dump(doc, sort_keys=False))
    return mappings


def dagster_env(root: Path, sandbox: Sandbox, mappings: Path) -> dict[str, str]:
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(DAGSTER_HOME=str(home), BLOOM_MAPPINGS_DIR=str(mappings), BLOOM_DATA_DIR=str(root / "data"),
               PYTHONUNBUFFERED="1")
    env.update({URL_ENV[api]: url for api, url in sandbox.urls.items()})
    env.update({KEY_ENV[api]: sandbox.keys[api] for api in KEY_ENV})
    return env


@dataclass
class Dagster:
    """``dagster dev`` on a free port and its GraphQL endpoint."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    location: str = ""
    runs: dict[str, str] = field(default_factory=dict)

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,  # noqa: S310 (a loopback http URL)
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (loopback URL)
            payload = json.loads(answer.read())
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


LOCATIONS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on RepositoryLocation { repositories { name } } ... on PythonError { message } }
} } } }
"""
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message }
} }
"""
RUN_STATUS = "query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on PartitionSetNotFoundError { message } ... on InvalidSubsetError { message }
} }
"""


def wait_for_graphql(dagster: Dagster) -> None:
    """Until the code location has loaded (the webserver answers before the code server is ready)."""
    deadline = time.monotonic() + START_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        if dagster.process.poll() is not None:
            pytest.fail(f"dagster dev exited ({dagster.process.returncode}):\n{dagster.log_tail()}")
        try:
            entries = dagster.graphql(LOCATIONS, timeout=5)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = str(exc)
        else:
            loaded = [e for e in entries if (e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"]
            errors = [e for e in entries if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
            if errors:
                pytest.fail(f"the code location did not load: {errors}")
            if loaded:
                dagster.location = loaded[0]["name"]
                return
            last = f"locations: {entries}"
        time.sleep(0.5)
    pytest.fail(f"dagster dev did not answer in {START_TIMEOUT:.0f}s ({last}):\n{dagster.log_tail()}")


def repository(dagster: Dagster) -> dict[str, str]:
    return {"repositoryLocationName": dagster.location, "repositoryName": "__repository__"}


def launch_sync(dagster: Dagster, assets: tuple[str, ...] = ()) -> str:
    """``org_sync_job`` for the demo partition (only ``assets`` if given), with the tags a run launched by hand
    from the UI carries."""
    selector: dict[str, Any] = {**repository(dagster), "jobName": "org_sync_job"}
    if assets:
        selector["assetSelection"] = [{"path": [name]} for name in assets]
    params = {"selector": selector, "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": ORG}, {"key": "org", "value": ORG}]}}
    launched = dagster.graphql(LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return str(launched["run"]["runId"])


def wait_for_run(dagster: Dagster, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    status = "?"
    while time.monotonic() < deadline:
        status = dagster.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return str(status)
        time.sleep(0.5)
    pytest.fail(f"run {run_id} still {status} after {RUN_TIMEOUT:.0f}s:\n{dagster.log_tail()}")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """End ``dagster dev`` and every process it started (its own process group), by the group's id: SIGTERM,
    then SIGKILL for whatever is left (its graceful shutdown can hang for minutes on the daemon threads; the
    instance is a temporary folder, nothing to keep)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def linked_donors(data_dir: Path) -> list[tuple[int, int]]:
    """(WeGive donor id, Bloomerang id) of donors linked alone to their constituent after the first sync."""
    with StagingStore.for_org(ORG, data_dir=data_dir).connect(read_only=True) as con:
        rows = con.execute(
            "SELECT source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' AND source = 'wegive' "
            "AND bloomerang_id IS NOT NULL AND source_snapshot IS NOT NULL AND bloomerang_id IN ("
            "  SELECT bloomerang_id FROM sync_state WHERE entity = 'constituents' AND bloomerang_id IS NOT NULL "
            "  GROUP BY bloomerang_id HAVING count(*) = 1) ORDER BY source_id").fetchall()
    return [(int(donor), int(constituent)) for donor, constituent in rows]


def edit_both_sides(sandbox: Sandbox, data_dir: Path) -> dict[str, tuple[int, int]]:
    """Two linked donors whose phone changes in WeGive and in Bloomerang before the next sync: one pair of
    edits a minute apart (inside the 2-minute clock-skew tolerance: a person decides, ``within_skew``), one
    where Bloomerang's edit is ten minutes later (``later_wins``, Bloomerang's value wins)."""
    wegive, bloomerang = sandbox.stores["wegive"], sandbox.stores["bloomerang"]
    individuals = [(d, b) for d, b in linked_donors(data_dir)
                   if bloomerang.render_constituent(b).get("Type") == "Individual"]
    assert len(individuals) >= 2, "the first sync linked too few donors to edit"
    picked = {"review": individuals[0], "later": individuals[1]}
    wegive.update_donor(picked["review"][0], {"mobile_phone": "3035550155"})
    wegive.update_donor(picked["later"][0], {"mobile_phone": "3035550111"})
    clock = bloomerang.clock
    try:
        bloomerang.clock = lambda: datetime.now(UTC) + timedelta(minutes=1)
        bloomerang.update_constituent(picked["review"][1], {"PrimaryPhone": {"Type": "Mobile",
                                                                             "Number": "(720) 555-0166"}},
                                      actor="Front Desk")
        bloomerang.clock = lambda: datetime.now(UTC) + timedelta(minutes=10)
        bloomerang.update_constituent(picked["later"][1], {"PrimaryPhone": {"Type": "Mobile",
                                                                            "Number": "(720) 555-0122"}},
                                      actor="Front Desk")
    finally:
        bloomerang.clock = clock
    return picked


def age_open_reviews(data_dir: Path, days: int) -> int:
    """Back-date the open review items by ``days`` (as if nobody looked for that long); how many."""
    with StagingStore.for_org(ORG, data_dir=data_dir).connect() as con:
        rows = con.execute(f"UPDATE review_queue SET created_at = created_at - INTERVAL {int(days)} DAY "
                           "WHERE status = 'open' RETURNING id").fetchall()
    return len(rows)


def sync_story(dagster: Dagster, sandbox: Sandbox, data_dir: Path) -> None:
    """Two nightly syncs with edits on both sides between them, then a week and a half without review:
    ``first`` links every donor, ``sync`` meets two conflicts (one settled by last-modified wins, one queued
    for a person), ``review`` re-materializes ``review_queue`` after the items were back-dated, so its
    ``review_age`` check warns."""
    for name in ("first", "sync", "review"):
        if name == "sync":
            edit_both_sides(sandbox, data_dir)
        if name == "review":
            assert age_open_reviews(data_dir, days=10) >= 1, "the second sync queued nothing for review"
        run_id = launch_sync(dagster, ("review_queue",) if name == "review" else ())
        status = wait_for_run(dagster, run_id)
        assert status == "SUCCESS", f"{name} run {run_id}: {status}\n{dagster.log_tail()}"
        dagster.runs[name] = run_id


@pytest.fixture(scope="module")
def chromium() -> str:
    path = browser_path()
    if path is None:
        no_browser("no Chromium at " + " or ".join(BROWSERS))
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        no_browser("Playwright for Python is not installed")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = artifacts_dir()
    print(f"\nUI screenshots: {folder}")  # noqa: T201 (shown with -s / in the report's captured output)
    return folder


@pytest.fixture(scope="module")
def stack(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    """Sandbox + ``dagster dev``, and the demo partition of ``org_sync_job`` run to SUCCESS."""
    root = tmp_path_factory.mktemp("dagster_ui")
    sandbox = Sandbox(donors=DONORS, seed=SEED, knobs=Knobs(rate_limit=None)).start()
    process = None
    try:
        mappings = demo_mappings(root, sandbox)
        env = dagster_env(root, sandbox, mappings)
        port = free_port()
        log = root / "dagster_dev.log"
        dagster_bin = Path(sys.executable).with_name("dagster")
        with log.open("wb") as out:
            process = subprocess.Popen(  # its own process group: stop_group ends it and its children
                [str(dagster_bin), "dev", "-m", "bloom_pipeline.definitions", "--host", "127.0.0.1",
                 "--port", str(port)], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        dagster = Dagster(f"http://127.0.0.1:{port}", process, log)
        wait_for_graphql(dagster)
        dagster.graphql("mutation { setNuxSeen }")  # no "join the community" dialog over the pages
        sync_story(dagster, sandbox, root / "data")
        yield dagster
    finally:
        if process is not None:
            stop_group(process)
        sandbox.stop()


# -- the browser ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(chromium: str, stack: Dagster) -> Iterator[Any]:
    """One Chromium page for the module (the system's browser: nothing downloaded), 1600×1000."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium)
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            tab.set_default_timeout(UI_TIMEOUT_MS)
            yield tab
        finally:
            browser.close()


def visit(page: Any, stack: Dagster, path: str, *texts: str) -> None:
    """Open ``path`` and wait until every one of ``texts`` is visible (the React app renders late)."""
    page.goto(stack.url + path)
    for text in texts:
        page.get_by_text(text, exact=True).first.wait_for(state="visible")


def shoot(page: Any, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def test_the_asset_graph_shows_every_layer(page: Any, stack: Dagster, shots: Path) -> None:
    visit(page, stack, "/asset-groups", *LAYERS)
    for layer in LAYERS:  # the sidebar's group list and the graph's collapsed group nodes
        assert page.get_by_text(layer, exact=True).count() >= 2, layer
    shoot(page, shots, "01_asset_graph")
    visit(page, stack, "/assets", "donor_conflicts", "review_queue", *STAGED, "push_plan", "source_writebacks",
          "wegive_transactions_daily")
    shoot(page, shots, "02_asset_catalog")


@pytest.mark.parametrize("asset", STAGED)
def test_the_staging_checks_passed_with_their_metadata(page: Any, stack: Dagster, shots: Path, asset: str) -> None:
    visit(page, stack, f"/assets/{asset}?view=checks", "valid", "This is a blocking asset check.",
          "schema valid and rejects within the org's threshold", "Passed", "reject share", "max reject share",
          "top reject reasons", "failure case count")
    shoot(page, shots, f"03_checks_{asset}")


def test_the_run_page_shows_the_sync_summary(page: Any, stack: Dagster, shots: Path) -> None:
    run_id = stack.runs["sync"]
    visit(page, stack, f"/runs/{run_id}", "Success", "run summary")
    # the event row is truncated and its overlay takes the pointer: click the link itself
    summary = page.get_by_text("run summary", exact=True).first
    summary.locator("xpath=following::*[contains(text(), 'Show Markdown')][1]").dispatch_event("click")
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Sync of org").wait_for()
    text = dialog.inner_text()
    assert f"Sync of org {ORG}: succeeded" in text
    assert f"Run {run_id}, direction both." in text
    for header in ("entity", "created", "updated", "unchanged", "quarantined", "failed"):
        assert header in text, header
    for entity in ("funds", "constituents", "transactions"):
        assert entity in text, entity
    assert "Conflicts: 2; queued for review: 1." in text
    shoot(page, shots, "04_run_sync_summary")
    page.keyboard.press("Escape")


def test_the_conflict_assets_show_their_decisions_and_the_overdue_review(page: Any, stack: Dagster,
                                                                        shots: Path) -> None:
    visit(page, stack, "/assets/donor_conflicts", "by rule and winner", "decisions", "within_skew", "later_wins",
          "(720) 555-0122", "3035550155")
    text = page.inner_text("body")
    assert stack.runs["sync"] in text  # this run's decisions, not every run's
    assert "both changes fall within the clock-skew tolerance: a person decides" in text
    shoot(page, shots, "05_donor_conflicts")

    visit(page, stack, "/assets/review_queue", "open items", "oldest wait (days)")
    page.get_by_text("(720) 555-0166").first.wait_for()
    assert "bloom-pipeline review resolve --org demo --id N" in page.inner_text("body")
    shoot(page, shots, "06_review_queue")

    visit(page, stack, "/assets/review_queue?view=checks", "review_age", "This is a non-blocking asset check.",
          "max age (days)", "overdue items", "10 d 0 h")
    assert "1 of 1 open review item(s) waited longer than 7 day(s)" in page.inner_text("body")
    shoot(page, shots, "07_review_age_check")


def test_schedules_and_sensors_list_the_demo_org(page: Any, stack: Dagster, shots: Path) -> None:
    visit(page, stack, "/automation", f"nightly_sync_{ORG}", f"handbid_reconciled_{ORG}", "run_failure_alerts")
    shoot(page, shots, "08_schedules_and_sensors")


def test_a_launched_backfill_shows_its_partitions(page: Any, stack: Dagster, shots: Path) -> None:
    partitions = [f"{day}|{ORG}" for day in BACKFILL_DAYS]  # date|org: the daily × org partitions, by dimension
    params = {"assetSelection": [{"path": ["wegive_transactions_daily"]}], "partitionNames": partitions}
    launched = stack.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    visit(page, stack, f"/runs/b/{launched['backfillId']}", "Partition selection", *partitions,
          "wegive_transactions_daily", "Partitions targeted")
    shoot(page, shots, "09_backfill")
