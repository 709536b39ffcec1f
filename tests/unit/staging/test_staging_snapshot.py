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


def _contents(path_or_store) -> tuple[dict[str, list], dict[str, tuple]]:
    """Every table's rows (sorted, as text) and every sequence's state of a database file, read fresh."""
    path = getattr(path_or_store, "path", path_or_store)
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS db (READ_ONLY)", [str(path)])
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'db' ORDER BY 1").fetchall()]
        tables = {name: sorted(map(repr, con.execute(f'SELECT * FROM db.main."{name}"').fetchall()))
                  for name in names}
        sequences = {r[0]: r[1:] for r in con.execute(
            "SELECT sequence_name, start_value, increment_by, last_value FROM duckdb_sequences() "
            "WHERE database_name = 'db'").fetchall()}
        ddl = sorted(r[0] for r in con.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = 'db'").fetchall())
    finally:
        con.close()
    return {"tables": tables, "sequences": sequences, "ddl": ddl}


def test_the_snapshot_equals_the_staging_database_table_by_table(store, rows):
    first = _sync(store, rows, "r1", 3)
    assert _contents(first.path) == _contents(store)
    assert _contents(publish_snapshot(store).path) == _contents(store)  # nothing changed
    # a run that adds rows, then changes that update a staged row, drop a table, add one, quarantine a record
    # (a sequence advances) and empty another table
    _sync(store, rows, "r2", 1)
    assert _contents(first.path) == _contents(store)
    store.write_staged("constituents", rows.constituents(rows.constituent("r1-0", first_name="Grace")),
                       source="wegive", run_id="r3")
    store.write_quarantine([{"source": "wegive", "entity": "donors", "source_id": "9", "reasons": ["bad"]}],
                           run_id="r3")
    with store.write() as con:
        con.execute("DROP TABLE review_queue")
        con.execute("CREATE TABLE analyst_notes (note VARCHAR, n INTEGER)")
        con.execute("INSERT INTO analyst_notes VALUES ('same', 1), ('same', 1)")  # identical rows
        con.execute("DELETE FROM sync_log")
    third = publish_snapshot(store)
    assert _contents(third.path) == _contents(store)
    assert "review_queue" not in third.tables and third.tables["analyst_notes"] == 2
    assert oct(third.path.stat().st_mode & 0o777) == "0o444"
    assert sorted(p.name for p in third.path.parent.iterdir()) == ["acme.duckdb", "acme_staging.duckdb"]


def test_an_unreadable_previous_snapshot_is_replaced(store, rows):
    info = _sync(store, rows, "r1", 2)
    info.path.chmod(0o644)
    info.path.write_bytes(b"not a duckdb file at all" * 100)
    again = publish_snapshot(store)
    assert _contents(again.path) == _contents(store)
    assert again.tables["stg_constituents"] == 2


def test_a_previous_snapshot_of_another_storage_version_is_replaced_by_a_v1_file(store, rows):
    _sync(store, rows, "r1", 1)
    store.snapshot_path.chmod(0o644)
    store.snapshot_path.unlink()
    con = duckdb.connect()
    try:  # a snapshot someone wrote in the current storage format: readable, but not for DuckDB 1.x
        con.execute("ATTACH ? AS s (STORAGE_VERSION 'v1.4.0')", [str(store.snapshot_path)])
        con.execute("CREATE TABLE s.stale (x INTEGER)")
    finally:
        con.close()
    info = publish_snapshot(store)
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE NOT internal").fetchone()[0]
    finally:
        con.close()
    assert tags["storage_version"].startswith(SNAPSHOT_STORAGE_VERSION)
    assert _contents(info.path) == _contents(store)


def _storage_version(path) -> str:
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS db (READ_ONLY)", [str(path)])
        return con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'db'"
                           ).fetchone()[0]
    finally:
        con.close()


def test_a_staging_file_in_the_snapshot_format_is_published_as_its_bytes(store, rows):
    """A staging file this version created is in the snapshot's format: publishing it is a file copy."""
    info = _sync(store, rows, "r1", 3)
    assert _storage_version(store.path) == _storage_version(info.path) == f"{SNAPSHOT_STORAGE_VERSION}+"
    assert info.path.stat().st_size == store.path.stat().st_size  # the bytes, not a rewrite
    assert _contents(info.path) == _contents(store)
    _sync(store, rows, "r2", 2)
    assert _contents(store.snapshot_path) == _contents(store)


def test_a_staging_file_in_a_newer_format_is_rewritten_into_a_v1_snapshot(store, rows):
    """A staging file an older version of this tool created (DuckDB 2.0's own format) stays as it is; its
    snapshot is rewritten table by table into the format DuckDB 1.x reads."""
    duckdb.connect(str(store.path)).close()  # created without the tool's storage setting
    info = _sync(store, rows, "r1", 3)
    assert _storage_version(store.path) != f"{SNAPSHOT_STORAGE_VERSION}+"
    assert _storage_version(info.path) == f"{SNAPSHOT_STORAGE_VERSION}+"
    assert _contents(info.path) == _contents(store)
