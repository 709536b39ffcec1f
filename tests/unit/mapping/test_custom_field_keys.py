"""``mappings.wegive.donors.custom_fields``: the org's own custom fields. Each entry names the WeGive field and the
Bloomerang field (a name or an id), with a direction and a policy like any field; a bad key or value is one
FILE:LINE: KEY problem and exit 2, before any API call."""

from pathlib import Path

import pytest

from bloom_pipeline.mapping.loader import load_org

from .conftest import MAPPINGS
from .test_config_hardening import org_file, validate

HEAD = "mappings:\n  wegive:\n    donors:\n      custom_fields:\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "orgs").mkdir()
    (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    return tmp_path


def test_entries_load_with_push_and_overwrite_as_defaults(root: Path) -> None:
    org_file(root, "acme", HEAD + "        - {wegive: tshirt_size, bloomerang: T-Shirt Size}\n"
                                  "        - {wegive: ' notes ', bloomerang: 923, direction: both, policy: review}\n")
    first, second = load_org("acme", root).entity("wegive.donors").custom_fields
    assert (first.wegive, first.bloomerang, first.direction, first.policy) == (
        "tshirt_size", "T-Shirt Size", "push", "overwrite")
    assert (second.wegive, second.bloomerang, second.direction, second.key) == (
        "notes", 923, "both", "custom_field:923")


def test_the_demo_org_declares_one_custom_field() -> None:
    [entry] = load_org("demo", MAPPINGS).entity("wegive.donors").custom_fields
    assert (entry.wegive, entry.bloomerang) == ("tshirt_size", "T-Shirt Size")


@pytest.mark.parametrize(("entry", "key"), [
    ("{wegive: a, bloomerang: B, directon: both}", "mappings.wegive.donors.custom_fields[0].directon"),
    ("{wegive: a, bloomerang: B, direction: sideways}", "mappings.wegive.donors.custom_fields[0].direction"),
    ("{wegive: a, bloomerang: B, policy: newest}", "mappings.wegive.donors.custom_fields[0].policy"),
    ("{wegive: a, bloomerang: 0}", "mappings.wegive.donors.custom_fields[0].bloomerang"),
    ("{wegive: a, bloomerang: '  '}", "mappings.wegive.donors.custom_fields[0].bloomerang"),
    ("{wegive: '', bloomerang: B}", "mappings.wegive.donors.custom_fields[0].wegive"),
    ("{bloomerang: B}", "mappings.wegive.donors.custom_fields[0].wegive"),
])
def test_a_bad_entry_is_refused_with_its_line_and_key(root: Path, entry: str, key: str) -> None:
    path = org_file(root, "acme", HEAD + f"        - {entry}\n")
    code, lines = validate(path, root)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"{path}:10: {key}"), lines


def test_a_field_mapped_twice_is_refused(root: Path) -> None:
    path = org_file(root, "acme", HEAD + "        - {wegive: a, bloomerang: Size}\n"
                                         "        - {wegive: b, bloomerang: size}\n")
    code, lines = validate(path, root)
    assert code == 2 and lines == [f"{path}:11: mappings.wegive.donors.custom_fields[1].bloomerang: bloomerang "
                                   "custom field 'size' is mapped twice"], lines


def test_custom_fields_belong_to_wegive_donors_only(root: Path) -> None:
    path = org_file(root, "acme", "mappings:\n  wegive:\n    transactions:\n      custom_fields:\n"
                                  "        - {wegive: a, bloomerang: Gift Channel}\n")
    code, lines = validate(path, root)
    assert code == 2 and lines == [f"{path}:9: mappings.wegive.transactions.custom_fields: custom fields are "
                                   "synced for wegive.donors only, not wegive.transactions"], lines
