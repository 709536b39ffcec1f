"""`bloom-pipeline status` and `bloom-pipeline review` over an org data dir (BLOOM_DATA_DIR)."""

import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.ledgers import LogEntry, ReviewItem
from bloom_pipeline.staging.store import StagingStore


@pytest.fixture
def org_store(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOOM_DATA_DIR", str(tmp_path))
    store = StagingStore.for_org("acme")
    with store.write() as con:
        ledgers.start_run(con, "run-1", org="acme", direction="both")
        ledgers.append_log(
            con,
            "run-1",
            [
                LogEntry("constituents", "wegive", "1", "created", bloomerang_id=11),
                LogEntry("constituents", "wegive", "2", "updated", bloomerang_id=12),
                LogEntry("constituents", "wegive", "3", "failed", error="400: FirstName is required"),
                LogEntry("transactions", "wegive", "T1", "created", bloomerang_id=91),
            ],
        )
        ledgers.finish_run(con, "run-1", status="succeeded")
        ledgers.start_run(con, "run-2", org="acme", direction="push")
        ledgers.finish_run(con, "run-2", status="halted", message="12.0% rejected, over the 5.0% threshold")
    store.write_quarantine(
        [
            {
                "source": "wegive",
                "entity": "donors",
                "source_id": "4",
                "reasons": ["email: email_is_valid (got 'x')"],
                "raw": {"id": 4},
            }
        ],
        run_id="run-2",
    )
    return store


def _run(*args):
    return CliRunner().invoke(cli, list(args))


def test_status_shows_each_run_and_entity_counts(org_store):
    result = _run("status", "--org", "acme")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if line.startswith("RUN"))
    assert header.split()[:2] == ["RUN", "STARTED"] and "QUARANTINED" in header
    row = next(line for line in lines if line.startswith("run-1") and "constituents" in line)
    assert row.split()[-4:] == ["2", "1", "0", "0"]  # succeeded, failed, quarantined, skipped
    halted = next(line for line in lines if line.startswith("run-2") and "constituents" in line)
    assert "halted" in halted and halted.split()[-4:] == ["0", "0", "1", "0"]
    assert "run-2: 12.0% rejected, over the 5.0% threshold" in result.output
    # the newest run comes first
    assert lines.index(halted) < lines.index(row)


def test_status_runs_limits_history_and_failures_lists_reasons(org_store):
    result = _run("status", "--org", "acme", "--runs", "1", "--failures")
    assert result.exit_code == 0, result.output
    assert "run-1" not in result.output
    assert "email: email_is_valid (got 'x')" in result.output and "quarantined (invalid)" in result.output
    full = _run("status", "--org", "acme", "--failures")
    assert "400: FirstName is required" in full.output


def test_status_of_an_unknown_org_fails_cleanly(org_store):
    result = _run("status", "--org", "nobody")
    assert result.exit_code == 1 and "no sync history" in result.output


def test_review_list_and_resolve(org_store):
    with org_store.write() as con:
        item_id = ledgers.add_review(
            con,
            "run-1",
            ReviewItem(
                "constituents",
                "wegive",
                "7",
                "email",
                "a@x.org",
                "b@x.org",
                "both changed at the same second",
                bloomerang_id=501,
            ),
        )
    listed = _run("review", "list", "--org", "acme")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.split()[0] == str(item_id))
    for expected in ("wegive:7", "email", '"a@x.org"', '"b@x.org"', "both changed at the same second"):
        assert expected in row

    resolved = _run("review", "resolve", "--org", "acme", "--id", str(item_id), "--take", "value:ada@x.org")
    assert resolved.exit_code == 0, resolved.output
    assert "next sync run applies it" in resolved.output
    assert "No open review items" in _run("review", "list", "--org", "acme").output
    with org_store.connect() as con:
        [decision] = ledgers.decisions_for(con, "constituents", "wegive", "7")
    assert decision.decided_value == "ada@x.org"


def test_review_resolve_rejects_bad_input(org_store):
    assert _run("review", "resolve", "--org", "acme", "--id", "1", "--take", "mine").exit_code == 2
    missing = _run("review", "resolve", "--org", "acme", "--id", "42", "--take", "source")
    assert missing.exit_code == 1 and "no review item 42" in missing.output


def test_status_failures_lists_the_people_steps_failures(org_store):
    """Failures of the people steps live in their own logs, not sync_log; --failures lists them beside the rest."""
    from bloom_pipeline.sync.people import communication, custom_fields, events, lifecycle, wegive_creates

    with org_store.write() as con:
        for ddl in (communication.LOG_DDL, custom_fields.LOG_DDL, events.LOG_DDL, wegive_creates.LOG_DDL,
                    lifecycle.DELETIONS_DDL):
            con.execute(ddl)
        now = "2026-12-01 03:00:00+00"
        con.execute("INSERT INTO communication_log VALUES ('run-2', 'wegive', '8', 18, 'push', 'failed', NULL, "
                    "'400: bad CommunicationChannels', ?)", [now])
        con.execute("INSERT INTO custom_field_log VALUES ('run-2', 'wegive', '5', 15, 'T-Shirt Size', 'push', "
                    "'failed', NULL, '422: value not in pick list', ?)", [now])
        con.execute("INSERT INTO custom_field_log VALUES ('run-2', 'wegive', '6', 16, 'T-Shirt Size', 'push', "
                    "'updated', NULL, NULL, ?)", [now])
        con.execute("INSERT INTO event_interaction_log VALUES ('run-2', 77, 17, 'c-9', NULL, 'failed', "
                    "'attended', '500: try later', ?)", [now])
        con.execute("INSERT INTO wegive_create_log VALUES ('run-2', 19, NULL, 'failed', '422: email taken', ?)",
                    [now])
        con.execute("INSERT INTO source_deletions VALUES ('wegive', '10', 20, NULL, 'inactivate', 'failed', NULL, "
                    "'409: constituent locked', 'run-2', ?, NULL, NULL)", [now])
    result = _run("status", "--org", "acme", "--runs", "1", "--failures")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    expected = {
        "communication": ("8", "failed (push)", "400: bad CommunicationChannels"),
        "custom fields": ("5", "failed (push T-Shirt Size)", "422: value not in pick list"),
        "event interactions": ("c-9", "failed (attended, auction 77)", "500: try later"),
        "wegive creates": ("19", "failed (create in WeGive)", "422: email taken"),
        "source deletions": ("10", "failed (inactivate)", "409: constituent locked"),
    }
    for entity, texts in expected.items():
        row = next((line for line in lines if line.startswith("run-2") and entity in line), None)
        assert row is not None, (entity, result.output)
        assert all(text in row for text in texts), row
    assert not any(line.startswith("run-2") and " 6 " in line for line in lines)  # an update is no failure
