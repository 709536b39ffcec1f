"""The push plan reads only the run's staged donors it plans (``push_plan.unlinked_people``): exactly the rows
``linked_mask`` leaves to it — no link, a link without a stored source snapshot — in the staged table's order."""

import pandas as pd

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.ledgers import SyncState
from bloom_pipeline.sync.plan.push_plan import linked_mask, unlinked_people
from bloom_pipeline.sync.stage import staged_frame


def test_the_unlinked_people_are_those_linked_mask_leaves(store, rows):
    people = [rows.constituent(sid) for sid in ("9", "1", "5", "7", "3")]
    store.write_staged("constituents", pd.DataFrame(people), source="wegive", run_id="r2")
    store.write_staged("constituents", pd.DataFrame([rows.constituent("1", source="handbid")]), source="handbid",
                       run_id="r2")
    store.write_staged("constituents", pd.DataFrame([rows.constituent("8")]), source="wegive", run_id="r1")
    with store.write() as con:
        ledgers.upsert_state(con, SyncState("constituents", "wegive", "1", bloomerang_id=11,
                                            source_snapshot={"email": "a@x.org"}))  # linked and merged: not planned
        ledgers.upsert_state(con, SyncState("constituents", "wegive", "5", bloomerang_id=15))  # linked, no snapshot
        ledgers.upsert_state(con, SyncState("constituents", "wegive", "7", source_snapshot={"email": "b@x.org"}))
        ledgers.upsert_state(con, SyncState("transactions", "wegive", "9", bloomerang_id=19,
                                            source_snapshot={"amount": 1}))  # another entity's pair
        states = ledgers.states_frame(con, "constituents")
    staged = staged_frame(store, "constituents", "r2")
    expected = staged[~linked_mask(staged, states)].reset_index(drop=True)
    got = unlinked_people(store, "r2")
    assert list(zip(got["source"], got["source_id"], strict=True)) == [
        ("wegive", "9"), ("wegive", "5"), ("wegive", "7"), ("wegive", "3"), ("handbid", "1")]
    pd.testing.assert_frame_equal(got, expected)
