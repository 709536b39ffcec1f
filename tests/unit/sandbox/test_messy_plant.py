"""``Sandbox(messy=True)`` plants its hostile records deterministically, and ``messy=False`` plants nothing.

No server: the stores are built with ``Sandbox.build_store`` (what ``start`` serves) and the two simulator apps
are asked in process (Starlette's ``TestClient``), so this stays in the fast tier. The end-to-end proof that the
pipeline handles each planted record is tests/pipeline/test_messy_sandbox.py.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's notice about its httpx-based client: not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bloom_pipeline.sandbox.data import messy
from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.handbid.app import create_app as handbid_app
from bloom_pipeline.sandbox.handbid.store import HandbidStore, updated_after
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.sandbox.wegive.app import create_app as wegive_app
from bloom_pipeline.sandbox.wegive.store import WeGiveStore
from tests.contract.wegive_check import validate_wegive_body

DONORS, SEED = 40, 7
TABLES = {"wegive": ("donors", "transactions", "funds", "fund_allocations", "campaigns", "served_as_is"),
          "handbid": ("auctions", "contacts", "receipts", "payments", "items", "served_as_is")}


def dump(store: Any, api: str) -> str:
    return json.dumps({name: getattr(store, name) for name in TABLES[api]}, sort_keys=True, default=str)


def built(messy_mode: bool, seed: int = SEED) -> Sandbox:
    sb = Sandbox(donors=DONORS, seed=seed, messy=messy_mode)
    for api in ("wegive", "handbid"):
        sb.build_store(api)
    return sb


@pytest.fixture(scope="module")
def planted() -> Sandbox:
    return built(True)


def test_one_seed_gives_one_manifest_and_the_same_stores(planted: Sandbox) -> None:
    again = built(True)
    assert planted.messy_manifest == again.messy_manifest
    for api in ("wegive", "handbid"):
        assert dump(planted.stores[api], api) == dump(again.stores[api], api)
    assert built(True, seed=SEED + 1).messy_manifest != planted.messy_manifest, "another seed spoils other records"


def test_messy_off_leaves_the_stores_as_the_world_seeds_them() -> None:
    sb = built(False)
    world = generate_world(donors=DONORS, seed=SEED)
    assert sb.messy_manifest == []
    assert dump(sb.stores["wegive"], "wegive") == dump(WeGiveStore.from_world(world), "wegive")
    assert dump(sb.stores["handbid"], "handbid") == dump(HandbidStore.from_world(world), "handbid")
    assert all(rows == [] for store in sb.stores.values() for rows in store.served_as_is.values())


def test_the_manifest_stays_under_the_reject_gate(planted: Sandbox) -> None:
    manifest = planted.messy_manifest
    assert 15 <= len(manifest) <= 20
    assert {e["expected"] for e in manifest} <= set(messy.EXPECTED)
    rejects: dict[str, set[tuple[Any, ...]]] = {"constituents": set(), "transactions": set()}
    for e in manifest:
        if e["expected"] == "quarantined":
            staged = "constituents" if e["entity"] in ("donors", "contacts") else "transactions"
            copies = 2 if e["what"].startswith("duplicate id") else 1
            rejects[staged] |= {(e["api"], e["entity"], e["id"], n) for n in range(copies)}
    assert {k: len(v) for k, v in rejects.items()} == {"constituents": 4, "transactions": 9}
    for e in manifest:
        if e["expected"] == "field dropped":
            assert e["field"] and e["value"] is not None, e
    assert messy.summary(manifest).startswith(f"Messy mode planted {len(manifest)} hostile records (wegive donors: ")


def test_planted_values_are_in_the_stores(planted: Sandbox) -> None:
    wegive, handbid = planted.stores["wegive"], planted.stores["handbid"]
    by_what = {(e["api"], e["entity"], e["what"]): e for e in planted.messy_manifest}
    assert wegive.transactions[by_what["wegive", "transactions", "amount 2^63 cents"]["key"]]["amount"] == 2**63
    assert wegive.transactions[by_what["wegive", "transactions", "amount true"]["key"]]["amount"] is True
    assert wegive.transactions[by_what["wegive", "transactions", "updated_at year 9999"]["key"]]["updated_at"] \
        == messy.YEAR_9999
    assert "@@" in wegive.donors[by_what["wegive", "donors", "invalid email"]["key"]]["email_1"]
    assert handbid.payments[by_what["handbid", "payments", "amount true"]["key"]]["amount"] is True
    contact = by_what["handbid", "contacts", "dateUpdated year 9999"]["key"]
    assert handbid.contacts[contact]["dateUpdated"] == messy.YEAR_9999_EPOCH


def _wegive(sb: Sandbox) -> TestClient:
    app = wegive_app(sb.stores["wegive"], Knobs(rate_limit=None), RequestLog(), sb.keys["wegive"])
    return TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {sb.keys['wegive']}"})


def _every(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a WeGive list, each page checked against the OpenAPI document as the contract plugin
    checks the answers of a served sandbox (a hostile value still has the documented shape)."""
    rows, page = [], 1
    while True:
        body = client.get(path, params={**params, "page": page, "count": 25}).json()
        assert validate_wegive_body("GET", path, 200, body) == []
        rows += body["data"]
        assert int(body["meta"]["total"]) >= len(rows)
        if body["meta"]["current_page"] >= body["meta"]["last_page"]:
            return rows
        page += 1


