"""Funds both ways over real HTTP, and names the org YAML gives that Bloomerang lacks.

Part 1 — one small sandbox synced both ways, then edited the way people edit the two systems, with syncs in
between. What it protects: a WeGive fund whose ``bloomerang_id`` names a Bloomerang fund is linked to that
fund even when another Bloomerang fund has its name (id beats name), and the two names are queued for review
rather than one side renamed; a fund renamed in Bloomerang is renamed in WeGive, one renamed in WeGive is
renamed in Bloomerang — each by one write, never a new fund, and the next run writes nothing; a fund renamed
on both sides is a conflict that waits in review, and the reviewer's answer is applied once.

Part 2 — the demo org with a mistyped Handbid fund. What it protects: ``sync --dry-run`` names the missing
fund and how many gifts it blocks; with ``bloomerang.create_missing: false`` those gifts are blocked with the
name in the reason and no fund is created; with ``true`` the fund is created once and the gifts land.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bloom_pipeline.staging import review

pytestmark = pytest.mark.slow  # starts sandbox servers

REPO = Path(__file__).resolve().parents[2]
FUND_PUT_BLOOMERANG = ("bloomerang", "PUT", "/v2/fund/{id}")
FUND_PUT_WEGIVE = ("wegive", "PUT", "/api/dashboard/funds/{id}")
FUND_POST = ("bloomerang", "POST", "/v2/fund")


def _writes(h: Any) -> Counter:
    """This run's fund writes on both sides (the request log is cleared before each run)."""
    counts = h.sb.request_log.counts()
    return Counter({k: n for k, n in counts.items() if k in (FUND_PUT_BLOOMERANG, FUND_PUT_WEGIVE, FUND_POST)})


def _sync(h: Any) -> Any:
    h.sb.request_log.clear()
    report = h.sync()
    assert report.status == "succeeded", report.message
    return report


def _links(h: Any) -> dict[int, int]:
    rows = h.frame("SELECT source_id, bloomerang_id FROM sync_state WHERE entity = 'funds' AND source = 'wegive'")
    return {int(s): int(b) for s, b in zip(rows["source_id"], rows["bloomerang_id"], strict=True)}


def _by_name(store: Any, name: str) -> int:
    return next(f["Id"] for f in store.funds.values() if f["Name"] == name)


