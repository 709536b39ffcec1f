"""``generate_world(donors, seed)``: the deterministic data the three sandbox simulators start from.

One seed gives one byte-identical world (Faker seeded once for name pools, ``random.Random`` streams
per source; a fixed ``ANCHOR`` "now" of 2026-11-01 UTC so nothing depends on the wall clock). The
world is built to exercise every path of the sync:

* WeGive donors (~10% companies) with missing names, invalid emails, odd phone formats and
  international addresses; ~3 transactions each over the 120 days before the anchor in every status
  and source type, refunds and failures, split fund allocations, monthly recurring and pledge payments,
  and the pledges and scheduled donations those payments name (``schedules``).
* Bloomerang already knows ~15% of the WeGive donors, in four identity paths (``World.links``):
  ``"both"`` — custom field 901 holds the WeGive id *and* the donor's ``bloomerang_id`` is set;
  ``"custom_field"`` — only 901 is set; ``"bloomerang_id"`` — only the WeGive side knows the link;
  ``"match"`` — no correlation id at all, the duplicate rule (email / name / phone) must find it.
  ``bloomerang_id`` values are the ids the Bloomerang store assigns when seeded from this world, counted by
  ``BloomerangStore.seeded_constituent_ids`` (the store's own id rule, checked against a seeded store).
* Bloomerang also has funds (some sharing WeGive fund names), campaigns and appeals, and a few
  constituents of its own.
* Handbid: auctions in every status (two reconciled), contacts (~10% the same person as a WeGive donor,
  same email, nickname as first name), items, receipts with line items (emailed and not), payments.

The record shapes of each API live beside this module (``people``, ``wegive``, ``handbid``,
``bloomerang``); this module only decides what the world holds and how records of different APIs are
the same person, which is why it is the one place that knows all three.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bloom_pipeline.sandbox.data.bloomerang import bloomerang_seed, constituent_body
from bloom_pipeline.sandbox.data.handbid import HANDBID_ORG_ID, handbid_world
from bloom_pipeline.sandbox.data.people import build_pools, person
from bloom_pipeline.sandbox.data.schedules import wegive_schedules
from bloom_pipeline.sandbox.data.wegive import (
    ANCHOR,
    FIRST_ALLOCATION_ID,
    FIRST_TRANSACTION_ID,
    default_campaigns,
    default_funds,
    iter_wegive_records,
)
from bloom_pipeline.sandbox.heap import paused_gc

LINK_PATHS = ("both", "custom_field", "bloomerang_id", "match")
LINK_WEIGHTS = (40, 20, 10, 30)


@dataclass
class World:
    """Everything the three stores are seeded from (see INTERFACES.md)."""

    bloomerang: dict[str, list[dict[str, Any]]]
    wegive: dict[str, list[dict[str, Any]]]
    handbid: dict[str, list[dict[str, Any]]]
    handbid_org_id: int
    seed: int = 42
    anchor: datetime = ANCHOR
    # identity path -> [(source, source id, index into bloomerang["constituents"])]
    links: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)


def _assign_bloomerang_ids(world: World) -> list[int]:
    """Ids the Bloomerang store gives ``world.bloomerang["constituents"]``, in order (seeded like Sandbox), counted
    by the store's own rule rather than by seeding a throwaway store (a tenth of the generation time)."""
    from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore

    return BloomerangStore.seeded_constituent_ids(world)


def generate_world(donors: int = 2000, seed: int = 42, anchor: datetime = ANCHOR) -> World:
    """A deterministic world for all three APIs (same seed → byte-identical JSON); built with the cyclic
    collector paused (``sandbox/heap.py``: the world is one big acyclic tree, collections only cost time)."""
    with paused_gc():
        return _generate_world(donors, seed, anchor)


def _generate_world(donors: int, seed: int, anchor: datetime) -> World:
    pools = build_pools(seed)
    rng = random.Random(f"world-{seed}")
    records = list(iter_wegive_records(donors, seed, anchor=anchor, pools=pools))
    transactions = sorted((t for _p, _d, txns in records for t in txns), key=lambda t: (t["created_at"], t["id"]))
    allocations = []
    for index, txn in enumerate(transactions):  # ids follow creation time, as in a real database
        txn["id"] = FIRST_TRANSACTION_ID + index
        txn["receipt_id"] = f"R-{txn['id']}"
        for alloc in txn["fund_allocations"]:
            alloc["id"] = FIRST_ALLOCATION_ID + len(allocations)
            alloc["transaction_id"] = txn["id"]
            allocations.append(alloc)
    pledges, scheduled_donations = wegive_schedules(transactions)
    wegive = {"donors": [d for _p, d, _t in records], "transactions": transactions, "funds": default_funds(),
              "fund_allocations": allocations, "campaigns": default_campaigns(), "pledges": pledges,
              "scheduled_donations": scheduled_donations}

    n_contacts = max(20, donors // 4)
    handbid = handbid_world(random.Random(f"handbid-{seed}"), pools, anchor,
                            [(p, d) for p, d, _t in records], n_contacts)

    constituents: list[dict[str, Any]] = []
    links: dict[str, list[tuple[str, int, int]]] = {path: [] for path in LINK_PATHS}
    for p, donor, _txns in records:
        if rng.random() >= 0.15:
            continue
        path = rng.choices(LINK_PATHS, LINK_WEIGHTS)[0]
        body = constituent_body(p)
        if path in ("both", "custom_field"):
            body["CustomValues"] = [{"FieldId": 901, "Value": str(donor["id"])}]
        elif path == "match" and body.get("PrimaryPhone") and rng.random() < 0.5:
            digits = "".join(ch for ch in body["PrimaryPhone"]["Number"] if ch.isdigit())
            body["PrimaryPhone"]["Number"] = digits  # same phone, other format
        links[path].append(("wegive", donor["id"], len(constituents)))
        constituents.append(body)
    wegive_emails = {d["email_1"] for d in wegive["donors"]}
    own_contacts = [c for c in handbid["contacts"] if c["email"] not in wegive_emails]
    for contact in own_contacts[: max(2, len(own_contacts) // 12)]:
        p = {"is_company": False, "first_name": contact["firstName"], "last_name": contact["lastName"],
             "middle_name": None, "email": contact["email"], "mobile_phone": contact["userCellPhone"],
             "home_phone": contact["userPhone"], "address": None}
        body = constituent_body(p)
        if rng.random() < 0.5:
            body["CustomValues"] = [{"FieldId": 902, "Value": str(contact["id"])}]
        links.setdefault("handbid", []).append(("handbid", contact["id"], len(constituents)))
        constituents.append(body)
    own_rng = random.Random(f"bloomerang-{seed}")
    for index in range(max(3, donors // 30)):  # Bloomerang-only constituents
        constituents.append(constituent_body(person(own_rng, pools, 800_000 + index, bad_email_share=0.0)))
    world = World(
        bloomerang=bloomerang_seed(constituents),
        wegive=wegive, handbid=handbid, handbid_org_id=HANDBID_ORG_ID, seed=seed, anchor=anchor, links=links,
    )
    ids = _assign_bloomerang_ids(world)
    by_id = {d["id"]: d for d in wegive["donors"]}
    for path in ("both", "bloomerang_id"):
        for _source, donor_id, index in links[path]:
            by_id[donor_id]["bloomerang_id"] = ids[index]
    return world

