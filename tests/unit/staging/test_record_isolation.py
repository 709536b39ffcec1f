"""Record isolation before the load: whatever a record holds, the raw write keeps it, the staging step stages it
or quarantines it with its reason, the accounts add up, and a few bad records cannot wedge the reject gate.

The hostile kinds are the measured ones: a record without ``id``, a created day of ``31/02/2025`` /
``2026-13-45``, an amount of 2^63 cents, an amount that is JSON ``true``, two records with one id, and a
donor with an invalid e-mail (its gifts must still flow).
"""

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli
from bloom_pipeline.mapping import compile as mapping
from bloom_pipeline.mapping import transforms
from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import accounting, ddl, ledgers, writes
from bloom_pipeline.staging.ledgers import LogEntry
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.sync import stage
from bloom_pipeline.sync.extract.records import Extracted, load_extracted

REPO = Path(__file__).resolve().parents[3]

DONOR = {
    "id": 1040, "type": "individual", "name": "Ada Lovelace", "first_name": "Ada", "middle_name": None,
    "last_name": "Lovelace", "email_1": "ada@example.org", "mobile_phone": "3035551212",
    "mailing_address": {"address_1": "1 Main St", "address_2": None, "city": "Denver", "state": "CO",
                        "country": "US", "zip": "80202"},
    "bloomerang_id": None, "created_at": "2025-03-01T18:22:10.000000Z", "updated_at": "2025-03-04T09:00:00.000000Z",
}
GIFT = {
    "id": 88001, "amount": 5000, "source_type": "cash", "status": "Success", "owner": {"id": 1040},
    "donor": {"id": 1040}, "fund": {"id": 3, "name": "General Fund"},
    "fund_allocations": [{"id": 501, "amount": 5000, "fund": {"id": 3, "name": "General Fund"}}],
    "source": None, "scheduled_donation_id": None, "pledge": None, "pledge_id": None,
    "created_at": "2025-03-02T15:00:00.000000Z", "updated_at": "2025-03-02T15:00:03.000000Z", "bloomerang_id": None,
}
PAYMENT = {
    "id": 9001, "receiptId": 3001, "auctionId": 45417, "bidderId": 501, "amount": 25000, "currencyCode": "USD",
    "method": "cash", "status": "succeeded", "reference": None, "dateInserted": 1716240000,
}


def one(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(base).items() if k != key}


def gift(gift_id: Any, cents: Any = 5000, **changes: Any) -> dict[str, Any]:
    allocations = [{"id": 500 + (gift_id if isinstance(gift_id, int) else 0), "amount": cents,
                    "fund": {"id": 3, "name": "General Fund"}}]
    return one(GIFT, id=gift_id, amount=cents, fund_allocations=allocations, **changes)


@pytest.fixture(scope="module")
def org() -> OrgConfig:
    return load_org("demo", REPO / "mappings")


def run_stage(org: OrgConfig, store: StagingStore, run_id: str, records: dict[str, list[Any]],
              window: Window | None = None) -> dict[str, stage.EntityGate]:
    """What a run does before the plan: the raw write of every list, then stage + validate."""
    for key, rows in records.items():
        source, entity = key.split(".")
        store.write_raw(source, entity, rows, run_id=run_id, window="all" if entity in ("donors", "funds") else window,
                        window_date_of=(lambda r: str(r.get("created_at", ""))[:10] or None)
                        if entity == "transactions" else None)
    gates = stage.stage_all(org, store, run_id, Extracted(dict(records)), window)
    stage.validate_gates(org, store, run_id, gates)
    return gates


def accounts(store: StagingStore, run_id: str) -> dict[str, accounting.EntityAccount]:
    with store.connect() as con:
        return accounting.compute_accounts(con, run_id)


def quarantine(store: StagingStore, run_id: str) -> pd.DataFrame:
    return store.read_frame("SELECT source, entity, source_id, kind, reasons, raw, field, value FROM quarantine "
                            "WHERE run_id = ? ORDER BY id", [run_id])


def old_schema(statement: str) -> str:
    """A DDL statement as versions before the 'field' kind wrote it."""
    return (statement.replace("CHECK (kind IN ('invalid', 'excluded', 'field'))",
                              "CHECK (kind IN ('invalid', 'excluded'))")
            .replace(",\n    field          VARCHAR,\n    value          VARCHAR", ""))


# -- the raw write keeps everything ----------------------------------------------------------------------


