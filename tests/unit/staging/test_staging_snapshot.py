"""The analyst snapshot: an analyst can hold it open in another process across a whole sync; the sync is
not blocked, the analyst keeps seeing the last complete run until they reconnect, then sees the new one."""

import subprocess
import sys
import textwrap

import duckdb

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.ledgers import LogEntry
from bloom_pipeline.staging.snapshot import SNAPSHOT_STORAGE_VERSION, publish_snapshot

ANALYST = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    query = "SELECT count(*) FROM stg_constituents"
    print(con.execute(query).fetchone()[0], flush=True)
    sys.stdin.readline()                      # the sync runs meanwhile
    print(con.execute(query).fetchone()[0], flush=True)
    runs = con.execute("SELECT string_agg(run_id, ',' ORDER BY run_id) FROM sync_runs").fetchone()[0]
    print(runs, flush=True)
""")


def _sync(store, rows, run_id, n):
    """A whole (small) run: staged rows, log rows, a run record, then the snapshot."""
    with store.write() as con:
        ledgers.start_run(con, run_id, org="acme", direction="push")
    frame = rows.constituents(*(rows.constituent(f"{run_id}-{i}") for i in range(n)))
    store.write_staged("constituents", frame, source="wegive", run_id=run_id)
    with store.write() as con:
        ledgers.append_log(
            con, run_id, [LogEntry("constituents", "wegive", f"{run_id}-{i}", "created") for i in range(n)]
        )
        ledgers.finish_run(con, run_id, status="succeeded")
    return publish_snapshot(store)


def _count_now(path) -> int:
    """A fresh reader (ATTACH bypasses DuckDB's per-process instance cache)."""
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS snap (READ_ONLY)", [str(path)])
        return con.execute("SELECT count(*) FROM snap.stg_constituents").fetchone()[0]
    finally:
        con.close()


def test_analyst_holds_the_snapshot_open_across_a_full_sync(store, rows):
    info = _sync(store, rows, "r1", 3)
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(info.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout.readline().strip() == "3"
        second = _sync(store, rows, "r2", 5)  # the whole run happens while the analyst's connection is open
        assert second.tables["stg_constituents"] == 8
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        out, err = analyst.communicate(timeout=30)
    finally:
        if analyst.poll() is None:
            analyst.kill()
    assert analyst.returncode == 0, err
    assert out.split() == ["3", "r1"]  # still the old, complete run — never half of the new one
    assert _count_now(info.path) == 8  # a reader that reconnects sees the new run


def test_snapshot_is_readable_by_duckdb_1x_and_leaves_no_temp_files(store, rows):
    info = _sync(store, rows, "r1", 2)
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE NOT internal").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert tags["storage_version"].startswith(SNAPSHOT_STORAGE_VERSION)
    assert {"stg_constituents", "sync_log", "sync_runs", "quarantine", "review_queue"} <= tables
    assert sorted(p.name for p in info.path.parent.iterdir()) == ["acme.duckdb", "acme_staging.duckdb"]


def test_staging_writes_are_not_blocked_by_an_open_snapshot_in_this_process(store, rows):
    info = _sync(store, rows, "r1", 1)
    held = duckdb.connect(str(info.path), read_only=True)
    try:
        _sync(store, rows, "r2", 1)
        assert held.execute("SELECT count(*) FROM stg_constituents").fetchone()[0] == 1
    finally:
        held.close()
    assert _count_now(info.path) == 2
