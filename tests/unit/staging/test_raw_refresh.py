"""A raw write that re-reads unchanged records only stamps them (`writes.refresh_raw_rows`): the table must end
exactly as the delete-and-insert (`writes.replace_rows`) leaves it, row for row, whatever changed."""

from datetime import UTC, datetime

import pytest

from bloom_pipeline.staging import ddl
from bloom_pipeline.staging.store import StagingStore, transaction
from bloom_pipeline.staging.writes import replace_rows

T1 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _day(record):
    return record.get("created_at")


def _rows(store: StagingStore, table: str) -> list[tuple]:
    with store.connect() as con:
        return con.execute(f"SELECT source_id, CAST(record AS VARCHAR), run_id, extracted_at, window_date FROM {table} "
                           "ORDER BY ALL").fetchall()


def _by_replace(store: StagingStore, records: list, *, run_id: str, window, at: datetime) -> None:
    """The same write through the delete-and-insert path, into a second table (the reference)."""
    import pandas as pd

    from bloom_pipeline.staging.writes import record_json, record_key, window_day

    frame = pd.DataFrame([{"source_id": record_key(r), "record": record_json(r),
                           "window_date": window_day(r, _day, window)} for r in records],
                         columns=["source_id", "record", "window_date"])
    frame["window_date"] = frame["window_date"].astype(object)
    frame["run_id"], frame["extracted_at"] = run_id, at
    with store.connect() as con, transaction(con):
        con.execute(ddl.raw_table_ddl("raw_wegive_reference"))
        replace_rows(con, "raw_wegive_reference", frame, window=window, keys=("source_id",), duplicate_keys=True)


def _both(store: StagingStore, records: list, *, run_id: str, window, at: datetime) -> int:
    written = store.write_raw("wegive", "donors", records, run_id=run_id, window=window, window_date_of=_day,
                              extracted_at=at)
    _by_replace(store, records, run_id=run_id, window=window, at=at)
    return written


FIRST = [{"id": 1, "name": "Ada", "created_at": "2026-01-05"}, {"id": 2, "name": "Bo", "created_at": "2026-01-06"},
         {"id": 3, "name": "Cy", "created_at": None}, {"name": "no id"}]


@pytest.mark.parametrize("window", ["all", None])
@pytest.mark.parametrize("second", [
    FIRST,                                                                     # nothing changed
    [FIRST[0], {**FIRST[1], "name": "Bob"}, FIRST[2], FIRST[3]],                # one record changed
    [FIRST[0], {**FIRST[1], "created_at": "2026-02-01"}, FIRST[3]],            # its day moved; one gone
    [*FIRST, {"id": 4, "name": "Di", "created_at": "2026-01-07"}],             # one new
    [FIRST[1], {**FIRST[1], "name": "Bob"}],                                   # a repeated id: kept twice
    [],                                                                        # an empty read
])
def test_second_write_leaves_the_table_as_the_rewrite_does(tmp_path, window, second):
    store = StagingStore(tmp_path / "acme_staging.duckdb", org="acme")
    assert _both(store, FIRST, run_id="run-1", window=window, at=T1) == len(FIRST)
    assert _rows(store, "raw_wegive_donors") == _rows(store, "raw_wegive_reference")
    assert _both(store, second, run_id="run-2", window=window, at=T2) == len(second)
    after = _rows(store, "raw_wegive_donors")
    assert after == _rows(store, "raw_wegive_reference")
    if second:  # every record this run read carries this run (row accounting counts them by run_id)
        assert sum(1 for row in after if row[2] == "run-2") == len(second)


def test_a_table_already_holding_a_repeated_id_is_rewritten_the_old_way(tmp_path):
    store = StagingStore(tmp_path / "acme_staging.duckdb", org="acme")
    twice = [FIRST[0], {**FIRST[0], "name": "Ada L."}]
    _both(store, twice, run_id="run-1", window=None, at=T1)
    _both(store, [FIRST[0], FIRST[1]], run_id="run-2", window=None, at=T2)
    assert _rows(store, "raw_wegive_donors") == _rows(store, "raw_wegive_reference")
    assert [row[0] for row in _rows(store, "raw_wegive_donors")] == ["1", "2"]