def test_a_record_without_id_is_kept_under_a_stable_synthetic_key(store):
    stray = without(GIFT, "id")
    assert store.write_raw("wegive", "transactions", [GIFT, stray, one(GIFT, id=None), "not an object"],
                           run_id="r1") == 4
    store.write_raw("wegive", "transactions", [stray], run_id="r2")  # the same record next night
    got = store.read_frame("SELECT source_id, run_id, record FROM raw_wegive_transactions ORDER BY source_id")
    keys = got["source_id"].tolist()
    assert keys[0] == "88001"
    assert all(k.startswith("missing-id:") and len(k) == len("missing-id:") + 16 for k in keys[1:])
    assert len(set(keys)) == 4, "each id-less record has its own key"
    assert writes.missing_id_key(stray) in keys
    assert got.loc[got["source_id"] == writes.missing_id_key(stray), "run_id"].tolist() == ["r2"], (
        "an unchanged id-less record keeps its key, so the upsert replaces it")
    assert json.loads(got.loc[got["source_id"] == writes.missing_id_key(stray), "record"].iloc[0]) == stray


def test_every_copy_of_a_duplicated_id_is_kept_and_replaced_together(store):
    store.write_raw("wegive", "transactions", [GIFT, one(GIFT, amount=7000)], run_id="r1")  # incremental upsert
    assert store.read_frame("SELECT count(*) AS n FROM raw_wegive_transactions WHERE source_id = '88001'").n[0] == 2
    store.write_raw("wegive", "transactions", [GIFT], run_id="r2")
    assert store.read_frame("SELECT run_id FROM raw_wegive_transactions").run_id.tolist() == ["r2"]
    store.write_raw("wegive", "donors", [DONOR, DONOR], run_id="r3", window="all")
    assert store.read_frame("SELECT count(*) AS n FROM raw_wegive_donors").n[0] == 2


@pytest.mark.parametrize("created", ["31/02/2025", "2026-13-45", "2025-02-29", None, {"day": 2}])
def test_an_unreadable_window_day_never_stops_the_raw_write(store, created):
    day_of = lambda r: str(r.get("created_at", ""))[:10] or None  # noqa: E731 - what the WeGive extract passes
    store.write_raw("wegive", "transactions", [GIFT, gift(2, created_at=created)], run_id="r1", window_date_of=day_of)
    days = dict(store.read_frame("SELECT source_id, window_date FROM raw_wegive_transactions").values.tolist())
    assert str(days["88001"])[:10] == "2025-03-02" and pd.isna(days["2"])
    window = Window.day("2025-03-02")  # a backfill window: the record stays in the window it was extracted for
    store.write_raw("wegive", "transactions", [GIFT, gift(2, created_at=created), gift(3, created_at="2025-04-01")],
                    run_id="r2", window=window, window_date_of=day_of)
    days = store.read_frame("SELECT source_id, window_date FROM raw_wegive_transactions WHERE run_id = 'r2'")
    assert {str(d)[:10] for d in days["window_date"]} == {"2025-03-02"} and len(days) == 3


def test_the_raw_write_and_the_mapping_read_ids_alike():
    values = [1012, 1012.0, " 1012 ", "abc", 0, -3, True, False, None, "", "  ", 1012.5, float("nan"),
              float("inf"), {"id": 1}, [1], 2**70]
    assert [writes.id_text(v) for v in values] == [mapping._id_text(v) for v in values]
    assert writes.id_text(1012.0) == "1012" and writes.id_text(True) is None and writes.id_text(2**70) == str(2**70)


# -- the quarantine table --------------------------------------------------------------------------------


def test_field_rows_and_record_rows_of_one_record_do_not_replace_each_other(store):
    record_row = {"source": "wegive", "entity": "donors", "source_id": "1040", "reasons": ["x"], "raw": DONOR}
    field_row = {**record_row, "kind": "field", "field": "PrimaryEmail.Value", "value": "a@@b", "reasons": ["y"]}
    store.write_quarantine([record_row], run_id="r")
    store.write_quarantine([field_row], run_id="r")
    store.write_quarantine([field_row], run_id="r")  # a retried step: replaced, not doubled
    got = store.read_frame("SELECT kind, field, value FROM quarantine ORDER BY id").values.tolist()
    assert got == [["invalid", None, None], ["field", "PrimaryEmail.Value", "a@@b"]]
    both = [dict(record_row, reasons=["duplicate id"]), dict(record_row, reasons=["duplicate id"])]
    store.write_quarantine(both, run_id="r")  # both copies of a duplicated id stay
    assert store.read_frame("SELECT count(*) AS n FROM quarantine WHERE kind = 'invalid'").n[0] == 2
    with pytest.raises(ValueError, match="field"):
        store.write_quarantine([{**field_row, "field": None}], run_id="r")


