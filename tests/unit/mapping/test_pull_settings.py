"""``pull.create_missing`` / ``pull.create_filter`` and ``handbid.event_interactions``: off and safe by default;
creating WeGive donors needs a filter; every bad value is one FILE:LINE: KEY problem and exit 2."""

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


def test_pull_creates_are_off_and_registrations_recorded_by_default() -> None:
    org = load_org("demo", MAPPINGS)
    assert org.pull.create_missing == "none" and org.pull.create_filter is None
    assert org.handbid.event_interactions == "registered"


def test_a_filter_by_type_and_custom_field_is_read(root: Path) -> None:
    org_file(root, "acme", "pull:\n  create_missing: wegive\n  create_filter:\n    constituent_type: Individual\n"
                           "    custom_field: {name: Sync to WeGive, value: 'Yes'}\n"
                           "handbid:\n  event_interactions: attended\n")
    org = load_org("acme", root)
    rule = org.pull.create_filter
    assert (org.pull.create_missing, rule.constituent_type) == ("wegive", "Individual")
    assert (rule.custom_field.name, rule.custom_field.id, rule.custom_field.value) == ("Sync to WeGive", None, "Yes")
    assert org.handbid.event_interactions == "attended"


@pytest.mark.parametrize(("extra", "key"), [
    ("pull:\n  create_missing: wegive\n", "pull"),
    ("pull:\n  create_missing: wegive\n  create_filter: {}\n", "pull"),
    ("pull:\n  create_missing: handbid\n", "pull.create_missing"),
    ("pull:\n  create_missing: wegive\n  create_filter: {constituent_type: Household}\n",
     "pull.create_filter.constituent_type"),
    ("pull:\n  create_missing: wegive\n  create_filter:\n    custom_field: {id: 950, name: X, value: 'Yes'}\n",
     "pull.create_filter.custom_field"),
    ("pull:\n  create_missing: wegive\n  create_filter:\n    custom_field: {id: 950}\n",
     "pull.create_filter.custom_field.value"),
    ("pull:\n  create_misssing: wegive\n", "pull.create_misssing"),
    ("handbid:\n  event_interactions: always\n", "handbid.event_interactions"),
])
def test_a_bad_pull_or_event_setting_is_refused_with_its_line(root: Path, extra: str, key: str) -> None:
    path = org_file(root, "acme", extra)
    code, lines = validate(path, root)
    assert code == 2 and lines and lines[0].startswith(f"{path}:") and f": {key}" in lines[0], lines
