"""Test helper: one test org against the real sandbox, run night after night on a clock the test moves.

Several slow pipeline modules each need the same small world: a copy of ``mappings/`` with their own org YAML,
a sandbox on loopback whose three simulators stamp writes from one shared ``Clock``, a data dir, and helpers
to run a sync the way ``bloom-pipeline sync`` does (``run_org``) and look at what it wrote (the request log,
the staging file, the stores). They used to copy it; this module is the one copy. What is particular to a
module (its org keys, its pickers, what it records per night) stays in that module.

Why the clock: the merge decides conflicts by last-modified time and the pull reads only records modified
after its cursor, so time must move forward the way the real world's does -- an hour before every run here,
and (``after_hours``) a rest after it, so an edit made between runs is never "the same second".

A plain module, not a plugin: modules import what they use (``from tests.pipeline.org_world import ...``).
The session-wide ``bidir`` world (``conftest_bidir.py``, a fixture plugin) is built on it, with its own picker.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import duckdb

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.sync.cli import run_org
from bloom_pipeline.sync.runner import RunReport

REPO = Path(__file__).resolve().parents[2]
WRITES = ("POST", "PUT", "DELETE", "PATCH")
ORG_YAML = """\
name: {name}
extends: [defaults/wegive, defaults/handbid]
timezone: America/Denver
sandbox_fallback: true
{top}thresholds: {{max_reject_share: 0.5}}
bloomerang:
  api_key_env: {env}_TEST_BLOOMERANG_API_KEY
  requests_per_hour: 100000
  custom_fields:
    constituent: {{wegive: 901, handbid: 902}}
    transaction: {{wegive: 911, handbid: 912}}
wegive: {{token_env: {env}_TEST_WEGIVE_TOKEN}}
handbid:
  token_env: {env}_TEST_HANDBID_TOKEN
  default: {{fund: General Fund}}
{extra}"""


class Clock:
    """One clock for all three simulators; it only moves when a test (or ``OrgWorld.sync``) says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def org_yaml(name: str, extra: str = "", **top: str) -> str:
    """A test org's YAML: the demo's defaults, the sandbox correlation fields (INTERFACES.md), env names of its
    own (``NAME_TEST_...``, never set: the sandbox fallback keys are used). ``top`` adds one-line top-level keys
    (``on_source_delete="keep"``); ``extra`` is YAML text appended as is (a ``mappings:`` block)."""
    lines = "".join(f"{key}: {value}\n" for key, value in top.items())
    return ORG_YAML.format(name=name, env=name.upper(), top=lines, extra=extra)


def copy_mappings(root: Path) -> Path:
    """A private copy of the repo's ``mappings/`` under ``root`` (tests write org files into it)."""
    shutil.copytree(REPO / "mappings", root / "mappings")
    return root / "mappings"


def write_org(mappings_dir: Path, name: str, extra: str = "", **top: str) -> Path:
    """Write (or rewrite, between nights) ``orgs/NAME.yaml`` from ``org_yaml``."""
    path = mappings_dir / "orgs" / f"{name}.yaml"
    path.write_text(org_yaml(name, extra, **top))
    return path


def run_sync(org: str, sandbox: Sandbox, data_dir: Path, mappings_dir: Path | None = None, *,
             direction: str = "both", dry_run: bool = False) -> RunReport:
    """One ``bloom-pipeline sync`` of ``org`` against the sandbox; the report, unchecked."""
    return run_org(org, direction=direction, dry_run=dry_run, since=None,
                   mappings_dir=None if mappings_dir is None else str(mappings_dir), data_dir=str(data_dir),
                   urls=sandbox.urls, quiet=True, overrides={"handbid_org_id": sandbox.handbid_org_id})


