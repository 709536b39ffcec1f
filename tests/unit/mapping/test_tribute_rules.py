"""Tribute rules of the default WeGive mapping: `tribute*` → `TributeId` by name plus the `Tribute` body, the type
from WeGive's `tribute` else the rule's default, nothing for a gift that honors nobody, and the preview."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.sync.apply.writers import TransactionWriter

from .conftest import MAPPINGS, TRANSACTION, payloads, record

HONORS = {"tribute": "in_memory", "tribute_name": " Margaret Lane ", "tribute_message": "For Grandma",
          "tribute_email": "kin@example.org"}


def _designation(org: Any, **changes: Any) -> dict[str, Any]:
    return payloads(map_frame(org, "wegive.transactions", [record(TRANSACTION, **changes)]))["88001"]["Designations"][0]


def test_a_tribute_is_named_by_reference_and_its_body_planned(org: Any) -> None:
    designation = _designation(org, **HONORS)
    assert designation["TributeId"] == "ref:bloomerang.tributes:name=Margaret Lane"
    assert designation["Tribute"] == {"Name": "Margaret Lane", "TributeType": "InMemoryOf", "Note": "For Grandma",
                                      "IsActive": True}


@pytest.mark.parametrize(("kind", "expected"), [("in_honor", "InHonorOf"), ("In Memory Of", "InMemoryOf"),
                                                (None, "InHonorOf")])
def test_the_type_from_wegive_else_the_default(org: Any, kind: str | None, expected: str) -> None:
    assert _designation(org, **{**HONORS, "tribute": kind})["Tribute"]["TributeType"] == expected


def test_an_unknown_type_is_noted_and_the_default_used(org: Any) -> None:
    result = map_frame(org, "wegive.transactions", [record(TRANSACTION, **{**HONORS, "tribute": "celebration"})])
    assert list(result.fields["field"]) == ["Designations.Tribute.TributeType"]
    designation = payloads(result)["88001"]["Designations"][0]
    assert designation["TributeId"] == "ref:bloomerang.tributes:name=Margaret Lane"


def test_a_gift_that_honors_nobody_carries_no_tribute(org: Any) -> None:
    designation = _designation(org, tribute="in_honor", tribute_name="  ", tribute_message="x")
    assert "TributeId" not in designation and "Tribute" not in designation


def test_the_writer_sends_no_tribute_field(org: Any) -> None:
    payload = payloads(map_frame(org, "wegive.transactions", [record(TRANSACTION, **HONORS)]))["88001"]
    sent: list[dict[str, Any]] = []

    class Client:
        def create_transaction(self, body: dict[str, Any]) -> dict[str, Any]:
            sent.append(body)
            return {"Id": 1, **body}

    TransactionWriter(Client(), {"wegive": 911}).create("wegive", "88001", payload)
    assert "Tribute" not in sent[0]["Designations"][0]
    assert sent[0]["Designations"][0]["TributeId"] == "ref:bloomerang.tributes:name=Margaret Lane"


def test_preview_shows_the_tribute_beside_the_payload(tmp_path: Any) -> None:
    path = tmp_path / "txn.json"
    path.write_text(json.dumps([record(TRANSACTION, **HONORS)]))
    result = CliRunner().invoke(mapping, ["preview", "--org", "demo", "--entity", "wegive.transactions",
                                          "--input", str(path), "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    [mapped] = json.loads(result.output)["mapped"]
    assert "Tribute" not in mapped["payload"]["Designations"][0]
    assert mapped["tributes"] == [{"Name": "Margaret Lane", "TributeType": "InMemoryOf", "IsActive": True,
                                   "Note": "For Grandma"}]
