"""`baseline.unchanged_mask` compares normalised values before it hashes: its answer must stay the hashes'
answer (`record_hash` of each side against `base_hashes` of the snapshot) for every kind of value."""

from __future__ import annotations

import json

import pandas as pd

from bloom_pipeline.sync.fields import CANONICAL_FIELDS, record_hash
from bloom_pipeline.sync.merge.baseline import base_hashes, unchanged_mask

NAMES = ("first_name", "email", "phone", "city", "postal_code")
SAME = {"first_name": "Ada", "email": "ada@example.org", "phone": "3035551212", "city": "Boston",
        "postal_code": "02110"}

# (current source values, current Bloomerang values, stored base): each pair of values at the edge of "the same"
CASES = [
    (SAME, SAME, {"source": SAME, "bloomerang": SAME}),                                   # nothing moved
    ({**SAME, "email": " ADA@example.org "}, SAME, {"source": SAME, "bloomerang": SAME}),  # formatting only
    (SAME, {**SAME, "phone": "+1 (303) 555-1212"}, {"source": SAME, "bloomerang": SAME}),
    ({**SAME, "city": "Salem"}, SAME, {"source": SAME, "bloomerang": SAME}),               # a real edit
    (SAME, {**SAME, "first_name": "ada"}, {"source": SAME, "bloomerang": SAME}),           # case of a name
    ({**SAME, "city": None}, SAME, {"source": {**SAME, "city": ""}, "bloomerang": SAME}),  # blank = missing
    ({**SAME, "city": 1.5}, SAME, {"source": {**SAME, "city": 1.5}, "bloomerang": SAME}),  # a float: hashed
    ({**SAME, "city": 0.0}, SAME, {"source": {**SAME, "city": -0.0}, "bloomerang": SAME}),
    ({**SAME, "city": True}, SAME, {"source": {**SAME, "city": 1}, "bloomerang": SAME}),   # JSON true != 1
    ({**SAME, "city": 2}, SAME, {"source": {**SAME, "city": "2"}, "bloomerang": SAME}),    # 2 != "2"
    ({**SAME, "city": 2.0}, SAME, {"source": {**SAME, "city": 2}, "bloomerang": SAME}),
    (SAME, SAME, {"source": {k: v for k, v in SAME.items() if k != "city"}, "bloomerang": SAME}),  # lacks a name
    (SAME, SAME, None),                                                                   # never synced
    (SAME, SAME, SAME),                                                                   # flat base: both sides
    (SAME, {**SAME, "city": "Lynn"}, json.dumps({"source": SAME, "bloomerang": SAME})),   # JSON text base
]


def _frame(cases: list) -> pd.DataFrame:
    rows = []
    for source, bloomerang, base in cases:
        row = {"base": base}
        row.update({f"{k}_source": v for k, v in source.items()})
        row.update({f"{k}_bloomerang": v for k, v in bloomerang.items()})
        rows.append(row)
    return pd.DataFrame(rows, index=range(10, 10 + len(rows)))


def _by_hashes(source: dict, bloomerang: dict, base: object, names: tuple[str, ...]) -> bool:
    stored = base_hashes(base, names)
    return stored is not None and stored == (record_hash(source, names), record_hash(bloomerang, names))


def test_mask_is_the_hashes_answer_for_every_case() -> None:
    mask = unchanged_mask(_frame(CASES), NAMES)
    assert mask.index.tolist() == list(range(10, 10 + len(CASES)))
    assert mask.tolist() == [_by_hashes(s, b, base, NAMES) for s, b, base in CASES]
    # the cases cover both answers, including a float that only the hash can vouch for
    assert mask.tolist()[:4] == [True, True, True, False]
    assert mask.tolist()[6] is True


def test_a_field_missing_from_the_frame_counts_as_blank_on_that_side() -> None:
    frame = _frame([(SAME, SAME, {"source": {**SAME, "state": None}, "bloomerang": {**SAME, "state": ""}})])
    names = (*NAMES, "state")
    assert unchanged_mask(frame, names).tolist() == [True]
    frame = _frame([(SAME, SAME, {"source": {**SAME, "state": "MA"}, "bloomerang": {**SAME, "state": ""}})])
    assert unchanged_mask(frame, names).tolist() == [False]


def test_stored_hash_columns_are_compared_with_the_current_hashes() -> None:
    frame = _frame([(SAME, SAME, None), ({**SAME, "city": "Salem"}, SAME, None)])
    frame["base_source_hash"] = frame["base_bloomerang_hash"] = record_hash(SAME, CANONICAL_FIELDS)
    assert unchanged_mask(frame, CANONICAL_FIELDS).tolist() == [True, False]
