"""A corrupt staging file, journal or rate-budget file, or a data folder that cannot be one, is a configuration
error of one line naming the file (the CLI exits 2 with it), never a traceback from DuckDB or sqlite."""

import gc
from pathlib import Path

import pytest

from bloom_pipeline.clients.ratelimit import SharedRateBudget
from bloom_pipeline.errors import ConfigurationError, UnusableFileError
from bloom_pipeline.staging.store import StagingStore, usable_folder
from bloom_pipeline.sync.apply.journal import Journal


def one_line_naming(exc: pytest.ExceptionInfo[UnusableFileError], path: Path) -> str:
    text = str(exc.value)
    assert isinstance(exc.value, ConfigurationError)
    assert "\n" not in text and text.startswith(f"{path}: ")
    assert exc.value.__suppress_context__, "the DuckDB / sqlite traceback is not chained"
    return text


@pytest.mark.parametrize("content", [b"garbage\n", b"\x00" * 4096, b"SQLite format 3\x00" + b"\x01" * 200])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_corrupt_staging_file(tmp_path, content, read_only):
    path = tmp_path / "demo_staging.duckdb"
    path.write_bytes(content)
    with pytest.raises(UnusableFileError) as exc, StagingStore(path, org="demo").connect(read_only=read_only):
        pass
    assert "move it aside" in one_line_naming(exc, path)


def test_a_corrupt_journal(tmp_path):
    path = tmp_path / "demo_journal.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(UnusableFileError) as exc:
        Journal(path)
    assert "not a usable write journal" in one_line_naming(exc, path)


def test_a_data_folder_that_is_a_file(tmp_path):
    path = tmp_path / "data"
    path.write_text("")
    with pytest.raises(UnusableFileError) as exc:
        usable_folder(path)
    assert "cannot be used as a data folder" in one_line_naming(exc, path)
    with pytest.raises(UnusableFileError), StagingStore(path / "demo_staging.duckdb", org="demo").connect():
        pass
    with pytest.raises(UnusableFileError) as exc:
        SharedRateBudget("key", 10, 60, api="bloomerang", budget_dir=path / "ratelimit")
    assert "cannot hold the rate budget" in str(exc.value)


def test_a_corrupt_rate_budget_file(tmp_path):
    path = SharedRateBudget("key", 10, 60, api="bloomerang", budget_dir=tmp_path).path
    gc.collect()  # the process that made it is gone; what it left on disk is damaged
    for leftover in tmp_path.glob(path.name + "-*"):
        leftover.unlink()
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(UnusableFileError) as exc:
        SharedRateBudget("key", 10, 60, api="bloomerang", budget_dir=tmp_path)
    assert "not a usable rate budget" in one_line_naming(exc, path)


def test_the_cli_ends_with_one_line_and_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bloom_pipeline.cli import cli

    (tmp_path / "demo_staging.duckdb").write_bytes(b"garbage")
    monkeypatch.setenv("BLOOM_MAPPINGS_DIR", str(Path(__file__).resolve().parents[3] / "mappings"))
    result = CliRunner().invoke(cli, ["status", "--org", "demo", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {tmp_path / 'demo_staging.duckdb'}: not a usable DuckDB database")
    assert "Traceback" not in result.output
