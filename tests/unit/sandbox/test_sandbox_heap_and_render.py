"""The speed-ups of the sandbox's build and render keep their results: the collector pause restores the
collector's state (nested too) and freezes what was built, the memoised timestamp is right for any tzinfo of
one instant, and the quicker ``drop_nulls`` still drops nulls at every depth and copies what it returns."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone

from bloom_pipeline.sandbox import heap
from bloom_pipeline.sandbox.bloomerang.validation import drop_nulls, format_timestamp
from bloom_pipeline.sandbox.heap import paused_gc


def test_a_small_paused_build_is_left_to_the_collector() -> None:
    gc.collect()
    frozen = gc.get_freeze_count()
    with paused_gc():
        built = [{"id": n} for n in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen  # a test's small world keeps normal collection
    assert len(built) == 1000


def test_paused_gc_restores_the_collector_state_and_freezes_what_was_built(monkeypatch) -> None:
    monkeypatch.setattr(heap, "FREEZE_AT", 0)  # as a real-size build does
    assert gc.isenabled()
    with paused_gc():
        built = [{"id": n} for n in range(1000)]
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it off and left it off
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)  # no later collection walks the built records
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_format_timestamp_is_right_for_one_instant_in_any_zone() -> None:
    utc = datetime(2026, 3, 2, 15, 0, 3, 456789, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert paris == utc
    assert format_timestamp(paris) == "2026-03-02T15:00:03Z"
    assert format_timestamp(utc) == "2026-03-02T15:00:03Z"


class _Tagged(str):
    """A str subclass (a test may plant one): kept as it is, like any scalar."""


def test_drop_nulls_cleans_every_depth_and_copies() -> None:
    inner = {"a": None, "b": [1, None, {"c": None, "d": True}], "e": _Tagged("x")}
    source = {"x": None, "y": inner, "z": 1.5, "w": (None, 1)}
    out = drop_nulls(source)
    assert out == {"y": {"b": [1, None, {"d": True}], "e": "x"}, "z": 1.5, "w": (None, 1)}
    assert type(out["y"]["e"]) is _Tagged
    out["y"]["b"].append(2)
    assert inner["b"] == [1, None, {"c": None, "d": True}]  # the answer never aliases the store