@pytest.fixture(scope="module")
def funds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A sandbox where WeGive's 'Annual Fund' stores the Bloomerang id of 'Capital Campaign' (a fund WeGive
    does not have), synced once."""
    from tests.pipeline.conftest import SyncHarness, start_sandbox

    sb = start_sandbox(donors=12, seed=5)
    try:
        h = SyncHarness(sb, tmp_path_factory.mktemp("funds") / "data")
        wegive = sb.stores["wegive"]
        h.annual = next(i for i, f in wegive.funds.items() if f["name"] == "Annual Fund")
        wegive.update_fund(h.annual, {"bloomerang_id": _by_name(sb.stores["bloomerang"], "Capital Campaign")})
        _sync(h)
        yield h
    finally:
        sb.stop()


def _fund(h: Any, name: str) -> int:
    return next(i for i, f in h.sb.stores["wegive"].funds.items() if f["name"] == name)


@pytest.fixture(scope="module")
def renamed(funds: Any) -> Any:
    """One run after three edits: a fund renamed in Bloomerang, one in WeGive, one on both sides."""
    wegive, links = funds.sb.stores["wegive"], _links(funds)
    funds.building, funds.youth, funds.scholarship = (_fund(funds, n) for n in (
        "Building Fund", "Youth Programs", "Scholarship Fund"))
    funds.bloomerang_before = len(funds.bloomerang.funds)
    funds.bloomerang.update_named("fund", links[funds.building], {"Name": "Building Fund 2027"})
    wegive.update_fund(funds.youth, {"name": "Youth & Family Programs"})
    wegive.update_fund(funds.scholarship, {"name": "Scholarships"})
    funds.bloomerang.update_named("fund", links[funds.scholarship], {"Name": "Scholarship Endowment"})
    funds.renamed_report = _sync(funds)
    funds.renamed_writes = _writes(funds)
    return funds


def test_id_beats_name_and_two_names_wait_for_review(funds: Any) -> None:
    bloomerang = funds.bloomerang
    assert _links(funds)[funds.annual] == _by_name(bloomerang, "Capital Campaign")
    assert Counter(f["Name"] for f in bloomerang.funds.values())["Annual Fund"] == 1
    with funds.store.connect() as con:
        items = [i for i in review.list_reviews(con) if i.entity == "funds" and i.source_id == str(funds.annual)]
    assert [(i.field, i.source_value, i.bloomerang_value) for i in items] == [
        ("name", "Annual Fund", "Capital Campaign")]
    assert funds.sb.stores["wegive"].funds[funds.annual]["name"] == "Annual Fund"  # nothing renamed on a guess


def test_every_other_fund_is_linked_by_its_own_name(funds: Any) -> None:
    wegive, bloomerang = funds.sb.stores["wegive"].funds, funds.bloomerang.funds
    links = _links(funds)
    assert set(links) == set(wegive)
    for fund_id, bloomerang_id in links.items():
        if fund_id != funds.annual:
            assert bloomerang[bloomerang_id]["Name"] == wegive[fund_id]["name"]


def test_a_rename_on_one_side_reaches_the_other_by_one_write(renamed: Any) -> None:
    links = _links(renamed)
    assert renamed.sb.stores["wegive"].funds[renamed.building]["name"] == "Building Fund 2027"
    assert renamed.bloomerang.funds[links[renamed.youth]]["Name"] == "Youth & Family Programs"
    assert renamed.renamed_writes == Counter({FUND_PUT_WEGIVE: 1, FUND_PUT_BLOOMERANG: 1})
    assert len(renamed.bloomerang.funds) == renamed.bloomerang_before  # a rename never creates a fund


def test_a_rename_on_both_sides_is_a_conflict_that_waits(renamed: Any) -> None:
    assert renamed.renamed_report.conflicts >= 1
    sid = str(renamed.scholarship)
    conflicts = renamed.frame("SELECT rule, winner FROM conflicts WHERE entity = 'funds' AND source_id = ?", [sid])
    assert conflicts.values.tolist() == [["both_changed", "review"]]
    assert renamed.sb.stores["wegive"].funds[renamed.scholarship]["name"] == "Scholarships"
    assert renamed.bloomerang.funds[_links(renamed)[renamed.scholarship]]["Name"] == "Scholarship Endowment"


def test_the_answer_is_applied_once_and_then_every_run_is_quiet(renamed: Any) -> None:
    with renamed.store.connect() as con:
        item = next(i for i in review.list_reviews(con)
                    if i.entity == "funds" and i.source_id == str(renamed.scholarship))
        review.resolve_review(con, item.id, "bloomerang")
    _sync(renamed)
    assert renamed.sb.stores["wegive"].funds[renamed.scholarship]["name"] == "Scholarship Endowment"
    assert _writes(renamed) == Counter({FUND_PUT_WEGIVE: 1})  # the two renames of the last run flow once
    _sync(renamed)
    assert _writes(renamed) == Counter()
    sid = str(renamed.scholarship)
    assert len(renamed.frame("SELECT * FROM conflicts WHERE entity = 'funds' AND source_id = ?", [sid])) == 1


# -- part 2: names the org YAML gives ------------------------------------------------------------------------------
TYPO = "Gala Fnd"


def _mappings(root: Path, *, create_missing: bool) -> Path:
    if not root.exists():
        shutil.copytree(REPO / "mappings", root)
    path = root / "orgs" / "demo.yaml"
    data = yaml.safe_load(path.read_text())
    data["handbid"]["default"]["fund"] = TYPO
    data["bloomerang"]["create_missing"] = create_missing
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def mistyped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.pipeline.conftest import SyncHarness, start_sandbox

    sb = start_sandbox(donors=12, seed=5)
    try:
        root = tmp_path_factory.mktemp("mistyped")
        yield SyncHarness(sb, root / "data", mappings_dir=_mappings(root / "mappings", create_missing=False))
    finally:
        sb.stop()


def _handbid_sent(h: Any) -> set[str]:
    return set(h.transactions_by(h.HANDBID_PAYMENT_FIELD))


def test_dry_run_names_the_missing_fund_and_the_gifts_it_blocks(mistyped: Any, capsys: Any) -> None:
    report = mistyped.sync(direction="push", dry_run=True, quiet=False)
    missing = [(m.entity, m.name) for m in report.missing_names]
    assert missing == [("funds", TYPO)]
    blocked = report.plan[(report.plan["source"] == "handbid") & (report.plan["entity"] == "transactions")]
    assert report.missing_names[0].gifts == len(blocked) > 0
    assert f"fund '{TYPO}': blocks {len(blocked)} gift(s)" in capsys.readouterr().out
    assert not any(f["Name"] == TYPO for f in mistyped.bloomerang.funds.values())


def test_without_create_missing_the_gifts_wait_with_the_name(mistyped: Any) -> None:
    report = mistyped.sync(direction="push")
    plan = report.plan[(report.plan["source"] == "handbid") & (report.plan["entity"] == "transactions")]
    assert set(plan["action"]) == {"blocked"}
    assert all(TYPO in reason for reason in plan["reason"])
    assert not any(f["Name"] == TYPO for f in mistyped.bloomerang.funds.values())
    assert not _handbid_sent(mistyped)
    assert mistyped.transactions_by(mistyped.WEGIVE_TRANSACTION_FIELD), "the other gifts land"


def test_with_create_missing_the_fund_is_created_once_and_the_gifts_land(mistyped: Any) -> None:
    _mappings(mistyped.mappings_dir, create_missing=True)
    mistyped.sb.request_log.clear()
    report = mistyped.sync(direction="push")
    assert report.status == "succeeded", report.message
    created = [f for f in mistyped.bloomerang.funds.values() if f["Name"] == TYPO]
    assert len(created) == 1
    sent = mistyped.transactions_by(mistyped.HANDBID_PAYMENT_FIELD)
    assert sent and all(d["Fund"]["Id"] == created[0]["Id"] for [gift] in sent.values() for d in gift["Designations"])
    assert mistyped.sb.request_log.counts()[FUND_POST] == 1
    mistyped.sb.request_log.clear()
    mistyped.sync(direction="push")
    assert mistyped.sb.request_log.counts()[FUND_POST] == 0
