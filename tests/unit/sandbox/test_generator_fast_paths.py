"""The generator's shortcuts give what the slower calls they replace give (the world for a seed must not change)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from bloom_pipeline.sandbox.data.wegive import (
    _SOURCE_CUMULATIVE,
    _STATUS_CUMULATIVE,
    SOURCE_TYPES,
    STATUSES,
    _weighted,
    laravel_ts,
)


def test_laravel_ts_is_the_microsecond_utc_stamp():
    stamps = [datetime(2026, 3, 2, 15, 0, 3, tzinfo=UTC), datetime(2026, 3, 2, 15, 0, 3, 120, tzinfo=UTC),
              datetime(2026, 3, 2, 10, 0, 3, 999999, tzinfo=timezone(timedelta(hours=-5))),
              datetime(1000, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    for moment in stamps:
        assert laravel_ts(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert laravel_ts(stamps[0]) == "2026-03-02T15:00:03.000000Z"
    assert laravel_ts(None) is None


def test_weighted_pick_is_random_choices_draw_for_draw():
    for population, cumulative in ((SOURCE_TYPES, _SOURCE_CUMULATIVE), (STATUSES, _STATUS_CUMULATIVE)):
        ours, theirs = random.Random("w"), random.Random("w")
        picks = [_weighted(ours, population, cumulative) for _ in range(5000)]
        assert picks == [theirs.choices(population, cum_weights=cumulative)[0] for _ in range(5000)]
        assert set(picks) == set(population)
