"""``sync/garbage.py``: a run's collector settings are its own and are put back, also after an error."""

from __future__ import annotations

import gc

import pytest

from bloom_pipeline.sync.garbage import RUN_THRESHOLDS, fewer_collections


def test_the_thresholds_and_the_frozen_objects_are_restored_after_a_run() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == RUN_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what existed before the run (imports) is out of the collector's way
        with fewer_collections():  # the demo's runs inside its own
            assert gc.get_threshold() == RUN_THRESHOLDS
        assert gc.get_threshold() == RUN_THRESHOLDS
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_error_inside_a_run_still_restores_them() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a run failed")
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)


def test_cycles_made_during_a_run_are_still_collected() -> None:
    class Node:
        pass

    with fewer_collections():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2  # the collector still runs when asked: only its passes are fewer
