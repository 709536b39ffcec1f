"""The apply step's pool of write connections (``sync/apply/pool.py``, ``bloomerang.write_connections``).

Several Bloomerang writes in flight at once must change nothing but the time a load takes: under a tight
per-minute limit (the org's budget matched to the sandbox's) the pooled load leaves the same Bloomerang records
and the same staging rows as one write at a time, and no 429 fails a record; lost answers, 5xx answers and a
process killed mid-pool never leave a duplicate once the next runs are done. Real HTTP against the sandbox;
Bloomerang answers with a little latency so that writes really overlap.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bloom_pipeline.clients.bloomerang import BloomerangClient
from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.endpoints import build_clients, resolve_endpoints
from bloom_pipeline.sync.runner import RunOptions, run_sync
from tests.pipeline.conftest import demo_mappings_with

pytestmark = pytest.mark.slow  # starts sandbox servers

REPO = Path(__file__).resolve().parents[2]
WRITES = frozenset({"POST", "PUT", "DELETE"})
# the demo org's correlation fields (sandbox ids): which source id each Bloomerang record carries
CORRELATION = {"constituents": (901, 902), "transactions": (911, 912)}
# what Bloomerang numbers in the order records arrive (the pool sends in another order than one at a time)
ASSIGNED = frozenset({"AuditTrail", "AccountNumber", "TransactionNumber", "DesignationNumber"})
CHILD = """
import json, sys
from bloom_pipeline.sync.cli import run_org
cfg = json.loads(sys.argv[1])
report = run_org("demo", direction="both", dry_run=False, since=None, mappings_dir=cfg["mappings"],
                 data_dir=cfg["data_dir"], urls=cfg["urls"], quiet=True, overrides={"handbid_org_id": cfg["org_id"]})
sys.exit(report.exit_code)
"""


def mappings_with(root: Path, connections: int) -> Path:
    """The repo's mappings with the demo org's ``bloomerang.write_connections`` set."""
    return demo_mappings_with(root, "bloomerang", "write_connections", connections)


def sandbox(latency_ms: float = 5.0) -> Sandbox:
    """The pipeline tests' clean 30-donor world; Bloomerang answers after ``latency_ms``."""
    sb = Sandbox(donors=30, seed=2)
    sb.set_knobs(rate_limit=None)
    sb.knobs["bloomerang"].latency_ms = latency_ms
    return sb.start()


def sync(sb: Sandbox, data_dir: Path, mappings: Path, *, budget: tuple[int, float] | None = None) -> Any:
    """One sync of the demo org, as ``bloom-pipeline sync`` runs it; ``budget`` (limit, period) replaces the
    org's hourly Bloomerang budget with a shorter window (the YAML can only say per hour)."""
    org = load_org("demo", mappings_dir=str(mappings))
    endpoints = resolve_endpoints(org, urls=sb.urls, handbid_org_id=sb.handbid_org_id)
    clients = build_clients(org, endpoints, budget_dir=data_dir / "ratelimit")
    if budget is not None:
        clients.bloomerang.close()
        clients.bloomerang = BloomerangClient(endpoints.bloomerang.base_url, endpoints.bloomerang.key,
                                              rate_budget=budget[0], rate_period=budget[1],
                                              budget_dir=data_dir / "ratelimit")
    try:
        return run_sync(org, StagingStore.for_org(org.name, data_dir=data_dir), clients, RunOptions())
    finally:
        clients.close()


def custom_value(record: dict[str, Any], field_id: int) -> str | None:
    for value in record.get("CustomValues") or []:
        if value.get("FieldId") == field_id:
            inner = value.get("Value")
            return str(inner.get("Value") if isinstance(inner, dict) else inner)
    return None


def correlated(sb: Sandbox) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per entity: ``"<field id>:<source id>"`` → the Bloomerang records holding it (a list: duplicates show)."""
    store = sb.stores["bloomerang"]
    out: dict[str, dict[str, list[dict[str, Any]]]] = {"constituents": {}, "transactions": {}}
    for record in (store.render_constituent(i) for i in list(store.constituents)):
        for field_id in CORRELATION["constituents"]:
            if (value := custom_value(record, field_id)) is not None:
                out["constituents"].setdefault(f"{field_id}:{value}", []).append(record)
    for record in (store.render_transaction(i) for i in list(store.transactions)):
        for field_id in CORRELATION["transactions"]:
            for value in {custom_value(d, field_id) for d in record.get("Designations", [])} - {None}:
                out["transactions"].setdefault(f"{field_id}:{value}", []).append(record)
    return out


def assert_no_duplicates(sb: Sandbox) -> dict[str, dict[str, list[dict[str, Any]]]]:
    found = correlated(sb)
    for entity, by_value in found.items():
        twice = {value: len(records) for value, records in by_value.items() if len(records) > 1}
        assert not twice, f"{entity} held by more than one Bloomerang record: {twice}"
    return found


def _without_ids(node: Any, names: dict[int, str]) -> Any:
    """A record without what Bloomerang assigned in arrival order (ids, numbers, audit times): an account id
    becomes the correlation value of the constituent it names, any other id is dropped."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "AccountId":
                out[key] = names.get(value, value)
            elif key in ASSIGNED or key.endswith(("Id", "Ids")):
                continue
            else:
                out[key] = _without_ids(value, names)
        return out
    if isinstance(node, list):
        return [_without_ids(v, names) for v in node]
    return node


