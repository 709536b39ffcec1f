"""``bloom-pipeline demo`` from a folder that is not the repository: the packaged mappings and demo org are
found, and the last line it prints is a command that works right after the install."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts the sandbox


def test_demo_runs_from_any_folder_and_its_last_line_works(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOOM_")}
    cli = [sys.executable, "-m", "bloom_pipeline.cli"]
    demo = subprocess.run([*cli, "demo", "--donors", "30", "--seed", "2"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert "no mapping file" not in demo.stderr, demo.stderr
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert (tmp_path / "data" / "demo.duckdb").is_file()  # ./data of the folder it ran in
    last = demo.stdout.strip().splitlines()[-1]
    prefix = "Query the results: "
    assert last.startswith(prefix + "bloom-pipeline query --org demo "), last
    argv = shlex.split(last[len(prefix):])
    query = subprocess.run([*cli, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert query.returncode == 0, query.stderr
    assert query.stdout.splitlines()[0].split() == ["action", "count_star()"]
    assert "created" in query.stdout
