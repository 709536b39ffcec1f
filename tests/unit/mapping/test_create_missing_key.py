"""``bloomerang.create_missing``: false unless an org says true; any other value is FILE:LINE: KEY, exit 2."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.loader import load_org

from .conftest import MAPPINGS

ORG = ("name: acme\nextends: [defaults/wegive]\ntimezone: America/Denver\nwegive: {{token_env: ACME_WEGIVE_TOKEN}}\n"
       "bloomerang:\n  api_key_env: ACME_BLOOMERANG_API_KEY\n{extra}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "orgs").mkdir()
    (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    return tmp_path


def _org(root: Path, extra: str) -> Path:
    path = root / "orgs" / "acme.yaml"
    path.write_text(ORG.format(extra=extra))
    return path


def test_default_is_false_and_true_is_read(root: Path) -> None:
    _org(root, "")
    assert load_org("acme", root).bloomerang.create_missing is False
    _org(root, "  create_missing: true\n")
    assert load_org("acme", root).bloomerang.create_missing is True


@pytest.mark.parametrize("value", ['"yes"', "1", "maybe", '"true"'])
def test_anything_but_a_yaml_boolean_is_refused_on_its_line(root: Path, value: str) -> None:
    path = _org(root, f"  create_missing: {value}\n")
    result = CliRunner().invoke(mapping, ["validate", str(path), "--mappings-dir", str(root)])
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}:7: bloomerang.create_missing: "), result.output
