"""The write journal: a create's pending marker is settled by its outcome in one statement, and both survive the
process (a second Journal on the same file reads what the first wrote, as the next run's recovery does)."""

from __future__ import annotations

from pathlib import Path

from bloom_pipeline.sync.apply.journal import Journal


def _outcome(source_id: str, action: str = "created") -> dict:
    return {"entity": "transactions", "source": "wegive", "source_id": source_id, "action": action,
            "bloomerang_id": 7}


def test_an_outcome_settles_its_own_pending_marker_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "demo_journal.sqlite")
    journal.mark_pending("transactions", "wegive", "1", "r1")
    journal.mark_pending("transactions", "wegive", "2", "r1")
    journal.mark_pending("constituents", "wegive", "1", "r1")  # same id, other entity: not settled by "1"
    journal.add_outcome("r1", _outcome("1"))
    assert sorted(journal.pending()) == [("constituents", "wegive", "1"), ("transactions", "wegive", "2")]
    assert [(run, body["source_id"]) for _, run, body in journal.outcomes()] == [("r1", "1")]
    journal.close()


def test_markers_and_outcomes_outlive_the_process_that_wrote_them(tmp_path: Path) -> None:
    path = tmp_path / "demo_journal.sqlite"
    first = Journal(path)
    first.mark_pending("transactions", "wegive", "3", "r1")
    first.mark_pending("transactions", "wegive", "4", "r1")
    first.add_outcome("r1", _outcome("3", "failed"))
    first.close()  # the process ends here: nothing flushed to DuckDB
    again = Journal(path)
    assert again.pending() == [("transactions", "wegive", "4")]
    assert [body["action"] for _, _, body in again.outcomes()] == ["failed"]
    again.add_outcome("r2", _outcome("4"))  # the reopened journal settles markers too
    assert again.pending() == []
    seq = again.outcomes()[-1][0]
    again.forget_outcomes(seq)
    assert again.outcomes() == []
    again.close()
