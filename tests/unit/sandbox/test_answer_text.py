"""Cached record texts of list pages (``sandbox/answer_text.py``) are exactly what a fresh render would send.

A page assembled from cached texts must be byte for byte the ``json.dumps`` of the whole envelope, and a cached
text must be dropped as soon as anything its render reads changes — through the store's methods or by a test
writing a table directly. Each test changes one input the render reads and compares the cached text with
a fresh render. In process (Starlette's ``TestClient``), so this stays in the fast tier.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime

with warnings.catch_warnings():  # starlette's notice about its httpx-based client: not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bloom_pipeline.sandbox.answer_text import TextCache, compact, page_text
from bloom_pipeline.sandbox.bloomerang.app import create_app as bloomerang_app
from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore
from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.tree import copy_tree
from bloom_pipeline.sandbox.wegive.app import create_app as wegive_app
from bloom_pipeline.sandbox.wegive.store import WeGiveStore
from bloom_pipeline.settings import SANDBOX_KEYS


def test_page_text_is_the_envelopes_json_wherever_the_list_sits() -> None:
    records = [{"Name": "Zoë", "Id": 1, "Nested": {"a": [1, 2.5, None, True]}}, {"Id": 2}]
    texts = [compact(r) for r in records]
    first = {"Total": 2, "Start": 0}
    assert page_text(first, "Results", texts, compact) == compact(first | {"Results": records})
    assert page_text(first, "Results", [], compact) == compact(first | {"Results": []})
    middle = {"data": None, "search_mode": False, "meta": {"total": "2", "to": 2}}  # the list first, as WeGive's
    encode = lambda value: compact(value, ensure_ascii=False)  # noqa: E731
    assert page_text(middle, "data", [encode(r) for r in records], encode) == encode(middle | {"data": records})


def test_text_cache_renders_again_when_an_input_changes_in_place() -> None:
    record = {"Id": 7, "Tags": ["a"], "Address": {"City": "Oslo"}, "At": datetime(2026, 1, 2, tzinfo=UTC)}
    renders = []
    cache = TextCache(compact)

    def render() -> dict:
        renders.append(1)
        return {k: v for k, v in record.items() if k != "At"}

    first = cache.text(7, record, render)
    assert len(cache) == 0  # sent once: only marked as seen
    assert cache.text(7, record, render) == first and len(renders) == 2 and len(cache) == 1  # kept from now on
    assert cache.text(7, record, render) == first and len(renders) == 2  # unchanged: served again
    record["Address"]["City"] = "Bergen"  # a nested change, made in place
    assert json.loads(cache.text(7, record, render))["Address"] == {"City": "Bergen"} and len(renders) == 3
    record["Tags"].append("b")
    assert json.loads(cache.text(7, record, render))["Tags"] == ["a", "b"] and len(renders) == 4
    assert cache.text(7, record, render) and len(renders) == 4
    copied = copy_tree(record)  # what the cache keeps of the inputs
    assert copied == record and copied["Tags"] is not record["Tags"] and copied["At"] is record["At"]


def _bloomerang_client() -> tuple[BloomerangStore, TestClient]:
    store = BloomerangStore.from_world(generate_world(donors=60, seed=11))
    app = bloomerang_app(store, Knobs(rate_limit=None), RequestLog(), SANDBOX_KEYS["bloomerang"])
    return store, TestClient(app, headers={"X-API-KEY": SANDBOX_KEYS["bloomerang"]})


def _fresh_page(store: BloomerangStore, ids: list[int], total: int, skip: int = 0) -> str:
    """What the page was before the cache: ``json.dumps`` of the envelope of fresh renders."""
    rows = [store.render_constituent(i) for i in ids]
    return json.dumps({"Total": total, "TotalFiltered": total, "Start": skip, "ResultCount": len(rows),
                       "Results": rows}, separators=(",", ":"), allow_nan=False)


def test_constituent_pages_follow_every_kind_of_change() -> None:
    store, client = _bloomerang_client()
    ids = list(store.constituents)[:10]
    target = ids[3]

    def page() -> str:
        answer = client.get("/v2/constituents", params={"take": 10})
        assert answer.status_code == 200
        return answer.text

    renders: list[int] = []
    render = store.render_constituent
    store.render_constituent = lambda record_id: renders.append(record_id) or render(record_id)  # type: ignore[method-assign]
    # the first page renders its 10 records, and _fresh_page its own 10
    assert page() == _fresh_page(store, ids, len(store.constituents)) and len(renders) == 10 + 10
    renders.clear()
    # the second page: every text kept from the first render (sandbox/kept_texts.py), none rendered again
    assert page() == _fresh_page(store, ids, len(store.constituents)) and len(renders) == 10  # _fresh_page alone
    changes = [
        lambda: client.put(f"/v2/constituent/{target}", json={"JobTitle": "Treasurer"}),  # through the API
        lambda: store.constituents[target].__setitem__("FirstName", "Directly"),  # a test writing the table
        lambda: store.constituents[target]["_custom"].pop(901, None),  # a nested value, in place
        lambda: store.touch("constituent", target, at=datetime(2026, 1, 1, tzinfo=UTC)),
        lambda: client.post("/v2/email", json={"AccountId": target, "Type": "Work", "Value": "work@example.org",
                                               "IsPrimary": True}),  # a contact record of its own table
        lambda: next(iter(store.emails.values())).__setitem__("Value", "changed@example.org"),
        lambda: store.custom_fields[901].__setitem__("Name", "Renamed Field"),  # a name the render shows
    ]
    for change in changes:
        change()
        assert page() == _fresh_page(store, ids, len(store.constituents))
    assert json.loads(page())["Results"][3]["FirstName"] == "Directly"


def test_constituent_by_correlation_and_modified_pages_are_fresh_renders() -> None:
    store, client = _bloomerang_client()
    holder = next(c for c in store.constituents.values() if 901 in c["_custom"])
    value = holder["_custom"][901]["Value"]
    answer = client.get("/v2/constituents", params={"customFieldId": 901, "customFieldValue": value})
    assert answer.json()["Results"] == [store.render_constituent(holder["Id"])]
    store.clock = lambda: datetime(2099, 1, 1, tzinfo=UTC)  # the update is the latest change
    client.put(f"/v2/constituent/{holder['Id']}", json={"JobTitle": "Chair"})
    modified = client.get("/v2/constituents", params={"orderBy": "LastModifiedDate", "orderDirection": "Desc",
                                                      "take": 1})
    assert modified.json()["Results"] == [store.render_constituent(holder["Id"])]
    assert modified.json()["Results"][0]["JobTitle"] == "Chair"


def test_wegive_donor_pages_are_the_rows_json_after_changes() -> None:
    store = WeGiveStore.from_world(generate_world(donors=40, seed=11))
    app = wegive_app(store, Knobs(rate_limit=None), RequestLog(), SANDBOX_KEYS["wegive"])
    client = TestClient(app, headers={"Authorization": f"Bearer {SANDBOX_KEYS['wegive']}"})

    def rows() -> list:
        answer = client.get("/api/dashboard/donors", params={"count": 15, "page": 2})
        assert answer.status_code == 200
        body = answer.json()
        rebuilt = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        assert answer.content == rebuilt  # the assembled page is JSONResponse's bytes
        return body["data"]

    ids = sorted(store.donors)[15:30]
    assert rows() == [store.render_donor_row(i) for i in ids]
    donor = store.donors[ids[2]]
    with_address = next(store.donors[i] for i in ids if store.donors[i].get("mailing_address"))
    for change in (lambda: donor.__setitem__("first_name", "Changed"),
                   lambda: with_address["mailing_address"].__setitem__("city", "Elsewhere")):
        change()
        assert rows() == [store.render_donor_row(i) for i in ids]
    assert rows()[2]["first_name"] == "Changed"
