"""Mapping throughput: N generated WeGive donors and transactions through the YAML mapping, beside the same
mapping hand-written as DuckDB SQL (the reference).

Prints rows/s, wall time and peak RSS for each. Each measurement runs in its own child process so peak
RSS is per approach (it includes the generated input, which both share). A benchmark, not a test.

    python benchmarks/mapping_throughput.py                       # 1,000,000 donors + transactions
    python benchmarks/mapping_throughput.py --donors 100000 --transactions 200000

Target (issue 3): 1M donors mapped and validated in <= 30 s on 2 cores, peak RSS <= 3 GB, within 2x of SQL.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
AREA = np.array(["303", "720", "212", "415", "617", "312", "206", "512"])
FIRST = np.array(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "", "José"])
LAST = np.array(["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "O'Brien"])
CITY = np.array(["Denver", "Boulder", "New York", "San Francisco", "Boston"])


def donors(n: int, seed: int = 7) -> pd.DataFrame:
    """WeGive donor list rows, flattened to dotted columns as a staged raw table holds them."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    company = rng.random(n) < 0.05
    first = FIRST[rng.integers(0, len(FIRST), n)]
    last = LAST[rng.integers(0, len(LAST), n)]
    idtext = pd.Series(ids).astype(str)
    email = ("donor" + idtext + "@example.org").where(rng.random(n) > 0.005, "broken@@" + idtext)
    email = email.where(rng.random(n) > 0.1, None)
    phone = pd.Series(AREA[rng.integers(0, len(AREA), n)]) + pd.Series(rng.integers(200, 999, n)).astype(str) \
        + pd.Series(rng.integers(0, 9999, n)).astype(str).str.zfill(4)
    styled = rng.random(n)
    phone = phone.where(styled > 0.3, "(" + phone.str[:3] + ") " + phone.str[3:6] + "-" + phone.str[6:])
    phone = phone.where(styled < 0.95, None)
    return pd.DataFrame({
        "id": ids, "type": np.where(company, "company", "individual"),
        "name": np.where(company, pd.Series(last) + " Foundation", pd.Series(first) + " " + pd.Series(last)),
        "first_name": np.where(company, None, first), "middle_name": None,
        "last_name": np.where(company, None, last), "email_1": email, "mobile_phone": phone,
        "mailing_address.address_1": pd.Series(rng.integers(1, 9999, n)).astype(str) + " Main St",
        "mailing_address.address_2": None, "mailing_address.city": CITY[rng.integers(0, len(CITY), n)],
        "mailing_address.state": "CO", "mailing_address.zip": "80202", "mailing_address.country": "US",
        "bloomerang_id": None, "updated_at": "2025-03-04T09:00:00.000000Z",
    })


