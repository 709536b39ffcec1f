"""The progress reporter's arithmetic and output: ETA from the observed rate and the rate budget, formats,
when a plain line is due, the live line, the state file ``status`` reads."""

from __future__ import annotations

import io
import json
import os

import pandas as pd

from bloom_pipeline.sync.apply.loop import apply_plan
from bloom_pipeline.sync.apply.refs import RefResolver
from bloom_pipeline.sync.progress import (
    Budget,
    Progress,
    budget_seconds,
    current,
    eta_seconds,
    fmt_duration,
    format_line,
    plain_line_due,
    planned_writes,
    read_state,
    reporting,
    state_lines,
    state_path,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_durations() -> None:
    assert [fmt_duration(s) for s in (0, 42, 60, 725, 3600, 11520, None, -1)] == \
        ["0s", "42s", "1m00s", "12m05s", "1h00m", "3h12m", "?", "?"]


def test_budget_seconds_uses_free_slots_then_the_sustained_rate() -> None:
    hourly = Budget(limit=1000, period=3600, used=400)
    assert budget_seconds(600, hourly) == 0  # fits in what is free now
    assert budget_seconds(1600, hourly) == 1000 * 3.6  # 600 free, then one per 3.6 s
    assert budget_seconds(10, Budget(1000, 3600, used=1200)) == 36  # over-spent window: nothing free


def test_eta_is_the_longer_of_rate_and_budget() -> None:
    # 8,000 writes at Bloomerang's 1,000/hour: about eight hours, whatever a burst rate suggests
    full = Budget(limit=1000, period=3600, used=1000)
    assert eta_seconds(8000, rate=5.0, budget=full) == 8000 * 3.6
    assert eta_seconds(100, rate=2.0, budget=Budget(1000, 3600, used=0)) == 50  # room in the budget: the rate
    assert eta_seconds(100, rate=2.0, requests_per_write=2.0, budget=Budget(100, 3600, used=100)) == 200 * 36
    assert eta_seconds(100, rate=None, budget=Budget(1000, 3600, used=0)) is None  # nothing known yet
    assert eta_seconds(0, rate=None) == 0


def test_format_line() -> None:
    line = format_line("apply", "constituents", 1200, 2089, writes=1150, failed=3, rate=16.7 / 60, eta=11520)
    assert line == "apply constituents: 1200/2089 (57%), 1150 writes, 3 failed, 16.7 writes/min, ETA 3h12m"
    assert format_line("apply", "funds", 4, 4, writes=0).endswith("0 failed, done")
    assert format_line("apply", "funds", 0, 4).endswith("ETA ?")


def test_plain_line_due_every_period_or_step() -> None:
    args = {"every": 30.0, "step": 0.1, "min_gap": 5.0}
    assert plain_line_due(31, 0, fraction=0.01, last_fraction=0.0, **args)  # 30 s passed
    assert not plain_line_due(10, 0, fraction=0.05, last_fraction=0.0, **args)  # nothing crossed
    assert plain_line_due(10, 0, fraction=0.11, last_fraction=0.05, **args)  # 10 % crossed
    assert not plain_line_due(2, 0, fraction=0.5, last_fraction=0.0, **args)  # too soon after the last line


def _run_entity(progress: Progress, clock: Clock, n: int, seconds_each: float) -> None:
    progress.start_entity("constituents", n, n)
    for i in range(n):
        clock.now += seconds_each
        progress.record("failed" if i == 0 else "created", attempted_write=True)
    progress.end_entity()


def test_plain_lines_on_a_non_terminal(tmp_path) -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(out, live=False, every=30, step=0.1, min_gap=5, clock=clock,
                        state_file=tmp_path / "acme_progress.json")
    progress.attach(run_id="r1", org="acme")
    progress.planned({"constituents": 100, "transactions": 200})
    with progress.phase("apply"):
        _run_entity(progress, clock, 100, 1.0)  # one write a second
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "apply constituents: 0/100 (0%), 0 writes, 0 failed, ETA ?"
    assert 8 <= len(lines) <= 14, lines  # start, every 10 %, end, phase: not one per record
    middle = next(line for line in lines if line.startswith("apply constituents: 50/100"))
    # 50 left here + 200 transactions not started, at 60 writes/min: about 4 minutes
    assert "60.0 writes/min" in middle and "ETA 4m10s" in middle, middle
    assert lines[-2] == "apply constituents: 100/100 (100%), 99 writes, 1 failed, 60.0 writes/min, done"
    assert lines[-1] == "apply: done in 1m40s"


def test_live_line_updates_in_place_and_transient_erases() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(out, live=True, clock=clock)
    _run_entity(progress, clock, 10, 1.0)
    text = out.getvalue()
    assert text.count("\r") >= 10 and text.endswith("done\n")
    clock2, quiet = Clock(), io.StringIO()
    transient = Progress(quiet, live=True, transient=True, clock=clock2)
    _run_entity(transient, clock2, 10, 1.0)
    assert quiet.getvalue().endswith("\r") and "\n" not in quiet.getvalue()


def test_state_file_for_status(tmp_path) -> None:
    clock = Clock()
    progress = Progress(io.StringIO(), live=False, quiet=True, clock=clock, state_file=state_path(tmp_path, "acme"))
    progress.attach(run_id="20261123T185310-6363117e", org="acme")
    with progress.phase("extract"):
        clock.now += 12
    progress.phase("apply").__enter__()
    progress.start_entity("constituents", 10, 10)
    for _ in range(4):
        clock.now += 3
        progress.record("created", attempted_write=True)
    state = read_state(tmp_path, "acme")
    assert state is not None and state["pid"] == os.getpid()
    lines = state_lines(state, now=state["updated_at"] + 7)
    assert lines[0].startswith("Running now: run 20261123T185310-6363117e (pid ")
    assert "last progress 7s ago" in lines[0]
    assert lines[1] == "  extract: done in 12s"
    assert lines[2].startswith("  apply constituents: 4/10 (40%), 4 writes, 0 failed")
    assert "no progress for" in state_lines(state, now=state["updated_at"] + 900)[0]
    progress.close()
    assert read_state(tmp_path, "acme") is None and not state_path(tmp_path, "acme").exists()


def test_state_of_a_dead_process_is_ignored(tmp_path) -> None:
    state_path(tmp_path, "acme").write_text(json.dumps({"run_id": "r", "pid": 2 ** 22 + 12345}))
    assert read_state(tmp_path, "acme") is None
    state_path(tmp_path, "acme").write_text("not json")
    assert read_state(tmp_path, "acme") is None


class _Writer:
    entity = "funds"

    def create(self, source, source_id, payload):
        return {"Id": 7}

    def update(self, bloomerang_id, payload):
        return {"Id": bloomerang_id}

    def find_existing(self, source, source_id, payload):
        return None


class _Ledger:
    def mark_pending(self, *args):
        pass

    def record(self, result, written):
        pass


def test_apply_loop_reports_to_the_installed_reporter() -> None:
    plan = pd.DataFrame([
        {"source": "wegive", "source_id": "1", "bloomerang_id": None, "action": "create", "payload": "{}",
         "diff": None, "payload_hash": "h", "reason": None},
        {"source": "wegive", "source_id": "2", "bloomerang_id": 5, "action": "unchanged", "payload": None,
         "diff": None, "payload_hash": "h", "reason": None},
    ])
    out = io.StringIO()
    with reporting(Progress(out, live=False)) as progress:
        assert current() is progress
        apply_plan(plan, _Writer(), RefResolver(), _Ledger())
    assert out.getvalue().splitlines()[-1] == "apply funds: 2/2 (100%), 1 writes, 0 failed, done"
    apply_plan(plan, _Writer(), RefResolver(), _Ledger())  # no reporter installed: silent, nothing breaks
    assert current() is not progress


def test_planned_writes() -> None:
    plan = pd.DataFrame({"entity": ["funds", "constituents", "constituents", "transactions"],
                         "action": ["unchanged", "create", "update", "blocked"]})
    assert planned_writes(plan) == {"constituents": 2}
    assert planned_writes(None) == {}
