"""The merge carry over the real sandboxes: a quiet night carries the linked donors the merge last found
unchanged straight past it, and an edit on either side of a carried donor still flows the next night.
"""

from __future__ import annotations

from collections import Counter
from contextlib import closing

import duckdb
import pytest

from tests.pipeline.conftest_bidir import BidirWorld, bloomerang_value

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

WEGIVE_PUT = ("wegive", "PUT", "/api/dashboard/donors/{id}")
BLOOMERANG_PUT = ("bloomerang", "PUT", "/v2/constituent/{id}")


def _noted(world: BidirWorld) -> dict[tuple[str, str], tuple[str, str]]:
    rows = world.query("SELECT source, source_id, fingerprint, run_id FROM merge_unchanged")
    return {(r["source"], r["source_id"]): (r["fingerprint"], r["run_id"]) for r in rows}


def test_quiet_nights_carry_linked_donors_and_edits_on_carried_donors_still_flow(
        bidir_world: BidirWorld) -> None:
    world, pick = bidir_world, bidir_world.picker
    world.sync()  # the first sync's own writes come back once through the cursor: the unchanged are noted
    world.sync()  # a quiet night
    noted = _noted(world)
    linked = [("wegive", sid) for sid, _ in world.linked("wegive")] + \
        [("handbid", sid) for sid, _ in world.linked("handbid")]
    assert set(noted) <= set(linked)
    assert len(noted) >= len(linked) - 2, "nearly every linked donor is noted unchanged on a quiet night"

    pulled, pulled_constituent = pick.take("wegive", with_fields=("phone",))
    pushed, pushed_constituent = pick.take("wegive", with_fields=("first_name",))
    assert ("wegive", pulled) in noted and ("wegive", pushed) in noted
    stale = next(key for key in noted if key not in {("wegive", pulled), ("wegive", pushed)})
    staging = str(world.data_dir / f"{world.org}_staging.duckdb")
    with closing(duckdb.connect(staging)) as con:  # a fingerprint that no longer matches costs that donor a merge
        con.execute("UPDATE merge_unchanged SET fingerprint = 'stale' WHERE source = ? AND source_id = ?",
                    list(stale))

    quiet = world.sync()
    assert world.writes() == Counter()
    after = _noted(world)
    carried = {key for key, (_, run_id) in after.items() if run_id == noted[key][1]}
    assert carried == set(noted) - {stale}, "carried donors are not noted again"
    assert after[stale][1] == quiet.run_id and after[stale][0] == noted[stale][0], \
        "the donor whose fingerprint did not match went through the merge, was found unchanged, noted again"

    world.bloomerang.update_constituent(pulled_constituent,
                                        {"PrimaryPhone": {"Type": "Mobile", "Number": "(720) 555-0142"}},
                                        actor="Front Desk")
    world.wegive.update_donor(int(pushed), {"first_name": "Carriedon"})
    edited = world.sync()
    assert world.writes() == Counter({WEGIVE_PUT: 1, BLOOMERANG_PUT: 1})
    assert world.donor(pulled)["mobile_phone"] == "(720) 555-0142"
    assert bloomerang_value(world.constituent(pushed_constituent), "first_name") == "Carriedon"
    assert [r["action"] for r in world.log(edited.run_id, "wegive", pulled)] == ["updated"]
    assert [r["action"] for r in world.log(edited.run_id, "wegive", pushed)] == ["updated"]

    world.sync()  # the echo of those writes: no change, nothing written, both noted unchanged again
    assert world.writes() == Counter()
    final = _noted(world)
    assert final[("wegive", pulled)][0] != noted[("wegive", pulled)][0]
    assert final[("wegive", pushed)][0] != noted[("wegive", pushed)][0]

