"""The Arrow kernels (arrowtext.py) give byte-for-byte the output of the pure-pandas path they speed up.

Each test maps a deliberately awkward sample twice, once with pyarrow and once with it switched off, and
compares everything: payloads, hashes, canonical columns and rejections with their error texts.
"""

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bloom_pipeline.mapping import arrowtext, jsonbuild, transforms, validators
from bloom_pipeline.mapping.compile import map_frame

from .conftest import DONOR, PAYMENT, TRANSACTION, record

pytestmark = pytest.mark.skipif(not arrowtext.ENABLED, reason="pyarrow not installed")

ODD_TEXT = ["Ada", "  Ada  ", "\u3000Ada\u2003", "\x1cAda\x1f", "", "   ", None, np.nan, 'Quote "q"', "back\\slash",
            "tab\tin", "new\nline", "\x07bell", "José", "名前", "emoji 🎉", "\u2028sep", "a\x85"]
PHONES = ["3035551212", "(303) 555-1212", "303.555.1212", "+1 303 555 1212", "1-303-555-1212", "+13035551212",
          "+44 20 7946 0958", "555", "", "  ", "303\u00a0555\u00a01212", "３０３５５５１２１２", "303-555-1212 ext 4",
          "++13035551212", "+303 555 1212", "0303555121", "9835551234", "8005551212", None, "(303)5551212\n",
          "\u200a3035551212"]
EMAILS = ["ada@example.org", " Ada@Example.ORG ", "broken@@x", "a@b", "user@localhost", "x@test", "x@example.invalid",
          "a" * 65 + "@example.org", "a@" + "b" * 250 + ".com", "josé@example.org", "ada@example.org\n",
          "first.last+tag@sub.example.co.uk", ".ada@example.org", "ada.@example.org", "ada@-bad.org", None, ""]


def both_ways(monkeypatch: pytest.MonkeyPatch, fn: Any) -> tuple[Any, Any]:
    fast = fn()
    with monkeypatch.context() as m:
        m.setattr(arrowtext, "ENABLED", False)
        slow = fn()
    return fast, slow


def assert_same_result(fast: Any, slow: Any) -> None:
    pd.testing.assert_frame_equal(fast.mapped, slow.mapped)
    pd.testing.assert_frame_equal(fast.rejected, slow.rejected)
    pd.testing.assert_frame_equal(fast.fields, slow.fields)


def donors() -> list[dict[str, Any]]:
    rows = []
    for i in range(120):
        rows.append(record(
            DONOR, id=i + 1, type="company" if i % 9 == 0 else "individual",
            first_name=ODD_TEXT[i % len(ODD_TEXT)], middle_name=ODD_TEXT[(i * 5) % len(ODD_TEXT)],
            last_name=ODD_TEXT[(i * 7) % len(ODD_TEXT)], name=ODD_TEXT[(i * 3) % len(ODD_TEXT)],
            email_1=EMAILS[i % len(EMAILS)], mobile_phone=PHONES[i % len(PHONES)],
            mailing_address={"address_1": ODD_TEXT[(i * 11) % len(ODD_TEXT)], "address_2": ODD_TEXT[i % 4],
                             "city": ODD_TEXT[(i * 13) % len(ODD_TEXT)], "state": "CO", "zip": 80202 if i % 5 else
                             "80202", "country": None if i % 6 else " us "}))
    return rows