def test_wegive_serves_the_rows_a_table_cannot_hold_after_its_own(planted: Sandbox) -> None:
    client = _wegive(planted)
    store = planted.stores["wegive"]
    donors = _every(client, "/api/dashboard/donors")
    assert [d["id"] for d in donors[:len(store.donors)]] == sorted(store.donors), "the table's rows page as before"
    tail = donors[len(store.donors):]
    dup = next(e["id"] for e in planted.messy_manifest if e["entity"] == "donors" and e["what"] == "duplicate id")
    assert [d["id"] for d in tail] == [dup, None]
    assert tail[0] != store.render_donor_row(dup), "the second row under the id differs"
    assert client.get(f"/api/dashboard/donors/{dup}").json()["data"]["id"] == dup, "the detail is the table's"
    assert client.get("/api/dashboard/transactions/null").status_code == 404
    txns = _every(client, "/api/dashboard/transactions", **{"sort[amount]": "desc"})
    assert len(txns) == len(store.transactions) + 2 and txns[-2]["id"] is None
    # an incremental read: only what is after the start as text — year 9999 and "soon", none of the rest
    recent = _every(client, "/api/dashboard/transactions", **{"updated_at[start]": "2030-01-01T00:00:00Z"})
    assert sorted(t["updated_at"] for t in recent) == [messy.YEAR_9999, "soon"]


def test_handbid_lists_one_payment_under_two_events(planted: Sandbox) -> None:
    sb, store = planted, planted.stores["handbid"]
    client = TestClient(handbid_app(store, Knobs(rate_limit=None), RequestLog(), sb.keys["handbid"]),
                        base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {sb.keys['handbid']}"})
    (entry,) = [e for e in sb.messy_manifest if e["what"] == "duplicate id in two auctions"]
    seen = []
    for auction in sorted(store.auctions):
        body = client.get(f"/v3/manager/auctions/{auction}/payments", params={"limit": 100}).json()
        assert body["totalCount"] == len(body["payments"])
        seen += [auction for p in body["payments"] if p["id"] == entry["id"]]
    assert len(seen) == 2 and len(set(seen)) == 2
    since = client.get(f"/v3/manager/organizations/{store.org_id}/contacts",
                       params={"updatedSince": 1_900_000_000, "limit": 100}).json()["contacts"]
    assert [c["dateUpdated"] for c in since] == [messy.YEAR_9999_EPOCH], "the zero date is before any cursor"


@pytest.mark.parametrize(("value", "floor", "after"), [
    (1700000001, 1700000000, True), (1700000000, 1700000000, False), ("1700000001", 1700000000, True),
    ("0000-00-00 00:00:00", 1700000000, False), ("soon", 1700000000, True), (None, 0, False), (True, 0, False),
])
def test_updated_since_compares_as_handbid_would(value: Any, floor: int, after: bool) -> None:
    assert updated_after(value, floor) is after
