"""``jsontext.loads`` gives exactly ``json.loads``'s value or error; ``digest_text`` is deterministic."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bloom_pipeline import jsontext

_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10 ** 40), max_value=10 ** 40)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text())
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_VALUES, st.booleans(), st.booleans())
def test_same_value_as_json(value, as_bytes, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    given_text = text.encode("utf-8") if as_bytes else text
    assert jsontext.loads(given_text) == json.loads(given_text)


@pytest.mark.parametrize("text", [
    '{"id": 123456789012345678901234567890}',  # beyond 64 bits: orjson would give a float
    '{"id": -9999999999999999999}',
    '[9223372036854775808, 18446744073709551616]',
    '{"token": "4111111111111111111111"}',  # 19+ digits in a string: parsed by json, same value
])
def test_long_integers_stay_exact(text):
    assert jsontext.loads(text) == json.loads(text)
    assert jsontext.loads(text.encode()) == json.loads(text)
    assert type(jsontext.loads(text)) is type(json.loads(text))


def test_texts_only_json_accepts():
    assert math.isnan(jsontext.loads(b'{"a": NaN}')["a"])
    assert jsontext.loads("[Infinity, -Infinity]") == [math.inf, -math.inf]
    assert jsontext.loads("1e400") == math.inf
    assert jsontext.loads('"\\ud800"') == "\ud800"  # a lone surrogate escape
    assert jsontext.loads('"x"'.encode("utf-16")) == "x"  # UTF-16, detected as json.loads of bytes does
    assert jsontext.loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # a UTF-8 byte-order mark
    assert jsontext.loads(memoryview(b"[1, 2]")) == [1, 2]
    assert jsontext.loads(bytearray(b'{"b": null}')) == {"b": None}


@pytest.mark.parametrize("text", ["{bad", "", "[1,]", '{"a": 1', b"\xff\xfe\xfa"])
def test_same_error_as_json(text):
    with pytest.raises(ValueError) as ours:
        jsontext.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_digest_text_is_deterministic_and_order_sensitive():
    rows = [{"id": 1, "name": "Ann"}, {"id": 2, "when": __import__("datetime").date(2026, 1, 2)}]
    assert jsontext.digest_text(rows) == jsontext.digest_text([dict(r) for r in rows])
    assert jsontext.digest_text(rows) != jsontext.digest_text(rows[::-1])
    assert b'"2026-01-02"' in jsontext.digest_text(rows)  # default=str, as json.dumps(default=str)


def test_digest_text_writes_what_orjson_cannot():
    assert jsontext.digest_text({"big": 2 ** 70}) == json.dumps({"big": 2 ** 70}).encode()
    assert jsontext.digest_text({1: "int key"}) == json.dumps({1: "int key"}).encode()


def test_digest_text_sorted_ignores_key_order_and_falls_back_sorted():
    assert jsontext.digest_text({"b": 1, "a": 2}, sort_keys=True) == jsontext.digest_text({"a": 2, "b": 1},
                                                                                          sort_keys=True)
    assert jsontext.digest_text({"b": 1, "a": 2}) != jsontext.digest_text({"a": 2, "b": 1})
    assert jsontext.digest_text({"b": 2 ** 70, "a": 1}, sort_keys=True) == \
        json.dumps({"a": 1, "b": 2 ** 70}, sort_keys=True).encode()
