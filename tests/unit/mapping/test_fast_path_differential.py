"""The fast path (Arrow kernels, payloads assembled by one DuckDB projection, byte scans that skip regexes)
gives exactly the pure-pandas path's output on a few thousand generated records full of hostile values:
every column of the mapped rows (payload, hash, canonical columns), the rejected rows with their error texts
and raw JSON, and the dropped values. The pandas path (pyarrow switched off) is the reference semantics.
"""

import random
from typing import Any

import pandas as pd
import pytest

from bloom_pipeline.mapping import arrowtext
from bloom_pipeline.mapping.compile import map_frame

from .conftest import DONOR, TRANSACTION, record

# slow tier: 2,000 hostile records through both paths, three times (~5 s)
pytestmark = [pytest.mark.skipif(not arrowtext.ENABLED, reason="pyarrow not installed"), pytest.mark.slow]

ROWS = 2_000
HOSTILE = [None, "", "   ", "Ada", "  Ada  ", "José", "名前", "emoji 🎉", 'say "hi"', "back\\slash", "tab\tin",
           "new\nline", "\x00nul", "\x1besc", "\x7fdel", "c1\x85x", "c1\x9fend", "nbsp\u00a0in", "©\u00a9",
           "\u200frtl", "\u2028sep", "x" * 256, "é" * 255, "é" * 256, "🎉" * 300, "O'Brien", "null", "true", 0,
           12, -3, 2**70, 1.5, float("nan"), True, ["a"], {"k": "v"}]
DATES = ["2025-03-02T15:00:00.000000Z", "2025-03-02", "2025-02-30T00:00:00Z", "03/02/2025", "", None, "9999-12-31",
         "0001-01-01T00:00:00Z", 1716240000, "2025-03-02T23:30:00-07:00", "not a date"]
AMOUNTS = [5000, 0, -100, 1, 99999999999, 2**63, "5000", " 12.50 ", "abc", None, 12.5, float("inf"), True]


def hostile_donors(n: int, seed: int = 3) -> list[dict[str, Any]]:
    pick = random.Random(seed).choice
    return [record(DONOR, id=i + 1, type=pick(["individual", "company", "Individual ", "robot", None]),
                   name=pick(HOSTILE), first_name=pick(HOSTILE), middle_name=pick(HOSTILE), last_name=pick(HOSTILE),
                   email_1=pick(["ada@example.org", " Ada@Example.ORG ", "broken@@x", f"d{i}@example.org", *HOSTILE]),
                   mobile_phone=pick(["3035551212", "(720) 555-0100", "555", "+44 20 7946 0958", *HOSTILE]),
                   mailing_address=pick([None, {"address_1": pick(HOSTILE), "city": pick(HOSTILE), "state": "CO",
                                                "zip": pick(["80202", 80202, None, "8020\n2"]), "country": "US"}]),
                   bloomerang_id=pick([None, 5, 0, -1, "12", "x", 2**70]), updated_at=pick(DATES))
            for i in range(n)]


def hostile_transactions(n: int, seed: int = 4) -> list[dict[str, Any]]:
    """Half of them well formed (so that many map), half with hostile values in every field."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2:
            out.append(record(TRANSACTION, id=i + 1, amount=1000 + i, created_at=rng.choice(DATES[:2]),
                              fund_allocations=[{"id": 1, "amount": 1000 + i, "fund": {"id": 3}}],
                              source_type=rng.choice(["card", "check", "cash"]),
                              source={"check_number": rng.choice(HOSTILE), "issuer": rng.choice(HOSTILE)}))
            continue
        pick = rng.choice
        amount = pick(AMOUNTS)
        out.append(record(
            TRANSACTION, id=i + 1, amount=amount, source_type=pick(["card", "bank", "check", "cash", "paypal",
                                                                   "other", " CARD ", None, 7]),
            status=pick(["Success", "Refunded", "Failed", "Pending", " success", None]),
            created_at=pick(DATES), updated_at=pick(DATES), fee=pick(AMOUNTS),
            fund_allocations=pick([None, [], [{"id": 1, "amount": amount, "fund": {"id": 3}}],
                                   [{"id": 1, "amount": 600, "fund": {"id": 3}},
                                    {"id": 2, "amount": pick(AMOUNTS), "fund": {"id": pick([4, "4", None])}}]]),
            source=pick([None, {"check_number": pick(HOSTILE)}, {"type": "card", "issuer": pick(HOSTILE),
                                                                  "last_four": pick(["4242", "42", None, 4242])}])))
    return out


def mapped_both_ways(monkeypatch: pytest.MonkeyPatch, org: Any, entity: str, rows: list[dict[str, Any]]
                     ) -> tuple[Any, Any]:
    fast = map_frame(org, entity, rows, workers=1)
    with monkeypatch.context() as m:
        m.setattr(arrowtext, "ENABLED", False)
        slow = map_frame(org, entity, rows, workers=1)
    return fast, slow


@pytest.mark.parametrize(("entity", "make"), [("wegive.donors", hostile_donors),
                                              ("wegive.transactions", hostile_transactions)])
def test_fast_path_equals_pandas_path_on_hostile_records(org: Any, monkeypatch: pytest.MonkeyPatch, entity: str,
                                                         make: Any) -> None:
    fast, slow = mapped_both_ways(monkeypatch, org, entity, make(ROWS))
    assert len(slow.mapped) > ROWS // 10 and len(slow.rejected) > ROWS // 10  # both outcomes, many times
    assert len(slow.fields), "values left out of mapped records"
    for name in ("mapped", "rejected", "fields"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name), obj=f"{entity} {name}")


def test_sample_reaches_the_paths_it_is_meant_to(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts needing escapes, control characters removed, texts over Bloomerang's bound: all in the sample."""
    fast, _ = mapped_both_ways(monkeypatch, org, "wegive.donors", hostile_donors(ROWS))
    payloads = "".join(fast.mapped["payload"])
    assert '\\"hi\\"' in payloads and "\\\\slash" in payloads and "\\n" in payloads
    assert "\x1b" not in payloads and "\x85" not in payloads and "c1x" in payloads
    reasons = " ".join(e for errs in [*fast.rejected["errors"], *fast.fields["errors"]] for e in errs)
    assert "more than Bloomerang's 255" in reasons
