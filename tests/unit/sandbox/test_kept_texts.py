"""Record texts kept from their first render (``sandbox/kept_texts.py``) and the list pages that use them.

A kept text must be the fresh render's text at every read: the second read of an unchanged record renders
nothing, and any change to what the render reads — in place, nested, through the API or by a test writing a
table directly — is seen on the very next read. Each test edits between two reads and compares with a fresh
render. In process (Starlette's ``TestClient``), so this stays in the fast tier.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import UTC, datetime

import pytest

with warnings.catch_warnings():  # starlette's notice about its httpx-based client: not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bloom_pipeline.sandbox.answer_text import compact
from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.kept_texts import KeptTexts, compact_encoder
from bloom_pipeline.sandbox.wegive.app import create_app as wegive_app
from bloom_pipeline.sandbox.wegive.listing import DonorRowTexts
from bloom_pipeline.sandbox.wegive.store import WeGiveStore
from bloom_pipeline.settings import SANDBOX_KEYS


def test_compact_encoder_is_compact_byte_for_byte_and_refuses_what_it_refuses() -> None:
    payloads = [{"Name": "Zoë ✓", "Id": 2**63, "Nested": {"a": [1, 2.5, -0.0, 1e300, None, True, False]}},
                [], {}, "plain \u2028 text", 3, None, [{"k": ""}, ["x", {"y": [None]}]], {1: "int key", "t": (1, 2)}]
    for ensure_ascii in (True, False):
        encode = compact_encoder(ensure_ascii=ensure_ascii)
        for payload in payloads:
            assert encode(payload) == compact(payload, ensure_ascii=ensure_ascii)
        circular: list = []
        circular.append(circular)
        for bad in ({"x": math.nan}, {"x": math.inf}, {"at": datetime(2026, 1, 1, tzinfo=UTC)}, circular):
            with pytest.raises(Exception) as refused:
                encode(bad)
            with pytest.raises(type(refused.value)):
                compact(bad, ensure_ascii=ensure_ascii)
        assert encode(payloads[0]) == compact(payloads[0], ensure_ascii=ensure_ascii)  # still sound after errors


def test_a_text_is_kept_from_the_first_render_and_dropped_on_any_change() -> None:
    record = {"Id": 3, "Tags": ["a"], "Address": {"City": "Oslo"}}
    renders: list[int] = []
    texts = KeptTexts(compact)

    def render() -> dict:
        renders.append(1)
        return dict(record)

    first = texts.text(3, record, render)
    assert first == compact(record) and len(texts) == 1 and len(renders) == 1  # kept at once
    assert texts.text(3, record, render) == first and len(renders) == 1  # unchanged: not rendered again
    record["Address"]["City"] = "Bergen"  # nested, in place: the snapshot is a copy, so the change shows
    assert json.loads(texts.text(3, record, render))["Address"] == {"City": "Bergen"} and len(renders) == 2
    record["Tags"].append("b")
    assert json.loads(texts.text(3, record, render))["Tags"] == ["a", "b"] and len(renders) == 3
    assert texts.text(3, record, render) == compact(record) and len(renders) == 3
    texts.discard(3)
    assert len(texts) == 0 and texts.text(3, record, render) == compact(record) and len(renders) == 4


class _Planted(dict):
    """A dict subclass a test might plant in a record (marshal writes no subclass)."""


def test_a_donor_row_text_is_the_rows_json_after_each_edit_of_what_it_reads() -> None:
    store = WeGiveStore.from_world(generate_world(donors=30, seed=5))
    rows = DonorRowTexts()
    donor = next(d for d in store.donors.values() if d.get("mailing_address"))
    fresh = lambda: compact(store.render_donor_row(donor["id"]), ensure_ascii=False)  # noqa: E731
    assert rows.text(donor) == fresh()
    edits = [lambda: donor.__setitem__("first_name", "Zoë"),  # a key the row picks
             lambda: donor["mailing_address"].__setitem__("readable_string", "1 New St"),  # the row's string
             lambda: donor.__setitem__("billing_address", {"city": "Here", "readable_string": "2 Old Rd"}),
             lambda: donor["billing_address"].__setitem__("city", "Elsewhere"),  # nested, in place
             lambda: donor.__setitem__("deleted_at", "2026-01-02T00:00:00.000000Z"),
             lambda: donor.__setitem__("pivot", {"tag": ["x"]}),
             lambda: donor.__setitem__("enabled", True),
             lambda: donor.__setitem__("enabled", 1),  # equal by ==, another JSON text: seen (marshal's bytes)
             lambda: donor.__setitem__("pivot", _Planted(tag="y")),  # marshal refuses it: compared by ==
             lambda: donor["pivot"].__setitem__("tag", "z")]
    for edit in edits:
        edit()
        assert rows.text(donor) == fresh()
    assert json.loads(rows.text(donor))["enabled"] == 1 and json.loads(rows.text(donor))["pivot"] == {"tag": "z"}
    assert json.loads(rows.text(donor))["billingAddress"] == donor["billing_address"].get("readable_string")


def test_wegive_donor_pages_follow_writes_through_the_api_between_two_reads() -> None:
    store = WeGiveStore.from_world(generate_world(donors=40, seed=11))
    client = TestClient(wegive_app(store, Knobs(rate_limit=None), RequestLog(), SANDBOX_KEYS["wegive"]),
                        headers={"Authorization": f"Bearer {SANDBOX_KEYS['wegive']}"})

    def page() -> list:
        answer = client.get("/api/dashboard/donors", params={"count": 10, "page": 1, "view": "both"})
        assert answer.status_code == 200
        return answer.json()["data"]

    ids = sorted(store.donors)[:10]
    assert page() == page() == [store.render_donor_row(i) for i in ids]  # the second read: kept texts
    target = ids[4]
    answer = client.put(f"/api/dashboard/donors/{target}", json={"first_name": "Renamed", "email_1": "n@example.org"})
    assert answer.status_code == 200
    assert page() == [store.render_donor_row(i) for i in ids]
    assert page()[4]["first_name"] == "Renamed" and page()[4]["email_1"] == "n@example.org"
    store.archive_donor(ids[6])  # listed under view=both with its deleted_at
    assert page() == [store.render_donor_row(i) for i in ids] and page()[6]["deleted_at"] is not None
