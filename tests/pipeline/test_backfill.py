"""Issue 5: a 90-day backfill of WeGive transactions is a few runs, not 90 — here exactly one run per org.

``wegive_transactions_daily`` is partitioned by day × org with a ``multi_run(max_partitions_per_run=100)``
backfill policy, so Dagster hands a 90-day range to one run (ceil(90 / 100) = 1). The test launches that
run the way a backfill does (the asset-partition-range tags), against the sandbox over HTTP, and checks
the one run covered all 90 days with one created-date window and pushed exactly the gifts of that window.
"""

from __future__ import annotations

import math
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from bloom_pipeline.defs.definitions_builder import build_definitions
from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

REPO = Path(__file__).resolve().parents[2]
START, DAYS = date(2026, 8, 1), 90
END = START + timedelta(days=DAYS - 1)
SYNCED_STATUSES = {"Success", "Refunded", "Disputed"}


@pytest.fixture
def sandbox_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A sandbox, and a copy of the mappings whose demo org points at it (URLs by env, Handbid org id)."""
    sb = Sandbox(donors=30, seed=2, knobs=Knobs(rate_limit=None)).start()
    try:
        mappings = tmp_path / "mappings"
        shutil.copytree(REPO / "mappings", mappings)
        demo = mappings / "orgs" / "demo.yaml"
        config = yaml.safe_load(demo.read_text())
        config.setdefault("handbid", {})["organization_id"] = sb.handbid_org_id
        demo.write_text(yaml.safe_dump(config, sort_keys=False))
        for api, variable in (("bloomerang", "BLOOMERANG_API_URL"), ("wegive", "WEGIVE_API_URL"),
                              ("handbid", "HANDBID_API_URL")):
            monkeypatch.setenv(variable, sb.urls[api])
        yield sb, mappings, tmp_path / "data"
    finally:
        sb.stop()


def test_the_daily_asset_backfills_up_to_100_days_per_run() -> None:
    defs = build_definitions(mappings_dir=REPO / "mappings")
    asset = defs.resolve_assets_def("wegive_transactions_daily")
    policy = asset.backfill_policy
    assert policy is not None and policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=100)
    assert policy.max_partitions_per_run == 100
    assert math.ceil(DAYS / policy.max_partitions_per_run) == 1
    assert math.ceil(365 / policy.max_partitions_per_run) == 4  # a year is four runs per org, not 365


def test_a_90_day_backfill_is_one_run_pushing_exactly_that_window(sandbox_org: Any) -> None:
    sb, mappings, data_dir = sandbox_org
    defs = build_definitions(mappings_dir=mappings, data_dir=str(data_dir))
    job = defs.resolve_job_def("transactions_backfill_job")
    tags = {"dagster/asset_partition_range_start": f"{START.isoformat()}|demo",
            "dagster/asset_partition_range_end": f"{END.isoformat()}|demo"}

    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags, raise_on_error=False)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    materializations = result.asset_materializations_for_node("wegive_transactions_daily")
    assert len(materializations) >= 1
    summary = materializations[0].metadata["orgs"].data["demo"]
    assert summary["days"] == DAYS and summary["window"] == f"{START}..{END}", summary
    assert summary["status"] == "succeeded"

    wegive = sb.stores["wegive"]
    in_window = {str(t["id"]) for t in wegive.transactions.values() if t["status"] in SYNCED_STATUSES
                 and START <= datetime.fromisoformat(t["created_at"].replace("Z", "+00:00")).astimezone(UTC).date()
                 <= END}
    outside = {str(t["id"]) for t in wegive.transactions.values()} - in_window
    assert in_window and outside, "the world has gifts on both sides of the window"
    bloomerang = sb.stores["bloomerang"]
    pushed: dict[str, set[int]] = {}  # WeGive transaction id -> the Bloomerang transactions holding it
    for designation in bloomerang.designations.values():
        stored = designation["_custom"].get(911)  # the WeGive Transaction ID field: {"Id", "Value"}
        if stored is not None and not str(stored["Value"]).startswith("wegive:"):  # schedules carry a prefix
            pushed.setdefault(str(stored["Value"]), set()).add(designation["TransactionId"])
    assert set(pushed) == in_window, (sorted(set(pushed) - in_window), sorted(in_window - set(pushed)))
    assert all(len(ids) == 1 for ids in pushed.values()), "a gift was pushed twice"
