"""The Bloomerang simulator keeps a designation's NonDeductibleAmount, and refuses one above the designation's
Amount unless its knob says the real API would take it."""

from __future__ import annotations

import pytest

from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore
from bloom_pipeline.sandbox.bloomerang.validation import BloomerangError
from bloom_pipeline.sandbox.data.world import generate_world


@pytest.fixture
def store() -> BloomerangStore:
    return BloomerangStore.from_world(generate_world(5, seed=1))


def _body(store: BloomerangStore, non_deductible: float) -> dict:
    return {"AccountId": next(iter(store.constituents)), "Date": "2026-10-01", "Amount": 100.0, "Method": "None",
            "Designations": [{"Type": "Donation", "Amount": 100.0, "FundId": next(iter(store.funds)),
                              "NonDeductibleAmount": non_deductible}]}


def test_it_is_stored_and_read_back(store: BloomerangStore) -> None:
    created = store.create_transaction(_body(store, 25.0))
    assert store.render_transaction(created["Id"])["Designations"][0]["NonDeductibleAmount"] == 25.0


def test_above_the_designation_amount_it_is_refused_unless_the_knob_allows(store: BloomerangStore) -> None:
    with pytest.raises(BloomerangError, match="NonDeductibleAmount cannot be more than"):
        store.create_transaction(_body(store, 100.01))
    store.non_deductible_within_amount = False
    assert store.create_transaction(_body(store, 100.01))["Id"]
    with pytest.raises(BloomerangError, match="NonDeductibleAmount cannot be negative"):  # a currency amount
        store.create_transaction(_body(store, -1.0))
