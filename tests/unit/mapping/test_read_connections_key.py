"""``bloomerang.read_connections``: 4 unless an org says otherwise, 1..16; anything else is FILE:LINE: KEY, exit 2,
before any API call (``mapping validate`` reads the file only)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.loader import load_org

from .test_create_missing_key import _org, root  # noqa: F401 - the same org file and mappings folder


def test_default_is_four_and_a_value_in_range_is_read(root: Path) -> None:  # noqa: F811
    _org(root, "")
    assert load_org("acme", root).bloomerang.read_connections == 4
    _org(root, "  read_connections: 1\n")
    assert load_org("acme", root).bloomerang.read_connections == 1


@pytest.mark.parametrize("value", ["0", "17", "-2", "four", "2.5"])
def test_a_value_out_of_range_or_not_a_whole_number_is_refused_on_its_line(root: Path, value: str) -> None:  # noqa: F811
    path = _org(root, f"  read_connections: {value}\n")
    result = CliRunner().invoke(mapping, ["validate", str(path), "--mappings-dir", str(root)])
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}:7: bloomerang.read_connections: "), result.output
