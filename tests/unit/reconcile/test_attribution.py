"""The pure attribution and totals of reconciliation: each kind of difference gets its reason, totals add up
per day and fund, and the CLI turns configuration problems into exit 2 with one line."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from click.testing import CliRunner

from bloom_pipeline.reconcile import explain as ex
from bloom_pipeline.reconcile import lines as ln
from bloom_pipeline.reconcile.cli import reconcile_command
from bloom_pipeline.reconcile.totals import DayWindow, in_window, totals
from bloom_pipeline.staging import ddl

D1, D2 = date(2026, 11, 2), date(2026, 11, 3)
GENERAL, GALA = "b:1001", "b:1004"


def lines(*rows: tuple) -> pd.DataFrame:
    """(source_id, day, fund_key, cents[, refunded[, bloomerang_id]]) → wegive lines."""
    out = []
    for row in rows:
        sid, day, fund, cents, *rest = row
        refunded = rest[0] if rest else False
        out.append({"source": "wegive", "source_id": sid, "day": day, "fund_key": fund, "cents": cents,
                    "refunded": refunded, "bloomerang_id": rest[1] if len(rest) > 1 else None})
    return pd.DataFrame(out, columns=list(ln.LINE_COLUMNS)) if out else ln.empty_lines()


def reasons(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["source_id"], frame["reason"], strict=True))


def test_the_same_gift_everywhere_explains_nothing() -> None:
    gift = lines(("1", D1, GENERAL, 5000))
    bloom = lines(("1", D1, GENERAL, 5000, False, 77))
    assert ex.explain(gift, gift, bloom).empty
    table = totals(gift, gift, bloom, ex.explain(gift, gift, bloom))
    assert table[["source_cents", "staged_cents", "bloomerang_cents", "difference_cents"]].values.tolist() == [
        [5000, 5000, 5000, 0]]
    assert table["status"].tolist() == ["match"]


def test_each_difference_gets_its_reason() -> None:
    source = lines(("edited", D1, GENERAL, 5000), ("moved", D1, GENERAL, 1000), ("redated", D1, GENERAL, 700),
                   ("held", D1, GENERAL, None), ("broken", D1, GENERAL, 300), ("gone", D2, GALA, 2500),
                   ("new", D2, GALA, 100), ("twice", D2, GALA, 900), ("refund", D2, GALA, 400, True))
    staged = source[~source["source_id"].isin(["held", "new"])]
    bloom = lines(("edited", D1, GENERAL, 6000, False, 1), ("moved", D1, GALA, 1000, False, 2),
                  ("redated", D2, GENERAL, 700, False, 3), ("twice", D2, GALA, 900, False, 4),
                  ("twice", D2, GALA, 900, False, 5), ("refund", D2, GALA, 400, False, 6),
                  ("stray", D2, GALA, 800, False, 7))
    keys = {("wegive", k) for k in ("edited", "moved", "redated", "refund")}
    ledger = ex.Ledger(outcomes={("wegive", "held"): (ex.QUARANTINED, "Amount: not a number"),
                                 ("wegive", "broken"): (ex.FAILED, "400: No fund with id 9")},
                       linked={("wegive", "gone"): 42}, pushed=frozenset(keys))
    found = ex.explain(source, staged, bloom, ledger)
    assert reasons(found) == {
        "edited": ex.AMOUNT, "moved": ex.FUND, "redated": ex.DATE, "held": ex.QUARANTINED, "broken": ex.FAILED,
        "gone": ex.DELETED, "new": ex.NOT_SYNCED, "twice": ex.DUPLICATE, "refund": ex.REFUND,
        "stray": ex.BLOOMERANG_ONLY,
    }
    detail = dict(zip(found["source_id"], found["detail"], strict=True))
    assert "$50.00 in the source, $60.00 in Bloomerang" in detail["edited"]
    assert "edited in Bloomerang" in detail["edited"]
    assert detail["held"] == "Amount: not a number" and "400: No fund" in detail["broken"]
    assert "42" in detail["gone"] and "not yet staged" in detail["new"]
    # a gift moved to another fund (or day) is named on both rows it touches
    assert sorted(found[found["source_id"] == "moved"]["fund_key"]) == sorted([GALA, GENERAL])
    assert sorted(found[found["source_id"] == "redated"]["day"]) == [D1, D2]


def test_a_change_in_the_source_not_yet_synced_is_not_called_an_edit() -> None:
    source = lines(("1", D1, GENERAL, 5500))
    staged = lines(("1", D1, GENERAL, 5000))
    bloom = lines(("1", D1, GENERAL, 5000, False, 9))
    (row,) = ex.explain(source, staged, bloom, ex.Ledger(pushed=frozenset({("wegive", "1")}))).to_dict("records")
    assert row["reason"] == ex.AMOUNT and "since it was staged" in row["detail"]
    (row,) = ex.explain(source, source, bloom, ex.Ledger()).to_dict("records")
    assert "staged, not yet loaded" in row["detail"]


def test_a_bloomerang_gift_that_is_no_longer_a_gift_says_its_status() -> None:
    bloom = lines(("5", D1, GENERAL, 100, False, 3))
    (row,) = ex.explain(ln.empty_lines(), ln.empty_lines(), bloom,
                        ex.Ledger(not_gifts={("wegive", "5"): "Failed"})).to_dict("records")
    assert row["reason"] == ex.BLOOMERANG_ONLY and "'Failed'" in row["detail"] and row["bloomerang_id"] == 3


def test_totals_split_gifts_and_refunds_per_day_and_fund() -> None:
    source = lines(("1", D1, GENERAL, 1000), ("1", D1, GALA, 500), ("2", D1, GENERAL, 300, True),
                   ("3", D2, GENERAL, None))
    table = totals(source, source, ln.empty_lines()).set_index(["day", "fund_key"])
    assert table.loc[(D1, GENERAL), ["source_cents", "source_refund_cents"]].tolist() == [1300, 300]
    assert table.loc[(D1, GALA), "difference_cents"] == -500
    assert table.loc[(D2, GENERAL), "source_cents"] == 0, "an unreadable amount adds nothing"
    assert table.loc[(D1, GENERAL), "status"] == "differs"


def test_the_window_keeps_only_its_days() -> None:
    source = lines(("1", D1, GENERAL, 1), ("2", D2, GENERAL, 1), ("3", None, GENERAL, 1))
    assert in_window(source, DayWindow(D2, D2))["source_id"].tolist() == ["2"]
    with pytest.raises(ValueError, match="before it starts"):
        DayWindow(D2, D1)


def test_the_table_allows_every_reason() -> None:
    assert set(ddl.RECONCILIATION_REASONS) == set(ex.REASONS)


def test_source_lines_read_cents_days_and_funds_as_the_mapping_does() -> None:
    funds = ln.Funds(bloomerang={1001: "General Fund", 1004: "Gala Fund"}, wegive_links={"1": 1001},
                     wegive_names={"6": "gala fund", "8": "Disaster Relief"})
    records = [
        {"id": 10, "status": "Success", "created_at": "2026-11-03T05:00:00Z",  # 22:00 the day before in Denver
         "fund_allocations": [{"amount": 700, "fund": {"id": 1}}, {"amount": "300", "fund": {"id": 6}},
                              {"amount": 5, "fund": {"id": 8}}]},
        {"id": 11, "status": "Refunded", "created_at": "2026-11-03T18:00:00Z", "amount": True, "fund": {"id": 1}},
        {"id": 12, "status": "Pending", "created_at": "2026-11-03T18:00:00Z", "amount": 100, "fund": {"id": 1}},
    ]
    got = ln.wegive_lines(records, funds, "America/Denver")
    assert got[["source_id", "day", "fund_key", "refunded"]].values.tolist() == [
        ["10", D1, GENERAL, False], ["10", D1, GALA, False], ["10", D1, "name:Disaster Relief", False],
        ["11", D2, GENERAL, True]]
    assert [None if pd.isna(c) else int(c) for c in got["cents"]] == [700, 300, 5, None], "true is not an amount"
    payments = [{"id": 7, "status": "succeeded", "dateInserted": 1793700000, "amount": 2500, "auctionId": 4}]
    (line,) = ln.handbid_lines(payments, funds, "UTC", lambda auction, name: "General Fund").to_dict("records")
    assert (line["fund_key"], line["cents"], line["day"]) == (GENERAL, 2500, date(2026, 11, 3))
    assert funds.by_ref("ref:bloomerang.funds:name=gala FUND") == GALA and funds.by_ref("ref:wegive.funds:1") == GENERAL
    assert funds.label(GALA) == "Gala Fund" and funds.label("name:Disaster Relief") == "Disaster Relief"


def test_bloomerang_lines_keep_money_designations_with_our_correlation_values() -> None:
    funds = ln.Funds(bloomerang={1001: "General Fund"})

    def designation(kind: str, value: str | None, amount: float) -> dict:
        custom = [] if value is None else [{"FieldId": 911, "Value": {"Id": 1, "Value": value}}]
        return {"Type": kind, "Amount": amount, "Fund": {"Id": 1001}, "CustomValues": custom}

    records = [
        {"Id": 1, "Date": "2026-11-02", "IsRefunded": "Yes", "Designations": [designation("Donation", "88", 12.34)]},
        {"Id": 2, "Date": "2026-11-02", "Designations": [designation("RecurringDonation", "wegive:schedules:1", 9)]},
        {"Id": 3, "Date": "2026-11-02", "Designations": [designation("Donation", None, 50)]},  # staff's own gift
    ]
    (line,) = ln.bloomerang_lines(records, {"wegive": 911, "handbid": 912}, funds).to_dict("records")
    assert (line["source_id"], line["cents"], line["refunded"], line["bloomerang_id"]) == ("88", 1234, True, 1)


def test_configuration_problems_exit_2_in_one_line(tmp_path, monkeypatch) -> None:
    result = CliRunner().invoke(reconcile_command, ["--org", "no-such-org", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    result = CliRunner().invoke(reconcile_command, ["--org", "demo", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no staging database" in result.output, result.output
    result = CliRunner().invoke(reconcile_command, ["--org", "demo", "--since", "31/02/2026"])
    assert result.exit_code == 2 and "ISO date" in result.output


def test_a_gifts_lines_on_one_day_and_fund_are_summed_and_an_unreadable_one_is_unknown() -> None:
    source = lines(("split", D1, GENERAL, 3000), ("split", D1, GENERAL, 2000), ("half", D1, GENERAL, 1000),
                   ("half", D1, GENERAL, None), ("two", D1, GENERAL, 700), ("two", D2, GALA, 300, True))
    bloom = lines(("split", D1, GENERAL, 5000, False, 1), ("half", D1, GENERAL, 1000, False, 2),
                  ("two", D1, GENERAL, 700, False, 3), ("two", D2, GALA, 300, False, 3))
    found = ex.explain(source, source, bloom, ex.Ledger())
    assert reasons(found) == {"half": ex.AMOUNT, "two": ex.REFUND}, "split: one gift of 50.00 in both"
    (half,) = found[found["source_id"] == "half"].to_dict("records")
    assert half["detail"].startswith("? in the source, $10.00 in Bloomerang") and pd.isna(half["source_cents"])
    assert sorted(found[found["source_id"] == "two"]["fund_key"]) == sorted([GALA, GENERAL])
