"""Issue 5: ``bloom-pipeline sync`` exit statuses, as a scheduler or a shell script sees them.

0 when every record succeeded, 1 when any record failed (or was quarantined), 2 for a configuration
error — reported before any API call. The CLI resolves the sandbox through the documented environment
variables (``*_API_URL``) and a copy of the mappings, exactly as an operator would point it elsewhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bloom_pipeline.cli import cli

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

REPO = Path(__file__).resolve().parents[2]
SyncHarness = Any  # the ``harness`` fixture (tests/pipeline/conftest.py)


def mappings_for(h: SyncHarness, tmp_path: Path, **demo_changes: Any) -> Path:
    """A copy of the repository's mappings whose demo org names the sandbox's Handbid organization."""
    mappings = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    demo = mappings / "orgs" / "demo.yaml"
    config = yaml.safe_load(demo.read_text())
    config.setdefault("handbid", {})["organization_id"] = h.sb.handbid_org_id
    config.update(demo_changes)
    demo.write_text(yaml.safe_dump(config, sort_keys=False))
    return mappings


def run_cli(h: SyncHarness, mappings: Path, *args: str, **env: str | None) -> Any:
    environ = {"BLOOMERANG_API_URL": h.sb.urls["bloomerang"], "WEGIVE_API_URL": h.sb.urls["wegive"],
               "HANDBID_API_URL": h.sb.urls["handbid"], "BLOOM_DATA_DIR": str(h.data_dir), **env}
    return CliRunner().invoke(cli, ["sync", "--org", "demo", "--mappings-dir", str(mappings), *args], env=environ)


def test_sync_exits_0_when_all_succeeded_and_1_when_a_record_failed(harness: SyncHarness, tmp_path: Path) -> None:
    mappings = mappings_for(harness, tmp_path)
    wegive = harness.sb.stores["wegive"]
    gone = wegive.find_or_create_donor({"type": "individual", "email": "cli.gone@example.org", "first_name": "Cy",
                                        "last_name": "Gone"})
    first = run_cli(harness, mappings)
    assert first.exit_code == 0, first.output
    assert "constituents" in first.output and "created" in first.output

    by_donor = harness.constituents_by(harness.WEGIVE_DONOR_FIELD)
    harness.bloomerang.delete_constituent(by_donor[str(gone["id"])][0]["Id"])
    wegive.add_transaction(gone["id"], 2500)  # its constituent is gone: Bloomerang answers 400
    second = run_cli(harness, mappings)
    assert second.exit_code == 1, second.output


@pytest.mark.parametrize("problem", ["unknown org", "missing key", "invalid yaml"])
def test_configuration_errors_exit_2_before_any_api_call(harness: SyncHarness, tmp_path: Path, problem: str) -> None:
    org = "demo"
    env: dict[str, str | None] = {}
    if problem == "missing key":  # no sandbox fallback, and the key's variable unset
        mappings = mappings_for(harness, tmp_path, sandbox_fallback=False)
        env["DEMO_BLOOMERANG_API_KEY"] = None
    elif problem == "invalid yaml":
        mappings = mappings_for(harness, tmp_path, thresholds={"max_reject_share": "lots"})
    else:
        mappings, org = mappings_for(harness, tmp_path), "nosuchorg"
    environ = {"BLOOMERANG_API_URL": harness.sb.urls["bloomerang"], "WEGIVE_API_URL": harness.sb.urls["wegive"],
               "HANDBID_API_URL": harness.sb.urls["handbid"], "BLOOM_DATA_DIR": str(harness.data_dir), **env}
    result = CliRunner().invoke(cli, ["sync", "--org", org, "--mappings-dir", str(mappings)], env=environ)
    assert result.exit_code == 2, result.output
    assert not harness.sb.request_log.entries, "a configuration error is reported before any API call"
