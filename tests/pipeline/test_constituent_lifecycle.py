"""A record's whole life over real HTTP: Bloomerang merges relink, WeGive archives keep or inactivate.

One small sandbox (14 donors), one shared clock, one scripted run of nights (syncs are the expensive part, so
every case rides the same nights) and tests that read what each night did:

* night 1 -- staff merged two constituents in Bloomerang twice: a linked one into a duplicate they had typed by
  hand (the survivor takes the link's correlation value), and one linked donor's constituent into another
  linked donor's (the survivor keeps its own value: the link follows the moved gifts). A WeGive donor was
  archived under ``on_source_delete: keep``.
* night 2 -- nothing happened anywhere: nothing is written.
* night 3 -- the org switches to ``inactivate`` and another donor is archived: both archived donors'
  constituents become Inactive, once.
* night 4 -- quiet again; then that donor is restored in WeGive.
* night 5 -- the restored donor syncs again; its constituent stays Inactive.
* night 6 -- staff merged two linked constituents once more and the data folder is lost before any run saw
  it: the full re-read creates nobody and posts no gift again (the unseen merge's donor is found by where its
  gifts are).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from tests.pipeline.bloomerang_records import custom_value
from tests.pipeline.org_world import OrgWorld, open_world, write_org

pytestmark = pytest.mark.slow  # starts sandbox servers

ORG = "lifecycle"
DONOR_FIELD, GIFT_FIELD = 901, 911
CREATE = ("bloomerang", "POST", "/v2/constituent")
POST_GIFT = ("bloomerang", "POST", "/v2/transaction")
PUT_CONSTITUENT = ("bloomerang", "PUT", "/v2/constituent/{id}")


class World(OrgWorld):
    """The lifecycle org's world; ``history`` holds every night's writes."""

    used_holds_donor_ids: ClassVar[bool] = True

    def policy(self, policy: str) -> None:
        assert self.mappings_dir is not None
        write_org(self.mappings_dir, ORG, on_source_delete=policy)

    def gifts_by_value(self) -> Counter:
        """WeGive transaction id (correlation value) → how many Bloomerang transactions hold it."""
        out: Counter = Counter()
        for tid in list(self.bloomerang.transactions):
            record = self.bloomerang.render_transaction(tid)
            for value in {custom_value(d, GIFT_FIELD) for d in record.get("Designations", [])} - {None}:
                out[value] += 1
        return out


@dataclass
class Story:
    world: World
    who: dict[str, tuple[int, int]] = field(default_factory=dict)
    survivor: dict[str, int] = field(default_factory=dict)
    gifts: list[Counter] = field(default_factory=list)  # Bloomerang gifts by correlation value, after each night
    status: dict[str, list[str]] = field(default_factory=dict)  # night → Status of the archived donors' records
    merges: list[dict[str, Any]] = field(default_factory=list)  # the staging tables as they were before night 6
    deletions: list[dict[str, Any]] = field(default_factory=list)
    links: dict[str, int | None] = field(default_factory=dict)
    kept_on_night_1: dict[str, Any] = field(default_factory=dict)
    staged_on_night_5: set[str] = field(default_factory=set)

    def merges_of(self, donor_id: int) -> list[dict[str, Any]]:
        return [r for r in self.merges if r["source"] == "wegive" and r["source_id"] == str(donor_id)]

    def deletion_of(self, donor_id: int) -> dict[str, Any]:
        return next(r for r in self.deletions if r["source"] == "wegive" and r["source_id"] == str(donor_id))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    with open_world(tmp_path_factory.mktemp("lifecycle"), ORG, donors=14, seed=7, kind=World, after_hours=1) as w:
        w.policy("keep")
        w.sync()  # night 0: everyone linked
        s = Story(w)
        s.gifts.append(w.gifts_by_value())
        bl = w.bloomerang
        # night 1: two staff merges and an archive (keep)
        s.who["typed_dup"] = w.take(with_gifts=True)
        record = bl.render_constituent(s.who["typed_dup"][1])
        typed = bl.create_constituent({"Type": "Individual", "FirstName": record["FirstName"],
                                       "LastName": record["LastName"]}, actor="Front Desk")
        bl.merge_constituents(int(typed["Id"]), s.who["typed_dup"][1])
        s.survivor["typed_dup"] = int(typed["Id"])
        s.who["loser"], s.who["winner"] = w.take(with_gifts=True), w.take(with_gifts=True)
        bl.merge_constituents(s.who["winner"][1], s.who["loser"][1])
        s.survivor["loser"] = s.who["winner"][1]
        s.who["kept"] = w.take(with_gifts=True)
        w.wegive.archive_donor(s.who["kept"][0])
        w.sync()
        s.gifts.append(w.gifts_by_value())
        s.status["1"] = [bl.render_constituent(s.who["kept"][1])["Status"]]
        s.kept_on_night_1 = w.query("SELECT policy, action, run_id FROM source_deletions WHERE source_id = ?",
                                    [str(s.who["kept"][0])])[0]
        w.sync()  # night 2: quiet
        # night 3: inactivate, another archive
        w.policy("inactivate")
        s.who["inactivated"] = w.take(with_gifts=True)
        w.wegive.archive_donor(s.who["inactivated"][0])
        w.sync()
        s.status["3"] = [bl.render_constituent(s.who[n][1])["Status"] for n in ("kept", "inactivated")]
        w.sync()  # night 4: quiet
        w.wegive.restore_donor(s.who["inactivated"][0])
        w.sync()  # night 5: restored
        s.status["5"] = [bl.render_constituent(s.who["inactivated"][1])["Status"]]
        s.staged_on_night_5 = {r["source_id"] for r in w.query(
            "SELECT source_id FROM stg_constituents WHERE source = 'wegive' AND run_id = ?", [w.reports[5].run_id])}
        s.merges = w.query("SELECT * FROM constituent_merges ORDER BY detected_at")
        s.deletions = w.query("SELECT * FROM source_deletions ORDER BY source_id")
        s.links = {n: w.link(d) for n, (d, _) in s.who.items()}
        s.who["unseen_loser"], s.who["unseen_winner"] = w.take(with_gifts=True), w.take(with_gifts=True)
        bl.merge_constituents(s.who["unseen_winner"][1], s.who["unseen_loser"][1])  # a merge no run saw...
        s.survivor["unseen_loser"] = s.who["unseen_winner"][1]
        shutil.rmtree(w.data_dir)
        w.sync()  # night 6: ...and the data folder is gone
        s.gifts.append(w.gifts_by_value())
        yield s


def test_a_merge_relinks_to_the_survivor_without_a_create(story: Story) -> None:
    w = story.world
    night = w.history[1]
    assert night[CREATE] == 0 and night[POST_GIFT] == 0
    for name, found_by in (("typed_dup", "correlation_value"), ("loser", "moved_gifts")):
        donor, merged = story.who[name]
        assert story.links[name] == story.survivor[name]
        rows = story.merges_of(donor)
        assert [(r["merged_id"], r["survivor_id"], r["found_by"]) for r in rows] == \
            [(merged, story.survivor[name], found_by)]
        assert w.wegive.render_donor(donor)["bloomerang_id"] == story.survivor[name]  # the write-back follows
    shared = story.merges_of(story.who["loser"][0])
    assert f"wegive:{story.who['winner'][0]}" in shared[0]["note"]  # two donors, one person: recorded, not split
    assert story.links["winner"] == story.survivor["loser"]
    assert {r["run_id"] for r in story.merges} == {w.reports[1].run_id}  # found once, never again


def test_the_merged_gifts_are_not_posted_again(story: Story) -> None:
    before, after_merge, after_loss = story.gifts
    assert after_merge == before and after_loss == before
    assert max(before.values()) == 1
    survivor = story.survivor["typed_dup"]
    assert any(t["AccountId"] == survivor for t in story.world.bloomerang.transactions.values())


def test_quiet_nights_write_nothing(story: Story) -> None:
    for night in (2, 4):
        assert story.world.history[night] == Counter(), night


def test_keep_changes_nothing_in_bloomerang_and_marks_the_link(story: Story) -> None:
    w = story.world
    donor, constituent = story.who["kept"]
    assert story.status["1"] == ["Active"]
    row = story.deletion_of(donor)
    assert row["bloomerang_id"] == constituent and row["deleted_at"]
    assert story.kept_on_night_1 == {"policy": "keep", "action": "kept", "run_id": w.reports[1].run_id}
    wegive_writes = {k: n for k, n in w.history[1].items() if k[0] == "wegive"}
    assert all(str(donor) not in path for _, _, path in wegive_writes)
    assert w.history[1][PUT_CONSTITUENT] == 0


def test_inactivate_sets_status_once_and_never_deletes_gifts(story: Story) -> None:
    w = story.world
    assert story.status["3"] == ["Inactive", "Inactive"]  # the kept one too: the org now asks for it
    assert w.history[3][PUT_CONSTITUENT] == 2
    assert w.history[4][PUT_CONSTITUENT] == 0
    assert all(method != "DELETE" for night in w.history for _, method, _ in night)
    for name in ("kept", "inactivated"):
        assert any(t["AccountId"] == story.who[name][1] for t in w.bloomerang.transactions.values())


def test_a_restored_donor_syncs_again_but_stays_inactive(story: Story) -> None:
    w = story.world
    donor, constituent = story.who["inactivated"]
    assert story.status["5"] == ["Inactive"]
    assert story.links["inactivated"] == constituent
    row = story.deletion_of(donor)
    assert (row["action"], row["restored_run_id"]) == ("inactivated", w.reports[5].run_id)
    assert story.deletion_of(story.who["kept"][0])["restored_at"] is None
    assert str(donor) in story.staged_on_night_5 and str(story.who["kept"][0]) not in story.staged_on_night_5


def test_losing_the_data_folder_creates_nobody(story: Story) -> None:
    w = story.world
    night = w.history[6]
    assert night[CREATE] == 0 and night[POST_GIFT] == 0
    for name in ("typed_dup", "loser", "unseen_loser"):
        assert w.link(story.who[name][0]) == story.survivor[name], name
    rules = {r["source_id"]: r["reason"] for r in w.query(
        "SELECT source_id, reason FROM push_plan WHERE entity = 'constituents' AND source = 'wegive'")}
    assert "gift" in rules[str(story.who["unseen_loser"][0])]  # its gifts said who it is now
