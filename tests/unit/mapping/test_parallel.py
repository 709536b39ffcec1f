"""Mapping a large input on several processes gives exactly the one-process result, and falls back to one
process when the worker pool cannot start or a worker dies. The threshold is forced down so a ~5,000-row
varied sample takes the parallel path (real spawned workers, no mocks)."""

import logging
import multiprocessing
import os
import re
from typing import Any

import pandas as pd
import pytest

from bloom_pipeline.mapping import compile as mapping
from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.parallel import map_chunks

from .conftest import CONTACT, DONOR, TRANSACTION, record

ROWS = 5_000
PARALLEL = {"chunk_rows": 1_000, "workers": 2, "parallel_min_rows": 1}


def donors(n: int = ROWS) -> list[dict[str, Any]]:
    """Individuals and companies, broken/missing/padded emails, phone styles, odd names, missing addresses."""
    out = []
    for i in range(n):
        out.append(record(
            DONOR, id=i + 1, type="household" if i % 97 == 0 else "company" if i % 9 == 0 else "individual",
            name=f"Acme {i} Foundation",
            first_name=[" Ada ", None, "", "José", "Grace"][i % 5], last_name=None if i % 13 == 0 else "Lovelace",
            middle_name=None if i % 2 else "King",
            email_1=[f"d{i}@example.org", "broken@@x", None, f"  d{i}@Example.ORG "][i % 4 if i % 7 else 1],
            mobile_phone=["3035551212", "(720) 555-0100", None, "555", "+1 303 555 0199"][i % 5],
            mailing_address=None if i % 11 == 0 else {"address_1": f"{i} Main St", "city": "Denver", "state": "CO",
                                                      "zip": "80202", "country": "US"},
            bloomerang_id=i if i % 17 == 0 else None))
    return out


def transactions(n: int = ROWS) -> list[dict[str, Any]]:
    """Statuses that exclude, methods, split and empty allocations, amounts that do not add up."""
    kinds = ["card", "bank", "check", "cash", "paypal", "other", "in_kind"]
    out = []
    for i in range(n):
        amount = 1000 + i
        split = [{"id": 1, "amount": 600, "fund": {"id": 3}}, {"id": 2, "amount": amount - 600 - (i % 2),
                                                               "fund": {"id": 4}}]
        out.append(record(
            TRANSACTION, id=i + 1, amount=amount, source_type=kinds[i % len(kinds)],
            status=["Success", "Success", "Refunded", "Failed", "Pending"][i % 5],
            fund_allocations=split if i % 6 == 0 else [] if i % 6 == 1 else [{"id": 1, "amount": amount,
                                                                               "fund": {"id": 3}}],
            created_at=f"2025-03-{1 + i % 28:02d}T05:30:00Z", source={"check_number": str(i)}))
    return out


def assert_same(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(a.mapped, b.mapped)
    pd.testing.assert_frame_equal(a.rejected, b.rejected)
    pd.testing.assert_frame_equal(a.fields, b.fields)


@pytest.mark.slow  # spawns the worker processes three times (one per entity): ~10 s, the fast tier's largest
def test_parallel_equals_serial_for_donors_transactions_and_contacts(org: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG, logger="bloom_pipeline.mapping.parallel")
    contacts = [record(CONTACT, id=None if i % 101 == 0 else i, email=[f"c{i}@example.org", None, "broken@@x"][i % 3],
                       firstName="" if i % 4 == 0 else "Ada") for i in range(ROWS)]
    for entity, rows in (("wegive.donors", donors()), ("wegive.transactions", transactions()),
                         ("handbid.contacts", contacts)):
        serial = map_frame(org, entity, rows, chunk_rows=1_000, workers=1)
        assert len(serial.mapped) and len(serial.rejected), entity  # the sample exercises both outcomes
        if entity != "wegive.transactions":
            assert len(serial.fields), entity  # and values left out of mapped records
        assert_same(map_frame(org, entity, rows, **PARALLEL), serial)
        assert re.search(rf"chunks of {entity}: [1-9]\d* by worker processes", caplog.text), entity  # really spread


@pytest.mark.slow  # spawns worker processes: ~4 s
def test_parallel_equals_serial_for_a_frame_with_label_index(org: Any) -> None:
    frame = pd.json_normalize(donors()).set_index(pd.Index(range(10_000, 10_000 + ROWS)))
    serial = map_frame(org, "wegive.donors", frame, chunk_rows=1_000, workers=1)
    parallel = map_frame(org, "wegive.donors", frame, **PARALLEL)
    assert_same(parallel, serial)
    assert parallel.fields["raw"].str.contains('"email_1": "broken@@x"').any()
    assert parallel.rejected["raw"].str.contains('"type": "household"').any()


def test_small_inputs_stay_serial_by_default(org: Any) -> None:
    """Under the threshold no pool starts: no child process appears while mapping."""
    before = multiprocessing.active_children()
    map_frame(org, "wegive.donors", donors(500), chunk_rows=100)
    assert multiprocessing.active_children() == before


def test_pool_that_cannot_start_falls_back_to_this_process(org: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="bloom_pipeline.mapping.parallel")
    rows = donors(900)

    def local_map(o: Any, entity: str, chunk: Any) -> Any:  # a local function cannot be sent to a worker
        return mapping._map_chunk(o, entity, chunk)

    chunks = [rows[i:i + 300] for i in range(0, 900, 300)]
    parts = map_chunks(local_map, org, "wegive.donors", chunks, workers=2)
    expected = [mapping._map_chunk(org, "wegive.donors", c) for c in chunks]
    for got, want in zip(parts, expected, strict=True):
        assert_same(got, want)
    assert "mapping in this process" in caplog.text


def die_in_worker(org: Any, entity: str, chunk: Any) -> Any:
    """Kills a worker process outright (as the OOM killer would); maps normally in the calling process."""
    if multiprocessing.parent_process() is not None:
        os._exit(1)
    return mapping._map_chunk(org, entity, chunk)


@pytest.mark.slow  # spawns and kills a worker: ~4.5 s
def test_dead_worker_chunks_are_mapped_in_this_process(org: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="bloom_pipeline.mapping.parallel")
    rows = transactions(1_200)
    chunks = [rows[i:i + 200] for i in range(0, 1_200, 200)]
    parts = map_chunks(die_in_worker, org, "wegive.transactions", chunks, workers=2)
    for got, chunk in zip(parts, chunks, strict=True):
        assert_same(got, mapping._map_chunk(org, "wegive.transactions", chunk))
    assert "mapping worker pool broke" in caplog.text
