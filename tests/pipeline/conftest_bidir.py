"""Shared world for the bidirectional-sync tests: the real sandbox, a test org and a controllable clock.

A pytest plugin, registered by ``tests/conftest.py``: the ``bidir_world`` fixture is there for every test that
asks for it (no import); ``test_bidir_*.py`` import only the helpers (``ORG``, ``BidirWorld``, ``Picker``).

Why a shared clock: the three-way merge decides both-side conflicts by last-modified time, and the pull
only reads Bloomerang records modified after its cursor. Tests must therefore move time forward the way
the real world does (never backwards), with every system stamping writes from the same clock — a
``Clock`` the test advances explicitly, so "ten minutes later" or "seconds apart" is exact.

The ``bidir`` org extends the demo's defaults and adds policies the merge cases need: ``middle_name`` is
a ``review`` field, ``email`` is ``fill_empty``, and the clock-skew tolerance is 5 minutes (not the 2
minute default, so a test can tell the org's value is the one in force).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.pipeline.org_world import OrgWorld, open_world, org_yaml

ORG = "bidir"
SKEW = timedelta(minutes=5)
POLICIES = """\
policies:
  constituents:
    middle_name: {policy: review, direction: both}
    email: {policy: fill_empty, direction: both}
"""
ORG_YAML = org_yaml(ORG, POLICIES, phone_region="US", clock_skew_tolerance="5m")


@dataclass
class BidirWorld(OrgWorld):
    """The sandbox, the org's files and helpers to run syncs and look at both systems and the ledgers
    (``OrgWorld``: one nightly ``sync`` an hour after the last edit, ``writes``, ``query``, the stores)."""

    @functools.cached_property
    def picker(self) -> Picker:
        return Picker(self)

    def constituent(self, bloomerang_id: int) -> dict[str, Any]:
        return self.bloomerang.render_constituent(int(bloomerang_id))

    def donor(self, donor_id: str | int) -> dict[str, Any]:
        return self.wegive.render_donor(int(donor_id))

    def contact(self, contact_id: str | int) -> dict[str, Any]:
        return self.handbid.contact(int(contact_id))

    # -- the staging file ------------------------------------------------------------------------
    def linked(self, source: str) -> list[tuple[str, int]]:
        """(source id, Bloomerang id) of every donor of ``source`` linked with a stored snapshot."""
        rows = self.query(
            "SELECT source_id, bloomerang_id, source_snapshot FROM sync_state WHERE entity = 'constituents' "
            "AND source = ? AND bloomerang_id IS NOT NULL AND source_snapshot IS NOT NULL ORDER BY source_id",
            [source],
        )
        return [(r["source_id"], int(r["bloomerang_id"])) for r in rows]

    def snapshot_of(self, source: str, source_id: str) -> dict[str, dict[str, Any]]:
        row = self.query("SELECT source_snapshot, bloomerang_snapshot FROM sync_state WHERE entity = 'constituents' "
                         "AND source = ? AND source_id = ?", [source, str(source_id)])[0]
        return {"source": json.loads(row["source_snapshot"]), "bloomerang": json.loads(row["bloomerang_snapshot"])}

    def conflicts(self, run_id: str, source_id: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM conflicts WHERE run_id = ?", [run_id]
        if source_id is not None:
            sql, params = sql + " AND source_id = ?", [*params, str(source_id)]
        return self.query(sql + " ORDER BY field", params)

    def log(self, run_id: str, source: str, source_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM sync_log WHERE run_id = ? AND entity = 'constituents' AND source = ? "
                          "AND source_id = ?", [run_id, source, str(source_id)])

    def reviews(self, source_id: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM review_queue", []
        if source_id is not None:
            sql, params = sql + " WHERE source_id = ?", [str(source_id)]
        return self.query(sql + " ORDER BY id", params)


class Picker:
    """Hands each test its own linked donors, so tests sharing one world never edit the same record."""

    def __init__(self, world: BidirWorld) -> None:
        self.world = world
        self.used: set[int] = set()

    def _owners(self) -> Counter:
        return Counter(b for source in ("wegive", "handbid") for _, b in self.world.linked(source))

    def take(self, source: str, *, with_fields: tuple[str, ...] = (), kind: str = "Individual",
             where: Callable[[dict[str, Any]], bool] | None = None) -> tuple[str, int]:
        """A linked donor of ``source`` alone on its constituent (of type ``kind``), unused, with
        ``with_fields`` filled in Bloomerang and (optionally) whose source record satisfies ``where``."""
        owners = self._owners()
        for source_id, bloomerang_id in self.world.linked(source):
            if bloomerang_id in self.used or owners[bloomerang_id] > 1:
                continue
            record = self.world.constituent(bloomerang_id)
            if record.get("Type") != kind:
                continue
            if any(not _bloomerang_value(record, name) for name in with_fields):
                continue
            own = self.world.donor(source_id) if source == "wegive" else self.world.contact(source_id)
            if where is not None and not where(own):
                continue
            self.used.add(bloomerang_id)
            return source_id, bloomerang_id
        raise LookupError(f"no unused linked {source} individual with {with_fields}")

    def take_shared(self) -> tuple[str, str, int]:
        """(WeGive donor id, Handbid contact id, Bloomerang id) of one person present in both sources."""
        contacts = dict((b, s) for s, b in self.world.linked("handbid"))
        for donor_id, bloomerang_id in self.world.linked("wegive"):
            if bloomerang_id in contacts and bloomerang_id not in self.used:
                self.used.add(bloomerang_id)
                return donor_id, contacts[bloomerang_id], bloomerang_id
        raise LookupError("no person linked to both a WeGive donor and a Handbid contact")


def _bloomerang_value(record: dict[str, Any], name: str) -> Any:
    paths = {"email": ("PrimaryEmail", "Value"), "phone": ("PrimaryPhone", "Number"),
             "city": ("PrimaryAddress", "City"), "middle_name": ("MiddleName",), "first_name": ("FirstName",)}
    value: Any = record
    for part in paths[name]:
        value = (value or {}).get(part)
    return value


def bloomerang_value(record: dict[str, Any], name: str) -> Any:
    """A canonical field's value in a rendered Bloomerang constituent."""
    return _bloomerang_value(record, name)


@pytest.fixture(scope="session")
def bidir_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BidirWorld]:
    """A 45-donor sandbox after its first full sync: every donor linked, both sides snapshotted.

    One world for every ``test_bidir_*`` module (a session fixture, defined once by this plugin): the first
    sync is the slow part. Tests stay independent by taking their donors from the shared ``world.picker``.
    """
    with open_world(tmp_path_factory.mktemp("bidir"), ORG, donors=45, seed=11, kind=BidirWorld,
                    yaml=ORG_YAML) as world:
        world.sync()
        yield world
