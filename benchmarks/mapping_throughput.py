"""Mapping throughput: N generated WeGive donors and transactions through the YAML mapping, beside the same
mapping hand-written as DuckDB SQL (the reference).

The input is generated once and written to Parquet; each approach runs in its own child process that loads
the same Parquet files into the same pandas frames (DuckDB scans those frames, as the sync hands map_frame
frames or record lists), so both do the same loading and both start from the same input in memory. Timing
covers the mapping only. Prints wall and CPU time, rows/s, the 1-minute load average (the machine is
shared: wall time under load says little without it), peak RSS, the RSS of the loaded input, and the
mapping's own peak above it. A benchmark, not a test.

How RSS and CPU are counted: map_frame maps inputs of >= 200,000 rows on two processes (the caller plus a
spawned worker, see bloom_pipeline/mapping/parallel.py), so one process's figures would flatter it. Peak
RSS is the peak of the SUM of resident memory over the benchmark child and all its descendants (the
mapping workers), sampled every 20 ms from /proc (a spike shorter than that can be missed); the largest
single-process peak (getrusage of self and of reaped children) is printed beside it. CPU time is the
benchmark child's plus that of its reaped descendants (the workers are joined before map_frame returns).

Same work? The SQL is the reference mapping, written by hand: the YAML path's payload text byte for byte,
and so the same payload_hash, for this generated data (checked over the whole 1M input: same rows, same
hashes, in order). It relies on the data's shapes (no odd whitespace, no card or bank details the mapping
reads, addresses always present) and writes no per-record error texts, no rejected rows with their raw JSON,
no dropped-value rows and no canonical columns. The YAML side does all of that. (Before Dec 2 2026 the SQL's
payloads were not the YAML's: keys in another order, nulls written, phones reformatted as "(617) 354-4189",
companies without email or phone, donors with an invalid email rejected, cards as CreditCard: cheaper in
nothing, but not the same work either.)

    python benchmarks/mapping_throughput.py                       # 1,000,000 donors + transactions
    python benchmarks/mapping_throughput.py --donors 100000 --transactions 200000
    python benchmarks/mapping_throughput.py --only yaml --data-dir /tmp/bench   # keep the input
    python benchmarks/mapping_throughput.py --only yaml --workers 1             # the serial path
    python benchmarks/mapping_throughput.py --donors 10000000 --only stream    # 10M donors, streamed

Three approaches: `yaml` (map_frame over the loaded frames, as the SQL scans them), `sql` (the reference),
`stream` (map_stream over the Parquet files read in record batches: the whole input is never in memory, and
each chunk's result is counted and let go, as a backfill writes it to staging and lets it go; reading the
Parquet is inside its timing). Above 2,000,000 donors only `stream` runs by default: the in-memory
approaches would need the whole input and output in memory (about 25 GB at 10M).

Targets (Performance issue), printed as [met] / [MISSED] at the end; the script exits 1 when one is missed:
  - yaml within 1.3x of the SQL's wall time, donors and transactions (when both ran);
  - stream peak RSS (summed over processes) <= 2 GB up to 1,000,000 donors;
  - stream peak RSS <= 4 GB above that (10M: the chunks in flight are the same size as at 1M, and what
    grows with the input is the id column the duplicate screen counts, 80 MB at 10M whole-number ids; 4 GB is
    that with a wide margin, a seventh of what the in-memory path would need).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from targets import report  # benchmarks/targets.py, beside this script

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

# The demo org's donor mapping written by hand: the YAML path's payload text byte for byte for this data (keys
# sorted, nulls left out, the phone as the donor typed it, an email that is no email left out and the donor
# still mapped, companies with their Work email and phone), hashed as `payload_hash` hashes it.
DONOR_SQL = f"""
WITH d AS (
  SELECT id, type = 'individual' AS person, trim(name) AS full_name,
         coalesce(nullif(trim(first_name), ''), 'FNU') AS first, nullif(trim(middle_name), '') AS middle,
         coalesce(nullif(trim(last_name), ''), 'LNU') AS last, nullif(trim(email_1), '') AS email,
         nullif(trim(mobile_phone), '') AS phone, "mailing_address.address_1" AS street,
         "mailing_address.city" AS city, "mailing_address.state" AS state, "mailing_address.zip" AS zip,
         coalesce("mailing_address.country", 'US') AS country
  FROM donors)
