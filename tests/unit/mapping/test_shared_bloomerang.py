"""Two orgs on one Bloomerang database cannot share correlation custom fields (their ids would collide)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bloom_pipeline.mapping.loader import validate_paths

ROOT = Path(__file__).resolve().parents[3] / "mappings"


def _mappings(tmp_path: Path, second: str) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(ROOT / "defaults", root / "defaults")
    (root / "orgs").mkdir()
    demo = (ROOT / "orgs" / "demo.yaml").read_text()
    (root / "orgs" / "alpha.yaml").write_text(demo.replace("name: demo", "name: alpha"))
    (root / "orgs" / "beta.yaml").write_text(second)
    return root


def test_two_orgs_on_one_bloomerang_with_the_same_correlation_fields_are_refused(tmp_path: Path) -> None:
    demo = (ROOT / "orgs" / "demo.yaml").read_text()
    root = _mappings(tmp_path, demo.replace("name: demo", "name: beta"))
    problems = [p for p in validate_paths([], mappings_dir=root) if "collide" in p.message]
    assert problems, "the collision passed validation"
    first = problems[0]
    assert first.file.endswith("beta.yaml") and first.key.startswith("bloomerang.custom_fields.")
    assert first.line > 1 and "alpha" in first.message


def test_orgs_with_their_own_correlation_fields_share_a_bloomerang(tmp_path: Path) -> None:
    demo = (ROOT / "orgs" / "demo.yaml").read_text()
    own = demo.replace("name: demo", "name: beta")
    own = own.replace("{wegive: 901, handbid: 902}", '{wegive: "Beta Donor", handbid: "Beta Bidder"}')
    own = own.replace("{wegive: 911, handbid: 912}", '{wegive: "Beta Gift", handbid: "Beta Pay"}')
    root = _mappings(tmp_path, own)
    assert [p for p in validate_paths([], mappings_dir=root) if "collide" in p.message] == []