def transactions(n: int, donor_count: int, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kinds = np.array(["card", "card", "card", "bank", "check", "cash", "paypal", "other"])
    status = np.array(["Success"] * 8 + ["Refunded", "Failed"])
    source_type = kinds[rng.integers(0, len(kinds), n)]
    amount = rng.integers(100, 500_000, n)
    split = rng.random(n) < 0.1
    first_part = (amount * 0.6).astype(int)
    allocations = pd.Series([None] * n, dtype=object)
    split_idx = np.flatnonzero(split)
    allocations.iloc[split_idx] = [[{"id": 1, "amount": int(a), "fund": {"id": 3}},
                                    {"id": 2, "amount": int(t - a), "fund": {"id": 4}}]
                                   for a, t in zip(first_part[split_idx], amount[split_idx], strict=True)]
    created = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s")
    return pd.DataFrame({
        "id": np.arange(1, n + 1), "amount": amount, "source_type": source_type,
        "status": status[rng.integers(0, len(status), n)], "owner.id": rng.integers(1, donor_count + 1, n),
        "fund.id": 3, "fund_allocations": allocations,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "updated_at": "2025-03-04T09:00:00Z",
        "source.brand": np.where(source_type == "card", "visa", None),
        "source.last_four": np.where(np.isin(source_type, ["card", "bank"]), "4242", None),
        "source.exp_month": np.where(source_type == "card", 12, None),
        "source.exp_year": np.where(source_type == "card", 2030, None),
        "source.account_type": np.where(source_type == "bank", "checking", None),
        "source.routing_number": np.where(source_type == "bank", "110000000", None),
        "source.check_number": np.where(source_type == "check", "1042", None),
        "scheduled_donation_id": None, "pledge_id": None, "bloomerang_id": None,
    })


EMAIL_RE = r"^[A-Za-z0-9_%+\-]+(\.[A-Za-z0-9_%+\-]+)*@([A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"

DONOR_SQL = f"""
WITH d AS (
  SELECT *, regexp_replace(mobile_phone, '\\D', '', 'g') AS digits FROM donors)
SELECT CAST(id AS VARCHAR) AS source_id, payload, sha256(payload) AS payload_hash FROM (
  SELECT id, CASE WHEN type = 'individual' THEN json_object(
      'Type', 'Individual',
      'FirstName', coalesce(nullif(trim(first_name), ''), 'FNU'),
      'MiddleName', nullif(trim(middle_name), ''),
      'LastName', coalesce(nullif(trim(last_name), ''), 'LNU'),
      'PrimaryEmail', CASE WHEN email_1 IS NOT NULL THEN json_object('Type', 'Home', 'Value', trim(email_1),
                      'IsPrimary', true) END,
      'PrimaryPhone', CASE WHEN digits IS NOT NULL THEN json_object('Type', 'Mobile', 'Number',
                      '(' || digits[1:3] || ') ' || digits[4:6] || '-' || digits[7:10], 'IsPrimary', true) END,
      'PrimaryAddress', json_object('Type', 'Home', 'Street', "mailing_address.address_1",
                      'City', "mailing_address.city", 'State', "mailing_address.state",
                      'PostalCode', "mailing_address.zip", 'Country', "mailing_address.country", 'IsPrimary', true),
      'CustomValues', json_array(json_object('FieldId', 901, 'Value', CAST(id AS VARCHAR))))
    ELSE json_object('Type', 'Organization', 'FullName', trim(name),
      'PrimaryAddress', json_object('Type', 'Work', 'Street', "mailing_address.address_1",
                      'City', "mailing_address.city", 'State', "mailing_address.state",
                      'PostalCode', "mailing_address.zip", 'Country', "mailing_address.country", 'IsPrimary', true),
      'CustomValues', json_array(json_object('FieldId', 901, 'Value', CAST(id AS VARCHAR)))) END AS payload
  FROM d WHERE email_1 IS NULL OR regexp_full_match(trim(email_1), '{EMAIL_RE}'))
"""

TX_SQL = """
SELECT CAST(id AS VARCHAR) AS source_id, payload, sha256(payload) AS payload_hash FROM (
  SELECT id, json_object(
      'AccountId', 'ref:wegive.donors:' || "owner.id",
      'Date', strftime(timezone('America/Denver', CAST(created_at AS TIMESTAMPTZ)), '%Y-%m-%d'),
      'Amount', round(amount / 100.0, 2),
      'Method', CASE source_type WHEN 'card' THEN 'CreditCard' WHEN 'bank' THEN 'Eft' WHEN 'check' THEN 'Check'
                WHEN 'cash' THEN 'Cash' ELSE 'None' END,
      'CreditCardType', CASE WHEN source_type = 'card' THEN 'Visa' END,
      'CheckNumber', "source.check_number",
      'Designations', CASE WHEN fund_allocations IS NULL THEN json_array(json_object('Type', 'Donation',
          'Amount', round(amount / 100.0, 2), 'FundId', 'ref:wegive.funds:' || "fund.id",
          'CustomValues', json_array(json_object('FieldId', 911, 'Value', CAST(id AS VARCHAR)))))
        ELSE to_json(list_transform(fund_allocations, lambda a: json_object('Type', 'Donation',
          'Amount', round(a.amount / 100.0, 2), 'FundId', 'ref:wegive.funds:' || a.fund.id))) END) AS payload
  FROM tx WHERE status IN ('Success', 'Refunded', 'Disputed') AND amount > 0)
"""


def run_child(mode: str, n_donors: int, n_tx: int) -> dict[str, float]:
    donor_frame = donors(n_donors)
    tx_frame = transactions(n_tx, n_donors)
    start = time.perf_counter()
    if mode == "yaml":
        sys.path.insert(0, str(REPO))
        from bloom_pipeline.mapping.compile import map_frame
        from bloom_pipeline.mapping.loader import load_org

        org = load_org("demo", REPO / "mappings")
        t0 = time.perf_counter()
        d = map_frame(org, "wegive.donors", donor_frame)
        t1 = time.perf_counter()
        t = map_frame(org, "wegive.transactions", tx_frame)
        counts = (len(d.mapped), len(d.rejected), len(t.mapped), len(t.rejected))
    else:
        import duckdb

        con = duckdb.connect()
        con.register("donors", donor_frame)
        tx_arrow = tx_frame  # DuckDB reads the list-of-struct column straight from pandas
        con.register("tx", tx_arrow)
        t0 = time.perf_counter()
        d = con.execute(DONOR_SQL).df()
        t1 = time.perf_counter()
        t = con.execute(TX_SQL).df()
        counts = (len(d), n_donors - len(d), len(t), n_tx - len(t))
    end = time.perf_counter()
    return {"donors_s": t1 - t0, "tx_s": end - t1, "total_s": end - start, "counts": counts,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--donors", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=None, help="default: as many as donors")
    parser.add_argument("--child", choices=["yaml", "sql"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_tx = args.transactions if args.transactions is not None else args.donors
    if args.child:
        print(json.dumps(run_child(args.child, args.donors, n_tx)))
        return
    results = {}
    for mode in ("yaml", "sql"):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--donors", str(args.donors),
                              "--transactions", str(n_tx)], capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"mapping throughput: {args.donors:,} WeGive donors, {n_tx:,} transactions")
    print(f"{'approach':<22}{'donors s':>10}{'donors rows/s':>16}{'tx s':>9}{'tx rows/s':>13}{'peak RSS MB':>13}")
    for mode, label in (("yaml", "YAML mapping (pandas)"), ("sql", "hand-written DuckDB")):
        r = results[mode]
        print(f"{label:<22}{r['donors_s']:>10.2f}{args.donors / r['donors_s']:>16,.0f}{r['tx_s']:>9.2f}"
              f"{n_tx / r['tx_s']:>13,.0f}{r['peak_rss_mb']:>13,.0f}")
    yaml_r, sql_r = results["yaml"], results["sql"]
    print(f"mapped/rejected (yaml): donors {yaml_r['counts'][0]:,}/{yaml_r['counts'][1]:,}, "
          f"transactions {yaml_r['counts'][2]:,}/{yaml_r['counts'][3]:,}")
    print(f"ratio yaml/sql: donors {yaml_r['donors_s'] / sql_r['donors_s']:.2f}x, "
          f"transactions {yaml_r['tx_s'] / sql_r['tx_s']:.2f}x")


if __name__ == "__main__":
    main()
