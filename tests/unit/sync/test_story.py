"""The short story at the end of a run (CLI and Dagster alike): what changed on each side, what failed and why,
what waits in review, and the next command."""

from bloom_pipeline.sync.report import next_command, story, story_markdown
from bloom_pipeline.sync.runner import RunReport
from bloom_pipeline.sync.stage import EntityGate


def report(**changes) -> RunReport:
    out = RunReport(run_id="r1", org="acme", status="succeeded")
    out.counts = {"funds": {"created": 1}, "constituents": {"created": 10, "updated": 2, "merged_pull": 3},
                  "transactions": {"created": 20, "updated": 1}}
    out.gates = {"constituents": EntityGate("constituents"), "transactions": EntityGate("transactions")}
    for key, value in changes.items():
        setattr(out, key, value)
    return out


def test_a_clean_run_says_what_changed_on_each_side_and_points_at_reconcile():
    lines = story(report())
    assert lines[0] == ("Bloomerang: 31 created, 3 updated "
                        "(created/updated: funds 1/0, constituents 10/2, transactions 20/1)")
    assert lines[1] == "WeGive / Handbid: 3 donor(s) updated from Bloomerang"
    assert lines[-2:] == ["waiting in review: 0", "next: bloom-pipeline reconcile --org acme"]
    assert not any(line.startswith(("failed", "quarantined", "values left out")) for line in lines)


def test_failures_quarantine_and_dropped_values_come_with_their_top_reasons():
    r = report(failure_reasons=[("bloomerang POST /v2/transaction -> 400: Fund is closed", 2)])
    r.counts["transactions"]["failed"] = 2
    r.gates["constituents"].rejected, r.gates["constituents"].top_reasons = 1, [("id: missing id", 1)]
    r.gates["constituents"].fields_dropped = 4
    r.gates["constituents"].top_field_reasons = [("PrimaryEmail.Value: 'x@@y' is not a valid email address", 4)]
    lines = story(r)
    assert "failed: 2, retried on the next run — bloomerang POST /v2/transaction -> 400: Fund is closed (×2)" in lines
    assert "quarantined: 1 — id: missing id (×1)" in lines
    assert any(line.startswith("values left out (their records synced): 4 — PrimaryEmail.Value") for line in lines)
    assert lines[-1] == "next: bloom-pipeline status --org acme --failures"


def test_review_comes_first_and_markdown_is_the_same_story():
    r = report(review_items=2)
    assert next_command(r) == "bloom-pipeline review list --org acme"
    assert story_markdown(r).splitlines() == [f"- {line}" for line in story(r)]


def test_the_people_steps_get_one_line_naming_only_what_they_did():
    assert not any(line.startswith("people:") for line in story(report()))
    r = report()
    r.counts |= {"communication": {"opted_out_in_bloomerang": 2, "opted_out_in_wegive": 0, "failed": 0},
                 "event_interactions": {"created": 5, "updated": 1, "adopted": 0, "waiting_for_link": 0, "failed": 0},
                 "custom_fields": {"updated_in_bloomerang": 0, "updated_in_wegive": 0, "values_quarantined": 0,
                                   "failed": 0}}
    assert story(r)[2] == "people: opt-outs 2 to Bloomerang, 0 to WeGive; event interactions 5 created, 1 updated"
    r.counts["wegive_creates"] = {"created": 1, "failed": 0}
    assert story(r)[2].endswith("; WeGive donors created from Bloomerang 1")
