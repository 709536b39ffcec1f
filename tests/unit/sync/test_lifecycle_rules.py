"""The pure parts of a record's life: merge suspects and survivors, archive decisions, phone extensions,
and the ``on_source_delete`` key of the org YAML."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.sync.constituent_body import constituent_body
from bloom_pipeline.sync.extract.wegive import split_archived
from bloom_pipeline.sync.identity.constituents import gift_accounts, resolve_constituents
from bloom_pipeline.sync.identity.merges import choose_survivor, suspect_ids
from bloom_pipeline.sync.people.lifecycle import needs_action
from bloom_pipeline.sync.snapshot import snapshot_frame

REPO = Path(__file__).resolve().parents[3]


def _links(*rows: tuple[str, str, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source", "source_id", "bloomerang_id"])


def _snapshot(*rows: tuple[int, str | None]) -> pd.DataFrame:
    return pd.DataFrame({"bloomerang_id": [r[0] for r in rows], "corr_wegive": [r[1] for r in rows],
                         "corr_handbid": [None] * len(rows)})


# -- merge suspects and survivors ---------------------------------------------------------------------


def test_a_quiet_world_has_no_suspect() -> None:
    links = _links(("wegive", "1", 10), ("wegive", "2", 11))
    assert suspect_ids(links, _snapshot((10, "1"), (11, "2")), {("wegive", "1"): {10}}) == set()


def test_each_signal_makes_a_suspect() -> None:
    links = _links(("wegive", "1", 10), ("wegive", "2", 11), ("wegive", "3", 12), ("wegive", "4", 13))
    snapshot = _snapshot((10, None), (12, "3"), (13, "4"), (20, "1"))  # 11 gone; 20 holds donor 1's value
    gifts = {("wegive", "3"): {12, 21}}  # a gift of donor 3 now on 21
    assert suspect_ids(links, snapshot, gifts, failed_404=[13], changed={20}) == {10, 11, 12, 13}


def test_an_old_copy_holding_the_value_is_no_suspect_night_after_night() -> None:
    links = _links(("wegive", "1", 10))
    snapshot = _snapshot((10, "1"), (20, "1"))  # a copy staff made long ago holds donor 1's value too
    assert suspect_ids(links, snapshot, {}, changed=set()) == set()
    assert suspect_ids(links, snapshot, {}, changed={20}) == {10}


def test_an_empty_snapshot_does_not_make_every_link_a_suspect() -> None:
    assert suspect_ids(_links(("wegive", "1", 10)), _snapshot(), {}) == set()


@pytest.mark.parametrize(("holding", "owners", "existing", "expected"), [
    ([20], [], {20}, (20, "correlation_value")),
    ([10, 20], [30], {20, 30}, (20, "correlation_value")),   # the merged id itself never counts
    ([], [30], {30}, (30, "moved_gifts")),
    ([20, 21], [30], {20, 21, 30}, (30, "moved_gifts")),     # two holders: the gifts decide
    ([20, 21], [30, 31], {20, 21, 30, 31}, (None, None)),    # nothing names one: not guessed
    ([], [30], set(), (None, None)),                         # a candidate Bloomerang does not have
])
def test_the_survivor_is_the_one_candidate(holding: list[int], owners: list[int], existing: set[int],
                                           expected: tuple[int | None, str | None]) -> None:
    assert choose_survivor(10, holding, owners, existing) == expected


# -- archived donors ------------------------------------------------------------------------------------


def test_archived_rows_are_the_ones_with_deleted_at() -> None:
    rows = [{"id": 1, "deleted_at": None}, {"id": 2, "deleted_at": "2026-01-02 03:04:05"}, {"id": 3}]
    active, archived = split_archived(rows)
    assert [r["id"] for r in active] == [1, 3] and [r["id"] for r in archived] == [2]


@pytest.mark.parametrize(("policy", "previous", "linked", "expected"), [
    ("keep", None, True, "record"),
    ("keep", {"action": "kept", "restored_at": None}, True, None),           # once
    ("keep", {"action": "kept", "restored_at": "2026-01-01"}, True, "record"),  # archived again
    ("inactivate", None, True, "inactivate"),
    ("inactivate", None, False, "record"),                                  # nothing in Bloomerang
    ("inactivate", {"action": "inactivated", "restored_at": None}, True, None),  # once
    ("inactivate", {"action": "failed", "restored_at": None}, True, "inactivate"),  # retried
    ("inactivate", {"action": "kept", "restored_at": None}, True, "inactivate"),   # the org changed its mind
])
def test_what_an_archived_donor_needs(policy: str, previous: dict | None, linked: bool, expected: str | None) -> None:
    assert needs_action(policy, previous, linked) == expected


# -- phones -------------------------------------------------------------------------------------------------


def test_a_bloomerang_extension_is_read_with_its_number() -> None:
    frame = snapshot_frame([
        {"Id": 1, "Type": "Individual", "PrimaryPhone": {"Number": "303.555.1212", "Extension": "44"}},
        {"Id": 2, "Type": "Individual", "PrimaryPhone": {"Number": "(303) 555-1212 ext. 44"}},
        {"Id": 3, "Type": "Individual", "PrimaryPhone": {"Number": "303-555-0000", "Extension": " "}},
        {"Id": 4, "Type": "Individual"},
    ], {})
    assert frame["phone"].tolist() == ["303.555.1212 ext. 44", "(303) 555-1212 ext. 44", "303-555-0000", None]


def test_a_pushed_phone_clears_an_extension_kept_apart() -> None:
    body = constituent_body({"phone": "(303) 555-1212 ext. 44"}, {}, "Individual",
                            {"PrimaryPhone": {"Type": "Mobile", "IsPrimary": True}})
    assert body["PrimaryPhone"] == {"Type": "Mobile", "IsPrimary": True, "Number": "(303) 555-1212 ext. 44",
                                    "Extension": None}
    assert constituent_body({"phone": None}, {}, "Individual")["PrimaryPhone"] is None


# -- the org YAML key ---------------------------------------------------------------------------------------

ORG = """\
name: acme
extends: [defaults/wegive, defaults/handbid]
timezone: America/Denver
bloomerang: {api_key_env: ACME_BLOOMERANG_API_KEY}
wegive: {token_env: ACME_WEGIVE_TOKEN}
handbid: {token_env: ACME_HANDBID_TOKEN}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "mappings" / "defaults", tmp_path / "defaults")
    (tmp_path / "orgs").mkdir()
    return tmp_path


