"""`mapping preview` output, and the invariants every mapping run keeps."""

import hashlib
import json

import pandas as pd
from click.testing import CliRunner

from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.compile import map_frame, payload_hash

from .conftest import DONOR, MAPPINGS, PAYMENT, TRANSACTION, record


def preview(tmp_path, entity, records, jsonl=False):
    path = tmp_path / "in.json"
    text = "\n".join(json.dumps(r) for r in records) if jsonl else json.dumps(records)
    path.write_text(text)
    result = CliRunner().invoke(mapping, ["preview", "--org", "demo", "--entity", entity, "--input", str(path),
                                          "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_preview_prints_mapped_rejected_and_dropped(tmp_path):
    out = preview(tmp_path, "wegive.donors", [DONOR, record(DONOR, id=7, type="household"),
                                              record(DONOR, id=8, email_1="nope")])
    assert [m["source_id"] for m in out["mapped"]] == ["1012", "8"]
    assert "PrimaryEmail" not in out["mapped"][1]["payload"]
    out["mapped"] = out["mapped"][:1]
    assert out == {
        "mapped": [{"source_id": "1012", "payload": {
            "Type": "Individual", "FirstName": "Ada", "MiddleName": "King", "LastName": "Lovelace",
            "PrimaryEmail": {"Type": "Home", "Value": "ada@example.org", "IsPrimary": True},
            "PrimaryPhone": {"Type": "Mobile", "Number": "3035551212", "IsPrimary": True},
            "PrimaryAddress": {"Type": "Home", "Street": "1 Main St", "City": "Denver", "State": "CO",
                               "PostalCode": "80202", "Country": "US", "IsPrimary": True},
            "CustomValues": [{"FieldId": 901, "Value": "1012"}]}}],
        "rejected": [{"source_id": "7", "errors": ["type: no mapping branch for 'household'"]}],
        "dropped": [{"source_id": "8", "field": "PrimaryEmail.Value",
                     "errors": ["PrimaryEmail.Value: 'nope' is not a valid email address (from email_1)"]}],
    }


def test_preview_reads_json_lines_and_shows_references_by_source_id(tmp_path):
    out = preview(tmp_path, "wegive.transactions", [TRANSACTION, record(TRANSACTION, id=2, status="Failed")],
                  jsonl=True)
    payload = out["mapped"][0]["payload"]
    assert payload["AccountId"] == "ref:wegive.donors:1012"
    assert payload["Designations"][0]["FundId"] == "ref:wegive.funds:3"
    assert out["rejected"][0]["source_id"] == "2" and "excluded" in out["rejected"][0]["errors"][0]


def test_preview_handbid_payments(tmp_path):
    out = preview(tmp_path, "handbid.payments", [PAYMENT])
    assert out["mapped"][0]["payload"]["Designations"][0]["Note"] == "Spring Gala; Wine basket; Ski trip"


def test_preview_unknown_org_exits_2(tmp_path):
    path = tmp_path / "in.json"
    path.write_text("[]")
    result = CliRunner().invoke(mapping, ["preview", "--org", "nosuch", "--entity", "wegive.donors", "--input",
                                          str(path), "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 2 and "no mapping file for org 'nosuch'" in result.output


def test_every_record_is_mapped_or_rejected_exactly_once(org):
    cases = [("Success", 100, "cash"), ("Failed", 100, "cash"), ("Success", -1, "cash"), ("Refunded", 250, "check"),
             ("Success", 100, "nonsense"), ("Pending", 1, "card"), ("Disputed", 999, "bank")]
    txs = [record(TRANSACTION, id=i, status=s, amount=a, source_type=st, fund_allocations=[])
           for i, (s, a, st) in enumerate(cases)]
    result = map_frame(org, "wegive.transactions", txs)
    mapped, rejected = set(result.mapped["source_id"]), set(result.rejected["source_id"])
    assert mapped.isdisjoint(rejected) and mapped | rejected == {str(i) for i in range(len(txs))}
    assert len(result.mapped) + len(result.rejected) == len(txs)
    assert set(result.rejected["kind"]) == {"invalid", "excluded"}
    assert all(result.rejected["errors"].map(len) > 0)
    assert json.loads(result.rejected["raw"][0])["id"] == 1


def test_payload_is_canonical_json_and_hash_matches(org):
    donors = [record(DONOR, id=i, first_name=n) for i, n in enumerate(['Zoë "Z"', "Back\\slash", "Tab\there"])]
    result = map_frame(org, "wegive.donors", donors)
    for text, digest in zip(result.mapped["payload"], result.mapped["payload_hash"], strict=True):
        obj = json.loads(text)
        assert text == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert digest == hashlib.sha256(text.encode()).hexdigest() == payload_hash(obj)


def test_dataframe_input_matches_record_input(org):
    donors = [DONOR, record(DONOR, id=2, type="company", name="Acme")]
    from_records = map_frame(org, "wegive.donors", donors).mapped
    from_frame = map_frame(org, "wegive.donors", pd.DataFrame(donors)).mapped
    assert from_records["payload"].tolist() == from_frame["payload"].tolist()
