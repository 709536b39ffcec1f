"""A quiet night stages only what changed (``sync/stage.py``, ``staging/stage_inputs.py``), with every guarantee
of a full stage: the row accounts add up, the plan sees every record (unchanged ones as unchanged), a changed
record is mapped again and synced, a record with a value left out is mapped again (and its 'field' row
written) every run, and an edit of the org's YAML maps every record again.

One world, changed step by step (each test of the issue is a step of one story: a sync costs seconds).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers

REPO = Path(__file__).resolve().parents[2]
SyncHarness = Any  # the ``harness`` fixture (tests/pipeline/conftest.py)


def _inputs(h: SyncHarness) -> dict[str, str]:
    """WeGive donor id -> the run that last mapped it."""
    rows = h.frame("SELECT source_id, run_id FROM stage_inputs WHERE source = 'wegive' AND entity = 'donors'")
    return dict(zip(rows["source_id"], rows["run_id"], strict=True))


def _stored_counts(h: SyncHarness, run_id: str) -> dict[str, Any]:
    return json.loads(h.frame("SELECT counts FROM sync_runs WHERE run_id = ?", [run_id])["counts"][0])


def _accounts_add_up(h: SyncHarness, run_id: str) -> dict[str, Any]:
    counts = _stored_counts(h, run_id)
    for name, c in counts.items():
        assert c["extracted"] == c["staged"] + c["quarantined"], (run_id, name, c)
        assert c["staged"] == sum(c[k] for k in ("created", "updated", "unchanged", "skipped", "failed")), c
    staged = h.frame("SELECT count(*) AS n FROM stg_constituents WHERE run_id = ?", [run_id])["n"][0]
    assert counts["constituents"]["staged"] == staged
    return counts


def test_a_quiet_night_maps_only_what_changed(harness: SyncHarness, tmp_path: Path) -> None:
    shutil.copytree(REPO / "mappings", tmp_path / "mappings")
    harness.mappings_dir = tmp_path / "mappings"
    first = harness.sync()
    assert first.exit_code == 0, first.message
    assert _inputs(harness) and set(_inputs(harness).values()) == {first.run_id}
    settled = harness.sync()  # the donors now hold the Bloomerang ids the load wrote back: changed, mapped again
    assert settled.exit_code == 0, settled.message
    donors = _inputs(harness)

    quiet = harness.sync()  # nothing changed: every donor carried, none mapped
    assert quiet.exit_code == 0 and quiet.problems == [], (quiet.message, quiet.problems)
    assert _inputs(harness) == donors
    counts = _accounts_add_up(harness, quiet.run_id)
    assert counts["constituents"]["staged"] >= len(donors)
    assert counts["constituents"]["created"] == counts["constituents"]["updated"] == 0
    assert counts["constituents"]["unchanged"] == counts["constituents"]["staged"], \
        "the load sees every staged record, carried or mapped, as unchanged"

    sb: Sandbox = harness.sb
    wegive = sb.stores["wegive"]
    renamed, bad_email = [d for d in wegive.donors.values() if d["type"] == "individual"
                          and str(d["id"]) in donors][:2]
    wegive.update_donor(renamed["id"], {"last_name": "Changed-Tonight"})
    wegive.donors[bad_email["id"]]["email_1"] = "nobody@@example"  # as its database would hold it
    changed = harness.sync()
    assert changed.exit_code == 0, changed.message
    now = _inputs(harness)
    assert now[str(renamed["id"])] == changed.run_id
    assert str(bad_email["id"]) not in now, "a record with a value left out is mapped again every run"
    assert {k: v for k, v in now.items() if k != str(renamed["id"])} == {
        k: v for k, v in donors.items() if k not in (str(renamed["id"]), str(bad_email["id"]))}
    (constituent,) = harness.constituents_by(harness.WEGIVE_DONOR_FIELD)[str(renamed["id"])]
    assert constituent["LastName"] == "Changed-Tonight"
    _accounts_add_up(harness, changed.run_id)

    again = harness.sync()  # quiet again: the dropped email is noted again, the rest carried
    assert again.exit_code == 0, again.message
    fields = harness.frame("SELECT source_id, field FROM quarantine WHERE run_id = ? AND kind = 'field' "
                           "AND entity = 'donors'", [again.run_id])
    assert (str(bad_email["id"]), "PrimaryEmail.Value") in set(fields.itertuples(index=False, name=None))
    assert _stored_counts(harness, again.run_id)["constituents"]["fields_dropped"] == len(fields)
    assert _inputs(harness) == now
    _accounts_add_up(harness, again.run_id)

    demo = harness.mappings_dir / "orgs" / "demo.yaml"
    demo.write_text(demo.read_text().replace("max_reject_share: 0.05", "max_reject_share: 0.06"))
    edited = harness.sync()  # the org's YAML changed: every record mapped again, nothing written
    assert edited.exit_code == 0, edited.message
    assert set(_inputs(harness).values()) == {edited.run_id}
    assert set(_inputs(harness)) == set(now)
    counts = _accounts_add_up(harness, edited.run_id)
    assert counts["constituents"]["created"] == counts["constituents"]["updated"] == 0
