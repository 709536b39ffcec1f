"""pandera models gate the load: bad rows get readable reasons, a broken batch is rejected whole, and a
batch over the org's reject threshold stops the load."""

import hashlib
import json

import pandas as pd
import pytest

from bloom_pipeline.schemas import (
    StgConstituents,
    StgFunds,
    StgTransactions,
    SyncLog,
    check_reject_threshold,
    validate_frame,
    validate_staged,
)


def _hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _constituent(source_id, **kw):
    payload = {"Type": "Individual", "FirstName": "Ada", "LastName": "Lovelace"}
    row = dict(
        source="wegive",
        source_id=source_id,
        payload=json.dumps(payload),
        payload_hash=_hash(payload),
        source_updated_at="2026-11-01T12:00:00Z",
        constituent_type="Individual",
        first_name="Ada",
        middle_name=None,
        last_name="Lovelace",
        full_name="Ada Lovelace",
        email="ada@example.org",
        phone=None,
        street=None,
        city=None,
        state=None,
        postal_code=None,
        country=None,
        bloomerang_id=None,
    )
    row.update(kw)
    return row


def _transaction(source_id, **kw):
    payload = {"Amount": 25.0}
    row = dict(
        source="handbid",
        source_id=source_id,
        payload=json.dumps(payload),
        payload_hash=_hash(payload),
        source_updated_at=None,
        donor_source_id="501",
        date="2026-11-01",
        amount=25.0,
        method="CreditCard",
        is_refunded=False,
        status="paid",
        fund_source_ids='["3"]',
        bloomerang_id=None,
    )
    row.update(kw)
    return row


def test_valid_batches_pass_and_timestamps_become_utc():
    report = validate_staged("constituents", pd.DataFrame([_constituent("1"), _constituent("2")]))
    assert report.ok and report.reject_share == 0 and report.top_reasons == []
    assert str(report.validated["source_updated_at"].dtype) == "datetime64[ns, UTC]"
    assert validate_staged("transactions", pd.DataFrame([_transaction("P1")])).ok
    funds = pd.DataFrame(
        [
            {
                "source": "wegive",
                "source_id": "3",
                "payload": "{}",
                "payload_hash": _hash({}),
                "source_updated_at": None,
                "name": "Gala Fund",
                "bloomerang_id": 7,
            }
        ]
    )
    assert validate_staged("funds", funds).ok


def test_every_bad_row_gets_its_own_readable_reasons():
    frame = pd.DataFrame(
        [
            _constituent("1"),
            _constituent("2", email="not-an-email"),
            _constituent("3", constituent_type="Organization", full_name=None),
            _constituent("4", last_name=None),
            _constituent("5", payload="{oops"),
        ]
    )
    report = validate_staged("constituents", frame)
    assert not report.ok and report.rejected_rows == 4 and report.reject_share == pytest.approx(0.8)
    assert report.row_reasons[1] == ["email: email_is_valid (got 'not-an-email')"]
    assert report.row_reasons[2] == ["an Organization needs full_name"]
    assert report.row_reasons[3] == ["an Individual needs first_name and last_name"]
    assert report.row_reasons[4] == ["payload: payload_is_json_object (got '{oops')"]
    assert not report.failure_cases.empty

    good, quarantine = report.split(frame, entity="donors")
    assert good.source_id.tolist() == ["1"]
    assert quarantine.columns.tolist() == ["source", "entity", "source_id", "kind", "reasons", "raw"]
    assert quarantine.source_id.tolist() == ["2", "3", "4", "5"]
    assert json.loads(quarantine.raw[0])["email"] == "not-an-email"


def test_transaction_rules():
    frame = pd.DataFrame(
        [
            _transaction("1", amount=10.005),
            _transaction("2", amount=0.0),
            _transaction("3", date="2026-02-30"),
            _transaction("4", method="Bitcoin"),
            _transaction("5", fund_source_ids='{"3": 1}'),
            _transaction("5"),
        ]
    )
    reasons = validate_staged("transactions", frame).row_reasons
    assert "amount_has_at_most_2_decimals" in reasons[0][0]
    assert "greater_than(0)" in reasons[1][0]
    assert "date_is_a_calendar_day" in reasons[2][0]
    assert "isin" in reasons[3][0]
    assert "fund_source_ids_is_json_list" in " ".join(reasons[4])
    assert "duplicate record" in " ".join(reasons[5])


def test_a_missing_column_rejects_the_whole_batch():
    report = validate_staged("constituents", pd.DataFrame([_constituent("1")]).drop(columns=["email"]))
    assert not report.ok and report.schema_errors == ["column 'email' is missing"]
    assert report.reject_share == 1.0
    good, quarantine = report.split(pd.DataFrame([_constituent("1")]), entity="donors")
    assert good.empty and quarantine.reasons[0] == ["column 'email' is missing"]


def test_top_reasons_rank_the_most_common_failure_first():
    frame = pd.DataFrame(
        [_constituent(str(i), email="bad") for i in range(3)] + [_constituent("9", last_name="")]
    )
    report = validate_staged("constituents", frame)
    assert report.top_reasons[0] == ("email: email_is_valid", 3)


def test_sync_log_model_requires_an_error_on_failed_rows():
    log = pd.DataFrame(
        [
            {
                "run_id": "r",
                "entity": "constituents",
                "source": "wegive",
                "source_id": "1",
                "bloomerang_id": None,
                "direction": "push",
                "action": "failed",
                "field_diff": None,
                "error": None,
            }
        ]
    )
    report = validate_frame(SyncLog, log)
    assert report.row_reasons == {0: ["a failed row needs an error message"]}


def test_models_describe_every_column():
    for model in (StgConstituents, StgTransactions, StgFunds, SyncLog):
        for name, column in model.to_schema().columns.items():
            assert column.description, f"{model.__name__}.{name} has no description"


def test_reject_threshold():
    over = check_reject_threshold(extracted=100, rejected=6, max_share=0.05)
    assert not over.ok and over.share == pytest.approx(0.06)
    assert over.message == "6 of 100 records rejected (6.0%), over the threshold of 5.0%; the load is stopped"
    assert check_reject_threshold(100, 5, 0.05).ok  # exactly at the threshold passes
    assert check_reject_threshold(0, 0, 0.05).ok
    with pytest.raises(ValueError):
        check_reject_threshold(3, 4, 0.05)
    with pytest.raises(ValueError):
        check_reject_threshold(3, 1, 5)
