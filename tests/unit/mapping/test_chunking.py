"""Mapping in chunks (bounded memory at a million rows) gives exactly the one-piece result."""

from typing import Any

import pandas as pd
import pytest

from bloom_pipeline.mapping.compile import map_frame

from .conftest import DONOR, TRANSACTION, record


def assert_same(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(a.mapped, b.mapped)
    pd.testing.assert_frame_equal(a.rejected, b.rejected)
    pd.testing.assert_frame_equal(a.fields, b.fields)


def donors() -> list[dict[str, Any]]:
    rows = [record(DONOR, id=i, email_1="broken@@x" if i % 4 == 0 else f"d{i}@example.org",
                   type="company" if i % 5 == 0 else "individual", first_name=" Ada " if i % 3 else None)
            for i in range(1, 40)]
    rows += [record(DONOR, id=100 + i, type="robot") for i in range(6)]  # a chunk of rejects only
    return rows


@pytest.mark.slow  # maps the donors once per chunk size: ~5.5 s
def test_donors_in_chunks_equal_one_piece(org: Any) -> None:
    rows = donors()
    whole = map_frame(org, "wegive.donors", rows)
    assert len(whole.mapped) and len(whole.rejected) and len(whole.fields)
    for size in (1, 6, 7, 1000):
        assert_same(map_frame(org, "wegive.donors", rows, chunk_rows=size), whole)


def test_donor_frame_in_chunks_equals_one_piece(org: Any) -> None:
    frame = pd.json_normalize(donors()).set_index(pd.Index(range(500, 545)))  # labels are not positions
    whole = map_frame(org, "wegive.donors", frame)
    assert_same(map_frame(org, "wegive.donors", frame, chunk_rows=6), whole)
    assert whole.rejected["raw"].str.contains('"id": 100').any()


@pytest.mark.slow  # seconds of work: kept out of the fast tier
def test_transactions_in_chunks_equal_one_piece(org: Any) -> None:
    rows = [record(TRANSACTION, id=i, status="Failed" if i % 6 == 0 else "Success", amount=5000 if i % 7 else 4000,
                   source_type=["card", "check", "paypal"][i % 3]) for i in range(1, 50)]
    whole = map_frame(org, "wegive.transactions", rows)
    assert set(whole.rejected["kind"]) == {"excluded", "invalid"}
    for size in (8, 49):
        assert_same(map_frame(org, "wegive.transactions", rows, chunk_rows=size), whole)
    few = rows[:12]  # one-row chunks: each pays a whole mapping pass, so a dozen rows (failed, 40.00, 3 sources)
    assert_same(map_frame(org, "wegive.transactions", few, chunk_rows=1), map_frame(org, "wegive.transactions", few))


def test_all_rows_rejected_in_chunks(org: Any) -> None:
    rows = [record(DONOR, id=i, type="robot", email_1="broken@@x") for i in range(10)]
    whole = map_frame(org, "wegive.donors", rows)
    chunked = map_frame(org, "wegive.donors", rows, chunk_rows=3)
    assert len(chunked.mapped) == 0 and len(chunked.rejected) == 10
    pd.testing.assert_frame_equal(chunked.rejected, whole.rejected)
    assert chunked.fields.empty, "a rejected record's reasons are on its one quarantine row"
    assert list(chunked.mapped.columns) == list(whole.mapped.columns)
