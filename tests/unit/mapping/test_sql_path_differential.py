"""The compiled SQL path (sqlpath.py, sqlrules.py) gives exactly the Python engine's output: every column of the
mapped rows (payload, hash, canonical columns, types), the rejected rows with their error texts and raw JSON,
and the dropped values — on generated records full of hostile values (nulls, blanks, unicode white space, lone
surrogates, control characters, quotes, texts at and over Bloomerang's bound, bad and edge dates, cents as
text, huge numbers, NaN / infinity, true/false, objects), on the benchmark's clean shapes, and on DataFrames as
well as record lists. The Python engine over the whole chunk (`_map_python`) is the reference; the tests also
check that the SQL path did map most well-formed rows (a path that silently declines would pass the rest).
"""

import math
import random
from typing import Any

import pandas as pd
import pytest

from bloom_pipeline.mapping import arrowtext, compile, sqlpath
from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.sqlrules import dollars_text

from .conftest import DONOR, TRANSACTION, record
from .test_fast_path_differential import AMOUNTS, DATES, HOSTILE, hostile_donors, hostile_transactions

# slow tier: a few thousand records through both paths (~10 s)
pytestmark = [pytest.mark.skipif(not arrowtext.ENABLED, reason="pyarrow not installed"), pytest.mark.slow]

WHITE = ["\u00a0Ada", "Ada\u3000", "\u2028", "\x1c", "\x85Ada", " \t\n "]
MORE_DATES = ["2025-03-09T08:59:59Z", "2025-03-09T09:00:00Z", "2025-11-02T07:59:59.999999Z", "2025-11-02T08:00:00Z",
              "2025-01-01T06:59:59Z", "2025-01-01T07:00:00.5Z", "1970-01-01T00:00:00Z", "2099-12-31T23:59:59Z",
              "2100-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2025-03-02T15:00:00.1234567Z", "2025-3-2",
              "2025-03-02T15:00Z", "2025-03-02 15:00:00", "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z",
              "2025-03-02T15:00:00+00:00", " 2025-03-02T15:00:00Z", "２０２５-03-02"]
MORE_AMOUNTS = [999999999999999, 10**15, -999999999999999, 100, 1234567, 5, 7, 10, "100", float("nan"), 2**62,
                -(2**63), 0.0, 150.0]
EMAILS = ["a@b.test", "x@y.invalid", "a@localhost.localhost", "a" * 64 + "@example.org", "a" * 65 + "@example.org",
          "a@" + "b" * 63 + ".org", "a@" + "b" * 64 + ".org", "ä@example.org", "a@exämple.org", "a..b@example.org",
          "A.B+c@Example.ORG", "a@b.c", "a@b.co", "x@example.org\n", "a@@b.org"]
# text only (a column of text is what SQL reads; other values send their row to Python), twice the usual names
TEXTS = [*(v for v in HOSTILE if v is None or isinstance(v, str)), *WHITE, "x" * 255, "Ü" * 255,
         "Ü" * 256, "\"quoted\"", "a\\b", "line\r\nbreak", *["Ada", "Grace", "O'Brien", "José"] * 8]


def _spoiled(base: dict[str, Any], choices: dict[str, list[Any]], rng: random.Random) -> dict[str, Any]:
    """`base` with none, one or two of its fields given a hostile value: most records stay within what SQL
    reads, each field's hostile values are met within otherwise mappable records."""
    changes = {name: rng.choice(choices[name]) for name in rng.sample(sorted(choices), rng.choice([0, 1, 1, 2]))}
    return record(base, **changes)


