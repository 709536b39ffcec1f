"""Org files that do not load never break the code location for the other orgs, and operators are told.

Each broken file is skipped: the other orgs keep their partitions, schedules and sensors, and the skip is
logged, appended to every job's description (what the Dagster UI shows on the job pages) and kept in the
Definitions metadata. The note names the org and its first problem, never a credential written inline.
No Dagster instance or sandbox is started: this is the fast tier.
"""

import logging
from pathlib import Path

import dagster as dg
import pytest

from bloom_pipeline.defs.definitions_builder import SKIPPED_KEY, build_definitions

REPO = Path(__file__).resolve().parents[2]
INLINE_SECRET = "inline-bloomerang-key-7d41c2"
ACME_YAML = """\
name: acme
extends: [defaults/wegive, defaults/handbid]
timezone: America/Chicago
bloomerang: {api_key_env: ACME_BLOOMERANG_API_KEY}
wegive: {token_env: ACME_WEGIVE_TOKEN}
handbid: {token_env: ACME_HANDBID_TOKEN, organization_id: 12}
"""
# file stem -> content: each fails to load for a different reason
BROKEN = {
    "broken": "name: broken\ntimezone: Not/AZone\nextends: [defaults/nope]\n",
    "badcron": ACME_YAML.replace("name: acme", "name: badcron") + 'schedule: {cron: "99 99 * * *"}\n',
    "leaky": ACME_YAML.replace("name: acme", "name: leaky").replace(
        "bloomerang: {api_key_env: ACME_BLOOMERANG_API_KEY}", f"bloomerang: {{api_key: {INLINE_SECRET}}}"),
    "renamed": ACME_YAML,  # says it is acme
    "empty": "",
    "Not-An-Org": ACME_YAML,
}
BINARY = "binary"  # not UTF-8
JOBS = ("org_sync_job", "handbid_transactions_job", "transactions_backfill_job")


@pytest.fixture
def mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ACME_BLOOMERANG_API_KEY", "ACME_WEGIVE_TOKEN", "ACME_HANDBID_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "mappings"
    (root / "orgs").mkdir(parents=True)
    (root / "defaults").symlink_to(REPO / "mappings" / "defaults")
    (root / "orgs" / "demo.yaml").write_text((REPO / "mappings" / "orgs" / "demo.yaml").read_text())
    (root / "orgs" / "acme.yaml").write_text(ACME_YAML)
    for stem, body in BROKEN.items():
        (root / "orgs" / f"{stem}.yaml").write_text(body)
    (root / "orgs" / f"{BINARY}.yaml").write_bytes(b"\xff\xfename: binary\n")
    return root


def test_broken_org_files_are_skipped_and_the_others_load(mappings: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        defs = build_definitions(mappings_dir=mappings)
    dg.Definitions.validate_loadable(defs)

    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("push_plan")).partitions_def.get_partition_keys() == ["acme", "demo"]
    assert {s.name for s in defs.schedules or []} == {"nightly_sync_acme", "nightly_sync_demo"}
    assert {s.name for s in defs.sensors or []} == {"handbid_reconciled_acme", "handbid_reconciled_demo",
                                                    "run_failure_alerts"}

    skipped = sorted([*BROKEN, BINARY])
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for stem in skipped:
        assert any(m.startswith(f"skipping org {stem}:") for m in logged), (stem, logged)

    note = defs.metadata[SKIPPED_KEY].value
    for name in JOBS:
        description = defs.resolve_job_def(name).description
        assert "Skipped org files" in description and "mapping validate" in description, name
        for stem in skipped:
            assert f"| {stem} |" in description and f"| {stem} |" in note, (name, stem)
    assert "| badcron | 1 | orgs/badcron.yaml:7: schedule.cron: '99 99 * * *' is not a cron expression" in note
    assert "| binary | 1 | orgs/binary.yaml:1: file: not valid UTF-8" in note
    assert "| leaky | 1 | orgs/leaky.yaml:4: bloomerang.api_key: credential value written inline" in note
    assert INLINE_SECRET not in note + "".join(logged)
    assert INLINE_SECRET not in "".join(defs.resolve_job_def(name).description for name in JOBS)


def test_no_note_when_every_org_file_loads() -> None:
    defs = build_definitions(mappings_dir=REPO / "mappings")
    for name in JOBS:
        assert "Skipped org files" not in defs.resolve_job_def(name).description, name
    assert defs.metadata[SKIPPED_KEY].value == "none: every org file loaded"