def test_on_source_delete_defaults_to_keep(root: Path) -> None:
    (root / "orgs" / "acme.yaml").write_text(ORG)
    assert load_org("acme", root).on_source_delete == "keep"
    (root / "orgs" / "acme.yaml").write_text(ORG + "on_source_delete: inactivate\n")
    assert load_org("acme", root).on_source_delete == "inactivate"


def test_a_bad_on_source_delete_is_refused_with_its_line(root: Path) -> None:
    path = root / "orgs" / "acme.yaml"
    path.write_text(ORG + "on_source_delete: delete\n")
    result = CliRunner().invoke(mapping, ["validate", str(path), "--mappings-dir", str(root)])
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}:7: on_source_delete: ")


# -- identity by where the gifts are (rule gift_account) ------------------------------------------------------

PERSON = {"constituent_type": "Individual", "first_name": "Ann", "middle_name": None, "last_name": "Lee",
          "full_name": None, "email": None, "phone": None, "street": None, "city": None, "state": None,
          "postal_code": None, "country": None, "bloomerang_id": None}


def _people(*ids: str) -> pd.DataFrame:
    frame = pd.DataFrame([{**PERSON, "source": "wegive", "source_id": i} for i in ids])
    frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
    return frame


def _bloomerang_people(*ids: int) -> pd.DataFrame:
    return pd.DataFrame([{**PERSON, "first_name": "Someone", "last_name": f"Else{i}", "suffix": None,
                          "corr_wegive": None, "corr_handbid": None, "bloomerang_id": i} for i in ids])


def test_gift_accounts_follow_the_gifts_correlation_values() -> None:
    gifts = pd.DataFrame({"source": ["wegive", "wegive", "wegive", "handbid"], "source_id": ["t1", "t2", "t3", "p1"],
                          "donor_source_id": ["1", "1", "2", "9"]})
    held = pd.DataFrame({"account_id": [70, 70, 71], "corr_wegive": ["t1", "t2", None],
                         "corr_handbid": [None, None, "p1"]})
    accounts = gift_accounts(gifts, held)
    assert sorted(map(tuple, accounts.to_numpy().tolist())) == [("handbid", "9", 71), ("wegive", "1", 70)]
    assert gift_accounts(gifts, None).empty


def test_a_donor_whose_gifts_are_on_one_constituent_is_that_constituent() -> None:
    accounts = pd.DataFrame({"source": ["wegive", "wegive", "wegive"], "source_id": ["1", "2", "2"],
                             "bloomerang_id": [70, 70, 71]})
    result = resolve_constituents(_people("1", "2", "3"), _bloomerang_people(70, 71), accounts=accounts)
    rules = dict(zip(result["source_id"], zip(result["bloomerang_id"].tolist(), result["rule"], strict=True),
                     strict=True))
    assert rules["1"] == (70, "gift_account")
    assert rules["2"][1] != "gift_account"  # gifts on two constituents say nothing
    assert rules["3"][1] != "gift_account"
    gone = pd.DataFrame({"source": ["wegive"], "source_id": ["1"], "bloomerang_id": [99]})  # not in Bloomerang
    assert resolve_constituents(_people("1"), _bloomerang_people(70), accounts=gone)["rule"].tolist() != \
        ["gift_account"]