def bloomerang_state(sb: Sandbox) -> dict[str, dict[str, Any]]:
    """What Bloomerang holds, by correlation value, without the ids it assigned (comparable across runs)."""
    found = assert_no_duplicates(sb)
    names = {records[0]["Id"]: value for value, records in found["constituents"].items()}
    return {entity: {value: _without_ids(records[0], names) for value, records in by_value.items()}
            for entity, by_value in found.items()}


def staging_rows(data_dir: Path) -> dict[str, list[tuple]]:
    store = StagingStore.for_org("demo", data_dir=data_dir)
    log = store.read_frame("SELECT entity, source, source_id, action, direction, error, field_diff FROM sync_log")
    state = store.read_frame("SELECT entity, source, source_id, source_hash, bloomerang_id IS NULL AS unlinked, "
                             "source_snapshot, bloomerang_snapshot FROM sync_state")
    return {"sync_log": sorted(map(tuple, log.astype(str).itertuples(index=False))),
            "sync_state": sorted(map(tuple, state.astype(str).itertuples(index=False)))}


def bloomerang_writes(sb: Sandbox) -> int:
    return sum(1 for e in sb.request_log.entries if e.api == "bloomerang" and e.method in WRITES)


def test_the_pool_under_a_tight_limit_leaves_what_one_write_at_a_time_does_and_no_429_fails_a_record(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bloom_pipeline.sync.apply.load")
    limit, period = 80, 3.0  # fewer than the load's ~185 requests: the pooled run spans several windows
    outcomes, entries = {}, []
    for connections in (1, 4):
        sb = sandbox()
        budget = None
        if connections > 1:  # the sandbox's limit and the org's budget: the same short window
            sb.knobs["bloomerang"].rate_limit, sb.knobs["bloomerang"].rate_period = limit, period
            budget = (limit, period)
        try:
            data_dir = tmp_path / f"data-{connections}"
            report = sync(sb, data_dir, mappings_with(tmp_path, connections), budget=budget)
            assert report.exit_code == 0, (report.counts, report.message)
            entries = [e for e in sb.request_log.entries if e.api == "bloomerang"]
            outcomes[connections] = (bloomerang_state(sb), staging_rows(data_dir), report.counts,
                                     sum(e.method in WRITES and e.status != 429 for e in entries))
        finally:
            sb.stop()
    serial, pooled = outcomes[1], outcomes[4]
    assert len(serial[0]["constituents"]) >= 30 and len(serial[0]["transactions"]) >= 30
    assert pooled[0] == serial[0], "Bloomerang holds other records after the pooled load"
    assert pooled[1] == serial[1], "the staging rows differ"
    assert pooled[2] == serial[2]  # the counts: nothing failed for a 429 (the serial run had no limit to meet)
    assert pooled[3] == serial[3], "the pool sent another number of writes"
    assert len(entries) > 2 * limit, "the pooled load did not span three windows"
    peaks = [r.getMessage() for r in caplog.records if "writes in flight" in r.getMessage()]
    assert any("at most 1 " in m for m in peaks) and any(f"at most {n} " in m for m in peaks for n in (2, 3, 4)), \
        peaks  # the pooled run really had several writes in flight


def test_lost_answers_5xx_and_a_kill_mid_pool_leave_no_duplicate_after_the_rerun(tmp_path: Path) -> None:
    """A child sync loses answers and draws 5xx with four writes in flight, and is killed; the next run settles
    its pending creates by correlation lookup and finishes the load without a duplicate."""
    sb = sandbox(latency_ms=10.0)
    knobs = sb.knobs["bloomerang"]
    try:
        mappings, data_dir = mappings_with(tmp_path, 4), tmp_path / "data"
        knobs.drop_after_commit, knobs.fault_rate = 0.1, 0.05
        config = json.dumps({"data_dir": str(data_dir), "urls": sb.urls, "org_id": sb.handbid_org_id,
                             "mappings": str(mappings)})
        child = subprocess.Popen([sys.executable, "-c", CHILD, config], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 120
        try:
            while child.poll() is None and bloomerang_writes(sb) < 80 and time.monotonic() < deadline:
                time.sleep(0.005)
            killed = child.poll() is None
            if killed:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert killed, "the child sync finished before 80 Bloomerang writes"
        entries = [e for e in sb.request_log.entries if e.api == "bloomerang"]
        assert any(e.method == "POST" and e.status is None for e in entries), "the knob dropped answers"
        assert any(e.status in (500, 502, 503) for e in entries), "the knob answered 5xx"
        assert_no_duplicates(sb)

        knobs.drop_after_commit = knobs.fault_rate = 0.0
        final = sync(sb, data_dir, mappings)
        assert final.exit_code == 0, (final.counts, final.message)
        found = assert_no_duplicates(sb)
        assert {f"901:{i}" for i in sb.stores["wegive"].donors} <= set(found["constituents"])
        gifts = {f"911:{t['id']}" for t in sb.stores["wegive"].transactions.values() if t["status"] == "Success"}
        assert gifts <= set(found["transactions"])
    finally:
        sb.stop()