SELECT CAST(id AS VARCHAR) AS source_id, payload, sha256(payload) AS payload_hash FROM (
  SELECT id, '{{"CustomValues":[{{"FieldId":901,"Value":"' || id || '"}}]'
    || CASE WHEN person THEN ',"FirstName":' || to_json(first) || ',"LastName":' || to_json(last)
            ELSE ',"FullName":' || to_json(full_name) END
    || CASE WHEN person AND middle IS NOT NULL THEN ',"MiddleName":' || to_json(middle) ELSE '' END
    || ',"PrimaryAddress":' || json_object('City', city, 'Country', country, 'IsPrimary', true,
                                           'PostalCode', zip, 'State', state, 'Street', street,
                                           'Type', CASE WHEN person THEN 'Home' ELSE 'Work' END)
    || CASE WHEN email IS NOT NULL AND regexp_full_match(email, '{EMAIL_RE}')
            THEN ',"PrimaryEmail":' || json_object('IsPrimary', true, 'Type', CASE WHEN person THEN 'Home'
                                                   ELSE 'Work' END, 'Value', email) ELSE '' END
    || CASE WHEN phone IS NOT NULL THEN ',"PrimaryPhone":' || json_object('IsPrimary', true, 'Number', phone,
                                        'Type', CASE WHEN person THEN 'Mobile' ELSE 'Work' END) ELSE '' END
    || CASE WHEN person THEN ',"Type":"Individual"}}' ELSE ',"Type":"Organization"}}' END AS payload
  FROM d)
"""

# The demo org's transaction mapping by hand, the same way: the generated data has no card or bank details the
# mapping reads (`source.issuer`, `source.transit_number`, ...), so cards and bank payments are Method None
# with the mapping's note on each designation, as are checks and PayPal; amounts are the cents / 100 doubles
# the Python float repr shows; one designation per allocation (or the gift's fund), each with the campaign
# default and the gift's correlation value.
TX_NOTE = """CASE source_type
      WHEN 'card' THEN 'WeGive payment details incomplete for CreditCard (missing CreditCardType, '
                       || 'CreditCardLastFourDigits, CreditCardExpMonth, CreditCardExpYear); recorded as None'
      WHEN 'bank' THEN 'WeGive payment details incomplete for Eft (missing EftAccountType, EftLastFourDigits, '
                       || 'EftRoutingNumber); recorded as None'
      WHEN 'check' THEN 'Paid by check (WeGive; the API has no check number)'
      WHEN 'paypal' THEN 'Paid with PayPal (WeGive)' END"""

TX_SQL = f"""
WITH t AS (
  SELECT *, ',"CampaignId":"ref:bloomerang.campaigns:name=Annual Fund 2026","CustomValues":[{{"FieldId":911,"Value":"'
            || id || '"}}],"FundId":"ref:wegive.funds:' AS middle,
         '"' || coalesce(',"Note":' || to_json({TX_NOTE}), '') || ',"Type":"Donation"}}' AS tail
  FROM tx WHERE status IN ('Success', 'Refunded', 'Disputed') AND amount > 0)
SELECT CAST(id AS VARCHAR) AS source_id, payload, sha256(payload) AS payload_hash FROM (
  SELECT id, '{{"AccountId":"ref:wegive.donors:' || "owner.id" || '","Amount":' || to_json(amount / 100.0)
    || ',"Date":"' || strftime(timezone('America/Denver', CAST(created_at AS TIMESTAMPTZ)), '%Y-%m-%d')
    || '","Designations":['
    || CASE WHEN fund_allocations IS NULL
            THEN '{{"Amount":' || to_json(amount / 100.0) || middle || "fund.id" || tail
            ELSE array_to_string(list_transform(fund_allocations, lambda a: '{{"Amount":' || to_json(a.amount / 100.0)
                                 || middle || a.fund.id || tail), ',') END
    || '],"Method":"' || CASE source_type WHEN 'cash' THEN 'Cash' ELSE 'None' END || '"}}' AS payload
  FROM t)
