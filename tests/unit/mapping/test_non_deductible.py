"""The ``non_deductible`` transform: what part of a gift is not tax-deductible (WeGive ``is_tax_deductible``,
the fund's fair-market value ``has_fmv`` / ``fmv``), and the default WeGive rule that uses it."""

from __future__ import annotations

import pandas as pd
import pytest

from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.transforms import Context, non_deductible

from .conftest import TRANSACTION, payloads, record


def _run(rows: list[tuple[object, object, object, object]], units: str = "cents") -> list[object]:
    columns = [pd.Series([r[i] for r in rows], dtype=object) for i in range(4)]
    values, errors = non_deductible(columns, Context(), units)
    assert errors is None
    return list(values)


def test_not_deductible_is_the_whole_amount_and_fmv_is_capped_at_the_amount() -> None:
    assert _run([
        (5000, False, False, 0),        # not deductible: all of it
        (5000, "false", None, None),    # the flag as text
        (10000, True, True, 2500),      # a $25 benefit of a $100 gift
        (1000, True, True, 2500),       # the benefit is never more than the gift
        (10000, True, False, 2500),     # an fmv the fund does not apply
        (10000, None, None, None),      # nothing known: nothing non-deductible (a typed value is kept)
        (None, False, None, None),      # no amount: nothing
    ]) == [50.0, 50.0, 25.0, 10.0, None, None, None]


def test_dollar_amounts() -> None:
    assert _run([("50.00", 0, None, None), (100.0, 1, 1, 25)], units="dollars") == [50.0, 25.0]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"is_tax_deductible": False}, [50.0]),
    ({"is_tax_deductible": True}, [None]),
    ({"fund_allocations": [{"id": 501, "amount": 3000, "fund": {"id": 3, "has_fmv": True, "fmv": 1000}},
                           {"id": 502, "amount": 2000, "fund": {"id": 4, "has_fmv": False, "fmv": 0}}]},
     [10.0, None]),  # a split gift: the benefit belongs to the designation of the fund that has one
])
def test_the_demo_org_sends_it_on_each_designation(org: object, changes: dict[str, object],
                                                   expected: list[object]) -> None:
    result = map_frame(org, "wegive.transactions", [record(TRANSACTION, **changes)])
    designations = payloads(result)["88001"]["Designations"]
    assert [d.get("NonDeductibleAmount") for d in designations] == expected
