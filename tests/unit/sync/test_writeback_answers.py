"""The pooled write-back's answers reach the stored donor details in batches: one staging transaction per batch,
every answer kept, and a batch that fails as a whole kept one by one."""

import json

from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.extract import donor_details
from bloom_pipeline.sync.merge import writeback


def _store_with_details(tmp_path, ids):
    store = StagingStore(tmp_path / "acme_staging.duckdb", org="acme")
    with store.write() as con:
        donor_details.ensure_table(con)
        for sid in ids:
            con.execute(f"INSERT INTO {donor_details.TABLE} VALUES (?, 'h', ?, now(), 'run-0', 'read')",
                        [str(sid), json.dumps({"id": sid, "bloomerang_id": None})])
    return store


def _details(store):
    with store.connect() as con:
        rows = con.execute(f"SELECT source_id, detail, via, run_id FROM {donor_details.TABLE} ORDER BY 1").fetchall()
    return {sid: (json.loads(detail), via, run) for sid, detail, via, run in rows}


def test_record_many_keeps_every_answer_in_one_call(tmp_path):
    store = _store_with_details(tmp_path, [1, 2, 3])
    recorder = donor_details.DetailRecorder(store, "run-1")
    recorder.record_many([{"id": 1, "bloomerang_id": 11}, {"id": 3, "bloomerang_id": 33}])
    recorder({"id": 2, "bloomerang_id": 22})
    kept = _details(store)
    assert {sid: d["bloomerang_id"] for sid, (d, _, _) in kept.items()} == {"1": 11, "2": 22, "3": 33}
    assert {via for _, via, _ in kept.values()} == {"write"} and {r for _, _, r in kept.values()} == {"run-1"}



def test_record_many_keeps_the_last_of_two_answers_for_a_donor_and_adds_no_donor(tmp_path):
    store = _store_with_details(tmp_path, [1, 2])
    recorder = donor_details.DetailRecorder(store, "run-1")
    recorder.record_many([{"id": 1, "bloomerang_id": 10}, {"id": 9, "bloomerang_id": 99},
                          {"id": 1, "bloomerang_id": 11}])
    kept = _details(store)
    assert sorted(kept) == ["1", "2"]  # an answer for a donor not stored is not a stored detail (no list row)
    assert kept["1"][0]["bloomerang_id"] == 11 and kept["1"][1] == "write"
    assert kept["2"][0]["bloomerang_id"] is None and kept["2"][1:] == ("read", "run-0")
    recorder.record_many([])  # nothing to keep: no statement, no error


class _Client:
    """Only the attribute the write-back swaps: the request threads' answers go wherever it points."""

    def __init__(self, keep):
        self.on_donor_detail = keep


class _Recorder:
    def __init__(self, fail_batches=False):
        self.batches, self.singles, self.fail_batches = [], [], fail_batches

    def __call__(self, detail):
        self.singles.append(detail["id"])

    def record_many(self, details):
        if self.fail_batches:
            raise RuntimeError("database is locked")
        self.batches.append([d["id"] for d in details])


def test_answers_are_handed_over_in_batches_and_all_on_the_way_out():
    recorder = _Recorder()
    client = _Client(recorder)
    with writeback._answers_kept_here(client) as hand_over:
        for i in range(writeback.ANSWER_BATCH - 1):
            client.on_donor_detail({"id": i})
        hand_over(False)
        assert recorder.batches == []  # fewer than a batch: held back
        client.on_donor_detail({"id": writeback.ANSWER_BATCH - 1})
        hand_over(False)
        assert [len(b) for b in recorder.batches] == [writeback.ANSWER_BATCH]
        client.on_donor_detail({"id": "last"})
    assert recorder.batches[-1] == ["last"] and client.on_donor_detail is recorder
    assert recorder.singles == []


def test_a_batch_that_fails_is_kept_one_by_one():
    recorder = _Recorder(fail_batches=True)
    client = _Client(recorder)
    with writeback._answers_kept_here(client):
        for i in range(3):
            client.on_donor_detail({"id": i})
    assert recorder.singles == [0, 1, 2]
