"""The reject gate over incremental runs (``sync/stage.py`` ``validate_gates``): the same few bad records a source
keeps sending never wedge the runs (an unchanged rejection is counted once), and new rejects halt a load only over
the org's share and floor. Beside ``test_record_isolation.py`` (its helpers), in a file of its own so the fast tier's
two workers share the staging flows evenly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.mapping.spec import OrgConfig, Thresholds
from bloom_pipeline.schemas import STAGED_MODELS, validate_staged
from bloom_pipeline.staging import stage_inputs
from bloom_pipeline.sync.stage import _mapped_in_run
from tests.unit.staging.test_record_isolation import PAYMENT, one, run_stage

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def org() -> OrgConfig:
    return load_org("demo", REPO / "mappings")


def payments(n: int, bad: int, first: int = 1) -> list[dict[str, Any]]:
    good = [one(PAYMENT, id=first + i) for i in range(n - bad)]
    return good + [one(PAYMENT, id=90_000 + i, amount=True) for i in range(bad)]  # the same 5 bad ones every run


def with_thresholds(org: OrgConfig, **values: Any) -> OrgConfig:
    return org.model_copy(update={"thresholds": Thresholds(**values)})


def test_five_bad_payments_do_not_wedge_the_incremental_runs(org, store):
    first = run_stage(org, store, "r1", {"handbid.payments": payments(300, 5)})["transactions"]
    assert first.passed and (first.rejected, first.repeated) == (5, 0)
    for run in ("r2", "r3"):  # then each night re-reads 61 changed payments and the same 5 bad ones
        gate = run_stage(org, store, run, {"handbid.payments": payments(66, 5, first=1000)})["transactions"]
        assert gate.passed, gate.blocked_reason
        assert (gate.rejected, gate.repeated, gate.counted_rejects, gate.reject_share) == (5, 5, 0, 0.0)
    strict = with_thresholds(org, max_reject_share=0.05, min_rejects=0)
    gate = run_stage(strict, store, "r4", {"handbid.payments": payments(66, 5, first=2000)})["transactions"]
    assert gate.passed, "already quarantined unchanged: not counted again, even without a floor"


def test_new_rejects_halt_only_over_the_share_and_the_floor(org, store):
    bad = [one(PAYMENT, id=70_000 + i, amount=True) for i in range(5)]
    floor = run_stage(org, store, "r1", {"handbid.payments": payments(61, 0) + bad})["transactions"]
    assert floor.passed, "5 of 66 is over 5% but under min_rejects (10)"
    changed = [one(p, amount="oops") for p in bad]  # the bad records changed: judged anew
    strict = with_thresholds(org, max_reject_share=0.05, min_rejects=0)
    gate = run_stage(strict, store, "r2", {"handbid.payments": payments(61, 0) + changed})["transactions"]
    assert not gate.passed
    assert gate.blocked_reason == "5 of 66 transactions records were rejected (7.6%), over the org's limit of 5.0%"
    many = [one(PAYMENT, id=80_000 + i, amount=True) for i in range(12)]
    gate = run_stage(org, store, "r3", {"handbid.payments": payments(50, 0) + many})["transactions"]
    assert not gate.passed and gate.blocked_reason.startswith("12 of 62 transactions records were rejected")


@pytest.mark.parametrize("entity", sorted(STAGED_MODELS))
def test_an_empty_run_of_a_staged_table_passes_its_model(org, store, entity):
    """What lets ``validate_gates`` skip pandera when a run mapped nothing anew (a quiet night): an empty
    frame of the staged table's own columns and types is one its model accepts."""
    run_stage(org, store, "r1", {"handbid.payments": payments(3, 0)})
    empty = _mapped_in_run(store, entity, "no-such-run", stage_inputs.mapping_hash(org))
    assert empty.empty and list(empty.columns)
    report = validate_staged(entity, empty)
    assert report.ok, report.failure_cases
