"""``snapshot_frame`` flattens Bloomerang constituents exactly as the ``pd.json_normalize`` it replaced did.

The snapshot is flattened on every run, so it now picks the keys it reads (``_flat_constituent``) instead of
deep-copying and normalising every record; each column it reads must be what json_normalize gave: present in
the same cases, with the same values, NaN where a record lacks the key, and the same dtype.
"""

from __future__ import annotations

import copy

import pandas as pd

from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore
from bloom_pipeline.sandbox.data.world import generate_world
from bloom_pipeline.sync import snapshot

READ = [*snapshot._SNAPSHOT_KEYS, *(f"{parent}.{key}" for parent, keys in snapshot._SNAPSHOT_NESTED.items()
                                    for key in keys)]


def _cases() -> list[list[dict]]:
    store = BloomerangStore.from_world(generate_world(donors=300, seed=11))
    records = [store.render_constituent(i) for i in store.constituents]
    odd = copy.deepcopy(records[:7])
    odd[0].pop("PrimaryEmail", None)
    odd[1]["PrimaryAddress"] = None
    odd[2]["MiddleName"] = None
    odd[3].pop("CustomValues", None)
    odd[4]["Suffix"] = "Jr"
    odd[5]["PrimaryPhone"] = "not an object"
    odd[6].pop("AuditTrail")
    return [records, odd, records[:1], [{"Id": 5}], records + odd]


def test_flattening_matches_json_normalize() -> None:
    for case in _cases():
        expected = pd.json_normalize(case, max_level=1)
        got = pd.DataFrame([snapshot._flat_constituent(r) for r in case])
        assert [c for c in READ if c in got] == [c for c in READ if c in expected]
        for column in (c for c in READ if c in expected):
            pd.testing.assert_series_equal(got[column], expected[column], check_exact=True)


def test_snapshot_frame_reads_names_contacts_and_correlation_values() -> None:
    records = _cases()[0]
    frame = snapshot.snapshot_frame(records, {"wegive": 901, "handbid": 902})
    assert len(frame) == len(records) and frame["bloomerang_id"].dtype == "Int64"
    assert frame["email"].notna().any() and frame["corr_wegive"].notna().any()
    assert frame["last_modified"].notna().all()


def test_canonical_fields_of_one_record_are_the_frames_values() -> None:
    """The apply step reads a written constituent's canonical values one record at a time
    (``canonical_fields``); they must be exactly what ``snapshot_frame`` gives for that record."""
    records = _cases()[-1]
    extra = copy.deepcopy(records[:4])
    extra[0]["PrimaryPhone"] = {"Number": " (303) 555-1212 ", "Extension": " 44 "}
    extra[1]["PrimaryPhone"] = {"Number": "303-555-0000", "Extension": "   "}
    extra[2]["PrimaryPhone"] = {"Extension": "12"}
    extra[3]["FirstName"] = float("nan")
    compared = 0
    for record in [*records, *extra, {"Id": 5}, {"Id": 6, "Type": "Individual"}]:
        row = snapshot.snapshot_frame([record], {"wegive": 901}).iloc[0].to_dict()
        expected = {name: snapshot.present(row.get(name)) for name in snapshot.CANONICAL_FIELDS}
        got = snapshot.canonical_fields(record)
        assert got == expected, record.get("Id")
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
        compared += 1
    assert compared == len(records) + len(extra) + 2 and len(records) > 50
    assert snapshot.canonical_fields(extra[0])["phone"] == "(303) 555-1212 ext. 44"