def test_donor_mapping_is_identical_with_and_without_arrow(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both_ways(monkeypatch, lambda: map_frame(org, "wegive.donors", donors()))
    assert_same_result(fast, slow)
    assert len(fast.mapped) > 50 and len(fast.fields) > 5
    for text, digest in zip(fast.mapped["payload"], fast.mapped["payload_hash"], strict=True):
        assert text == jsonbuild.dumps(json.loads(text))
        assert digest == jsonbuild.payload_hash(json.loads(text))


def test_donor_frame_input_is_identical_with_and_without_arrow(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.json_normalize(donors())
    fast, slow = both_ways(monkeypatch, lambda: map_frame(org, "wegive.donors", frame))
    assert_same_result(fast, slow)


def test_transaction_mapping_is_identical_with_and_without_arrow(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    split = [{"amount": 3000, "fund": {"id": 3}}, {"amount": 2000, "fund": {"id": 4}}]
    methods = ["card", "bank", "check", "cash", "paypal", "stock", "crypto", "other", "Bitcoin", None]
    rows = []
    for i in range(80):
        rows.append(record(
            TRANSACTION, id=i + 1, amount=[5000, 0, -5, 12.5, "100", 999999][i % 6],
            source_type=methods[i % len(methods)], status=["Success", "Refunded", "Failed", "Disputed"][i % 4],
            source={"brand": ODD_TEXT[i % len(ODD_TEXT)], "last_four": "4242", "exp_month": 12, "exp_year": 2030,
                    "check_number": ODD_TEXT[(i * 3) % len(ODD_TEXT)], "description": ODD_TEXT[i % 5]},
            fund_allocations=[] if i % 3 else split,
            scheduled_donation_id=77 if i % 7 == 0 else None, created_at=["2025-03-02T15:00:00Z", "bad"][i % 9 == 0]))
    fast, slow = both_ways(monkeypatch, lambda: map_frame(org, "wegive.transactions", rows))
    assert_same_result(fast, slow)
    assert len(fast.mapped) >= 10 and (fast.rejected["kind"] == "invalid").any()


def test_handbid_mapping_is_identical_with_and_without_arrow(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [record(PAYMENT, id=i, method=["cash", "check", "credit"][i % 3], reference=ODD_TEXT[i % len(ODD_TEXT)],
                   auctionName=ODD_TEXT[(i * 5) % len(ODD_TEXT)]) for i in range(30)]
    fast, slow = both_ways(monkeypatch, lambda: map_frame(org, "handbid.payments", rows))
    assert_same_result(fast, slow)


def test_strip_and_present_agree_with_python_str_strip(monkeypatch: pytest.MonkeyPatch) -> None:
    values = pd.Series(ODD_TEXT, dtype=object)
    fast, slow = both_ways(monkeypatch, lambda: (transforms.strip(values, transforms.Context())[0],
                                                 transforms.present(values)))
    pd.testing.assert_series_equal(fast[0], slow[0])
    pd.testing.assert_series_equal(fast[1], slow[1])
    expected = [v.strip() or None if isinstance(v, str) else None for v in ODD_TEXT]
    assert fast[0].tolist() == expected


def test_ids_as_text_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    values = pd.Series([1, 22, -3, 10**15])
    fast, slow = both_ways(monkeypatch, lambda: transforms.strip(values, transforms.Context())[0])
    pd.testing.assert_series_equal(fast, slow)
    assert fast.tolist() == ["1", "22", "-3", str(10**15)]


def test_json_encoding_agrees_with_json_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    values = pd.Series(ODD_TEXT, dtype=object)
    fast, slow = both_ways(monkeypatch, lambda: jsonbuild.encode(values))
    assert fast.tolist() == slow.where(slow.notna(), None).tolist()
    assert [v for v in fast if v is not None] == [json.dumps(v, ensure_ascii=False) for v in ODD_TEXT
                                                   if isinstance(v, str)]


def test_phone_fast_path_agrees_with_phonenumbers(monkeypatch: pytest.MonkeyPatch) -> None:
    values = pd.Series(PHONES, dtype=object)
    fast, slow = both_ways(monkeypatch, lambda: (validators.format_phones(values, "US"),
                                                 validators.phone_digits(values, "US")))
    pd.testing.assert_series_equal(fast[0], slow[0])
    pd.testing.assert_series_equal(fast[1], slow[1])
    library = [None if v is None else validators._format_one(v.strip(), "US") for v in PHONES]
    assert fast[0].tolist() == library


def test_email_fast_path_agrees_with_email_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    values = pd.Series(EMAILS, dtype=object)
    fast, slow = both_ways(monkeypatch, lambda: validators.emails_valid(values))
    pd.testing.assert_series_equal(fast, slow)
    assert fast.tolist() == [True if v is None else validators._email_ok(v) for v in EMAILS]


def test_json_object_keeps_rows_without_any_member() -> None:
    pa = arrowtext.pa
    members = [arrowtext.member("A", pa.array(["1", None, None])), arrowtext.member("B", pa.array([None, "2", None]))]
    assert arrowtext.json_object(members, 3).to_pylist() == ['{"A":1}', '{"B":2}', "{}"]
    assert arrowtext.json_object(members[:1], 3).to_pylist() == ['{"A":1}', "{}", "{}"]
    assert arrowtext.json_object([], 2).to_pylist() == ["{}", "{}"]


def test_join_lines_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = [pd.Series(ODD_TEXT, dtype=object), pd.Series(list(reversed(ODD_TEXT)), dtype=object),
               pd.Series([None, "x", "\n"] * 6, dtype=object)]
    fast, slow = both_ways(monkeypatch, lambda: transforms.join_lines(columns, transforms.Context())[0])
    pd.testing.assert_series_equal(fast, slow)


def test_columns_made_from_arrow_are_read_only() -> None:
    """The Arrow array of a column is remembered (no second conversion), so the column must not change."""
    values = transforms.strip(pd.Series([" a ", None], dtype=object), transforms.Context())[0]
    assert arrowtext.as_text(values).to_pylist() == ["a", None]
    with pytest.raises(ValueError, match="read-only"):
        values[0] = "b"


@pytest.mark.parametrize("values", [[1012, 7, 2**40], [1012, None, 7], [" 12 ", "", None], [2**70, 1],
                                    [12.0, 7.5, None], [True, 3]])
def test_ids_to_text_agree(values: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    column = pd.Series(values, dtype=object)
    fast, slow = both_ways(monkeypatch, lambda: transforms.to_string(column, transforms.Context())[0])
    assert fast.tolist() == slow.tolist()


def test_join_groups_keeps_row_order_within_each_owner() -> None:
    texts = pd.Series(["a", "b", "c", "d", "e"], index=[10, 11, 12, 13, 14], dtype=object)
    owners = np.array([5, 3, 5, 3, 9])
    joined = jsonbuild.join_groups(texts, owners, ",").sort_index()
    assert joined.to_dict() == {3: "b,d", 5: "a,c", 9: "e"}
    assert joined.to_dict() == texts.groupby(owners).agg(",".join).to_dict()
