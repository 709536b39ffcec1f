"""After Dagster runs with failing keys — a wrong Bloomerang key read from a CRLF `.env` (ending in "\\r"), a
WeGive token that is right but padded, a Handbid token that cannot be an HTTP header value — no form of any
key is anywhere Dagster or the pipeline stores things: the run and event-log databases, compute logs, the
schedule storage, the org's DuckDB files (every text cell), and what the command printed.

The runs go through the `dagster` CLI against the project's own code location, with a persistent
DAGSTER_HOME, exactly as an operator launches them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers and Dagster runs

REPO = Path(__file__).resolve().parents[2]
WRONG_KEY = "wrong-bloomerang-key-5f0e2b9c"
BAD_HEADER_TOKEN = "handbid-token-3a9d\x01tail"


def _mappings(root: Path, handbid_org: int) -> Path:
    mappings = root / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    demo = mappings / "orgs" / "demo.yaml"
    doc = yaml.safe_load(demo.read_text())
    doc.setdefault("handbid", {})["organization_id"] = handbid_org
    demo.write_text(yaml.safe_dump(doc, sort_keys=False))
    return mappings


def _duckdb_texts(path: Path) -> list[str]:
    """Every text cell of every table of a DuckDB file (the file itself stores strings compressed)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        texts = []
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall():
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            texts += [str(cell) for row in rows for cell in row if cell is not None]
        return texts
    finally:
        con.close()


def _stored_texts(*roots: Path) -> list[str]:
    texts = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            if path.suffix == ".duckdb":
                texts += _duckdb_texts(path)
            else:
                texts.append(path.read_bytes().decode("latin-1"))
    return texts


def _run(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "bloom_pipeline.definitions", "-j",
         "org_sync_job", "--tags", json.dumps({"dagster/partition": "demo", "org": "demo"})],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_dagster_storage_holds_no_key_after_runs_with_failing_keys(tmp_path: Path) -> None:
    with Sandbox(donors=20, seed=3, knobs=Knobs(rate_limit=None)) as sb:
        home, data = tmp_path / "dagster_home", tmp_path / "data"
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "BLOOM_", "DAGSTER_"))}
        base |= {"DAGSTER_HOME": str(home), "BLOOM_DATA_DIR": str(data),
                 "BLOOM_MAPPINGS_DIR": str(_mappings(tmp_path, sb.handbid_org_id)),
                 "BLOOMERANG_API_URL": sb.urls["bloomerang"], "WEGIVE_API_URL": sb.urls["wegive"],
                 "HANDBID_API_URL": sb.urls["handbid"], "PYTHONPATH": str(REPO)}
        runs = [
            # a wrong key from a CRLF .env; the other two right but padded the same way
            base | {"DEMO_BLOOMERANG_API_KEY": WRONG_KEY + "\r", "DEMO_WEGIVE_TOKEN": sb.keys["wegive"] + "\r\n",
                    "DEMO_HANDBID_TOKEN": " " + sb.keys["handbid"] + "\r"},
            # a token no HTTP header can carry: a configuration error naming the variable, never the value
            base | {"DEMO_BLOOMERANG_API_KEY": sb.keys["bloomerang"], "DEMO_WEGIVE_TOKEN": sb.keys["wegive"],
                    "DEMO_HANDBID_TOKEN": BAD_HEADER_TOKEN},
        ]
        results = [_run(env, tmp_path) for env in runs]
        forms = [WRONG_KEY, BAD_HEADER_TOKEN, BAD_HEADER_TOKEN.split("\x01")[0], *sb.keys.values()]
        forms += [k.split("|", 1)[1] for k in sb.keys.values() if "|" in k]  # a Sanctum token's secret part

    assert all(r.returncode != 0 for r in results), [r.stdout[-2000:] for r in results]
    printed = results[0].stdout + results[0].stderr
    assert "DEMO_BLOOMERANG_API_KEY" in printed, "the failing key is named by its variable"
    assert "DEMO_HANDBID_TOKEN" in results[1].stdout + results[1].stderr
    stored = _stored_texts(home, data)
    assert any(p.suffix == ".db" for p in home.rglob("*")), "the runs were stored in DAGSTER_HOME"
    assert any("org_sync_job" in text for text in stored)
    for form in forms:
        for text in [*stored, *(r.stdout + r.stderr for r in results)]:
            assert form not in text
