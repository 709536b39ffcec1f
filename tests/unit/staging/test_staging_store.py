"""The store: quarantine rows carry reasons and the raw record; partition windows are replaced exactly."""

import json
from datetime import date

import pandas as pd
import pytest

from bloom_pipeline.schemas import validate_staged
from bloom_pipeline.staging.store import StagingStore, Window


def test_store_file_lives_in_bloom_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOOM_DATA_DIR", str(tmp_path / "d"))
    store = StagingStore.for_org("acme")
    assert store.path == tmp_path / "d" / "acme_staging.duckdb"
    assert store.snapshot_path == tmp_path / "d" / "acme.duckdb"


def test_org_names_that_are_not_identifiers_are_refused(tmp_path):
    with pytest.raises(ValueError):
        StagingStore.for_org("../etc", data_dir=tmp_path)


def test_invalid_record_is_quarantined_with_reason_and_raw_record(store, rows):
    raw = {"id": 77, "first_name": "Ada", "last_name": "Lovelace", "email": "not-an-email"}
    store.write_raw("wegive", "donors", [raw], run_id="run-1")
    frame = rows.constituents(rows.constituent("77", email="not-an-email"))

    report = validate_staged("constituents", frame)
    good, rejected = report.split(frame, entity="donors", raw_by_id={"77": json.dumps(raw)})
    store.write_quarantine(rejected, run_id="run-1")
    store.write_staged("constituents", good, source="wegive", run_id="run-1")

    q = store.read_frame("SELECT source, entity, source_id, run_id, kind, reasons, raw FROM quarantine")
    assert len(q) == 1 and len(good) == 0
    row = q.iloc[0]
    assert (row.source, row.entity, row.source_id, row.run_id, row.kind) == (
        "wegive",
        "donors",
        "77",
        "run-1",
        "invalid",
    )
    assert any("email" in reason for reason in row.reasons)
    assert json.loads(row.raw) == raw


def test_mapping_rejects_quarantine_as_they_come_from_map_frame(store):
    rejected = pd.DataFrame(
        [
            {
                "source": "handbid",
                "entity": "contacts",
                "source_id": 5,
                "errors": ["lastName: required"],
                "raw": json.dumps({"id": 5}),
            }
        ]
    )
    assert store.write_quarantine(rejected, run_id="r") == 1
    # a retried step does not double-count the same record
    assert store.write_quarantine(rejected, run_id="r") == 1
    q = store.read_frame("SELECT source_id, reasons FROM quarantine")
    assert q.source_id.tolist() == ["5"] and list(q.reasons[0]) == ["lastName: required"]


def test_quarantine_requires_a_reason(store):
    with pytest.raises(ValueError, match="reason"):
        store.write_quarantine(
            [{"source": "wegive", "entity": "donors", "source_id": "1", "reasons": []}], run_id="r"
        )


def test_rewriting_a_window_replaces_exactly_that_window(store, rows):
    day1, day2 = "2026-11-01", "2026-11-02"
    first = pd.DataFrame(
        [rows.transaction("1", day1), rows.transaction("2", day1), rows.transaction("3", day2)]
    )
    first["window_date"] = pd.to_datetime(first["date"]).dt.date
    store.write_staged(
        "transactions",
        first,
        source="wegive",
        run_id="r1",
        window=Window(date(2026, 11, 1), date(2026, 11, 2)),
    )
    handbid = pd.DataFrame([rows.transaction("9", day1, source="handbid")])
    store.write_staged("transactions", handbid, source="handbid", run_id="r1", window=Window.day(day1))

    rerun = pd.DataFrame([rows.transaction("1", day1, amount=30.0)])
    store.write_staged("transactions", rerun, source="wegive", run_id="r2", window=Window.day(day1))

    got = store.read_frame(
        "SELECT source, source_id, amount, run_id FROM stg_transactions ORDER BY source, source_id"
    )
    assert got.values.tolist() == [
        ["handbid", "9", 25.0, "r1"],  # another source's rows of the same day are untouched
        ["wegive", "1", 30.0, "r2"],  # the window was replaced ...
        ["wegive", "3", 25.0, "r1"],  # ... and only that window
    ]  # "2" vanished with its window


def test_a_row_outside_the_window_is_refused_and_nothing_changes(store, rows):
    store.write_staged(
        "transactions",
        pd.DataFrame([rows.transaction("1", "2026-11-01")]),
        source="wegive",
        run_id="r1",
        window=Window.day("2026-11-01"),
    )
    stray = pd.DataFrame([rows.transaction("2", "2026-11-05")]).assign(window_date=date(2026, 11, 5))
    with pytest.raises(ValueError, match="outside window"):
        store.write_staged(
            "transactions", stray, source="wegive", run_id="r2", window=Window.day("2026-11-01")
        )
    assert store.read_frame("SELECT source_id FROM stg_transactions").source_id.tolist() == ["1"]


def test_a_failed_insert_rolls_back_the_delete(store, rows):
    store.write_staged(
        "transactions",
        pd.DataFrame([rows.transaction("1", "2026-11-01")]),
        source="wegive",
        run_id="r1",
        window=Window.day("2026-11-01"),
    )
    broken = pd.DataFrame([rows.transaction("2", "2026-11-01", payload="{not json")])
    with pytest.raises(Exception, match="(?i)json"):
        store.write_staged(
            "transactions", broken, source="wegive", run_id="r2", window=Window.day("2026-11-01")
        )
    assert store.read_frame("SELECT source_id, run_id FROM stg_transactions").values.tolist() == [["1", "r1"]]


def test_incremental_extracts_upsert_by_source_id(store):
    store.write_raw("wegive", "donors", [{"id": 1, "v": "a"}, {"id": 2, "v": "a"}], run_id="r1")
    store.write_raw("wegive", "donors", [{"id": 2, "v": "b"}], run_id="r2")
    got = store.read_frame(
        "SELECT source_id, record->>'v' AS v, run_id FROM raw_wegive_donors ORDER BY source_id"
    )
    assert got.values.tolist() == [["1", "a", "r1"], ["2", "b", "r2"]]


def test_unknown_columns_and_sources_are_refused(store, rows):
    frame = rows.constituents(rows.constituent("1")).assign(surprise=1)
    with pytest.raises(ValueError, match="surprise"):
        store.write_staged("constituents", frame, source="wegive", run_id="r")
    with pytest.raises(ValueError):
        store.write_raw("wegive", "donors; DROP TABLE sync_log", [{"id": 1}], run_id="r")
    with pytest.raises(ValueError):
        store.write_raw("mailchimp", "members", [{"id": 1}], run_id="r")