"""


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class TreeRss:
    """Peak of the summed RSS of this process and all its descendants, sampled in a background thread.

    Reads /proc directly (each thread's `children` list, each process's `statm`): about 0.1 ms a sample,
    where psutil's process-table scan took 1.4 ms, CPU the measured mapping would lose."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak_mb = interval, 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree(pid: int) -> list[int]:
        pids, todo = [], [pid]
        while todo:
            current = todo.pop()
            pids.append(current)
            for task in Path(f"/proc/{current}/task").glob("*/children"):
                try:
                    todo += [int(c) for c in task.read_text().split()]
                except OSError:  # exited meanwhile
                    continue
        return pids

    def sample(self) -> float:
        total = 0
        for pid in self._tree(os.getpid()):
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.PAGE
            except (OSError, IndexError, ValueError):  # a worker that just exited
                continue
        self.peak_mb = max(self.peak_mb, total / 2**20)
        return total / 2**20

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeRss:
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()


def cpu_s() -> float:
    """CPU time of this process plus its reaped children (the mapping's worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


GENERATE_ROWS = 1_000_000  # rows generated at once (10M at once would take some 20 GB here)
STREAM_BATCH = 100_000  # rows of one Parquet record batch the stream reads
STREAM_ONLY_ABOVE = 2_000_000  # donors above which only `stream` runs by default
TARGET_RATIO = 1.3
TARGET_STREAM_MB = 2048  # up to 1M donors
TARGET_STREAM_BIG_MB = 4096  # above 1M donors (see the docstring)


def _write_parts(path: Path, n: int, make: Any) -> None:
    """`make(count, offset, seed)` frames of GENERATE_ROWS rows written as one Parquet file. The first part
    uses the generator's own seed, so inputs of up to a million rows are the ones earlier figures used."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for part, offset in enumerate(range(0, n, GENERATE_ROWS)):
            table = pa.Table.from_pandas(make(min(GENERATE_ROWS, n - offset), offset, part), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def write_input(folder: Path, n_donors: int, n_tx: int) -> tuple[Path, Path]:
    """Generate the input once, as Parquet files all approaches read the same way."""
    donor_path, tx_path = folder / f"donors_{n_donors}.parquet", folder / f"tx_{n_tx}_{n_donors}.parquet"
    if n_donors <= GENERATE_ROWS and not donor_path.exists():
        donors(n_donors).to_parquet(donor_path, index=False)
    elif not donor_path.exists():
        def donor_part(count: int, offset: int, part: int) -> pd.DataFrame:
            frame = donors(count, seed=7 + part)
            frame["id"] += offset
            # the generated texts carry the row number: shift them too (unique emails across parts)
            frame["email_1"] = frame["email_1"].str.replace(r"(\d+)", lambda m: str(int(m.group(1)) + offset),
                                                            regex=True)
            return frame
        _write_parts(donor_path, n_donors, donor_part)
    if n_tx == 0:  # donors only (`--transactions 0`, the streamed approach)
        pass
    elif n_tx <= GENERATE_ROWS and not tx_path.exists():
        transactions(n_tx, n_donors).to_parquet(tx_path, index=False)
    elif not tx_path.exists():
        def tx_part(count: int, offset: int, part: int) -> pd.DataFrame:
            frame = transactions(count, n_donors, seed=8 + part)
            frame["id"] += offset
            return frame
        _write_parts(tx_path, n_tx, tx_part)
    return donor_path, tx_path


def load_input(donor_path: Path, tx_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same pandas frames for both approaches (Parquet gives lists as arrays: back to the API's lists)."""
    donor_frame = pd.read_parquet(donor_path)
    tx_frame = pd.read_parquet(tx_path)
    tx_frame["fund_allocations"] = [None if v is None else [dict(a) for a in v] for v in tx_frame["fund_allocations"]]
    return donor_frame, tx_frame


def run_child(mode: str, donor_path: Path, tx_path: Path, workers: int | None = None) -> dict[str, Any]:
    with TreeRss() as tree:
        if mode == "stream":
            return _measure_stream(donor_path, tx_path, tree, workers)
        return _measure(mode, donor_path, tx_path, tree, workers)


def _batches(path: Path, columns: list[str] | None = None) -> Any:
    """The Parquet file as pandas frames of STREAM_BATCH rows (lists of allocations as the API's lists)."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=STREAM_BATCH, columns=columns):
        frame = batch.to_pandas()
        if "fund_allocations" in frame:
            frame["fund_allocations"] = [None if v is None else [dict(a) for a in v]
                                         for v in frame["fund_allocations"]]
        yield frame


def _measure_stream(donor_path: Path, tx_path: Path, tree: TreeRss, workers: int | None) -> dict[str, Any]:
    """map_stream over the Parquet files: ids counted from the id column, then the records batch by batch;
    each chunk's result is counted and dropped."""
    sys.path.insert(0, str(REPO))
    from bloom_pipeline.mapping.compile import map_frame, map_stream, repeated_ids
    from bloom_pipeline.mapping.loader import load_org

    org = load_org("demo", REPO / "mappings")
    map_frame(org, "wegive.donors", next(_batches(donor_path)).head(100))  # warm imports outside the timing
    rss_before = rss_mb()
    out: dict[str, Any] = {}
    counts = []
    for key, entity, path in (("donors", "wegive.donors", donor_path), ("tx", "wegive.transactions", tx_path)):
        if not path.exists():  # --transactions 0
            out[f"{key}_s"] = out[f"{key}_cpu_s"] = float("nan")
            counts += [0, 0]
            continue
        t0, c0 = time.perf_counter(), cpu_s()
        repeated = repeated_ids(_batches(path, ["id"]))
        mapped = rejected = 0
        for part in map_stream(org, entity, lambda path=path: _batches(path), workers=workers, repeated=repeated):
            mapped, rejected = mapped + len(part.mapped), rejected + len(part.rejected)
        out[f"{key}_s"], out[f"{key}_cpu_s"] = time.perf_counter() - t0, cpu_s() - c0
        counts += [mapped, rejected]
        tree.sample()
        if key == "donors":
            out["donors_peak_mb"] = tree.peak_mb
    tree.sample()
    single = max(resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {**out, "counts": tuple(counts), "peak_rss_mb": tree.peak_mb, "single_peak_mb": single,
            "input_rss_mb": 0.0, "mapping_peak_mb": tree.peak_mb - rss_before}


def _measure(mode: str, donor_path: Path, tx_path: Path, tree: TreeRss, workers: int | None) -> dict[str, Any]:
    rss_start = rss_mb()
    donor_frame, tx_frame = load_input(donor_path, tx_path)
    rss_input = rss_mb()
    if mode == "yaml":
        sys.path.insert(0, str(REPO))
        from bloom_pipeline.mapping.compile import map_frame
        from bloom_pipeline.mapping.loader import load_org

        org = load_org("demo", REPO / "mappings")
        map_frame(org, "wegive.donors", donor_frame.head(100))  # warm imports and caches outside the timing
        rss_before = rss_mb()
        t0, c0 = time.perf_counter(), cpu_s()
        d = map_frame(org, "wegive.donors", donor_frame, workers=workers)
        t1, c1 = time.perf_counter(), cpu_s()
        d_counts = (len(d.mapped), len(d.rejected))
        tree.sample()
        donors_peak = tree.peak_mb
        del d
        t2, c2 = time.perf_counter(), cpu_s()
        t = map_frame(org, "wegive.transactions", tx_frame, workers=workers)
        t3, c3 = time.perf_counter(), cpu_s()
        counts = (*d_counts, len(t.mapped), len(t.rejected))
    else:
        import duckdb

        con = duckdb.connect()
        con.register("donors", donor_frame)
        con.register("tx", tx_frame)  # DuckDB scans the same pandas frames, list-of-struct column included
        rss_before = rss_mb()
        t0, c0 = time.perf_counter(), cpu_s()
        d = con.execute(DONOR_SQL).df()
        t1, c1 = time.perf_counter(), cpu_s()
        d_count = len(d)
        tree.sample()
        donors_peak = tree.peak_mb
        del d
        t2, c2 = time.perf_counter(), cpu_s()
        t = con.execute(TX_SQL).df()
        t3, c3 = time.perf_counter(), cpu_s()
        counts = (d_count, len(donor_frame) - d_count, len(t), len(tx_frame) - len(t))
    tree.sample()
    single = max(resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"donors_s": t1 - t0, "donors_cpu_s": c1 - c0, "tx_s": t3 - t2, "tx_cpu_s": c3 - c2, "counts": counts,
            "peak_rss_mb": tree.peak_mb, "single_peak_mb": single, "donors_peak_mb": donors_peak,
            "input_rss_mb": rss_input - rss_start, "mapping_peak_mb": tree.peak_mb - rss_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--donors", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=None,
                        help="default: as many as donors; 0: donors only (the stream approach)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the Parquet input is kept (default: temp)")
    parser.add_argument("--only", choices=["yaml", "sql", "stream"], action="append",
                        help="run one approach (repeatable; default: all three, only stream above 2M donors)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes map_frame maps with (default: its own, two on two cores; 1: serial)")
    parser.add_argument("--child", choices=["yaml", "sql", "stream"], help=argparse.SUPPRESS)
    parser.add_argument("--input", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_tx = args.transactions if args.transactions is not None else args.donors
    if args.child:
        print(json.dumps(run_child(args.child, *args.input, workers=args.workers)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_input(folder, args.donors, n_tx)
        results = {}
        load_before = os.getloadavg()
        default = ["stream"] if args.donors > STREAM_ONLY_ABOVE else ["yaml", "sql", "stream"]
        for mode in args.only or default:
            workers = [] if args.workers is None else ["--workers", str(args.workers)]
            out = subprocess.run([sys.executable, __file__, "--child", mode, "--input", *map(str, paths), *workers],
                                 capture_output=True, text=True, check=True)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        load_after = os.getloadavg()
    print(f"mapping throughput: {args.donors:,} WeGive donors, {n_tx:,} transactions; {os.cpu_count()} cores; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min)")
    print(f"{'approach':<22}{'donors s':>10}{'(cpu s)':>9}{'donors rows/s':>15}{'tx s':>8}{'(cpu s)':>9}"
          f"{'tx rows/s':>11}{'peak RSS MB':>13}{'(1 proc)':>9}{'input MB':>10}{'mapping MB':>12}")
    labels = {"yaml": "YAML mapping", "sql": "hand-written DuckDB", "stream": "YAML, streamed"}
    for mode, r in results.items():
        print(f"{labels[mode]:<22}{r['donors_s']:>10.2f}{r['donors_cpu_s']:>9.2f}{args.donors / r['donors_s']:>15,.0f}"
              f"{r['tx_s']:>8.2f}{r['tx_cpu_s']:>9.2f}{n_tx / r['tx_s']:>11,.0f}{r['peak_rss_mb']:>13,.0f}"
              f"{r['single_peak_mb']:>9,.0f}"
              f"{r['input_rss_mb']:>10,.0f}{r['mapping_peak_mb']:>12,.0f}")
    print("peak RSS: summed over the benchmark child and its worker processes (input frames included), sampled\n"
          "every 20 ms; (1 proc): the largest single process; input MB: RSS the loaded input frames took;\n"
          "mapping MB: peak summed RSS above this process's RSS just before mapping (what the mapping needed).\n"
          "cpu s: CPU time of the child and its workers (all threads: DuckDB uses every core, the YAML mapping\n"
          "one per process, two processes for inputs of >= 200,000 rows).")
    for mode, r in results.items():
        print(f"peak RSS ({mode}) up to the end of the donors mapping (donor input, tx input, donor result): "
              f"{r['donors_peak_mb']:,.0f} MB")
    for mode, r in results.items():
        c = r["counts"]
        print(f"mapped/rejected ({mode}): donors {c[0]:,}/{c[1]:,}, transactions {c[2]:,}/{c[3]:,}")
    if "yaml" in results and "sql" in results:
        yaml_r, sql_r = results["yaml"], results["sql"]
        print(f"ratio yaml/sql (wall): donors {yaml_r['donors_s'] / sql_r['donors_s']:.2f}x, "
              f"transactions {yaml_r['tx_s'] / sql_r['tx_s']:.2f}x; (cpu): donors "
              f"{yaml_r['donors_cpu_s'] / sql_r['donors_cpu_s']:.2f}x, "
              f"transactions {yaml_r['tx_cpu_s'] / sql_r['tx_cpu_s']:.2f}x")
    sys.exit(report(checks(results, args.donors)))


def checks(results: dict[str, dict[str, Any]], n_donors: int) -> list[tuple[str, bool]]:
    """The targets of the docstring, for the approaches this run ran."""
    out = []
    if "yaml" in results and "sql" in results:
        for key, name in (("donors_s", "donors"), ("tx_s", "transactions")):
            ratio = results["yaml"][key] / results["sql"][key]
            out.append((f"{name}: YAML {ratio:.2f}x the SQL's wall time (<= {TARGET_RATIO}x)", ratio <= TARGET_RATIO))
    if "stream" in results:
        bound = TARGET_STREAM_MB if n_donors <= 1_000_000 else TARGET_STREAM_BIG_MB
        peak = results["stream"]["peak_rss_mb"]
        out.append((f"streamed: peak RSS {peak:,.0f} MB summed over processes (<= {bound:,} MB at {n_donors:,} "
                    "donors)", peak <= bound))
    return out


if __name__ == "__main__":
    main()
