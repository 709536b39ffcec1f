"""Shared fixtures of the push-sync pipeline tests: a sandbox on loopback, a data dir, and a ``SyncHarness``
that runs the demo org's sync against it exactly as ``bloom-pipeline sync`` does (``run_org``), then lets
a test look at what landed in Bloomerang by correlation value.

``synced`` is module-scoped: one world synced once, shared by the read-only assertions of a module
(a sync costs seconds, so every test re-running it would blow the time budget). Test modules use the
helpers through the fixture (``h.custom_value``, ``h.WEGIVE_DONOR_FIELD``): importing ``conftest`` by
name is ambiguous when several test directories have one.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.cli import run_org
from bloom_pipeline.sync.runner import RunReport

# Sandbox custom field ids (INTERFACES.md) the demo org names as its correlation fields.
WEGIVE_DONOR_FIELD, HANDBID_CONTACT_FIELD = 901, 902
WEGIVE_TRANSACTION_FIELD, HANDBID_PAYMENT_FIELD = 911, 912
# A small world with no record the mapping rejects: every run of it can exit 0.
DONORS, SEED = 30, 2
WRITES = frozenset({"POST", "PUT", "DELETE"})


@dataclass
class SyncHarness:
    """One sandbox + one org data dir; ``sync()`` runs the demo org against the sandbox."""

    sb: Sandbox
    data_dir: Path
    mappings_dir: Path | None = None
    reports: list[RunReport] = field(default_factory=list)

    # the demo org's correlation custom fields (sandbox ids, INTERFACES.md)
    WEGIVE_DONOR_FIELD: ClassVar[int] = WEGIVE_DONOR_FIELD
    HANDBID_CONTACT_FIELD: ClassVar[int] = HANDBID_CONTACT_FIELD
    WEGIVE_TRANSACTION_FIELD: ClassVar[int] = WEGIVE_TRANSACTION_FIELD
    HANDBID_PAYMENT_FIELD: ClassVar[int] = HANDBID_PAYMENT_FIELD

    def sync(self, *, direction: str = "both", dry_run: bool = False, since: datetime | None = None,
             quiet: bool = True) -> RunReport:
        report = run_org("demo", direction=direction, dry_run=dry_run, since=since,
                         mappings_dir=None if self.mappings_dir is None else str(self.mappings_dir),
                         data_dir=str(self.data_dir), urls=self.sb.urls, quiet=quiet,
                         overrides={"handbid_org_id": self.sb.handbid_org_id})
        self.reports.append(report)
        return report

    # -- what the staging store says --------------------------------------------------------------
    @property
    def store(self) -> StagingStore:
        return StagingStore.for_org("demo", data_dir=self.data_dir)

    def frame(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        return self.store.read_frame(sql, params or [])

    def sync_log(self, run_id: str) -> pd.DataFrame:
        return self.frame("SELECT * FROM sync_log WHERE run_id = ?", [run_id])

    # -- what Bloomerang holds ----------------------------------------------------------------------
    @property
    def bloomerang(self) -> Any:
        return self.sb.stores["bloomerang"]

    def constituents(self) -> list[dict[str, Any]]:
        store = self.bloomerang
        return [store.render_constituent(i) for i in list(store.constituents)]

    def transactions(self) -> list[dict[str, Any]]:
        store = self.bloomerang
        return [store.render_transaction(i) for i in list(store.transactions)]

    def constituents_by(self, field_id: int) -> dict[str, list[dict[str, Any]]]:
        """Correlation value of ``field_id`` → the constituents holding it (a list: duplicates show)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for record in self.constituents():
            value = custom_value(record, field_id)
            if value is not None:
                out.setdefault(value, []).append(record)
        return out

    def transactions_by(self, field_id: int) -> dict[str, list[dict[str, Any]]]:
        """Correlation value on the designations → the transactions holding it."""
        out: dict[str, list[dict[str, Any]]] = {}
        for record in self.transactions():
            values = {custom_value(d, field_id) for d in record.get("Designations", [])} - {None}
            for value in values:
                out.setdefault(value, []).append(record)
        return out

    def write_requests(self, api: str = "bloomerang") -> Counter:
        return Counter({k: n for k, n in self.sb.request_log.counts(api).items() if k[1] in WRITES})

    @staticmethod
    def custom_value(record: dict[str, Any], field_id: int) -> str | None:
        for value in record.get("CustomValues") or []:
            if value.get("FieldId") == field_id:
                inner = value.get("Value")  # read shape: {"Value": {"Id": <value id>, "Value": <text>}}
                return str(inner.get("Value") if isinstance(inner, dict) else inner)
        return None

    @staticmethod
    def duplicates(by_value: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        return {value: len(records) for value, records in by_value.items() if len(records) > 1}


custom_value = SyncHarness.custom_value


def demo_mappings_with(root: Path, section: str, key: str, value: Any) -> Path:
    """The repo's mappings copied under ``root`` with the demo org's ``<section>.<key>`` set (e.g.
    ``bloomerang.write_connections``): what a test of one org setting runs with."""
    target = root / f"mappings-{section}-{key}-{value}"
    shutil.copytree(Path(__file__).resolve().parents[2] / "mappings", target)
    demo = target / "orgs" / "demo.yaml"
    demo.write_text(demo.read_text().replace(f"{section}:\n", f"{section}:\n  {key}: {value}\n", 1))
    return target


def start_sandbox(donors: int = DONORS, seed: int = SEED, **knobs: Any) -> Sandbox:
    return Sandbox(donors=donors, seed=seed, knobs=Knobs(rate_limit=None, **knobs)).start()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[SyncHarness]:
    """A fresh sandbox and an empty data dir (for tests that change the world)."""
    sb = start_sandbox()
    try:
        yield SyncHarness(sb, tmp_path / "data")
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHarness]:
    """A world synced once (read-only for the tests that use it)."""
    sb = start_sandbox()
    try:
        h = SyncHarness(sb, tmp_path_factory.mktemp("synced") / "data")
        report = h.sync()
        assert report.status == "succeeded", report.message
        yield h
    finally:
        sb.stop()
