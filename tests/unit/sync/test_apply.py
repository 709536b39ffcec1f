"""apply_plan: crash-safe create, recovery of lost answers, one failure never stops the rest."""

import json

import pandas as pd

from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sync.apply.loop import apply_plan, recover_pending, summarise
from bloom_pipeline.sync.apply.refs import RefResolver


class FakeBloomerang:
    """An in-memory writer whose POST can commit and then lose its answer."""

    entity = "constituents"

    def __init__(self, lose_answer_for=(), reject=()):
        self.records, self.posts = {}, 0
        self.lose_answer_for, self.reject = set(lose_answer_for), set(reject)

    def create(self, source, source_id, payload):
        self.posts += 1
        if source_id in self.reject:
            raise ApiError(400, "Cannot set FullName for individuals", "POST", "/constituent")
        new_id = 100 + len(self.records)
        self.records[(source, source_id)] = {"Id": new_id, **payload}
        if source_id in self.lose_answer_for:
            self.lose_answer_for.discard(source_id)
            raise OutcomeUnknownError(None, "connection dropped", "POST", "/constituent")
        return self.records[(source, source_id)]

    def update(self, bloomerang_id, payload):
        return {"Id": bloomerang_id, **payload}

    def find_existing(self, source, source_id, payload):
        return self.records.get((source, source_id))


class MemoryLedger:
    def __init__(self):
        self.pending, self.recorded = [], []

    def mark_pending(self, entity, source, source_id, payload_hash):
        self.pending.append((entity, source, source_id))

    def record(self, result, written):
        self.recorded.append(result)


def plan(*rows):
    return pd.DataFrame(
        [
            {"source": "wegive", "source_id": sid, "bloomerang_id": bid, "action": action,
             "payload": json.dumps({"FirstName": sid}), "diff": None, "payload_hash": "h", "reason": None}
            for sid, action, bid in rows
        ]
    )


def test_lost_answer_is_resolved_by_lookup_not_a_second_post():
    writer, ledger = FakeBloomerang(lose_answer_for={"1"}), MemoryLedger()
    results = apply_plan(plan(("1", "create", None)), writer, RefResolver(), ledger)
    assert [r.action for r in results] == ["created"]
    assert writer.posts == 1 and len(writer.records) == 1
    assert ledger.pending == [("constituents", "wegive", "1")]


def test_one_failure_never_stops_the_others():
    writer = FakeBloomerang(reject={"2"})
    results = apply_plan(
        plan(("1", "create", None), ("2", "create", None), ("3", "update", 7), ("4", "unchanged", 8)),
        writer, RefResolver(), MemoryLedger(),
    )
    assert [r.action for r in results] == ["created", "failed", "updated", "unchanged"]
    assert "Cannot set FullName" in results[1].error
    assert summarise(results) == {"constituents": {"created": 1, "failed": 1, "updated": 1, "unchanged": 1}}


def test_unresolved_reference_fails_only_that_record():
    frame = plan(("1", "create", None))
    frame.loc[0, "payload"] = json.dumps({"AccountId": "ref:wegive.donors:404"})
    results = apply_plan(frame, FakeBloomerang(), RefResolver(), MemoryLedger())
    assert results[0].action == "failed" and "ref:wegive.donors:404" in results[0].error


def test_pending_marker_from_a_killed_run_is_settled_by_lookup():
    writer = FakeBloomerang()
    writer.records[("wegive", "1")] = {"Id": 555}
    settled = recover_pending(
        [("constituents", "wegive", "1"), ("constituents", "wegive", "2")], {"constituents": writer}, MemoryLedger()
    )
    outcome = [(r.source_id, r.action, r.bloomerang_id) for r in settled]
    assert outcome == [("1", "created", 555), ("2", "skipped", None)]
