"""Nothing stuck: failed gifts are retried until they land, cursors cannot be poisoned, a dead run is closed.

Each case runs the demo org's sync against the sandbox as real HTTP servers on loopback, the way
``bloom-pipeline sync`` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.cli import run_org

pytestmark = pytest.mark.slow

DONORS, SEED = 30, 2
GIFT_FIELD = 911


@pytest.fixture
def sb() -> Any:
    sandbox = Sandbox(donors=DONORS, seed=SEED, knobs=Knobs(rate_limit=None, seed=11)).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def sync(sb: Sandbox, data_dir: Path) -> Any:
    return run_org("demo", direction="both", dry_run=False, since=None, mappings_dir=None, data_dir=str(data_dir),
                   urls=sb.urls, quiet=True, overrides={"handbid_org_id": sb.handbid_org_id})


def gifts_by_correlation(sb: Sandbox) -> dict[str, int]:
    store = sb.stores["bloomerang"]
    counts: dict[str, int] = {}
    for record_id in list(store.transactions):
        record = store.render_transaction(record_id)
        values = set()
        for designation in record.get("Designations", []):
            for value in designation.get("CustomValues") or []:
                if value.get("FieldId") == GIFT_FIELD:
                    inner = value.get("Value")
                    values.add(str(inner.get("Value") if isinstance(inner, dict) else inner))
        for value in values:
            counts[value] = counts.get(value, 0) + 1
    return counts


def completed_gifts(sb: Sandbox) -> set[str]:
    return {str(t["id"]) for t in sb.stores["wegive"].transactions.values()
            if t["status"] in ("Success", "Refunded", "Disputed")}


def test_gifts_that_failed_under_faults_all_land_once_the_faults_stop(sb: Sandbox, tmp_path: Path) -> None:
    sb.set_knobs(fault_rate=0.3)
    sb.knobs["bloomerang"].drop_after_commit = 0.2
    first = sync(sb, tmp_path)
    missing = completed_gifts(sb) - set(gifts_by_correlation(sb))
    assert missing, "the faults made some gifts fail (else this test proves nothing)"
    assert first.message and "failed" in first.message, first.message

    sb.set_knobs(fault_rate=0.0)
    sb.knobs["bloomerang"].drop_after_commit = 0.0
    sync(sb, tmp_path)  # no --since: the cursors have moved past the failed gifts
    final = sync(sb, tmp_path)

    held = gifts_by_correlation(sb)
    assert completed_gifts(sb) <= set(held), sorted(completed_gifts(sb) - set(held))
    assert {v: n for v, n in held.items() if n > 1} == {}
    assert final.exit_code == 0, (final.counts, final.message)


def test_a_gift_stamped_in_year_9999_does_not_move_the_cursor(sb: Sandbox, tmp_path: Path) -> None:
    assert sync(sb, tmp_path).exit_code == 0
    wegive = sb.stores["wegive"]
    poisoned = wegive.add_transaction(1001, 1500)
    wegive.transactions[int(poisoned["id"])]["updated_at"] = "9999-12-31T23:59:59.000000Z"
    assert sync(sb, tmp_path).status == "succeeded"
    store = StagingStore.for_org("demo", data_dir=tmp_path)
    with store.connect() as con:
        cursor = ledgers.get_cursor(con, "wegive.transactions.updated_at")
    assert datetime.fromisoformat(cursor) <= datetime.now(UTC), cursor

    later = wegive.add_transaction(1002, 2500)
    assert sync(sb, tmp_path).status == "succeeded"
    assert str(later["id"]) in gifts_by_correlation(sb), "a gift made after the poisoned one was never extracted"


def test_a_run_whose_process_died_is_closed_as_abandoned_and_its_message_kept(sb: Sandbox, tmp_path: Path) -> None:
    assert sync(sb, tmp_path).exit_code == 0
    store = StagingStore.for_org("demo", data_dir=tmp_path)
    with store.write() as con:
        ledgers.start_run(con, "dead-run", org="demo", direction="both")
        con.execute("UPDATE sync_runs SET started_at = ? WHERE run_id = 'dead-run'",
                    [datetime.now(UTC) - timedelta(hours=1)])
    assert sync(sb, tmp_path).exit_code == 0
    con = duckdb.connect(str(store.path), read_only=True)
    try:
        status, message = con.execute("SELECT status, message FROM sync_runs WHERE run_id = 'dead-run'").fetchone()
    finally:
        con.close()
    assert status == "failed" and message.startswith("abandoned"), (status, message)
