"""The raw write stores only what changed (``StagingStore.write_raw``): a record whose content hash is that of
its one stored copy is stamped as the run's (``run_id``, ``extracted_at``) but not serialised and inserted
again, while every other guarantee of the raw tables holds: a changed record is replaced, a full list drops what
it no longer lists, every copy of a duplicated id is kept."""

import json

import duckdb
import pytest

from bloom_pipeline.staging import ddl, writes
from bloom_pipeline.staging import store as store_module
from bloom_pipeline.staging.store import StagingStore


@pytest.fixture
def serialised(monkeypatch) -> list[dict]:
    """The records the raw write inserts (their rows made again; an unchanged record is only stamped)."""
    seen: list[dict] = []
    real = store_module._raw_frame

    def raw_frame(records, *args, **kwargs):
        seen.extend(records)
        return real(records, *args, **kwargs)

    monkeypatch.setattr(store_module, "_raw_frame", raw_frame)
    return seen


def test_a_record_is_serialised_once_for_its_hash_and_its_stored_text(store, monkeypatch):
    made: list[dict] = []

    def record_json(record):
        made.append(record)
        return writes.record_json(record)

    monkeypatch.setattr(store_module, "record_json", record_json)
    store.write_raw("wegive", "donors", [donor(1), donor(2)], run_id="r1", window="all")
    assert made == [donor(1), donor(2)]  # the text hashed is the text stored
    texts, digests = writes.texts_and_hashes([donor(1), donor(3)])
    made.clear()
    store.write_raw("wegive", "donors", [donor(1), donor(3)], run_id="r2", window="all", digests=digests,
                    texts=texts)
    assert made == [], "given the texts with the digests, nothing is serialised again"
    stored = rows(store)
    assert stored["3"]["record"] == texts[1] and stored["3"]["record_hash"] == digests[1]


def donor(donor_id: int, **changes) -> dict:
    return {"id": donor_id, "first_name": "Ada", "last_name": f"Lovelace{donor_id}", **changes}


def rows(store, table: str = "raw_wegive_donors") -> dict[str, dict]:
    frame = store.read_frame(f"SELECT rowid, source_id, record, run_id, extracted_at, record_hash FROM {table}")
    return {r["source_id"]: r for r in frame.to_dict("records")}


def test_an_unchanged_record_is_stamped_not_rewritten(store, serialised):
    donors = [donor(1), donor(2), donor(3)]
    assert store.write_raw("wegive", "donors", donors, run_id="r1", window="all") == 3
    assert len(serialised) == 3
    before = rows(store)
    assert store.write_raw("wegive", "donors", [donor(1), donor(2), donor(3)], run_id="r2", window="all") == 3
    assert len(serialised) == 3, "nothing changed: nothing serialised or inserted again"
    after = rows(store)
    assert set(after) == {"1", "2", "3"}
    for sid, row in after.items():
        assert row["rowid"] == before[sid]["rowid"], "carried in place"
        assert row["run_id"] == "r2" and row["extracted_at"] > before[sid]["extracted_at"]
        assert row["record"] == before[sid]["record"]
        assert row["record_hash"] == writes.record_digest(writes.record_json(json.loads(row["record"])))


def test_a_changed_record_is_replaced_and_a_full_list_drops_what_it_no_longer_lists(store, serialised):
    store.write_raw("wegive", "donors", [donor(1), donor(2), donor(3)], run_id="r1", window="all")
    before = rows(store)
    serialised.clear()
    store.write_raw("wegive", "donors", [donor(1), donor(2, first_name="Augusta")], run_id="r2", window="all")
    assert serialised == [donor(2, first_name="Augusta")], "only the changed record is written again"
    after = rows(store)
    assert set(after) == {"1", "2"}, "donor 3 is no longer listed"
    assert after["1"]["rowid"] == before["1"]["rowid"]
    assert json.loads(after["2"]["record"])["first_name"] == "Augusta"
    assert after["2"]["record_hash"] != before["2"]["record_hash"]
    assert {r["run_id"] for r in after.values()} == {"r2"}


def test_an_incremental_write_keeps_what_it_did_not_read(store, serialised):
    store.write_raw("wegive", "transactions", [donor(1), donor(2)], run_id="r1")
    serialised.clear()
    store.write_raw("wegive", "transactions", [donor(2), donor(5)], run_id="r2")
    assert serialised == [donor(5)]
    after = rows(store, "raw_wegive_transactions")
    assert {sid: r["run_id"] for sid, r in after.items()} == {"1": "r1", "2": "r2", "5": "r2"}


