"""Tributes over real HTTP: a WeGive gift that honors someone reaches Bloomerang as that person's tribute.

One small sandbox (a few WeGive gifts name one of three tributes, several gifts the same one), synced as
`bloom-pipeline sync` runs it, then synced again, then synced once more after the data folder is lost.

What it protects: each named tribute is created once (``POST /tribute`` with its ``TributeType``), every gift
naming it points its designation at that tribute (``TributeId``; the read model shows ``Tribute`` and the
tribute's ``TributeType``), a second gift reuses it, a second run posts no tribute, and a lost data folder
finds the tributes again by listing them — never a second tribute of one name. The strict Bloomerang sandbox
refuses undocumented input, so a planned ``Tribute`` left inside a designation would fail the gift.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # starts sandbox servers

TYPES = {"in_memory": "InMemoryOf", "in_honor": "InHonorOf"}


@pytest.fixture(scope="module")
def honored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.pipeline.conftest import SyncHarness, start_sandbox

    sb = start_sandbox(donors=12, seed=5)
    try:
        h = SyncHarness(sb, tmp_path_factory.mktemp("tributes") / "data")
        h.sync(direction="push")
        yield h
    finally:
        sb.stop()


def _tribute_gifts(h: Any) -> dict[str, dict[str, Any]]:
    """WeGive gifts that name a tribute and reached Bloomerang: source id → the Bloomerang transaction."""
    landed = h.transactions_by(h.WEGIVE_TRANSACTION_FIELD)
    return {str(t["id"]): landed[str(t["id"])][0] for t in h.sb.stores["wegive"].transactions.values()
            if t.get("tribute_name") and str(t["id"]) in landed}


def _tributes(h: Any) -> list[dict[str, Any]]:
    return [dict(t) for t in h.bloomerang.tributes.values()]


def test_first_run_succeeds_and_gifts_name_their_tribute(honored: Any) -> None:
    assert honored.reports[0].status == "succeeded", honored.reports[0].message
    wegive = honored.sb.stores["wegive"].transactions
    gifts = _tribute_gifts(honored)
    assert len(gifts) >= 3, "the sandbox world has gifts that honor someone"
    by_id = {t["Id"]: t for t in _tributes(honored)}
    for source_id, gift in gifts.items():
        source = wegive[int(source_id)]
        for designation in gift["Designations"]:
            tribute = by_id[designation["Tribute"]["Id"]]
            assert tribute["Name"] == source["tribute_name"]
            assert designation["Tribute"]["Name"] == source["tribute_name"]
            assert designation["TributeType"] == TYPES[source["tribute"]] == tribute["TributeType"]
            assert tribute.get("Note") == source["tribute_message"]


def test_gifts_without_a_tribute_name_none(honored: Any) -> None:
    landed = honored.transactions_by(honored.WEGIVE_TRANSACTION_FIELD)
    plain = [landed[str(t["id"])][0] for t in honored.sb.stores["wegive"].transactions.values()
             if not t.get("tribute_name") and str(t["id"]) in landed]
    assert plain
    assert not any("Tribute" in d for gift in plain for d in gift["Designations"])


def test_one_tribute_per_name_reused_by_a_second_gift(honored: Any) -> None:
    names = Counter(t["Name"] for t in _tributes(honored))
    assert names and set(names.values()) == {1}, names
    uses = Counter(d["Tribute"]["Id"] for gift in _tribute_gifts(honored).values() for d in gift["Designations"])
    assert max(uses.values()) >= 2, "one tribute is named by several gifts"
    posts = honored.write_requests()[("bloomerang", "POST", "/v2/tribute")]
    assert posts == len(names)


def test_second_run_posts_no_tribute(honored: Any) -> None:
    before = honored.write_requests()[("bloomerang", "POST", "/v2/tribute")]
    report = honored.sync(direction="push")
    assert report.status == "succeeded", report.message
    assert honored.write_requests()[("bloomerang", "POST", "/v2/tribute")] == before


def test_lost_data_folder_finds_the_tributes_again(honored: Any) -> None:
    before = {t["Id"]: t["Name"] for t in _tributes(honored)}
    shutil.rmtree(honored.data_dir)
    report = honored.sync(direction="push")
    assert report.status == "succeeded", report.message
    assert {t["Id"]: t["Name"] for t in _tributes(honored)} == before
    assert not honored.duplicates(honored.transactions_by(honored.WEGIVE_TRANSACTION_FIELD))
