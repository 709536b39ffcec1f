"""Row accounting: extracted = staged + quarantined;
staged = created + updated + unchanged (+ skipped) + failed."""

import json

from bloom_pipeline.schemas import validate_staged
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.accounting import EntityAccount, check_accounts, compute_accounts, counts_json
from bloom_pipeline.staging.ledgers import LogEntry


def _run_one_batch(store, rows, *, log_outcomes=True):
    """Extract 4 donors, quarantine 1, stage 3, load them: what a run does to its tables."""
    records = [{"id": i, "email": f"d{i}@x.org"} for i in (1, 2, 3, 4)]
    store.write_raw("wegive", "donors", records, run_id="r1")
    frame = rows.constituents(
        *(rows.constituent(str(i)) for i in (1, 2, 3)), rows.constituent("4", email="broken")
    )
    report = validate_staged("constituents", frame)
    good, rejected = report.split(
        frame, entity="donors", raw_by_id={str(r["id"]): json.dumps(r) for r in records}
    )
    store.write_quarantine(rejected, run_id="r1")
    store.write_staged("constituents", good, source="wegive", run_id="r1")
    if log_outcomes:
        with store.write() as con:
            ledgers.append_log(
                con,
                "r1",
                [
                    LogEntry("constituents", "wegive", "1", "created", bloomerang_id=1),
                    LogEntry("constituents", "wegive", "2", "unchanged", bloomerang_id=2),
                    LogEntry("constituents", "wegive", "3", "failed", error="400: bad phone"),
                    LogEntry("constituents", "wegive", "4", "quarantined"),
                ],
            )


def test_a_clean_run_adds_up(store, rows):
    _run_one_batch(store, rows)
    with store.connect() as con:
        accounts = compute_accounts(con, "r1")
    c = accounts["constituents"]
    assert (c.extracted, c.staged, c.quarantined) == (4, 3, 1)
    assert (c.created, c.updated, c.unchanged, c.failed) == (1, 0, 1, 1)
    assert check_accounts(accounts) == []
    assert counts_json(accounts)["constituents"]["succeeded"] == 2


def test_a_staged_record_without_an_outcome_is_reported(store, rows):
    _run_one_batch(store, rows, log_outcomes=False)
    with store.connect() as con:
        accounts = compute_accounts(con, "r1")
    problems = check_accounts(accounts)
    assert problems == [
        "constituents: staged 3 != created 0 + updated 0 + unchanged 0 + skipped 0 + failed 0 "
        "(+3 without an outcome)"
    ]
    assert check_accounts(accounts, loaded=False) == []  # a dry run stops before the load


def test_a_lost_record_is_reported(store, rows):
    _run_one_batch(store, rows)
    store.write_raw(
        "wegive", "donors", [{"id": 99}], run_id="r1"
    )  # extracted, then neither staged nor quarantined
    with store.connect() as con:
        problems = check_accounts(compute_accounts(con, "r1"))
    assert problems == ["constituents: extracted 5 != staged 3 + quarantined 1 (+1 unaccounted)"]


def test_double_logged_records_are_reported(store, rows):
    _run_one_batch(store, rows)
    with store.write() as con:
        ledgers.append_log(con, "r1", [LogEntry("constituents", "wegive", "1", "updated")])
        problems = check_accounts(compute_accounts(con, "r1"))
    assert any("logged more than once" in p for p in problems)
    assert any("staged 3 != created 1 + updated 1" in p for p in problems)


def test_equations_on_plain_counts():
    ok = EntityAccount(
        "funds", extracted=5, staged=4, quarantined=1, created=1, updated=1, unchanged=1, failed=1
    )
    assert check_accounts({"funds": ok}) == []
    held = EntityAccount("funds", extracted=2, staged=2, created=1, skipped=1)
    assert check_accounts({"funds": held}) == []
    bad = EntityAccount("funds", extracted=5, staged=4, quarantined=0, created=4)
    assert check_accounts({"funds": bad}) == [
        "funds: extracted 5 != staged 4 + quarantined 0 (+1 unaccounted)"
    ]
