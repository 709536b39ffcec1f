"""Tribute bodies and reuse by name (``sync/apply/tributes.py``), with a recording stand-in for the client."""

from __future__ import annotations

from typing import Any

import pytest

from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.sync.apply import tributes


def _payload(*planned: dict[str, Any] | None) -> dict[str, Any]:
    return {"Designations": [{"Amount": 5, "Tribute": p} if p is not None else {"Amount": 5} for p in planned]}


def test_body_takes_the_type_else_the_default_and_skips_a_blank_name() -> None:
    assert tributes.tribute_body({"Name": " Jane ", "TributeType": "InMemoryOf", "Note": "Mom"}) == {
        "Name": "Jane", "TributeType": "InMemoryOf", "IsActive": True, "Note": "Mom"}
    assert tributes.tribute_body({"Name": "Jane", "TributeType": "odd"}, "InMemoryOf")["TributeType"] == "InMemoryOf"
    assert tributes.tribute_body({"Name": "  "}) is None
    assert tributes.tribute_body(None) is None


def test_wanted_keeps_the_first_body_per_name() -> None:
    wanted = tributes.wanted_tributes([_payload({"Name": "Jane", "TributeType": "InMemoryOf"}, None),
                                       _payload({"Name": "JANE ", "TributeType": "InHonorOf"})])
    assert list(wanted) == ["jane"] and wanted["jane"]["TributeType"] == "InMemoryOf"


def test_without_tribute_leaves_the_payload_it_was_given() -> None:
    payload = _payload({"Name": "Jane"})
    assert tributes.without_tribute(payload) == {"Designations": [{"Amount": 5}]}
    assert payload["Designations"][0]["Tribute"] == {"Name": "Jane"}


def test_by_name_prefers_the_older_of_two_same_named() -> None:
    assert tributes.by_name([{"Id": 9, "Name": "Jane"}, {"Id": 4, "Name": "jane"}]) == {"jane": 4}


class Client:
    """Records creates; ``lose`` answers: the first create lands but its answer is lost."""

    def __init__(self, held: list[dict[str, Any]], lose: bool = False) -> None:
        self.held, self.lose, self.posts = list(held), lose, 0

    def create_tribute(self, body: dict[str, Any]) -> dict[str, Any]:
        self.posts += 1
        created = {"Id": 100 + len(self.held), **body}
        self.held.append(created)
        if self.lose:
            self.lose = False
            raise OutcomeUnknownError(None, "timed out", "POST", "tribute", "bloomerang")
        return created

    def iter_tributes(self) -> list[dict[str, Any]]:
        return list(self.held)


@pytest.mark.parametrize("lose", [False, True])
def test_ensure_creates_a_missing_tribute_once_and_reuses_a_known_one(lose: bool) -> None:
    client = Client([{"Id": 7, "Name": "Coach"}], lose=lose)
    wanted = tributes.wanted_tributes([_payload({"Name": "coach"}, {"Name": "Jane"})])
    known = tributes.by_name(client.iter_tributes())
    assert tributes.ensure_tributes(client, wanted, known) == {"coach": 7, "Jane": 100 + 1}
    assert client.posts == 1 and len(client.held) == 2
    assert tributes.ensure_tributes(client, wanted, known) == {"coach": 7, "Jane": 101}
    assert client.posts == 1
