"""A quiet night stages only what changed (``sync/stage.py``, ``staging/stage_inputs.py``), with every guarantee
of a full stage: the row accounts add up, the plan sees every record (unchanged ones as unchanged), a changed
record is mapped again and synced, a record with a value left out and one quarantined whole are mapped once and
then carried on their remembered verdict — their quarantine rows written again by every run, as the mapping gave
them — and an edit of the org's YAML maps every record again.

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


def _verdicts(h: SyncHarness) -> dict[str, tuple[str, bool]]:
    """WeGive donor id -> (the run that mapped it, whether it gave a staged row) of the remembered verdicts."""
    rows = h.frame("SELECT source_id, run_id, staged FROM stage_verdicts WHERE source = 'wegive' AND entity = 'donors'")
    return {sid: (run, bool(staged)) for sid, run, staged in rows.itertuples(index=False, name=None)}


def _quarantined(h: SyncHarness, run_id: str) -> set[tuple[str, str, str | None, tuple[str, ...]]]:
    rows = h.frame("SELECT source_id, kind, field, reasons FROM quarantine WHERE run_id = ? AND source = 'wegive' "
                   "AND entity = 'donors'", [run_id])
    return {(sid, kind, field, tuple(reasons)) for sid, kind, field, reasons in rows.itertuples(index=False, name=None)}


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
    judged_before = _verdicts(harness)  # the world's own records with a value left out, if any
    counts = _accounts_add_up(harness, quiet.run_id)
    assert counts["constituents"]["staged"] >= len(donors)
    assert counts["constituents"]["created"] == counts["constituents"]["updated"] == 0
    assert counts["constituents"]["unchanged"] == counts["constituents"]["staged"], \
        "the load sees every staged record, carried or mapped, as unchanged"

    sb: Sandbox = harness.sb
    wegive = sb.stores["wegive"]
    renamed, bad_email, nameless = [d for d in wegive.donors.values() if d["type"] == "individual"
                                    and str(d["id"]) in donors and str(d["id"]) not in judged_before][:3]
    wegive.update_donor(renamed["id"], {"last_name": "Changed-Tonight"})
    wegive.donors[bad_email["id"]]["email_1"] = "nobody@@example"  # as its database would hold it
    wegive.donors[nameless["id"]].update(type="company", name="   ")  # an organization without a name: rejected
    changed = harness.sync()
    assert changed.status == "succeeded" and changed.exit_code == 1, changed.message  # 1: a record quarantined
    now = _inputs(harness)
    assert now[str(renamed["id"])] == changed.run_id
    assert now[str(bad_email["id"])] == changed.run_id, "staged with a value left out: its staged row is kept"
    assert str(nameless["id"]) not in now, "quarantined whole: no staged row to carry"
    assert {k: v for k, v in now.items() if k not in (str(renamed["id"]), str(bad_email["id"]))} == {
        k: v for k, v in donors.items() if k not in (str(renamed["id"]), str(bad_email["id"]), str(nameless["id"]))}
    assert _verdicts(harness) == {**judged_before, str(bad_email["id"]): (changed.run_id, True),
                                  str(nameless["id"]): (changed.run_id, False)}
    (constituent,) = harness.constituents_by(harness.WEGIVE_DONOR_FIELD)[str(renamed["id"])]
    assert constituent["LastName"] == "Changed-Tonight"
    _accounts_add_up(harness, changed.run_id)
    verdicts = _quarantined(harness, changed.run_id)
    assert (str(bad_email["id"]), "field", "PrimaryEmail.Value") in {v[:3] for v in verdicts}
    assert (str(nameless["id"]), "invalid", None) in {v[:3] for v in verdicts}

    again = harness.sync()  # quiet again: both verdicts written again as the mapping gave them, nothing mapped
    assert again.status == "succeeded" and again.exit_code == 1, again.message
    assert _quarantined(harness, again.run_id) == verdicts
    fields = harness.frame("SELECT source_id, field FROM quarantine WHERE run_id = ? AND kind = 'field' "
                           "AND entity = 'donors'", [again.run_id])
    assert _stored_counts(harness, again.run_id)["constituents"]["fields_dropped"] == len(fields)
    assert _stored_counts(harness, again.run_id)["constituents"]["quarantined"] >= 1
    assert _inputs(harness) == now
    assert _verdicts(harness) == {**judged_before, str(bad_email["id"]): (changed.run_id, True),
                                  str(nameless["id"]): (changed.run_id, False)}, "carried, not mapped again"
    _accounts_add_up(harness, again.run_id)

    demo = harness.mappings_dir / "orgs" / "demo.yaml"
    demo.write_text(demo.read_text().replace("max_reject_share: 0.05", "max_reject_share: 0.06"))
    edited = harness.sync()  # the org's YAML changed: every record mapped again, nothing written
    assert edited.status == "succeeded" and edited.exit_code == 1, edited.message
    assert set(_inputs(harness).values()) == {edited.run_id}
    assert set(_inputs(harness)) == set(now)
    assert {run for run, _ in _verdicts(harness).values()} == {edited.run_id}
    assert _quarantined(harness, edited.run_id) == verdicts
    counts = _accounts_add_up(harness, edited.run_id)
    assert counts["constituents"]["created"] == counts["constituents"]["updated"] == 0