def test_an_older_staging_file_is_upgraded_and_keeps_its_quarantine(tmp_path):
    path = tmp_path / "acme_staging.duckdb"
    con = duckdb.connect(str(path))
    for statement in ddl.all_ddl():
        con.execute(old_schema(statement))
    con.execute("INSERT INTO quarantine (source, entity, source_id, run_id, kind, reasons, quarantined_at) "
                "VALUES ('wegive', 'donors', '7', 'old', 'invalid', ['old reason'], now())")
    con.close()
    store = StagingStore(path, org="acme")
    store.write_quarantine([{"source": "wegive", "entity": "donors", "source_id": "8", "kind": "field",
                             "field": "PrimaryEmail.Value", "value": "x", "reasons": ["new"]}], run_id="new")
    got = store.read_frame("SELECT id, source_id, kind, field FROM quarantine ORDER BY id").values.tolist()
    assert got == [[1, "7", "invalid", None], [2, "8", "field", "PrimaryEmail.Value"]]
    with pytest.raises(duckdb.ConstraintException), store.write() as con:
        con.execute("INSERT INTO quarantine (source, entity, run_id, kind, reasons, quarantined_at) "
                    "VALUES ('wegive', 'donors', 'x', 'bogus', ['r'], now())")


# -- accounting --------------------------------------------------------------------------------------------


def test_dropped_fields_are_counted_apart_and_duplicate_copies_are_one_log_row(store):
    store.write_raw("wegive", "donors", [DONOR, one(DONOR, id=7), one(DONOR, id=7)], run_id="r1", window="all")
    store.write_quarantine([
        {"source": "wegive", "entity": "donors", "source_id": "7", "reasons": ["id: duplicate id '7'"]},
        {"source": "wegive", "entity": "donors", "source_id": "7", "reasons": ["id: duplicate id '7'"]},
        {"source": "wegive", "entity": "donors", "source_id": "1040", "kind": "field", "field": "PrimaryEmail.Value",
         "reasons": ["bad e-mail"]},
    ], run_id="r1")
    frame = pd.DataFrame([{"source": "wegive", "source_id": "1040", "payload": "{}", "payload_hash": "0" * 64,
                           "constituent_type": "Individual", "first_name": "Ada", "last_name": "Lovelace"}])
    store.write_staged("constituents", frame, source="wegive", run_id="r1")
    with store.write() as con:
        ledgers.append_log(con, "r1", [LogEntry("constituents", "wegive", "7", "quarantined"),
                                       LogEntry("constituents", "wegive", "7", "quarantined"),
                                       LogEntry("constituents", "wegive", "1040", "created", bloomerang_id=5)])
    got = accounts(store, "r1")["constituents"]
    assert (got.extracted, got.staged, got.quarantined, got.fields_dropped) == (3, 1, 2, 1)
    assert accounting.check_accounts({"constituents": got}) == []
    assert accounting.counts_json({"constituents": got})["constituents"]["fields_dropped"] == 1
    with store.write() as con:  # a record quarantined *and* loaded in one run is still caught
        ledgers.append_log(con, "r1", [LogEntry("constituents", "wegive", "7", "created", bloomerang_id=6)])
    assert any("logged more than once" in p for p in accounting.check_accounts(accounts(store, "r1")))


# -- the staging step ---------------------------------------------------------------------------------------


HOSTILE_GIFTS = {
    "missing id": without(gift(0), "id"),
    "null id": gift(None),
    "invalid date 31/02": gift(11, created_at="31/02/2025"),
    "invalid date 13/45": gift(12, created_at="2026-13-45"),
    "2^63 cents": gift(13, 2**63),
    "true": gift(14, True),
    "10^15 cents": gift(15, 10**15),
    "fraction of a cent": gift(16, 12.5),
    "not a number": gift(17, "12,50 €"),
}


