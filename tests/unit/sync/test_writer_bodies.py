"""The writers build each request body from the planned payload without changing the payload: a create whose
answer was lost is sent again from the same payload (``create_with_recovery``), so the second body must be
the first one, not one with the correlation value or the refund taken out twice."""

from __future__ import annotations

import copy

from bloom_pipeline.sync.apply.writers import ConstituentWriter, TransactionWriter


class _Client:
    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def create_constituent(self, body):
        self.bodies.append(copy.deepcopy(body))
        return {"Id": 1, **body}

    def create_transaction(self, body):
        self.bodies.append(copy.deepcopy(body))
        return {"Id": 7, **body}

    def create_refund(self, body):
        return {"Id": 70}


def test_a_constituent_payload_is_sent_twice_alike_and_never_changed() -> None:
    payload = {"FirstName": "Ana", "CustomValues": [{"FieldId": 5, "Value": "x"}], "PrimaryEmail": {"Value": "a@b"}}
    kept = copy.deepcopy(payload)
    client = _Client()
    writer = ConstituentWriter(client, {"wegive": 901})
    writer.create("wegive", "12", payload)
    writer.create("wegive", "12", payload)
    assert payload == kept
    assert client.bodies[0] == client.bodies[1]
    assert client.bodies[0]["CustomValues"] == [{"FieldId": 5, "Value": "x"}, {"FieldId": 901, "Value": "12"}]


def test_a_gift_payload_is_sent_twice_alike_and_never_changed() -> None:
    payload = {"AccountId": 3, "Amount": 10, "IsRefunded": True, "Refund": {"Date": "2026-01-02"},
               "Designations": [{"Amount": 10, "FundId": 4, "Tribute": {"Name": "Jo"}, "CustomValues": []}]}
    kept = copy.deepcopy(payload)
    client = _Client()
    writer = TransactionWriter(client, {"wegive": 911})
    writer.create("wegive", "88", payload)
    writer.create("wegive", "88", payload)
    assert payload == kept
    assert client.bodies[0] == client.bodies[1]
    sent = client.bodies[0]
    assert "IsRefunded" not in sent and "Refund" not in sent and "Tribute" not in sent["Designations"][0]
    assert sent["Designations"][0]["CustomValues"] == [{"FieldId": 911, "Value": "88"}]