@dataclass
class OrgWorld:
    """The sandbox, the org's files and the helpers to run syncs and look at the systems and the staging file.

    ``mappings_dir`` None runs the repo's own mappings (the demo org); ``clock`` None leaves time alone.
    """

    org: str
    sandbox: Sandbox
    data_dir: Path
    mappings_dir: Path | None = None
    clock: Clock | None = None
    after_hours: float = 0  # the clock's rest after each run
    used: set[int] = field(default_factory=set)  # Bloomerang ids ``take`` handed out
    reports: list[RunReport] = field(default_factory=list)
    history: list[Counter] = field(default_factory=list)  # ``writes()`` of every run, in order

    # ``take`` also records donor ids in ``used`` (one set: a donor id equal to a constituent id blocks both)
    used_holds_donor_ids: ClassVar[bool] = False

    # -- running ---------------------------------------------------------------------------------
    def sync(self, direction: str = "both", *, dry_run: bool = False) -> RunReport:
        """One nightly run, an hour after the last edit; it must succeed. The request log then holds its calls."""
        if self.clock is not None:
            self.clock.advance(hours=1)
        self.sandbox.request_log.clear()
        report = run_sync(self.org, self.sandbox, self.data_dir, self.mappings_dir, direction=direction,
                          dry_run=dry_run)
        self.reports.append(report)
        self.history.append(self.writes())
        assert report.status == "succeeded", report.message
        if self.clock is not None and self.after_hours:
            self.clock.advance(hours=self.after_hours)
        return report

    def writes(self, methods: tuple[str, ...] = WRITES) -> Counter:
        """Writes the last run sent, by (api, method, path template)."""
        return Counter((e.api, e.method, e.path_template) for e in self.sandbox.request_log.entries
                       if e.method in methods)

    def sent(self, method: str, path_end: str) -> list[dict[str, Any]]:
        """The JSON bodies the last run sent to paths ending in ``path_end`` (needs ``capture_bodies``)."""
        return [json.loads(e.request_body) for e in self.sandbox.request_log.entries
                if e.method == method and e.path.endswith(path_end) and e.request_body]

    # -- the stores ------------------------------------------------------------------------------
    @property
    def wegive(self) -> Any:
        return self.sandbox.stores["wegive"]

    @property
    def handbid(self) -> Any:
        return self.sandbox.stores["handbid"]

    @property
    def bloomerang(self) -> Any:
        return self.sandbox.stores["bloomerang"]

    # -- the staging file ------------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        con = duckdb.connect(str(self.data_dir / f"{self.org}_staging.duckdb"), read_only=True)
        try:
            cursor = con.execute(sql, params or [])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()

    def link(self, source_id: int | str, source: str = "wegive") -> int | None:
        """The Bloomerang id the staging file links a source record to (None: not linked)."""
        rows = self.query("SELECT bloomerang_id FROM sync_state WHERE entity = 'constituents' AND source = ? "
                          "AND source_id = ?", [source, str(source_id)])
        return int(rows[0]["bloomerang_id"]) if rows and rows[0]["bloomerang_id"] is not None else None

    def constituent_of(self, source_id: int | str, source: str = "wegive") -> int:
        bid = self.link(source_id, source)
        assert bid is not None, f"{source} record {source_id} is not linked"
        return bid

    def take(self, *, with_gifts: bool = False) -> tuple[int, int]:
        """An unused WeGive donor alone on its Individual constituent (no Handbid twin; with gifts in Bloomerang
        if asked), in staging order: (donor id, constituent id). Tests sharing a world never edit one record."""
        rows = self.query("SELECT source, source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' "
                          "AND bloomerang_id IS NOT NULL ORDER BY source, source_id")
        owners = Counter(int(r["bloomerang_id"]) for r in rows)
        accounts = Counter(t["AccountId"] for t in self.bloomerang.transactions.values()) if with_gifts else None
        for r in rows:
            bid, donor = int(r["bloomerang_id"]), int(r["source_id"]) if r["source"] == "wegive" else None
            if r["source"] != "wegive" or owners[bid] > 1 or bid in self.used:
                continue
            if self.used_holds_donor_ids and donor in self.used:
                continue
            if self.bloomerang.render_constituent(bid).get("Type") != "Individual":
                continue
            if accounts is not None and not accounts[bid]:
                continue
            self.used.update({bid, donor} if self.used_holds_donor_ids else {bid})
            return donor, bid
        raise LookupError("no unused WeGive individual")


W = TypeVar("W", bound=OrgWorld)


@contextmanager
def open_world(root: Path, org: str, *, donors: int, seed: int, kind: type[W] = OrgWorld,
               capture_bodies: bool = False, clocked: bool = True, own_mappings: bool = True,
               yaml: str | None = None, **options: Any) -> Iterator[W]:
    """A started sandbox of ``donors`` (``seed``) and a world of type ``kind`` over it, stopped on exit.

    ``own_mappings`` copies ``mappings/`` under ``root`` and writes ``yaml`` (when given) as the org's file;
    ``clocked`` puts the three simulators on one ``Clock``; ``options`` go to ``kind`` (``after_hours``...).
    No sync has run yet: the test shapes the world first.
    """
    mappings = copy_mappings(root) if own_mappings else None
    if mappings is not None and yaml is not None:
        (mappings / "orgs" / f"{org}.yaml").write_text(yaml)
    clock = Clock() if clocked else None
    with Sandbox(donors=donors, seed=seed, knobs=Knobs(rate_limit=None), capture_bodies=capture_bodies) as sandbox:
        if clock is not None:
            for api in ("wegive", "handbid", "bloomerang"):
                sandbox.stores[api].clock = clock
        yield kind(org, sandbox, root / "data", mappings, clock, **options)
