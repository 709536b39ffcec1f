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

import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.sync.cli import run_org

pytestmark = pytest.mark.slow  # starts sandbox servers

REPO = Path(__file__).resolve().parents[2]
ORG = "phones"
ORG_YAML = """\
name: phones
extends: [defaults/wegive, defaults/handbid]
timezone: America/Denver
sandbox_fallback: true
thresholds: {max_reject_share: 0.5}
bloomerang:
  api_key_env: PHONES_TEST_BLOOMERANG_API_KEY
  requests_per_hour: 100000
  custom_fields:
    constituent: {wegive: 901, handbid: 902}
    transaction: {wegive: 911, handbid: 912}
wegive: {token_env: PHONES_TEST_WEGIVE_TOKEN}
handbid:
  token_env: PHONES_TEST_HANDBID_TOKEN
  default: {fund: General Fund}
"""
WRITES = ("POST", "PUT", "DELETE", "PATCH")
TYPED_IN_WEGIVE = "(303) 555-1212 ext. 44"
TYPED_IN_BLOOMERANG = ("720-555-0199", "7")  # Number, Extension


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


class Nights:
    """The world, the org's files and what every night wrote."""

    def __init__(self, sandbox: Sandbox, clock: Clock, root: Path) -> None:
        self.sandbox, self.clock, self.root = sandbox, clock, root
        self.writes: list[Counter] = []
        self.phones: list[dict[str, Any]] = []  # after each night: what each side holds for the two donors
        self.who: dict[str, tuple[int, int]] = {}

    @property
    def wegive(self) -> Any:
        return self.sandbox.stores["wegive"]

    @property
    def bloomerang(self) -> Any:
        return self.sandbox.stores["bloomerang"]

    def sync(self) -> None:
        self.clock.now += timedelta(hours=1)
        self.sandbox.request_log.clear()
        report = run_org(ORG, direction="both", dry_run=False, since=None, mappings_dir=str(self.root / "mappings"),
                         data_dir=str(self.root / "data"), urls=self.sandbox.urls, quiet=True,
                         overrides={"handbid_org_id": self.sandbox.handbid_org_id})
        assert report.status == "succeeded", report.message
        self.writes.append(Counter((e.api, e.method, e.path_template) for e in self.sandbox.request_log.entries
                                   if e.method in WRITES))
        self.phones.append({name: self.held(name) for name in self.who})
        self.clock.now += timedelta(hours=1)

    def held(self, name: str) -> dict[str, Any]:
        donor, constituent = self.who[name]
        phone = self.bloomerang.render_constituent(constituent).get("PrimaryPhone") or {}
        return {"wegive": self.wegive.render_donor(donor).get("mobile_phone"),
                "bloomerang": (phone.get("Number"), phone.get("Extension"))}

    def pick(self, count: int) -> list[tuple[int, int]]:
        """WeGive donors alone on an Individual constituent."""
        con = duckdb.connect(str(self.root / "data" / f"{ORG}_staging.duckdb"), read_only=True)
        try:
            rows = con.execute("SELECT source, source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' "
                               "AND bloomerang_id IS NOT NULL ORDER BY source, source_id").fetchall()
        finally:
            con.close()
        owners = Counter(int(b) for _, _, b in rows)
        found = [(int(s), int(b)) for source, s, b in rows if source == "wegive" and owners[int(b)] == 1
                 and self.bloomerang.render_constituent(int(b)).get("Type") == "Individual"]
        return found[:count]


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    root = tmp_path_factory.mktemp("phones")
    shutil.copytree(REPO / "mappings", root / "mappings")
    (root / "mappings" / "orgs" / f"{ORG}.yaml").write_text(ORG_YAML)
    clock = Clock()
    with Sandbox(donors=8, seed=3, knobs=Knobs(rate_limit=None)) as sandbox:
        for api in ("wegive", "handbid", "bloomerang"):
            sandbox.stores[api].clock = clock
        n = Nights(sandbox, clock, root)
        n.sync()  # night 0: everyone linked
        (wegive_side, bloomerang_side) = n.pick(2)
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
    assert nights.writes[1], "night 1 carried the typed numbers"
    assert nights.writes[2] == Counter()
    assert nights.writes[3] == Counter()


def test_neither_side_is_rewritten(nights: Nights) -> None:
    final = nights.phones[3]
    assert final["wegive_typed"] == {"wegive": TYPED_IN_WEGIVE, "bloomerang": ("303.555.1212", "44")}
    assert final["bloomerang_typed"] == {"wegive": "(720) 555 0199 x7", "bloomerang": TYPED_IN_BLOOMERANG}
    assert nights.phones[2] == nights.phones[1]