def hostile_extra_donors(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    address = {"address_1": "1 Main St", "address_2": None, "city": "Denver", "state": "CO", "zip": "80202",
               "country": "US"}
    choices = {
        "type": ["company", "Company", " company", "individual ", "robot", None, 1],
        "name": TEXTS, "first_name": TEXTS, "middle_name": TEXTS, "last_name": TEXTS,
        "email_1": [*EMAILS, *TEXTS], "mobile_phone": TEXTS, "office_phone": TEXTS,
        "mailing_address": [None, *({**address, key: rng.choice(TEXTS)} for key in address for _ in range(6))],
        "bloomerang_id": [7, "7", 0, 2**70, 1.0, True, "x"], "updated_at": [*DATES, *MORE_DATES],
    }
    base = record(DONOR, mailing_address=address)
    return [{**_spoiled(base, choices, rng), "id": i + 1} for i in range(n)]


def hostile_extra_transactions(n: int, seed: int = 12) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    split = [{"id": 1, "amount": 2000, "fund": {"id": 3}}, {"id": 2, "amount": 3000, "fund": {"id": 4}}]
    choices = {
        "amount": [*AMOUNTS, *MORE_AMOUNTS], "fee": [None, 0, -5, 12, "12", 1.5, 2**70],
        "source_type": ["bank", "check", "cash", "paypal", "stock", "in_kind", "venmo", "CARD", None, "", "  ",
                        "crypto\x00", "other", "Ücard"],
        "status": ["Refunded", "Disputed", "Failed", "Pending", "SUCCESS", None, 1, " Success"],
        "created_at": [*DATES, *MORE_DATES], "updated_at": [None, *MORE_DATES], "refunded_at": MORE_DATES,
        "description": TEXTS, "receipt_id": ["R-1", 17, *TEXTS], "tribute_name": ["Jane", *TEXTS],
        "tribute": ["in_honor", "memory", "IN MEMORY OF", "bogus", None], "tribute_message": ["m", *TEXTS],
        "scheduled_donation_id": [55, "55", ""], "pledge_id": [9, "9"], "is_tax_deductible": [False, True, "no"],
        "owner": [{"id": "1012"}, {"id": None}, None, {"id": 2**70}, {"id": " 7 "}, {"id": "x\ty"}],
        "donor": [None, {"id": 3}], "fund": [{"id": "3"}, None, {"id": 3, "has_fmv": True, "fmv": 100}, {"id": "ü"}],
        "fund_allocations": [None, [], "nope", split, [*split[:1], {"id": 2, "amount": 3001, "fund": {"id": 4}}],
                             [{"amount": 5000, "fund": {"id": 'q"uote'}}], [{"amount": 5000, "fund": {"id": "ü"}}],
                             [{"amount": 5000, "fund": {"id": 3}}, "x"], [{"amount": "5000", "fund": {"id": 3}}]],
        "source": [None, {"issuer": "visa", "last_four": "4242"}, {"issuer": "Visa", "last_four": 4242},
                   {"bank_account_type": "checking", "last_four": "\u0664\u0662\u0664\u0662"}, {"issuer": "MC"},
                   {"issuer": "visa", "last_four": "42-42", "expiration": "12/30"}],
    }
    base = record(TRANSACTION, source={"issuer": "visa", "last_four": "4242"}, fund_allocations=None)
    return [{**_spoiled(base, choices, rng), "id": i + 1} for i in range(n)]


def clean_transactions(n: int) -> list[dict[str, Any]]:
    """Shapes the SQL path takes: most of these must be mapped by it."""
    rng = random.Random(5)
    return [record(TRANSACTION, id=i + 1, amount=rng.randint(1, 10**7),
                   created_at=f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
                   source_type=rng.choice(["card", "check", "cash", "bank", "paypal"]), source=None,
                   fund_allocations=rng.choice([None, [{"id": 1, "amount": None, "fund": {"id": 3}}]]),
                   status=rng.choice(["Success", "Refunded", "Failed"]))
            for i in range(n)]


def _fix_allocations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:  # clean_transactions: each allocation carries the gift's amount
        for item in row.get("fund_allocations") or []:
            if isinstance(item, dict) and item.get("amount", 0) is None:
                item["amount"] = row["amount"]
    return rows


def both_ways(monkeypatch: pytest.MonkeyPatch, org: Any, entity: str, rows: Any) -> tuple[Any, Any, int]:
    """(SQL path result, Python engine result, rows the SQL mapped)."""
    mapped_by_sql = []
    real = sqlpath.map_rows

    def counting(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        mapped_by_sql.append(0 if out is None else len(out.positions))
        return out

    with monkeypatch.context() as m:
        m.setattr(sqlpath, "MIN_ROWS", 10)
        m.setattr(sqlpath, "map_rows", counting)
        fast = map_frame(org, entity, rows, workers=1, chunk_rows=1_000)
    with monkeypatch.context() as m:
        m.setattr(sqlpath, "MIN_ROWS", 10**12)
        reference = map_frame(org, entity, rows, workers=1, chunk_rows=1_000)
    return fast, reference, sum(mapped_by_sql)


def assert_same(fast: Any, reference: Any, label: str) -> None:
    for name in ("mapped", "rejected", "fields"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(reference, name), obj=f"{label} {name}")


@pytest.mark.parametrize(("entity", "make"), [
    ("wegive.donors", hostile_donors), ("wegive.transactions", hostile_transactions),
    ("wegive.donors", hostile_extra_donors), ("wegive.transactions", hostile_extra_transactions)])
def test_sql_path_equals_python_engine_on_hostile_records(org: Any, monkeypatch: pytest.MonkeyPatch, entity: str,
                                                          make: Any) -> None:
    rows = make(2_000)
    fast, reference, by_sql = both_ways(monkeypatch, org, entity, rows)
    assert len(reference.mapped) > 100 and len(reference.rejected) > 50
    assert_same(fast, reference, entity)
    share = 0.5 if make in (hostile_extra_donors, hostile_extra_transactions) else 0.01
    assert by_sql > share * len(reference.mapped), "the SQL path mapped almost nothing: it is not being tested"


def test_sql_path_maps_most_clean_records_and_frames_equal_lists(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _fix_allocations(clean_transactions(2_000))
    fast, reference, by_sql = both_ways(monkeypatch, org, "wegive.transactions", rows)
    assert_same(fast, reference, "clean transactions")
    assert by_sql >= 0.9 * len(reference.mapped)
    frame = pd.json_normalize(rows, max_level=1)  # a DataFrame of dotted columns, as a staged raw table is
    frame["fund_allocations"] = [r["fund_allocations"] for r in rows]
    fast, reference, by_sql = both_ways(monkeypatch, org, "wegive.transactions", frame)
    assert_same(fast, reference, "clean transactions, DataFrame")
    assert by_sql >= 0.9 * len(reference.mapped)


def test_benchmark_shapes_are_mapped_by_sql(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(compile.__file__).resolve().parents[2] / "benchmarks"))
    import mapping_throughput as bench

    donors = bench.donors(4_000)
    fast, reference, by_sql = both_ways(monkeypatch, org, "wegive.donors", donors)
    assert_same(fast, reference, "benchmark donors")
    assert by_sql >= 0.99 * len(reference.mapped)
    tx = bench.transactions(4_000, 4_000)
    tx["fund_allocations"] = [None if v is None else [dict(a) for a in v] for v in tx["fund_allocations"]]
    fast, reference, by_sql = both_ways(monkeypatch, org, "wegive.transactions", tx)
    assert_same(fast, reference, "benchmark transactions")
    assert by_sql >= 0.99 * len(reference.mapped)


def test_dollars_text_is_the_float_repr() -> None:
    import duckdb

    rng = random.Random(1)
    cents = [1, 5, 10, 99, 100, 101, 110, 999999999999999, -5, -100, 0, 10**15 - 10] + [
        rng.randint(-(10**15) + 1, 10**15 - 1) for _ in range(20_000)] + [rng.randint(1, 10**6) for _ in range(5_000)]
    con = duckdb.connect()
    got = con.execute(f"SELECT {dollars_text('c')} FROM (SELECT unnest(?::BIGINT[]) AS c)", [cents]).fetchall()
    # what the Python engine writes: cents_to_dollars' floats, JSON-encoded column-wise (jsonbuild._encode_pandas)
    want = (pd.Series(cents, dtype="Float64") / 100).round(2).astype(float).astype(str).tolist()
    assert [g[0] for g in got] == want
    assert want[:4] == ["0.01", "0.05", "0.1", "0.99"] and all(math.isfinite(c / 100) for c in cents)


def test_a_lone_surrogate_raises_on_both_paths(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Text that is no UTF-8 cannot be staged: the Python engine raises (the stage then isolates the record,
    sync/stage.py); the SQL path leaves such rows to it, so it raises the same way."""
    rows = [record(DONOR, id=i + 1, first_name="bad\ud800x" if i == 7 else "Ada") for i in range(50)]
    with monkeypatch.context() as m:
        m.setattr(sqlpath, "MIN_ROWS", 10)
        with pytest.raises(UnicodeEncodeError):
            map_frame(org, "wegive.donors", rows, workers=1)
    with monkeypatch.context() as m:
        m.setattr(sqlpath, "MIN_ROWS", 10**12)
        with pytest.raises(UnicodeEncodeError):
            map_frame(org, "wegive.donors", rows, workers=1)


@pytest.mark.parametrize(("entity", "make", "as_frame"), [("wegive.donors", hostile_extra_donors, False),
                                                          ("wegive.transactions", hostile_extra_transactions, True)])
def test_rows_left_by_every_chunk_are_mapped_in_one_call(org: Any, monkeypatch: pytest.MonkeyPatch, entity: str,
                                                         make: Any, as_frame: bool) -> None:
    """`_map_all` maps the few rows each chunk leaves for the Python engine in one call (`_with_left`): the
    result is the one where each chunk maps its own (DEFER_ROWS 0) and the Python engine's, for record lists and
    DataFrames; a chunk leaving more than DEFER_ROWS maps its own, beside chunks that left theirs."""
    rows = make(1_200)
    calls = []
    real = compile._map_python

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    records, label = (pd.DataFrame(rows), "DataFrame") if as_frame else (rows, "records")
    with monkeypatch.context() as m:
        m.setattr(sqlpath, "MIN_ROWS", 10)
        m.setattr(compile, "_map_python", counting)
        calls.clear()
        deferred = map_frame(org, entity, records, workers=1, chunk_rows=300)
        assert len(calls) == 1 and calls[0] > 3, f"{label}: the chunks did not leave their rows ({calls})"
        m.setattr(compile, "DEFER_ROWS", 0)
        calls.clear()
        own = map_frame(org, entity, records, workers=1, chunk_rows=300)
        assert len(calls) == 4, calls
        m.setattr(compile, "DEFER_ROWS", sorted(calls)[1])  # some chunks leave theirs, the others map them
        calls.clear()
        mixed = map_frame(org, entity, records, workers=1, chunk_rows=300)
        assert 2 <= len(calls) <= 3, calls
    with monkeypatch.context() as m:
        m.setattr(sqlpath, "MIN_ROWS", 10**12)
        reference = map_frame(org, entity, records, workers=1, chunk_rows=300)
    assert len(reference.mapped) > 100 and len(reference.rejected) > 50 and len(reference.fields)
    for got, how in ((deferred, "left"), (own, "each chunk its own"), (mixed, "mixed")):
        assert_same(got, reference, f"{entity} {label} {how}")
