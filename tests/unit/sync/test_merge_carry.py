"""The merge carry (sync/merge/carry.py): fingerprints that change with any input, and what is never carried."""

from __future__ import annotations

import duckdb
import pandas as pd

from bloom_pipeline.sync.merge import carry

COLUMNS = ("email_source", "email_bloomerang", "phone_source", "source_snapshot")
GROUPS = {("wegive", "Individual"): "email,phone", ("wegive", "Organization"): "email"}


def _frame(**overrides: object) -> pd.DataFrame:
    row = {"email_source": "a@example.org", "email_bloomerang": "a@example.org", "phone_source": None,
           "source_snapshot": '{"email": "a@example.org"}'}
    row.update(overrides)
    return pd.DataFrame([row])


def _print(frame: pd.DataFrame, group: tuple[str, str] = ("wegive", "Individual")) -> str:
    return carry.fingerprints(frame, COLUMNS, GROUPS, [group])[0]


def test_the_same_inputs_fingerprint_the_same_and_any_change_differs() -> None:
    base = _print(_frame())
    assert base == _print(_frame())
    assert len(base) == 16
    changed = [_print(_frame(email_source="b@example.org")), _print(_frame(email_bloomerang=None)),
               _print(_frame(phone_source="3035550100")), _print(_frame(source_snapshot='{"email": null}')),
               _print(_frame(), ("wegive", "Organization"))]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_a_value_s_type_and_a_null_are_part_of_the_fingerprint() -> None:
    assert _print(_frame(phone_source=1)) != _print(_frame(phone_source="1"))
    assert _print(_frame(phone_source=1)) != _print(_frame(phone_source=1.5))
    assert _print(_frame(phone_source="None")) != _print(_frame(phone_source=None))
    assert _print(_frame(phone_source="")) != _print(_frame(phone_source=None))
    # a missing column is a column of nulls (the merge reads both as blank)
    assert _print(_frame().drop(columns="phone_source")) == _print(_frame())


def test_rows_are_fingerprinted_each_on_its_own_values() -> None:
    frame = pd.concat([_frame(), _frame(email_source="b@example.org"), _frame()], ignore_index=True)
    prints = carry.fingerprints(frame, COLUMNS, GROUPS, [("wegive", "Individual")] * 3)
    assert prints[0] == prints[2] != prints[1]
    assert prints[0] == _print(_frame())


def test_only_a_stored_fingerprint_without_a_decision_and_with_its_constituent_quiet_is_carried() -> None:
    keys = [("wegive", "1"), ("wegive", "2"), ("handbid", "7"), ("wegive", "3"), ("wegive", "4")]
    prints = ["p1", "p2", "p7", "p3", "p4"]
    known = {("wegive", "1"): "p1", ("wegive", "2"): "p2", ("handbid", "7"): "old", ("wegive", "3"): "p3",
             ("wegive", "4"): "p4"}
    constituents = [10, 20, 20, 30, 40]
    carried = carry.carried_mask(keys, prints, known, constituents, never={("wegive", "3")})
    # 2 shares constituent 20 with a changed Handbid contact; 3 has a reviewer's decision waiting
    assert carried == [True, False, False, False, True]


def test_remember_stores_only_what_is_new_and_stored_reads_it_back() -> None:
    con = duckdb.connect(":memory:")
    assert carry.stored(con) == {}
    assert carry.remember(con, "run-1", [("wegive", "1", "p1"), ("wegive", "2", "p2")], {}) == 2
    known = carry.stored(con)
    assert known == {("wegive", "1"): "p1", ("wegive", "2"): "p2"}
    assert carry.remember(con, "run-2", [("wegive", "1", "p1"), ("wegive", "2", "q2")], known) == 1
    assert carry.stored(con) == {("wegive", "1"): "p1", ("wegive", "2"): "q2"}
    runs = con.execute("SELECT source_id, run_id FROM merge_unchanged ORDER BY source_id").fetchall()
    assert runs == [("1", "run-1"), ("2", "run-2")]
