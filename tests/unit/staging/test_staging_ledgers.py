"""The ledgers: sync_state with pending markers, sync_log, sync_runs, cursors, conflicts, review queue."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.ledgers import Conflict, LogEntry, ReviewItem, SyncState


def test_sync_state_round_trip_and_update(store):
    when = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with store.write() as con:
        ledgers.upsert_state(
            con,
            SyncState(
                "constituents",
                "wegive",
                "7",
                bloomerang_id=501,
                source_snapshot={"email": "a@x.org"},
                source_hash="h1",
                source_modified_at=when,
                last_run_id="r1",
            ),
        )
        ledgers.upsert_state(
            con,
            SyncState(
                "constituents",
                "wegive",
                "7",
                bloomerang_id=501,
                source_snapshot={"email": "b@x.org"},
                source_hash="h2",
                last_run_id="r2",
            ),
        )
    with store.connect() as con:
        state = ledgers.get_state(con, "constituents", "wegive", "7")
        assert ledgers.get_state(con, "constituents", "wegive", "8") is None
        frame = ledgers.states_frame(con, "constituents")
    assert state.bloomerang_id == 501 and state.source_snapshot == {"email": "b@x.org"}
    assert state.source_hash == "h2" and state.last_run_id == "r2" and state.synced_at is not None
    assert frame.source_id.tolist() == ["7"]


def test_a_write_with_unknown_outcome_stays_pending_until_resolved(store):
    with store.write() as con:
        ledgers.mark_pending(con, "transactions", "wegive", "T1", "create", run_id="r1")
    # the process dies here; the next run finds the marker
    with store.connect() as con:
        pending = ledgers.pending_states(con)
    assert [(p.source_id, p.pending, p.pending_run_id) for p in pending] == [("T1", "create", "r1")]
    with store.write() as con:
        ledgers.upsert_state(con, SyncState("transactions", "wegive", "T1", bloomerang_id=9001))
        assert ledgers.pending_states(con) == []
        assert ledgers.get_state(con, "transactions", "wegive", "T1").bloomerang_id == 9001


def test_sync_log_rows_and_unknown_actions(store):
    with store.write() as con:
        n = ledgers.append_log(
            con,
            "r1",
            [
                LogEntry(
                    "constituents",
                    "wegive",
                    "1",
                    "created",
                    bloomerang_id=11,
                    field_diff={"Email": [None, "a"]},
                ),
                LogEntry("constituents", "wegive", "2", "failed", error="400: FirstName is required"),
            ],
        )
        assert n == 2
        with pytest.raises(ValueError):
            ledgers.append_log(con, "r1", [LogEntry("constituents", "wegive", "3", "exploded")])
    log = store.read_frame("SELECT source_id, action, field_diff, error FROM sync_log ORDER BY seq")
    assert log.action.tolist() == ["created", "failed"]
    assert log.error[1] == "400: FirstName is required"


def test_sync_run_lifecycle(store):
    with store.write() as con:
        ledgers.start_run(con, "r1", org="acme", direction="both")
        assert ledgers.get_run(con, "r1")["status"] == "running"
        ledgers.finish_run(
            con,
            "r1",
            status="halted",
            counts={"constituents": {"staged": 3}},
            message="12% rejected, over the 5% threshold",
        )
        run = ledgers.get_run(con, "r1")
        with pytest.raises(KeyError):
            ledgers.finish_run(con, "nope", status="succeeded")
        with pytest.raises(ValueError):
            ledgers.finish_run(con, "r1", status="running")
    assert run["status"] == "halted" and run["counts"] == {"constituents": {"staged": 3}}
    assert run["ended_at"] is not None and "threshold" in run["message"]


def test_cursor_is_only_what_the_caller_set(store):
    with store.write() as con:
        assert ledgers.get_cursor(con, "wegive.transactions") is None
        ledgers.set_cursor(con, "wegive.transactions", "2026-11-01T00:00:00Z", run_id="r1")
        ledgers.set_cursor(con, "wegive.transactions", "2026-11-02T00:00:00Z", run_id="r2")
        assert ledgers.get_cursor(con, "wegive.transactions") == "2026-11-02T00:00:00Z"


def test_conflicts_are_appended(store):
    with store.write() as con:
        ledgers.append_conflicts(
            con,
            "r1",
            [
                Conflict(
                    "constituents",
                    "wegive",
                    "7",
                    "email",
                    "a@x.org",
                    "b@x.org",
                    rule="last_modified_wins",
                    winner="bloomerang",
                )
            ],
        )
    got = store.read_frame("SELECT field, source_value, bloomerang_value, winner FROM conflicts")
    assert got.values.tolist() == [["email", '"a@x.org"', '"b@x.org"', "bloomerang"]]


def _item(**kw):
    base = dict(
        entity="constituents",
        source="wegive",
        source_id="7",
        field="email",
        source_value="a@x.org",
        bloomerang_value="b@x.org",
        reason="both changed at the same time",
        bloomerang_id=501,
    )
    base.update(kw)
    return ReviewItem(**base)


def test_review_item_lifecycle(store):
    with store.write() as con:
        first = ledgers.add_review(con, "r1", _item())
        again = ledgers.add_review(con, "r2", _item(source_value="c@x.org"))  # same conflict next night
        assert first == again
        [open_item] = ledgers.list_reviews(con)
        assert open_item.source_value == "c@x.org" and open_item.status == "open"
        when = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        for changed in ({"bloomerang_modified_at": when}, {"reason": "changed again"}, {"bloomerang_id": 502}):
            # a refresh that changes nothing is skipped; every changed value still reaches the item
            ledgers.add_review(con, "r2", _item(source_value="c@x.org", **changed))
            [open_item] = ledgers.list_reviews(con)
            assert all(getattr(open_item, key) == value for key, value in changed.items()), changed

        ledgers.resolve_review(con, first, "value:ada@x.org")
        assert ledgers.list_reviews(con) == []
        [decision] = ledgers.decisions_for(con, "constituents", "wegive", "7")
        assert (decision.decision, decision.decided_value) == ("value", "ada@x.org")
        assert ledgers.add_review(con, "r3", _item()) == first  # a decided item is not queued again

        assert ledgers.mark_applied(con, [first], "r4") == 1
        assert ledgers.decisions_for(con, "constituents", "wegive", "7") == []
        [applied] = ledgers.list_reviews(con, "applied")
        assert applied.applied_run_id == "r4"
        with pytest.raises(ValueError):
            ledgers.resolve_review(con, first, "source")
        with pytest.raises(KeyError):
            ledgers.resolve_review(con, 999, "source")


def test_reviews_queued_together_are_queued_as_one_after_another(store):
    """``review.add_reviews`` (one lookup for the whole batch) leaves the queue as ``add_review`` per item does:
    an open item refreshed under its id, a decided one not queued again, a new one added, a key given twice
    queued once."""
    from bloom_pipeline.staging import review

    with store.write() as con:
        kept = ledgers.add_review(con, "r1", _item())
        decided = ledgers.add_review(con, "r1", _item(source_id="8"))
        ledgers.resolve_review(con, decided, "source")
        other_field = ledgers.add_review(con, "r1", _item(field="phone"))
        ids = review.add_reviews(con, "r2", [_item(source_value="c@x.org"), _item(source_id="8"),
                                             _item(source_id="9"), _item(source_id="9", reason="again")])
        assert ids[:2] == [kept, decided] and ids[2] == ids[3] and ids[2] not in (kept, decided, other_field)
        by_id = {item.id: item for item in ledgers.list_reviews(con)}
        assert set(by_id) == {kept, other_field, ids[2]}  # the decided one stays decided, not reopened
        assert by_id[kept].source_value == "c@x.org" and by_id[ids[2]].reason == "again"
        assert by_id[other_field].source_value == "a@x.org"  # another field of the same record: untouched
        assert review.add_reviews(con, "r3", []) == []


def test_review_take_source_or_bloomerang(store):
    with store.write() as con:
        a = ledgers.add_review(con, "r1", _item(field="phone", source_value=5551234, bloomerang_value=None))
        b = ledgers.add_review(con, "r1", _item(field="city"))
        assert ledgers.resolve_review(con, a, "source").decided_value == 5551234
        assert ledgers.resolve_review(con, b, "bloomerang").decided_value == "b@x.org"
        with pytest.raises(ValueError):
            ledgers.resolve_review(con, a, "whatever")
        assert len(ledgers.resolved_decisions(con, "constituents")) == 2


def test_the_run_states_are_those_of_the_records_the_run_staged(store, rows):
    with store.write() as con:
        for sid, bid in (("T1", 9001), ("T2", 9002), ("T3", 9003)):
            ledgers.upsert_state(con, SyncState("transactions", "wegive", sid, bloomerang_id=bid, source_hash=sid))
        ledgers.upsert_state(con, SyncState("constituents", "wegive", "T1", bloomerang_id=1))  # another entity
    gifts = [rows.transaction("T1", "2026-11-01"), rows.transaction("T3", "2026-11-02")]
    store.write_staged("transactions", pd.DataFrame(gifts), source="wegive", run_id="r2")
    other = [rows.transaction("T2", "2026-11-01", source="handbid")]  # the same id from another source: another pair
    store.write_staged("transactions", pd.DataFrame(other), source="handbid", run_id="r2")
    with store.connect() as con:
        every = ledgers.states_frame(con, "transactions")
        mine = ledgers.run_states_frame(con, "transactions", "r2")
        assert ledgers.run_states_frame(con, "transactions", "r1").empty
    assert mine["source_id"].tolist() == ["T1", "T3"]
    expected = every[every["source_id"].isin(["T1", "T3"])].reset_index(drop=True)
    assert mine.equals(expected), "the same rows, columns and types as states_frame gives"
