"""The Bloomerang transactions' rows kept flattened beside their raw table (``staging/flat_rows.py``): the run's
frame is exactly ``transaction_frame`` of every stored record, while only the records not flattened before (new,
changed, or under another key: other correlation fields, other code) are parsed."""

import pandas as pd
import pytest

from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.staging.flat_rows import flattened_rows
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.extract.records import stored_records
from bloom_pipeline.sync.snapshot import CorrelationFields, transaction_frame, transaction_row

FIELDS = {"wegive": 911, "handbid": 912}


def gift(gift_id: int, corr: str | None, *, field_id: int = 911, amount: float = 25.0, **extra) -> dict:
    values = [] if corr is None else [{"FieldId": field_id, "Value": {"Id": gift_id * 10, "Value": corr}}]
    return {"Id": gift_id, "AccountId": 500 + gift_id, "Amount": amount, "Date": "2026-11-02", "IsRefunded": "No",
            "Designations": [{"Id": gift_id * 100, "Amount": amount, "CustomValues": values}], **extra}


def frame_of(store, fields=FIELDS) -> pd.DataFrame:
    ctx = RunContext(org=load_org("demo"), store=store, clients=None, run_id="r",
                     _fields=CorrelationFields(transaction=fields))
    return ctx.bloomerang_transactions()


def counted(fields=FIELDS):
    seen: list[int] = []

    def flatten(record):
        seen.append(record["Id"])
        return transaction_row(record, fields)
    return flatten, seen


@pytest.fixture
def gifts(store):
    store.write_raw("bloomerang", "transactions",
                    [gift(1, "90001"), gift(2, None), gift(3, "9002", field_id=912, amount=10)],
                    run_id="r1", id_key="Id")
    return store


def test_the_frame_is_transaction_frame_of_every_stored_record(gifts):
    expected = transaction_frame(stored_records(gifts, "bloomerang", "transactions"), FIELDS)
    pd.testing.assert_frame_equal(frame_of(gifts), expected)
    pd.testing.assert_frame_equal(frame_of(gifts), expected)  # read from the kept rows
    assert frame_of(gifts)["corr_handbid"].tolist() == [None, None, "9002"]


def test_only_new_and_changed_records_are_parsed(gifts):
    flatten, seen = counted()
    flattened_rows(gifts, "bloomerang", "transactions", "k1", flatten)
    assert sorted(seen) == [1, 2, 3]
    seen.clear()
    assert len(flattened_rows(gifts, "bloomerang", "transactions", "k1", flatten)) == 3
    assert seen == [], "nothing changed: nothing parsed"
    gifts.write_raw("bloomerang", "transactions", [gift(2, "90002"), gift(4, "90004")], run_id="r2", id_key="Id")
    rows = flattened_rows(gifts, "bloomerang", "transactions", "k1", flatten)
    assert sorted(seen) == [2, 4]
    assert {r["bloomerang_id"]: r["corr_wegive"] for r in rows} == {1: "90001", 2: "90002", 3: None, 4: "90004"}
    seen.clear()
    flattened_rows(gifts, "bloomerang", "transactions", "k2", flatten)  # another flattening: every record again
    assert sorted(seen) == [1, 2, 3, 4]


def test_other_correlation_fields_and_removed_records_are_seen(gifts):
    assert frame_of(gifts)["corr_wegive"].tolist() == ["90001", None, None]
    swapped = {"wegive": 912, "handbid": 911}
    assert frame_of(gifts, swapped)["corr_wegive"].tolist() == [None, None, "9002"]
    with gifts.connect() as con:
        con.execute("DELETE FROM raw_bloomerang_transactions WHERE source_id = '1'")  # as relink_merged drops one
    assert frame_of(gifts)["bloomerang_id"].tolist() == [2, 3]
    assert gifts.read_frame("SELECT count(*) AS n FROM flattened_rows").n[0] == 2, "the dropped record's row goes"