def test_each_hostile_record_is_quarantined_with_its_reason_and_the_others_staged(org, store):
    good = [gift(1), gift(2, "2500"), gift(3, 10**15 - 1)]  # digits as text are an amount (README: Amounts)
    duplicated = [gift(20), gift(20, 9900)]
    gates = run_stage(org, store, "r1", {"wegive.donors": [DONOR],
                                         "wegive.transactions": good + list(HOSTILE_GIFTS.values()) + duplicated})
    staged = store.read_frame("SELECT source_id, amount FROM stg_transactions WHERE run_id = 'r1' ORDER BY amount")
    assert staged["source_id"].tolist() == ["2", "1", "3"]
    assert float(staged["amount"].iloc[-1]) == 9_999_999_999_999.99
    q = quarantine(store, "r1")
    by_id = {sid: " ".join(r) for sid, r in zip(q["source_id"], q["reasons"], strict=True)}
    missing = [writes.missing_id_key(HOSTILE_GIFTS["missing id"]), writes.missing_id_key(HOSTILE_GIFTS["null id"])]
    expected = {missing[0]: "id: missing id", missing[1]: "id: missing id",
                "11": "Date: '31/02/2025' is not a date", "12": "Date: '2026-13-45' is not a date",
                "13": "amount out of range", "14": "not a number: true", "15": "amount out of range",
                "16": "'12.5' is not an amount in whole cents", "17": "not a number: '12,50 €'",
                "20": "duplicate id '20' (2 records of this extract carry it; none is staged)"}
    for sid, reason in expected.items():
        assert reason in by_id[sid], (sid, by_id[sid])
    assert (q["source_id"] == "20").sum() == 2, "both copies are kept and shown"
    raw_keys = set(store.read_frame("SELECT source_id FROM raw_wegive_transactions").source_id)
    assert set(q["source_id"]) <= raw_keys, "every quarantined record is named as in the raw table"
    got = accounts(store, "r1")["transactions"]
    assert (got.extracted, got.staged, got.quarantined) == (14, 3, 11)
    assert accounting.check_accounts(accounts(store, "r1"), loaded=False) == []
    gate = gates["transactions"]  # 11 rejects reach the floor of 10: the share halts this batch
    assert gate.rejected == 11 and gate.blocked_reason.startswith("11 of 14 transactions records were rejected")


def test_a_donor_with_an_invalid_email_is_staged_without_it_and_its_gifts_flow(org, store):
    gates = run_stage(org, store, "r1", {"wegive.donors": [one(DONOR, email_1="ada@@example.org")],
                                         "wegive.transactions": [gift(1), gift(2)]})
    donor = store.read_frame("SELECT source_id, email, payload FROM stg_constituents WHERE run_id = 'r1'")
    assert donor["source_id"].tolist() == ["1040"] and donor["email"].isna().all()
    assert "PrimaryEmail" not in json.loads(donor["payload"][0]), "nothing invalid is ever sent"
    assert store.read_frame("SELECT count(*) AS n FROM stg_transactions").n[0] == 2
    q = quarantine(store, "r1")
    assert q[["source_id", "kind", "field", "value"]].values.tolist() == [
        ["1040", "field", "PrimaryEmail.Value", "ada@@example.org"]]
    assert "is not a valid email address" in q["reasons"][0][0]
    assert gates["constituents"].rejected == 0 and gates["constituents"].fields_dropped == 1
    got = accounts(store, "r1")["constituents"]
    assert (got.extracted, got.staged, got.quarantined, got.fields_dropped) == (1, 1, 0, 1)


def test_a_duplicated_donor_blocks_nothing_else_and_keeps_both_copies(org, store):
    run_stage(org, store, "r1", {"wegive.donors": [DONOR, one(DONOR, id=7), one(DONOR, id=7, first_name="Other")]})
    q = quarantine(store, "r1")
    assert q["source_id"].tolist() == ["7", "7"]
    assert [json.loads(r)["first_name"] for r in q["raw"]] == ["Ada", "Other"]
    assert store.read_frame("SELECT source_id FROM stg_constituents").source_id.tolist() == ["1040"]
    log = store.read_frame("SELECT source_id, action FROM sync_log WHERE run_id = 'r1'")
    assert log.values.tolist() == [["7", "quarantined"], ["7", "quarantined"]]


def test_a_rerun_of_the_step_in_the_same_run_counts_nothing_twice(org, store):
    records = {"wegive.donors": [one(DONOR, email_1="x@@y")], "wegive.transactions": [gift(1), gift(13, 2**63)]}
    run_stage(org, store, "r1", records)
    stage.stage_all(org, store, "r1", load_extracted(store, "r1"))  # a Dagster re-execution reads raw back
    got = accounts(store, "r1")
    assert (got["transactions"].quarantined, got["constituents"].fields_dropped) == (1, 1)


def test_a_backfill_window_with_an_unreadable_created_day_stages_the_rest(org, store):
    window = Window.day("2025-03-02")
    gates = run_stage(org, store, "r1", {"wegive.transactions": [gift(1), gift(11, created_at="31/02/2025")]},
                      window=window)
    assert store.read_frame("SELECT source_id FROM stg_transactions").source_id.tolist() == ["1"]
    assert gates["transactions"].rejected == 1


