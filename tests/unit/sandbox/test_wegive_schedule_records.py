"""The generated WeGive schedules (``sandbox/data/schedules.py``): every payment that names a pledge or a
scheduled donation names one the world holds, and the schedule's terms agree with its payments."""

from __future__ import annotations

from collections import Counter

import pytest

from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sandbox.wegive.store import WeGiveStore


@pytest.fixture(scope="module")
def world():
    return generate_world(200, seed=5)


def test_every_payment_names_a_schedule_the_world_holds(world):
    pledges = {p["id"]: p for p in world.wegive["pledges"]}
    schedules = {s["id"]: s for s in world.wegive["scheduled_donations"]}
    txns = world.wegive["transactions"]
    assert {t["pledge_id"] for t in txns if t["pledge_id"]} == set(pledges) != set()
    assert {t["scheduled_donation_id"] for t in txns if t["scheduled_donation_id"]} == set(schedules) != set()
    for txn in txns:
        if txn["pledge_id"]:
            pledge = pledges[txn["pledge_id"]]
            assert txn["amount"] == pledge["installment_size"] and txn["donor_id"] == pledge["donor_id"]
        if txn["scheduled_donation_id"]:
            schedule = schedules[txn["scheduled_donation_id"]]
            assert txn["amount"] == schedule["amount"] and txn["created_at"][:10] >= schedule["start_date"]


def test_pledges_are_monthly_plans_of_whole_installments_and_some_of_twelve(world):
    plans = Counter(p["total_amount"] // p["installment_size"] for p in world.wegive["pledges"])
    assert all(p["total_amount"] % p["installment_size"] == 0 and p["installment_frequency"] == "monthly"
               for p in world.wegive["pledges"])
    assert set(plans) <= {4, 6, 12} and plans[12] > 0


def test_a_pledge_answer_counts_what_was_paid(world):
    store = WeGiveStore.from_world(world)
    pledge = world.wegive["pledges"][0]
    paid = [t for t in world.wegive["transactions"] if t["pledge_id"] == pledge["id"] and t["status"] == "Success"]
    answer = store.render_pledge(pledge["id"])
    assert answer["transaction_count"] == len(paid) == len(answer["donations"])
    assert answer["total_amount_paid"] == sum(t["amount"] for t in paid)
    assert answer["future_installments"] == (pledge["total_amount"] - answer["total_amount_paid"]) \
        // pledge["installment_size"]
    store.pledge_spread = False
    assert "start_date" not in store.render_pledge(pledge["id"]) and "id" in store.render_pledge(pledge["id"])


def test_the_same_seed_gives_the_same_schedules(world):
    again = generate_world(200, seed=5)
    assert again.wegive["pledges"] == world.wegive["pledges"]
    assert again.wegive["scheduled_donations"] == world.wegive["scheduled_donations"]