def test_every_copy_of_a_duplicated_id_is_rewritten_together(store, serialised):
    store.write_raw("wegive", "transactions", [donor(1), donor(1, first_name="B")], run_id="r1")
    serialised.clear()
    store.write_raw("wegive", "transactions", [donor(1)], run_id="r2")  # the same as one of the copies
    assert serialised == [donor(1)]
    got = store.read_frame("SELECT record, run_id FROM raw_wegive_transactions")
    assert len(got) == 1 and got["run_id"].tolist() == ["r2"], "the two stored copies are not one stored copy"
    store.write_raw("wegive", "transactions", [donor(1), donor(1)], run_id="r3")
    assert store.read_frame("SELECT count(*) AS n FROM raw_wegive_transactions WHERE run_id = 'r3'").n[0] == 2


def test_a_table_written_by_an_older_version_gains_the_hash_from_its_stored_json(store, serialised):
    store.write_raw("wegive", "funds", [donor(1)], run_id="r0", window="all")  # creates the store's schema
    with duckdb.connect(str(store.path)) as con:
        con.execute("DROP TABLE raw_wegive_funds")
        con.execute(ddl.raw_table_ddl("raw_wegive_funds").replace(",\n    record_hash  VARCHAR", ""))
        con.execute("INSERT INTO raw_wegive_funds VALUES ('1', ?, 'r1', now(), NULL)", [writes.record_json(donor(1))])
    serialised.clear()
    upgraded = StagingStore(store.path, org=store.org)  # the file opened by this version
    upgraded.write_raw("wegive", "funds", [donor(1)], run_id="r2", window="all")
    assert serialised == [], "the hash read from the stored JSON is the record's: it is carried"
    got = rows(store, "raw_wegive_funds")
    assert got["1"]["run_id"] == "r2" and got["1"]["record_hash"] == writes.record_hashes([donor(1)])[0]


def allocation(allocation_id: int, amount: float = 50.0) -> dict:
    return {"id": allocation_id, "amount": amount, "fund": {"id": 3, "name": "General Fund"}}


def test_a_list_received_unchanged_is_stamped_without_hashing_a_record(store, monkeypatch):
    """``scan_digest``: the same whole list again only stamps the rows (no record hashed or compared); a changed
    list, or a table changed since its last scan (a row deleted, a record edited), is written record by record."""
    table = "raw_wegive_fund_allocations"
    listed = [allocation(n) for n in range(1, 6)]

    def write(records, run_id):
        return store.write_raw("wegive", "fund_allocations", records, run_id=run_id, window="all",
                               scan_digest=writes.scan_digest(records))

    assert write(listed, "r1") == 5
    before = rows(store, table)
    hashed: list[int] = []
    monkeypatch.setattr(store_module, "record_digest",
                        lambda text: hashed.append(1) or writes.record_digest(text))
    again = json.loads(json.dumps(listed))  # parsed anew, as the next night's answers are
    assert writes.scan_digest(again) == writes.scan_digest(listed)
    assert write(again, "r2") == 5 and hashed == []
    after = rows(store, table)
    assert {sid: r["run_id"] for sid, r in after.items()} == dict.fromkeys(before, "r2")
    assert {sid: (r["record"], r["record_hash"]) for sid, r in after.items()} == \
        {sid: (r["record"], r["record_hash"]) for sid, r in before.items()}

    changed = [*listed[:4], allocation(5, 75.0), allocation(6)]  # one amount changed, one allocation new
    assert write(changed, "r3") == 6 and len(hashed) == 6  # record by record
    now = rows(store, table)
    assert set(now) == {"1", "2", "3", "4", "5", "6"} and json.loads(now["5"]["record"])["amount"] == 75.0

    with store.write() as con:  # the table changed behind the scan's back: the same list is written in full again
        con.execute(f"DELETE FROM {table} WHERE source_id = '2'")
    assert write(changed, "r4") == 6 and len(hashed) == 12
    assert set(rows(store, table)) == {"1", "2", "3", "4", "5", "6"}
    assert {r["run_id"] for r in rows(store, table).values()} == {"r4"}

    assert write(changed, "r5") == 6 and len(hashed) == 12, "unchanged again: stamped"
    dropped = changed[1:]
    assert write(dropped, "r6") == 5 and set(rows(store, table)) == {"2", "3", "4", "5", "6"}
