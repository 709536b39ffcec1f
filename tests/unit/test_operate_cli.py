"""Operate from anywhere: ``--data-dir`` on every reading command, ``query`` on the analyst snapshot, the
packaged mappings found from any folder, the demo's last line, one-line product errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from bloom_pipeline import settings
from bloom_pipeline.cli import cli
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.snapshot import publish_snapshot
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.demo import query_command
from bloom_pipeline.sync.progress import state_path

REPO = Path(__file__).resolve().parents[2]


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder with one finished run of org ``acme`` and its published snapshot."""
    root = tmp_path / "elsewhere"
    store = StagingStore.for_org("acme", data_dir=root)
    with store.write() as con:
        ledgers.start_run(con, "r1", org="acme", direction="both", dry_run=False)
        ledgers.finish_run(con, "r1", status="succeeded", counts={}, message=None)
    publish_snapshot(store)
    return root


# -- --data-dir -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["review", "list"], ["review", "resolve"], ["query"], ["sync"],
                                     ["demo"]])
def test_every_reading_command_takes_data_dir(command: list[str]) -> None:
    result = _invoke(*command, "--help")
    assert result.exit_code == 0 and "--data-dir DIR" in result.output, result.output


def test_status_and_review_read_the_given_data_dir(data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./data here
    monkeypatch.delenv("BLOOM_DATA_DIR", raising=False)
    status = _invoke("status", "--org", "acme", "--data-dir", str(data))
    assert status.exit_code == 0, status.output
    assert f"Sync history of org acme — {data / 'acme_staging.duckdb'}" in status.output
    assert "r1" in status.output and "succeeded" in status.output
    listed = _invoke("review", "list", "--org", "acme", "--data-dir", str(data))
    assert listed.exit_code == 0 and "No open review items for org acme." in listed.output
    resolved = _invoke("review", "resolve", "--org", "acme", "--id", "9", "--take", "source", "--data-dir", str(data))
    assert resolved.exit_code == 1 and "no review item 9 for org acme" in resolved.output
    assert _invoke("status", "--org", "acme").exit_code == 1  # ./data has nothing
    monkeypatch.setenv("BLOOM_DATA_DIR", str(data))  # the same default as sync
    assert _invoke("status", "--org", "acme").exit_code == 0


def test_status_shows_a_running_sync_without_opening_the_staging_file(data: Path) -> None:
    state_path(data, "acme").write_text(json.dumps({
        "run_id": "r2", "pid": os.getpid(), "started_at": "2026-11-23 18:53:10", "updated_at": 1.0,
        "finished": ["extract: done in 12s (40 Bloomerang requests)"],
        "line": "apply constituents: 1200/2089 (57%), 1150 writes, 3 failed, 16.7 writes/min, ETA 53m"}))
    result = _invoke("status", "--org", "acme", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "(snapshot of the last finished run; a sync is running)" in lines[0]
    assert lines[1].startswith("Running now: run r2 (pid ") and "no progress for" in lines[1]
    assert lines[2] == "  extract: done in 12s (40 Bloomerang requests)"
    assert lines[3].startswith("  apply constituents: 1200/2089 (57%)") and lines[3].endswith("ETA 53m")
    (data / "acme.duckdb").unlink()  # a first run: no snapshot yet, and the sync holds the staging file
    first = _invoke("status", "--org", "acme", "--data-dir", str(data))
    assert first.exit_code == 0 and "no finished run yet" in first.output and "Running now: run r2" in first.output


# -- query ----------------------------------------------------------------------------------------------


def test_query_prints_a_table_csv_and_json(data: Path) -> None:
    sql = "SELECT run_id, status, 2 AS n, NULL AS nothing FROM sync_runs"
    table = _invoke("query", "--org", "acme", "--data-dir", str(data), sql)
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split() == ["run_id", "status", "n", "nothing"]
    assert table.output.splitlines()[2].split() == ["r1", "succeeded", "2", "NULL"]
    assert table.output.splitlines()[-1] == "(1 row)"
    csv_out = _invoke("query", "--org", "acme", "--data-dir", str(data), "--format", "csv", sql)
    assert csv_out.output.splitlines() == ["run_id,status,n,nothing", "r1,succeeded,2,"]
    as_json = _invoke("query", "--org", "acme", "--data-dir", str(data), "--format", "json", sql)
    assert json.loads(as_json.output) == [{"run_id": "r1", "status": "succeeded", "n": 2, "nothing": None}]


def test_query_errors_are_one_line(data: Path, tmp_path: Path) -> None:
    missing = _invoke("query", "--org", "nosuch", "--data-dir", str(data), "SELECT 1")
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
    assert "no analyst snapshot for org 'nosuch'" in missing.output
    (data / "junk.duckdb").write_text("not a database")
    corrupt = _invoke("query", "--org", "junk", "--data-dir", str(data), "SELECT 1")
    assert corrupt.exit_code == 2 and "not a readable DuckDB snapshot" in corrupt.output
    assert corrupt.output.count("\n") == 1
    bad_sql = _invoke("query", "--org", "acme", "--data-dir", str(data), "SELECT nope FROM sync_runs")
    assert bad_sql.exit_code == 1 and bad_sql.output.startswith("Error: Binder Error")
    assert bad_sql.output.count("\n") == 1 and "Traceback" not in bad_sql.output


def test_query_is_read_only_and_reads_nothing_else(data: Path) -> None:
    for sql in ("DELETE FROM sync_runs", "CREATE TABLE t (a INT)", "SELECT * FROM read_csv('/etc/hostname')",
                "SET enable_external_access = true"):
        result = _invoke("query", "--org", "acme", "--data-dir", str(data), sql)
        assert result.exit_code == 1, (sql, result.output)
    con = duckdb.connect()
    con.execute("ATTACH ? AS s (READ_ONLY)", [str(data / "acme.duckdb")])
    assert con.execute("SELECT count(*) FROM s.sync_runs").fetchone()[0] == 1
    con.close()


def test_the_demo_prints_a_query_command_that_works(data: Path) -> None:
    assert query_command(Path("data/demo.duckdb")) == \
        'bloom-pipeline query --org demo "SELECT action, count(*) FROM sync_log GROUP BY 1"'
    line = query_command(data / "acme.duckdb", org="acme")
    assert line.startswith(f"bloom-pipeline query --org acme --data-dir {data} ")
    sql = line.split('"')[1]
    result = _invoke("query", "--org", "acme", "--data-dir", str(data), sql)
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "(0 rows)", result.output


# -- mappings from anywhere -----------------------------------------------------------------------------


def test_mappings_dir_precedence(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BLOOM_MAPPINGS_DIR", raising=False)
    assert settings.mappings_dir() == settings.PACKAGED_MAPPINGS_DIR  # no ./mappings: the packaged copy
    assert (settings.PACKAGED_MAPPINGS_DIR / "orgs" / "demo.yaml").is_file()
    (tmp_path / "mappings").mkdir()
    assert settings.mappings_dir() == Path("mappings")  # a mappings/ in the current folder wins
    monkeypatch.setenv("BLOOM_MAPPINGS_DIR", "/from/env")
    assert settings.mappings_dir() == Path("/from/env")
    assert settings.mappings_dir("given") == Path("given")  # --mappings-dir over everything


def test_the_packaged_mappings_are_the_repository_ones() -> None:
    """One source: the package's copy is the repository's ``mappings/`` (a symlink here; files in a wheel)."""
    for name in ("orgs/demo.yaml", "defaults/wegive.yaml", "defaults/handbid.yaml"):
        assert (settings.PACKAGED_MAPPINGS_DIR / name).read_bytes() == (REPO / "mappings" / name).read_bytes()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"mappings_default/*.yaml", "mappings_default/*/*.yaml"' in pyproject


def test_mapping_validate_from_another_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BLOOM_MAPPINGS_DIR", raising=False)
    result = _invoke("mapping", "validate")
    assert result.exit_code == 0 and result.output.startswith("OK: "), result.output


# -- one line per product error ---------------------------------------------------------------------------


def test_a_product_error_is_one_line_with_its_exit_status(data: Path) -> None:
    (data / "broken_staging.duckdb").write_text("not a database")
    result = _invoke("review", "resolve", "--org", "broken", "--id", "1", "--take", "source", "--data-dir", str(data))
    assert result.exit_code == 2, result.output  # an unusable data file is a configuration error
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
