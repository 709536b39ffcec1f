"""Many orgs at once on Dagster's distributed shape (issue 17): Postgres storage, a code server, the webserver
and the daemon as separate processes, runs launched through the GraphQL API.

Why this test exists: the one-run-per-org rule is not code of ours, it is the run queue's tag limits in
``deploy/dagster.yaml``. Only a real queue, a real daemon and real run workers show that the limits hold, that
runs of different orgs never touch each other's files or Bloomerang, and that a worker dying mid-run leaves the
org recoverable. The instance file is ``deploy/dagster.yaml`` itself with three test changes (global limit 2,
the default run launcher instead of Docker, short poll intervals); the storage settings reach it through the
same ``DAGSTER_PG_*`` variables as in production.

Each org has its own sandbox (three simulators, its own seed, its own keys), so "no record of one org in
another org's data or Bloomerang" is checkable: the worlds share no e-mail address, and a key of one org does
not open another org's simulators. org5 is org4's twin (same seed): after its first run is killed mid-load and
its second run recovers, its Bloomerang must hold exactly what org4's clean run produced — no duplicates.

PostgreSQL: the system package's binaries (``apt-get install postgresql``), started in a temporary folder on a
free port as the ``postgres`` user when the test runs as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pytest
import requests
import yaml

from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts PostgreSQL, sandboxes, a code server, the webserver and the daemon

REPO = Path(__file__).resolve().parents[2]
ORGS = ["org1", "org2", "org3", "org4"]
TWIN = "org5"  # org4's world again: the org whose first run is killed
SEEDS = {"org1": 101, "org2": 202, "org3": 303, "org4": 404, TWIN: 404}
DONORS = 40
MAX_RUNS = 2
LOCATION = "bloom_pipeline"
BOOT_TIMEOUT = 90.0
RUNS_TIMEOUT = 240.0
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


# -- PostgreSQL ---------------------------------------------------------------------------------------------


def pg_bin() -> Path | None:
    """The folder holding initdb / pg_ctl: on PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Postgres:
    """A throwaway cluster: trust authentication on 127.0.0.1 only, unix socket in its own folder."""

    bindir: Path
    root: Path
    port: int = field(default_factory=free_port)
    user: str | None = None  # the OS user running the server (None: this process's user)

    def _as_owner(self, *cmd: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else list(cmd)

    def _run(self, *cmd: str, timeout: float = 90) -> None:
        done = subprocess.run(self._as_owner(*cmd), capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd[:1])} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root; CI runs as root
            self.user = "postgres"
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", self.user], check=True)
            shutil.chown(self.root, user=self.user)
        data, sock = self.root / "data", self.root
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", timeout=120)
        options = f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-o", options,
                  "-w", "-t", "60", "start")
        self._run(str(self.bindir / "createdb"), "-h", str(sock), "-p", str(self.port), "-U", "postgres", "dagster")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"),
                                          "-m", "immediate", "-w", "stop"), capture_output=True, timeout=60)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                                 dbname="dagster")) as con, con.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())


# -- org files and the instance -----------------------------------------------------------------------------


def org_keys(org: str) -> dict[str, str]:
    """The org's own simulator keys (test values that open only that org's sandbox)."""
    return {"bloomerang": f"sbx-bloomerang-{org}-key", "wegive": f"7|sbx-wegive-{org}-token",
            "handbid": f"sbx-handbid-{org}-token"}


def key_env(org: str) -> dict[str, str]:
    """Variable name -> value of the org's keys, as the org YAML names them."""
    keys, up = org_keys(org), org.upper()
    return {f"{up}_BLOOMERANG_API_KEY": keys["bloomerang"], f"{up}_WEGIVE_TOKEN": keys["wegive"],
            f"{up}_HANDBID_TOKEN": keys["handbid"]}


def org_yaml(org: str, sandbox: Sandbox) -> str:
    """An org file like demo.yaml, pointing at the org's own sandbox. ``sandbox_fallback: true`` only makes the
    schedule and Handbid sensor ship STOPPED (every key variable is set), so the test alone decides which runs
    exist."""
    demo = yaml.safe_load((REPO / "mappings" / "orgs" / "demo.yaml").read_text(encoding="utf-8"))
    up = org.upper()
    demo["name"] = org
    demo["sandbox_fallback"] = True
    demo["alerts"] = {"webhook_url_env": f"{up}_ALERT_WEBHOOK_URL"}
    demo["bloomerang"] |= {"base_url": sandbox.urls["bloomerang"], "api_key_env": f"{up}_BLOOMERANG_API_KEY"}
    demo["wegive"] |= {"base_url": sandbox.urls["wegive"], "token_env": f"{up}_WEGIVE_TOKEN"}
    demo["handbid"] |= {"base_url": sandbox.urls["handbid"], "token_env": f"{up}_HANDBID_TOKEN",
                        "organization_id": sandbox.handbid_org_id}
    return yaml.safe_dump(demo, sort_keys=False)


