"""``load.log_untouched``: one sync_log row per staged donor not logged yet in the run, with the action and reason
the run's direction and links give (the rows a per-donor Python loop wrote before, compared here row for row)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.apply.load import log_untouched
from bloom_pipeline.sync.plan.push_plan import PLAN_DDL


def expected_rows(con, run_id: str, people: pd.DataFrame) -> list[tuple]:
    """The specification, as the earlier per-donor loop computed it."""
    logged = {(s, str(i)) for s, i in con.execute(
        "SELECT source, source_id FROM sync_log WHERE run_id = ? AND entity = 'constituents'", [run_id]).fetchall()}
    direction = con.execute("SELECT direction FROM sync_runs WHERE run_id = ?", [run_id]).fetchone()[0]
    pending = {}
    if direction == "pull":
        pending = {(s, str(i)): a for s, i, a in con.execute(
            "SELECT source, source_id, action FROM push_plan WHERE run_id = ? AND entity = 'constituents' "
            "AND action IN ('create', 'update') ORDER BY rowid", [run_id]).fetchall()}
    ids = {(s, str(i)): int(b) for s, i, b in con.execute(
        "SELECT source, source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' "
        "AND bloomerang_id IS NOT NULL").fetchall()}
    out = []
    for s, i in zip(people["source"], people["source_id"].astype(str), strict=True):
        key = (s, i)
        if key in logged:
            continue
        if key in pending:
            action, error = "skipped", f"pull-only run: the planned {pending[key]} is left for a push run"
        elif key in ids:
            action, error = "unchanged", None
        else:
            action, error = "skipped", "not linked and not planned"
        out.append(("constituents", s, i, ids.get(key), "push", action, None, error))
    return out


def logged_rows(con, run_id: str, after_seq: int) -> list[tuple]:
    return con.execute(
        "SELECT entity, source, source_id, bloomerang_id, direction, action, field_diff, error FROM sync_log "
        "WHERE run_id = ? AND seq > ? ORDER BY seq", [run_id, after_seq]).fetchall()


@pytest.mark.parametrize("direction", ["both", "pull", "push"])
def test_rows_are_those_the_per_donor_loop_wrote(tmp_path, direction) -> None:
    store = StagingStore.for_org("acme", data_dir=tmp_path)
    run_id = f"run-{direction}"
    with store.connect() as con:  # a connection outside a transaction, as the run's apply step holds it
        ledgers.start_run(con, run_id, org="acme", direction=direction)
        for sid, bid in (("1", 101), ("2", 102), ("4", 104)):
            ledgers.upsert_state(con, ledgers.SyncState("constituents", "wegive", sid, bloomerang_id=bid))
        ledgers.upsert_state(con, ledgers.SyncState("constituents", "handbid", "1", bloomerang_id=201))
        ledgers.upsert_state(con, ledgers.SyncState("constituents", "wegive", "9"))  # not linked
        con.execute(PLAN_DDL)
        for sid, action in (("2", "update"), ("3", "create"), ("5", "noop"), ("3", "update")):
            con.execute("INSERT INTO push_plan (run_id, entity, source, source_id, action, planned_at) "
                        "VALUES (?, 'constituents', 'wegive', ?, ?, ?)", [run_id, sid, action, datetime.now(UTC)])
        ledgers.append_log(con, run_id, [ledgers.LogEntry("constituents", "wegive", "4", "updated",
                                                          bloomerang_id=104)])
        ledgers.append_log(con, "another-run", [ledgers.LogEntry("constituents", "wegive", "1", "updated")])
        people = pd.DataFrame({"source": ["wegive", "wegive", "wegive", "handbid", "wegive", "wegive", "wegive"],
                               "source_id": [1, "2", "3", "1", "4", "9", "5"]})
        before = con.execute("SELECT coalesce(max(seq), 0) FROM sync_log").fetchone()[0]
        want = expected_rows(con, run_id, people)
        log_untouched(con, run_id, people)
        assert logged_rows(con, run_id, before) == want
        assert len(want) == 6  # the donor logged already in the run ("4") gets no second row
        log_untouched(con, run_id, people)  # a second call adds nothing: every donor is logged now
        assert len(logged_rows(con, run_id, before)) == 6
        log_untouched(con, run_id, people.iloc[0:0])
        stamped = con.execute("SELECT count(*) FROM sync_log WHERE run_id = ? AND logged_at IS NULL",
                              [run_id]).fetchone()[0]
        assert stamped == 0
