"""Mapping a stream of batches (`map_stream`, the path for inputs too large for memory) gives `map_frame`'s
result over the whole input — ids missing or repeated across batches included — and draws batches only as
it maps them."""

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from bloom_pipeline.mapping.compile import map_frame, map_stream, repeated_ids

from .conftest import DONOR, TRANSACTION, record


def donors() -> list[dict[str, Any]]:
    """Valid and rejected records, dropped values, an id missing, one given twice in different batches (1 and
    3 of 4 below) and one given three times, 12 as text beside the number 12."""
    rows = [record(DONOR, id=i, email_1="broken@@x" if i % 4 == 0 else f"d{i}@example.org",
                   type="robot" if i % 11 == 0 else "company" if i % 5 == 0 else "individual",
                   first_name=" Ada " if i % 3 else None) for i in range(1, 60)]
    rows[40]["id"] = 3  # 3 twice, far apart
    rows[50]["id"] = 7
    rows[55]["id"] = 7  # 7 three times
    rows[20]["id"] = None
    rows[30]["id"] = " 12 "  # the text '12' and the number 12: one id
    return rows


def concat(parts: list[Any], name: str) -> pd.DataFrame:
    frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
    return pd.concat(frames, ignore_index=True) if frames else getattr(parts[0], name)


def by_raw(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("raw", kind="stable").reset_index(drop=True)


def assert_stream_equals_whole(org: Any, entity: str, rows: list[dict[str, Any]], batch: int, **kwargs: Any
                               ) -> list[Any]:
    whole = map_frame(org, entity, rows, workers=1)
    parts = list(map_stream(org, entity, lambda: (rows[i:i + batch] for i in range(0, len(rows), batch)), **kwargs))
    pd.testing.assert_frame_equal(concat(parts, "mapped"), whole.mapped)
    pd.testing.assert_frame_equal(concat(parts, "fields"), whole.fields)
    # the same rejections; an id's own (missing, repeated) comes with its chunk instead of after all chunks
    pd.testing.assert_frame_equal(by_raw(concat(parts, "rejected")), by_raw(whole.rejected))
    return parts


def test_stream_of_donors_equals_map_frame_over_all_of_it(org: Any) -> None:
    rows = donors()
    parts = assert_stream_equals_whole(org, "wegive.donors", rows, batch=15, chunk_rows=4, workers=1)
    assert len(parts) == 16  # four batches of 15 (the last 14) in chunks of 4
    rejected = concat(parts, "rejected")
    errors = [e for errs in rejected["errors"] for e in errs]
    assert sum("duplicate id '3' (2 records" in e for e in errors) == 2  # counted over the whole stream
    assert sum("duplicate id '7' (3 records" in e for e in errors) == 3
    assert sum("duplicate id '12' (2 records" in e for e in errors) == 2
    assert "id: missing id" in errors


@pytest.mark.slow  # maps a few thousand transactions several ways: ~5 s
def test_stream_of_transactions_and_of_frames(org: Any) -> None:
    rows = [record(TRANSACTION, id=i, status="Failed" if i % 6 == 0 else "Success", amount=5000 if i % 7 else 4000,
                   source_type=["card", "check", "paypal"][i % 3]) for i in range(1, 40)]
    rows[30]["id"] = 2
    assert_stream_equals_whole(org, "wegive.transactions", rows, batch=10, chunk_rows=3, workers=1)
    frame = pd.json_normalize(donors())
    whole = map_frame(org, "wegive.donors", frame, workers=1)
    parts = list(map_stream(org, "wegive.donors", lambda: (frame.iloc[i:i + 20] for i in range(0, len(frame), 20)),
                            chunk_rows=7, workers=1))
    pd.testing.assert_frame_equal(concat(parts, "mapped"), whole.mapped)
    pd.testing.assert_frame_equal(by_raw(concat(parts, "rejected")), by_raw(whole.rejected))


def test_repeated_ids_counts_numbers_and_text_alike() -> None:
    assert repeated_ids([[{"id": 1}, {"id": 2}], [{"id": 2}, {"id": 3}]]) == {"2": 2}
    assert repeated_ids([pd.DataFrame({"id": [1, 2]}), pd.DataFrame({"id": [2, 2, 5]})]) == {"2": 3}
    assert repeated_ids([pd.DataFrame({"id": [1, 2]}), [{"id": " 1"}, {"id": None}]]) == {"1": 2}
    assert repeated_ids([[{"id": 1}], [{"id": 2}]]) == {}


def test_batches_are_drawn_as_they_are_mapped(org: Any) -> None:
    """Bounded memory: when the first result is handed out, the rest of the input has not been read."""
    rows = donors()
    drawn: list[int] = []

    def batches() -> Iterator[list[dict[str, Any]]]:
        for i in range(0, len(rows), 10):
            drawn.append(i)
            yield rows[i:i + 10]

    stream = map_stream(org, "wegive.donors", batches, chunk_rows=10, workers=1)
    next(stream)
    first_pass = len(range(0, len(rows), 10))  # the id pass reads every batch once
    assert len(drawn) - first_pass <= 2  # then the chunk mapped and one looked at in advance
    rest = list(stream)
    assert len(rest) == first_pass - 1


@pytest.mark.slow  # spawns a worker process
def test_stream_on_two_processes_equals_one(org: Any) -> None:
    rows = donors() * 1  # the same records; the worker maps some chunks
    assert_stream_equals_whole(org, "wegive.donors", rows, batch=20, chunk_rows=5, workers=2)