def instance_yaml() -> dict[str, Any]:
    """deploy/dagster.yaml with the test's changes: limit 2, default launcher, fast queue and monitoring."""
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text(encoding="utf-8"))
    config.pop("run_launcher")  # the default launcher: run workers are processes of the code server
    config["run_coordinator"]["config"] |= {"max_concurrent_runs": MAX_RUNS, "dequeue_interval_seconds": 1}
    config["run_monitoring"] |= {"poll_interval_seconds": 2, "start_timeout_seconds": 60}
    return config


# -- processes ----------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """The Dagster processes of the deployment, each in its own process group (killed by group id)."""

    home: Path
    env: dict[str, str]
    web_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, *cmd: str) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(list(cmd), cwd=self.home, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        bindir = Path(sys.executable).parent
        self.spawn("code-server", str(bindir / "dagster"), "code-server", "start", "-m", "bloom_pipeline.definitions",
                   "-h", "127.0.0.1", "-p", str(self.grpc_port), "--location-name", LOCATION)
        self.spawn("webserver", str(bindir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                   "-p", str(self.web_port))
        self.start_daemon()

    def start_daemon(self) -> None:
        self.spawn("daemon", str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name in list(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.procs[name].wait(timeout=max(deadline - time.monotonic(), 0.1))
            self.kill(name)

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""

    # -- GraphQL --------------------------------------------------------------------------------------------
    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        answer = requests.post(f"http://127.0.0.1:{self.web_port}/graphql",
                               json={"query": query, "variables": variables}, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def wait_loaded(self) -> None:
        """Until the webserver answers and the code location has loaded (or the timeout names the logs)."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException, AssertionError):
                data = self.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name "
                                    "loadStatus locationOrLoadError { __typename ... on PythonError "
                                    "{ message } } } } } }")
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
                    return
            time.sleep(1)
        raise AssertionError(f"code location did not load in {BOOT_TIMEOUT}s:\n{self.log('code-server')}\n"
                             f"{self.log('webserver')}")

    def launch(self, org: str) -> str:
        """Launch org_sync_job for partition ``org`` as an operator would by hand (partition tag only)."""
        params = {"selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                               "jobName": "org_sync_job"},
                  "runConfigData": {},
                  "executionMetadata": {"tags": [{"key": "dagster/partition", "value": org}]}}
        data = self.graphql("""mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
            ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
            ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }""",
                            p=params)["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return str(data["run"]["runId"])

    def runs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        data = self.graphql("""query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) {
            ... on Runs { results { runId status startTime endTime tags { key value } } } } }""", ids=run_ids)
        return {r["runId"]: r for r in data["runsOrError"]["results"]}

    def wait_done(self, run_ids: list[str], timeout: float = RUNS_TIMEOUT) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs(run_ids)
            if len(runs) == len(run_ids) and all(r["status"] in TERMINAL for r in runs.values()):
                return runs
            time.sleep(1)
        raise AssertionError(f"runs not finished in {timeout}s: {self.runs(run_ids)}\n{self.log('daemon')}")


# -- facts ----------------------------------------------------------------------------------------------------


def emails(value: Any) -> set[str]:
    """Every e-mail-like string anywhere in a nested JSON-ish value, lower-cased."""
    found: set[str] = set()
    if isinstance(value, dict):
        for item in value.values():
            found |= emails(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= emails(item)
    elif isinstance(value, str) and "@" in value and " " not in value:
        found.add(value.strip().lower())
    return found


def staging_rows(data_dir: Path, org: str) -> tuple[set[str], set[str]]:
    """(e-mails in the org's raw extracts, orgs named in its sync_runs ledger), read-only."""
    with contextlib.closing(duckdb.connect(str(data_dir / f"{org}_staging.duckdb"), read_only=True)) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_name LIKE 'raw_%'").fetchall()]
        found: set[str] = set()
        for table in tables:
            for (record,) in con.execute(f"SELECT record FROM {table}").fetchall():  # noqa: S608 - catalog names
                found |= emails(json.loads(record))
        ledger_orgs = {o for (o,) in con.execute("SELECT DISTINCT org FROM sync_runs").fetchall()}
    return found, ledger_orgs


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
    best = open_now = 0
    for _, step in points:
        open_now += step
        best = max(best, open_now)
    return best


def bloomerang_fingerprint(sandbox: Sandbox) -> list[tuple[str, ...]]:
    """Sorted (first, last, emails) of every constituent in a Bloomerang store: equal stores, equal lists."""
    store = sandbox.stores["bloomerang"]
    with store.lock:
        by_owner: dict[Any, set[str]] = {}
        for email in store.emails.values():
            by_owner.setdefault(email.get("AccountId"), set()).add(str(email.get("Value", "")).lower())
        return sorted((str(c.get("FirstName")), str(c.get("LastName")), *sorted(by_owner.get(cid, set())))
                      for cid, c in store.constituents.items())


def run_worker(stack: Stack, run_id: str) -> psutil.Process | None:
    """The run worker of ``run_id``: a spawned child of the code server (default run launcher)."""
    root = psutil.Process(stack.procs["code-server"].pid)
    for child in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(child.cmdline())
            if "spawn_main" in cmd or run_id in cmd:
                return child
    return None


def wait_for_step(pg: Postgres, run_id: str, step: str, timeout: float = 90.0) -> None:
    """Until ``step`` of ``run_id`` has started (its STEP_START event is in Postgres)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pg.query("SELECT 1 FROM event_logs WHERE run_id = %s AND dagster_event_type = 'STEP_START' "
                    "AND step_key = %s", run_id, step):
            return
        time.sleep(0.1)
    raise AssertionError(f"step {step} of run {run_id} did not start in {timeout}s")


# -- the deployment -----------------------------------------------------------------------------------------


@dataclass
class Deployment:
    pg: Postgres
    stack: Stack
    sandboxes: dict[str, Sandbox]
    data_dir: Path
    timings: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    bindir = pg_bin()
    if bindir is None:
        message = "no PostgreSQL server binaries (initdb, pg_ctl): `apt-get install postgresql`"
        if os.environ.get("BLOOM_TEST_REQUIRE_POSTGRES"):  # CI installs it: a missing server is a failure there
            pytest.fail(message)
        pytest.skip(message)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="bloom-scale-"))
    pg_root = Path(tempfile.mkdtemp(prefix="bloom-pg-"))  # its own 0700 folder, handed to the server's user
    pg = Postgres(bindir=bindir, root=pg_root)
    sandboxes: dict[str, Sandbox] = {}
    stack: Stack | None = None
    try:
        pg.start()
        mappings = root / "mappings"
        shutil.copytree(REPO / "mappings", mappings)
        (mappings / "orgs" / "demo.yaml").unlink()  # the test's orgs only
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DAGSTER_", "BLOOM")) and not k.endswith(("_API_URL", "_API_KEY", "_TOKEN"))}
        for org in [*ORGS, TWIN]:
            sandbox = Sandbox(donors=DONORS, seed=SEEDS[org])
            sandbox.keys = org_keys(org)
            sandbox.set_knobs(rate_limit=None)
            sandboxes[org] = sandbox.start()
            (mappings / "orgs" / f"{org}.yaml").write_text(org_yaml(org, sandbox), encoding="utf-8")
            env |= key_env(org)
        home = root / "home"
        home.mkdir()
        data_dir = root / "data"
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml(), sort_keys=False), encoding="utf-8")
        stack = Stack(home=home, env=env)
        (home / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
            "host": "127.0.0.1", "port": stack.grpc_port, "location_name": LOCATION}}]}), encoding="utf-8")
        env |= {"DAGSTER_HOME": str(home), "BLOOM_DATA_DIR": str(data_dir), "BLOOM_MAPPINGS_DIR": str(mappings),
                "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(pg.port), "DAGSTER_PG_USER": "postgres",
                "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": "dagster", "PYTHONUNBUFFERED": "1"}
        stack.start()
        stack.wait_loaded()
        deployment = Deployment(pg=pg, stack=stack, sandboxes=sandboxes, data_dir=data_dir)
        deployment.timings["boot_s"] = time.monotonic() - started
        try:
            yield deployment
        finally:
            deployment.timings["total_s"] = time.monotonic() - started
            print(f"\nmulti-org timings: {json.dumps({k: round(v, 1) for k, v in deployment.timings.items()})}")
    finally:
        if stack is not None:
            stack.stop()
        for sandbox in sandboxes.values():
            sandbox.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)


def test_four_orgs_share_the_queue_one_run_per_org(deployment: Deployment) -> None:
    stack, pg = deployment.stack, deployment.pg
    started = time.monotonic()
    run_ids = [stack.launch(org) for org in ORGS] + [stack.launch("org1")]
    runs = stack.wait_done(run_ids)
    deployment.timings["five_runs_s"] = time.monotonic() - started

    failed = {r["runId"]: r["status"] for r in runs.values() if r["status"] != "SUCCESS"}
    assert not failed, f"{failed}\n{stack.log('code-server')}"

    org_of = {r["runId"]: {t["key"]: t["value"] for t in r["tags"]}["dagster/partition"] for r in runs.values()}
    spans = {rid: (float(r["startTime"]), float(r["endTime"])) for rid, r in runs.items()}
    durations = sorted(e - s for s, e in spans.values())
    deployment.timings["run_median_s"] = durations[len(durations) // 2]
    assert max_overlap(list(spans.values())) <= MAX_RUNS, spans
    assert max_overlap(list(spans.values())) == MAX_RUNS, "the queue never ran two orgs at once"
    org1 = [spans[rid] for rid in run_ids if org_of[rid] == "org1"]
    assert max_overlap(org1) == 1, f"two runs of org1 overlapped: {org1}"

    # each org's files hold only its own world; each org's Bloomerang only its own records
    world_emails = {org: emails(s.world.wegive) | emails(s.world.handbid) | emails(s.world.bloomerang)
                    for org, s in deployment.sandboxes.items()}
    for org in ORGS:
        others = set().union(*(world_emails[o] for o in ORGS if o != org))
        assert not world_emails[org] & others, "test worlds must not share e-mails"
        staged, ledger_orgs = staging_rows(deployment.data_dir, org)
        assert staged, f"{org}: no extracted rows"
        assert staged <= world_emails[org] and not staged & others, f"{org}: rows of another org in its file"
        assert ledger_orgs == {org}, ledger_orgs
        in_crm = {str(e.get("Value", "")).lower() for e in deployment.sandboxes[org].stores["bloomerang"]
                  .emails.values()}
        assert not in_crm & others, f"{org}: another org's record in its Bloomerang"
        log = deployment.sandboxes[org].request_log
        for api in ("bloomerang", "wegive", "handbid"):
            deployment.timings[f"{org}_{api}_requests"] = sum(log.counts(api).values())

    # the run history and its event logs live in Postgres, not in DAGSTER_HOME
    for rid in run_ids:
        (count,) = pg.query("SELECT count(*) FROM event_logs WHERE run_id = %s", rid)[0]
        assert count > 10, f"run {rid}: {count} events in Postgres"
    assert not list(stack.home.glob("**/*.db")), "SQLite storage was created beside Postgres"


def test_killed_worker_fails_the_run_and_the_next_run_recovers(deployment: Deployment) -> None:
    stack, pg = deployment.stack, deployment.pg
    twin = deployment.sandboxes[TWIN]
    started = time.monotonic()
    victim = stack.launch(TWIN)
    wait_for_step(pg, victim, "push_plan")
    twin.knobs["bloomerang"].latency_ms = 50  # a wide enough window to kill the worker mid-load
    wait_for_step(pg, victim, "bloomerang_load")
    stack.kill("daemon")  # the daemon dies too: the run worker does not depend on it
    deadline = time.monotonic() + 10
    while (worker := run_worker(stack, victim)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker is not None, "run worker process not found"
    created_before_kill = len(twin.stores["bloomerang"].constituents)
    worker.kill()
    stack.start_daemon()
    runs = stack.wait_done([victim], timeout=120)
    assert runs[victim]["status"] == "FAILURE", runs[victim]
    deployment.timings["kill_detected_s"] = time.monotonic() - started
    baseline = len(deployment.sandboxes["org4"].stores["bloomerang"].constituents)
    assert created_before_kill < baseline, "the worker was killed after the load had finished"

    twin.knobs["bloomerang"].latency_ms = 0
    recovery = stack.launch(TWIN)
    runs = stack.wait_done([recovery], timeout=120)
    assert runs[recovery]["status"] == "SUCCESS", f"{runs[recovery]}\n{stack.log('code-server')}"
    deployment.timings["recovery_s"] = time.monotonic() - started
    # no duplicates: the twin's Bloomerang now holds exactly what org4's one clean run produced
    assert bloomerang_fingerprint(twin) == bloomerang_fingerprint(deployment.sandboxes["org4"])
