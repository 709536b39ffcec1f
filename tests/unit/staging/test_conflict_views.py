"""The read-only views behind the ``donor_conflicts`` / ``review_queue`` assets and the ``review_age`` check:
only the run's own decisions, only open items, oldest first, and "too old" strictly past the org's days."""

from datetime import UTC, datetime, timedelta

from bloom_pipeline.staging import conflict_views as views
from bloom_pipeline.staging import ledgers, review

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def conflict(source_id: str, rule: str, winner: str, **extra) -> ledgers.Conflict:
    return ledgers.Conflict(entity="constituents", source="wegive", source_id=source_id, field="phone",
                            source_value="3035550155", bloomerang_value="(720) 555-0166", rule=rule, winner=winner,
                            bloomerang_id=204, source_modified_at=NOW - timedelta(minutes=3),
                            bloomerang_modified_at=NOW - timedelta(minutes=2), **extra)


def item(source_id: str, field: str = "phone", reason: str = "within_skew", **extra) -> review.ReviewItem:
    return review.ReviewItem(entity="constituents", source="wegive", source_id=source_id, field=field,
                             source_value={"a": 1} if field == review.IDENTITY_FIELD else "3035550155",
                             bloomerang_value=[{"id": 7}] if field == review.IDENTITY_FIELD else "(720) 555-0166",
                             reason=reason, bloomerang_id=204, **extra)


def test_run_conflicts_are_the_runs_own_decisions_in_order(store) -> None:
    with store.connect() as con:
        ledgers.append_conflicts(con, "run-1", [conflict("1", "later_wins", "bloomerang")])
        ledgers.append_conflicts(con, "run-2", [conflict("2", "within_skew", "review"),
                                                conflict("3", "later_wins", "source"),
                                                conflict("4", "later_wins", "source")])
        decisions = views.run_conflicts(con, "run-2")
    assert [d.source_id for d in decisions] == ["2", "3", "4"]
    assert decisions[0].source_value == "3035550155" and decisions[0].bloomerang_modified_at is not None
    assert views.sent_to_review(decisions) == 1
    assert views.rule_counts(decisions) == [("later_wins", "source", 2), ("within_skew", "review", 1)]
    row = views.conflict_rows(decisions)[0]
    assert row == ("constituents wegive:2 ↔ bloomerang:204", "phone", "3035550155", "2026-03-10 11:57 UTC",
                   "(720) 555-0166", "2026-03-10 11:58 UTC", "within_skew", "review")
    assert len(row) == len(views.CONFLICT_HEADER)


def test_waiting_items_are_the_open_ones_oldest_first(store) -> None:
    with store.connect() as con:
        old = review.add_review(con, "run-1", item("1"))
        new = review.add_review(con, "run-2", item("2", field=review.IDENTITY_FIELD, reason="ambiguous_email"))
        done = review.add_review(con, "run-2", item("3"))
        review.resolve_review(con, done, "source")  # decided: no longer waits for a person
        con.execute("UPDATE review_queue SET created_at = ? WHERE id = ?", [NOW - timedelta(days=9), old])
        con.execute("UPDATE review_queue SET created_at = ? WHERE id = ?", [NOW - timedelta(hours=5), new])
        waiting = views.waiting_items(con, now=NOW)
    assert [w.item.id for w in waiting] == [old, new]
    assert [views.format_age(w.age) for w in waiting] == ["9 d 0 h", "5 h 0 min"]
    rows = views.review_rows(waiting)
    assert rows[0][5] == "both changes fall within the clock-skew tolerance: a person decides"
    assert rows[1][5] == review.identity_reason_text("ambiguous_email")
    assert all(len(r) == len(views.REVIEW_HEADER) for r in rows)


def test_an_item_is_overdue_only_past_the_orgs_days(store) -> None:
    with store.connect() as con:
        for n, age in enumerate((timedelta(days=7), timedelta(days=7, minutes=1), timedelta(days=30))):
            item_id = review.add_review(con, "run-1", item(str(n)))
            con.execute("UPDATE review_queue SET created_at = ? WHERE id = ?", [NOW - age, item_id])
        waiting = views.waiting_items(con, now=NOW)
    verdict = views.age_verdict(waiting, max_age_days=7)
    assert not verdict.passed and len(verdict.overdue) == 2  # exactly 7 days is still within the limit
    assert verdict.oldest == timedelta(days=30)
    assert verdict.summary() == "2 of 3 open review item(s) waited longer than 7 day(s) (the oldest 30 d 0 h)"
    assert views.age_verdict(waiting, max_age_days=31).passed


def test_an_empty_queue_passes() -> None:
    verdict = views.age_verdict([], views.DEFAULT_MAX_AGE_DAYS)
    assert verdict.passed and verdict.oldest is None and verdict.summary() == "the review queue is empty"


def test_values_are_shown_short_on_one_line() -> None:
    assert views.short(None) == "∅"
    assert views.short({"id": 7, "name": "Ada"}) == '{"id":7,"name":"Ada"}'
    assert views.short("two\nlines") == "two lines"
    long = views.short("x" * 100)
    assert len(long) == views.VALUE_CHARS and long.endswith("…")
    assert views.format_age(timedelta(minutes=12)) == "12 min"
    assert views.format_age(timedelta(seconds=-5)) == "0 min"
