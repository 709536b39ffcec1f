"""``review.max_age_days``: how long an open review item may wait before the ``review_age`` check warns — a
whole number of days, at least 1, default 7; anything else is one FILE:LINE: KEY problem and exit 2."""

from pathlib import Path

import pytest

from bloom_pipeline.mapping.loader import load_org

from .conftest import MAPPINGS
from .test_config_hardening import org_file, validate


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "orgs").mkdir()
    (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    return tmp_path


def test_max_age_days_defaults_to_a_week_and_can_be_set(root: Path) -> None:
    assert load_org("demo", MAPPINGS).review.max_age_days == 7
    org_file(root, "acme", "review: {max_age_days: 3}\n")
    assert load_org("acme", root).review.max_age_days == 3


@pytest.mark.parametrize("value", ["0", "-2", "true", '"7"', "1.5", "seven"])
def test_max_age_days_must_be_a_whole_number_at_least_one(root: Path, value: str) -> None:
    path = org_file(root, "acme", f"review:\n  max_age_days: {value}\n")
    code, lines = validate(path, root)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"{path}:7: review.max_age_days: "), lines


def test_an_unknown_review_key_is_refused_with_its_line(root: Path) -> None:
    path = org_file(root, "acme", "review:\n  max_age: 7\n")
    code, lines = validate(path, root)
    assert code == 2 and lines and lines[0].startswith(f"{path}:7: review.max_age"), lines