def test_a_record_the_mapping_code_cannot_handle_is_quarantined_not_fatal(org, store, monkeypatch):
    real = transforms.REGISTRY["strip"]

    def fragile(values, ctx, arg=None):  # a mapping bug that only one record's value triggers
        if values.astype(str).str.contains("Boom").any():
            raise RuntimeError("strip failed on this value")
        return real.fn(values, ctx, arg)

    monkeypatch.setitem(transforms.REGISTRY, "strip", transforms.Transform(fragile, real.inverse))
    donors = [one(DONOR, id=i) for i in range(1, 9)] + [one(DONOR, id=99, last_name="Boom")]
    run_stage(org, store, "r1", {"wegive.donors": donors})
    assert len(store.read_frame("SELECT * FROM stg_constituents")) == 8
    q = quarantine(store, "r1")
    assert q["source_id"].tolist() == ["99"]
    assert q["reasons"][0][0] == "could not be mapped (RuntimeError: strip failed on this value)"
    assert accounting.check_accounts(accounts(store, "r1"), loaded=False) == []
    every = [one(DONOR, id=i, last_name="Boom") for i in range(stage.MAX_MAPPING_FAILURES + 1)]
    with pytest.raises(RuntimeError):  # every record failing is the code's fault, not the data's
        stage.stage_all(org, store, "r2", Extracted({"wegive.donors": every}))


def test_a_row_the_table_model_refuses_is_quarantined_and_the_others_staged(tmp_path, store):
    mappings = tmp_path / "mappings"
    (mappings / "orgs").mkdir(parents=True)
    (mappings / "defaults").mkdir()
    for name in ("wegive", "handbid"):
        (mappings / "defaults" / f"{name}.yaml").write_text((REPO / "mappings" / "defaults" / f"{name}.yaml")
                                                            .read_text())
    (mappings / "orgs" / "odd.yaml").write_text(
        "name: odd\nextends: [defaults/wegive]\ntimezone: UTC\nbloomerang: {api_key_env: ODD_KEY}\n"
        "wegive: {token_env: ODD_TOKEN}\n"
        "mappings: {wegive: {transactions: {fields: {Method: {lookup: {cash: Bitcoin}}}}}}\n")
    odd = load_org("odd", mappings)  # `Bitcoin` passes the mapping; the stg_transactions model refuses it
    gates = run_stage(odd, store, "r1", {"wegive.transactions": [gift(1), gift(2, source_type="other")]})
    assert store.read_frame("SELECT source_id FROM stg_transactions").source_id.tolist() == ["2"]
    q = quarantine(store, "r1")
    assert q["source_id"].tolist() == ["1"] and "method" in q["reasons"][0][0]
    assert json.loads(q["raw"][0])["source_type"] == "cash", "the record as received"
    assert gates["transactions"].schema_ok and gates["transactions"].rejected == 1


# -- status --failures ----------------------------------------------------------------------------------------


def test_status_failures_shows_dropped_fields_apart_from_quarantined_records(org, tmp_path, monkeypatch):
    store = StagingStore.for_org("demo", data_dir=tmp_path)
    with store.write() as con:
        ledgers.start_run(con, "r1", org="demo", direction="push")
    run_stage(org, store, "r1", {"wegive.donors": [one(DONOR, email_1="ada@@exa\nmple.org")],
                                 "wegive.transactions": [gift(1), gift(13, 2**63)]})
    monkeypatch.setenv("BLOOM_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["status", "--org", "demo", "--failures"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    (email,) = [line for line in lines if "field dropped: PrimaryEmail.Value" in line]
    assert "1040" in email and "'ada@@exa\\nmple.org' is not a valid email address" in email  # one line, escaped
    assert any("quarantined (invalid)" in line and "amount out of range" in line for line in lines)
    assert not any("quarantined (field)" in line for line in lines)


def test_status_failures_reads_a_file_no_sync_has_upgraded_yet(tmp_path, monkeypatch):
    con = duckdb.connect(str(tmp_path / "acme_staging.duckdb"))
    for statement in ddl.all_ddl():
        con.execute(old_schema(statement))
    con.execute("INSERT INTO sync_runs VALUES ('r1', 'acme', 'push', false, now(), now(), 'succeeded', '{}', NULL)")
    con.execute("INSERT INTO quarantine (source, entity, source_id, run_id, kind, reasons, quarantined_at) "
                "VALUES ('wegive', 'donors', '7', 'r1', 'invalid', ['old reason'], now())")
    con.close()
    monkeypatch.setenv("BLOOM_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["status", "--org", "acme", "--failures"])
    assert result.exit_code == 0, result.output
    assert "quarantined (invalid)  old reason" in result.output
