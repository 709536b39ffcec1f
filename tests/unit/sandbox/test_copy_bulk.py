"""``sandbox.tree.copy_bulk``: the store seeding copy is ``copy.deepcopy``'s result (sharing kept, subclasses kept)."""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict
from datetime import UTC, datetime

from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sandbox.tree import copy_bulk


def test_shared_sub_objects_stay_shared_and_the_copy_is_independent():
    fund = {"id": 1, "name": "General Fund"}
    table = [{"id": 1, "fund": fund, "tags": ["a"]}, {"id": 2, "fund": fund, "tags": ["b"]}]
    out = copy_bulk(table)
    assert out == table
    assert out[0]["fund"] is out[1]["fund"]  # one dict, as deepcopy's memo gives
    assert out[0]["fund"] is not fund
    out[0]["fund"]["name"] = "changed"
    out[1]["tags"].append("c")
    assert fund["name"] == "General Fund" and table[1]["tags"] == ["b"]


def test_what_marshal_refuses_is_copied_like_deepcopy():
    planted = OrderedDict(a=1)
    stamp = datetime(2026, 11, 1, tzinfo=UTC)
    out = copy_bulk([{"x": planted, "at": stamp}])
    assert type(out[0]["x"]) is OrderedDict and out[0]["x"] == planted and out[0]["x"] is not planted
    assert out[0]["at"] == stamp


def test_a_world_table_copies_to_the_same_tree_as_deepcopy():
    """Equal values *and* the same sharing: pickling both copies gives the same bytes (pickle memoises by identity)."""
    world = generate_world(60, seed=3)
    for name in ("transactions", "fund_allocations", "donors"):
        table = world.wegive[name]
        bulk, deep = copy_bulk(table), copy.deepcopy(table)
        assert bulk == deep
        assert pickle.dumps(bulk, protocol=pickle.HIGHEST_PROTOCOL) == pickle.dumps(deep,
                                                                                   protocol=pickle.HIGHEST_PROTOCOL)
