"""The raw JSON a rejected record keeps (frames.frame_json, built a column at a time) is the text the encoder
writes for the record's dict (`json.dumps(record, default=str, sort_keys=True)`), whatever the columns hold."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bloom_pipeline.mapping.frames import frame_json, frame_records, raw_json


class Text(str):
    """A str subclass (the encoder writes it as the text it is)."""


def reference(frame: pd.DataFrame) -> list[str]:
    return [json.dumps(item, default=str, sort_keys=True) for item in frame_records(frame)]


ODD = [None, "plain", "José ☃", "quote \" and \\ back", "line\nbreak\t", "\ud800 lone", "", 0, -7, 2**70, 1.5,
       math.nan, math.inf, -math.inf, True, False, np.int64(5), np.float64(2.25), np.bool_(True),
       pd.Timestamp("2025-03-04T09:00:00Z"), {"b": 1, "a": [1, {"z": None}]}, [1, "two", None], Text("sub"),
       object.__new__(type("Odd", (), {"__str__": lambda self: "odd value"}))]


def test_usual_columns():
    frame = pd.DataFrame({
        "id": np.arange(1, 7), "updated_at": ["2025-03-04T09:00:00Z"] * 6, "owner.id": [3, 4, 5, 6, 7, 8],
        "amount": [100, 250, 3, 4, 5, 6], "status": ["Failed", None, "Success", "Failed", None, "x"],
        "fund_allocations": [None, [{"id": 1, "amount": 2, "fund": {"id": 3}}], None, [], None, None],
        "score": [1.5, np.nan, 2.0, 3.25, np.inf, 0.0], "flag": [True, False, True, True, False, False],
        "stamp": pd.to_datetime(["2025-01-01"] * 6, utc=True), "Zed": ["a", "b", "c", "d", "e", "f"],
        "empty": [None] * 6, "nullable": pd.array([1, None, 3, None, 5, 6], dtype="Int64"),
    })
    assert frame_json(frame) == reference(frame)
    assert raw_json(frame, pd.Index([4, 0, 2])) == [reference(frame)[i] for i in (4, 0, 2)]


@pytest.mark.parametrize("value", ODD, ids=[repr(v)[:20] for v in ODD])
def test_each_odd_value_in_a_column_of_texts(value):
    frame = pd.DataFrame({"b": pd.Series(["x", value, None], dtype=object), "a": [1, 2, 3]})
    assert frame_json(frame) == reference(frame)


def test_a_column_of_every_odd_value():
    frame = pd.DataFrame({"mixed": pd.Series(ODD, dtype=object), "n": range(len(ODD))})
    assert frame_json(frame) == reference(frame)


def test_keys_the_column_build_leaves_to_the_encoder():
    frame = pd.DataFrame([[1, "a"], [2, "b"]], columns=["k", "k"])  # repeated names: the dict keeps the last
    assert frame_json(frame) == reference(frame)
    numbered = pd.DataFrame({1: ["x", None], 0: [2, 3]})
    assert frame_json(numbered) == reference(numbered)
    assert frame_json(pd.DataFrame(index=range(3))) == ["{}"] * 3
    assert frame_json(pd.DataFrame({"a": []})) == []


def test_key_order_is_the_encoders():
    frame = pd.DataFrame({"b.c": [1], "b": [2], "B": [3], "a_b": [4], "ä": [5], "a.b": [6]})
    assert frame_json(frame) == reference(frame)
    assert frame_json(frame)[0].startswith('{"B": 3, "a.b": 6')
