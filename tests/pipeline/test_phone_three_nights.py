"""A phone with an extension over three nights, both ways, over real HTTP: sent as typed, never rewritten.

One small sandbox (8 donors) and a shared clock. After the first sync links everyone:

* a WeGive admin types ``(303) 555-1212 ext. 44`` on one donor -- night 1 carries it to Bloomerang as typed,
  extension and all;
* a Bloomerang user types a number on another donor's constituent the Bloomerang way, the extension in its own
  ``Extension`` field -- night 1 carries number *and* extension to WeGive;
* night 2 nothing changes; then each side reformats the other's number (same digits, other punctuation; the
  extension moved into / out of Bloomerang's ``Extension`` field) -- night 3 writes nothing.

On nights 2 and 3 no phone (and nothing else) is written anywhere, and each side still holds its own text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bloom_pipeline.sync.runner import RunReport
from tests.pipeline.org_world import OrgWorld, open_world, org_yaml

pytestmark = pytest.mark.slow  # starts sandbox servers

ORG = "phones"
TYPED_IN_WEGIVE = "(303) 555-1212 ext. 44"
TYPED_IN_BLOOMERANG = ("720-555-0199", "7")  # Number, Extension


@dataclass
class Nights(OrgWorld):
    """The world, the org's files and what every night wrote (``history``) and left (``phones``)."""

    phones: list[dict[str, Any]] = field(default_factory=list)  # after each night: what each side holds
    who: dict[str, tuple[int, int]] = field(default_factory=dict)

    def sync(self, direction: str = "both", *, dry_run: bool = False) -> RunReport:
        report = super().sync(direction, dry_run=dry_run)
        self.phones.append({name: self.held(name) for name in self.who})
        return report

    def held(self, name: str) -> dict[str, Any]:
        donor, constituent = self.who[name]
        phone = self.bloomerang.render_constituent(constituent).get("PrimaryPhone") or {}
        return {"wegive": self.wegive.render_donor(donor).get("mobile_phone"),
                "bloomerang": (phone.get("Number"), phone.get("Extension"))}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    with open_world(tmp_path_factory.mktemp("phones"), ORG, donors=8, seed=3, kind=Nights,
                    yaml=org_yaml(ORG), after_hours=1) as n:
        n.sync()  # night 0: everyone linked
        (wegive_side, bloomerang_side) = n.take(), n.take()  # WeGive donors alone on an Individual constituent
        n.who = {"wegive_typed": wegive_side, "bloomerang_typed": bloomerang_side}
        n.wegive.update_donor(wegive_side[0], {"mobile_phone": TYPED_IN_WEGIVE})
        number, extension = TYPED_IN_BLOOMERANG
        n.bloomerang.update_constituent(bloomerang_side[1], {"PrimaryPhone": {
            "Type": "Mobile", "Number": number, "Extension": extension}}, actor="Front Desk")
        n.sync()  # night 1: each typed number reaches the other side
        n.sync()  # night 2: nothing changed
        n.bloomerang.update_constituent(wegive_side[1], {"PrimaryPhone": {
            "Type": "Mobile", "Number": "303.555.1212", "Extension": "44"}}, actor="Front Desk")
        n.wegive.update_donor(bloomerang_side[0], {"mobile_phone": "(720) 555 0199 x7"})
        n.sync()  # night 3: the same numbers, reformatted on the other side
        yield n


def test_a_wegive_phone_reaches_bloomerang_as_typed_with_its_extension(nights: Nights) -> None:
    held = nights.phones[1]["wegive_typed"]
    assert held["wegive"] == TYPED_IN_WEGIVE
    number, extension = held["bloomerang"]
    assert number == TYPED_IN_WEGIVE and extension is None  # as provided: the extension is in the text sent


def test_a_bloomerang_extension_reaches_wegive(nights: Nights) -> None:
    held = nights.phones[1]["bloomerang_typed"]
    assert held["bloomerang"] == TYPED_IN_BLOOMERANG
    assert held["wegive"] is not None and held["wegive"].startswith(TYPED_IN_BLOOMERANG[0])
    assert "".join(filter(str.isdigit, held["wegive"])) == "72055501997"  # the extension kept


def test_quiet_and_reformatted_nights_write_nothing(nights: Nights) -> None:
    assert nights.history[1], "night 1 carried the typed numbers"
    assert nights.history[2] == Counter()
    assert nights.history[3] == Counter()


def test_neither_side_is_rewritten(nights: Nights) -> None:
    final = nights.phones[3]
    assert final["wegive_typed"] == {"wegive": TYPED_IN_WEGIVE, "bloomerang": ("303.555.1212", "44")}
    assert final["bloomerang_typed"] == {"wegive": "(720) 555 0199 x7", "bloomerang": TYPED_IN_BLOOMERANG}
    assert nights.phones[2] == nights.phones[1]
