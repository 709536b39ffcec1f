"""Configuration hardening: every bad file is FILE:LINE: KEY problems and exit 2, never a traceback or a
silently different setting — alias bombs, duplicate keys, values Dagster refuses, bad bytes, bad names."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from bloom_pipeline.errors import BloomPipelineError, ConfigurationError
from bloom_pipeline.mapping import yamlsafe
from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.dagster_values import cron_problem
from bloom_pipeline.mapping.loader import MappingError, Problem, load_org, validate_paths
from bloom_pipeline.mapping.spec import IDENTIFIER, OrgConfig

from .conftest import MAPPINGS

# five lines, valid on their own: the cases below add the lines under test from line 6 on
ORG = ("name: {name}\nextends: [defaults/wegive]\ntimezone: America/Denver\n"
       "bloomerang: {{api_key_env: ACME_BLOOMERANG_API_KEY}}\nwegive: {{token_env: ACME_WEGIVE_TOKEN}}\n")

# "billion laughs": 9 levels of 9 aliases each, 9**9 strings once expanded, about 600 bytes of YAML
BOMB = 'lol: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"l{i}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "orgs").mkdir()
    (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    return tmp_path


def org_file(root: Path, name: str, extra: str | bytes = "", text: str | None = None) -> Path:
    path = root / "orgs" / f"{name}.yaml"
    body = (text if text is not None else ORG.format(name=name)).encode()
    path.write_bytes(body + (extra.encode() if isinstance(extra, str) else extra))
    return path


def validate(path: Path, root: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(mapping, ["validate", str(path), "--mappings-dir", str(root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output.splitlines()


# -- aliases ----------------------------------------------------------------------------------------------


def test_alias_bomb_is_refused_at_the_first_alias_before_expansion(root: Path) -> None:
    path = org_file(root, "bomb", BOMB)
    code, lines = validate(path, root)
    assert code == 2
    assert lines == [f"{path}:7: l0[0]: YAML alias '*a' is not allowed in mapping files (aliases can expand "
                     "without bound); write the value out, or share it with 'extends'"]


def test_alias_bomb_in_an_extended_file_is_refused_too(root: Path) -> None:
    (root / "bombs.yaml").write_text(BOMB)
    path = org_file(root, "acme", text=ORG.format(name="acme").replace("[defaults/wegive]",
                                                                          "[defaults/wegive, bombs]"))
    problems = validate_paths([path], root)
    assert [(p.file, p.line, p.key) for p in problems] == [(str(root / "bombs.yaml"), 2, "l0[0]")]


def test_any_alias_is_refused_with_its_key_path() -> None:
    with pytest.raises(yamlsafe.Refused) as caught:
        yamlsafe.load("base: &b {fund: 3}\nhandbid:\n  events:\n    gala: *b\n")
    assert [(r.line, r.path) for r in caught.value.refusals] == [(4, ("handbid", "events", "gala"))]
    with pytest.raises(yamlsafe.Refused):  # a merge key needs an alias: refused as well
        yamlsafe.load("base: &b {fund: 3}\nother:\n  <<: *b\n")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(yamlsafe.Refused) as caught:
        yamlsafe.load("x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested more than" in caught.value.refusals[0].message


# -- duplicate keys ---------------------------------------------------------------------------------------


def test_duplicate_key_reported_at_its_second_line_with_the_key_path(root: Path) -> None:
    path = org_file(root, "dup", "schedule:\n  cron: '0 2 * * *'\n  timezone: UTC\n  cron: '0 3 * * *'\n")
    code, lines = validate(path, root)
    assert code == 2
    assert lines == [f"{path}:9: schedule.cron: duplicate key 'cron' (first at line 7); a key may appear only "
                     "once in a mapping, the later value would silently win"]


def test_duplicate_top_level_key_and_flow_mapping_duplicates(root: Path) -> None:
    path = org_file(root, "dup", "timezone: UTC\nthresholds: {max_reject_share: 0.1, max_reject_share: 0.2}\n")
    problems = validate_paths([path], root)
    assert [(p.line, p.key) for p in problems] == [(6, "timezone"), (7, "thresholds.max_reject_share")]
    assert "first at line 3" in problems[0].message


def test_keys_equal_as_python_keys_are_duplicates() -> None:
    # 1 and true are one dict key: the second would silently replace the first
    with pytest.raises(yamlsafe.Refused) as caught:
        yamlsafe.load("events:\n  1: {fund: 3}\n  true: {fund: 4}\n")
    assert [(r.line, r.path) for r in caught.value.refusals] == [(3, ("events", "true"))]
    assert yamlsafe.load("events:\n  1: a\n  '1': b\n")[1] == {"events": {1: "a", "1": "b"}}  # int vs text


# -- values Dagster parses later ----------------------------------------------------------------------------


def test_cron_dagster_refuses_fails_validate_with_line(root: Path) -> None:
    path = org_file(root, "acme", 'schedule:\n  cron: "99 99 * * *"\n')
    code, lines = validate(path, root)
    assert code == 2
    assert lines == [f"{path}:7: schedule.cron: '99 99 * * *' is not a cron expression Dagster accepts "
                     "(minute 0-59, hour 0-23, day of month 1-31, month 1-12, weekday 0-7; e.g. '0 2 * * *')"]
    with pytest.raises(MappingError):
        load_org("acme", root)  # so the code location skips this org instead of failing for every org


def test_cron_set_in_an_extended_file_is_reported_there(root: Path) -> None:
    (root / "nightly.yaml").write_text("# shared schedule\nschedule: {cron: '0 2 30 2 *'}\n")
    path = org_file(root, "acme", text=ORG.format(name="acme").replace("[defaults/wegive]",
                                                                          "[defaults/wegive, nightly]"))
    problems = validate_paths([path], root)
    assert [(p.file, p.line, p.key) for p in problems] == [(str(root / "nightly.yaml"), 2, "schedule.cron")]


@pytest.mark.parametrize(("cron", "expected"), [
    ("0 2 * * *", None), ("30 4 * * 1-5", None), ("*/15 6-18 * * mon-fri", None), ("0 0 31 1,4 *", None),
    ("61 2 * * *", "not a cron expression Dagster accepts"), ("0 2 * 13 *", "not a cron expression"),
    ("0 2 30 2 *", "not a cron expression"), ("*/90 * * * *", "step larger than its field's range"),
    ("0 2 31 4,6 *", "never runs"),
])
def test_cron_problem(cron: str, expected: str | None) -> None:
    problem = cron_problem(cron)
    assert problem is None if expected is None else expected in (problem or "")


def test_cron_with_four_fields_is_a_shape_problem(root: Path) -> None:
    path = org_file(root, "acme", 'schedule: {cron: "0 2 * *"}\n')
    assert validate(path, root) == (2, [f"{path}:6: schedule.cron: cron must have five fields "
                                        "(minute hour day month weekday)"])


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America", "utc", "America/Denver ", "zone.tab", "a" * 300])
def test_bad_schedule_time_zone_is_a_problem_not_a_traceback(root: Path, zone: str) -> None:
    path = org_file(root, "acme", f'schedule:\n  timezone: "{zone}"\n')
    code, lines = validate(path, root)
    assert code == 2
    assert lines == [f"{path}:7: schedule.timezone: '{zone}' is not a valid IANA time zone (e.g. America/Denver)"]


def test_bad_org_time_zone_that_is_a_folder(root: Path) -> None:
    path = org_file(root, "acme", text=ORG.format(name="acme").replace("America/Denver", "America"))
    assert validate(path, root) == (2, [f"{path}:3: timezone: 'America' is not a valid IANA time zone "
                                        "(e.g. America/Denver)"])


def test_org_config_refuses_a_bad_time_zone_in_code_too() -> None:
    with pytest.raises(ValueError, match="not a valid IANA time zone"):
        OrgConfig(name="acme", timezone="America")
    with pytest.raises(ValueError, match="not a valid IANA time zone"):
        OrgConfig(name="acme", timezone="UTC", schedule={"timezone": "Nowhere/Atall"})


# -- bytes and files --------------------------------------------------------------------------------------


def test_invalid_utf8_is_one_problem_on_its_line(root: Path) -> None:
    path = org_file(root, "acme", b"phone_region: \xff\xfeUS\n")
    code, lines = validate(path, root)
    assert code == 2
    assert lines == [f"{path}:6: file: not valid UTF-8 (byte 0xff at column 15); save the file as UTF-8"]
    with pytest.raises(MappingError):
        load_org("acme", root)


def test_utf8_with_a_byte_order_mark_is_fine(root: Path) -> None:
    path = org_file(root, "acme", text="\ufeff" + ORG.format(name="acme"))
    assert validate(path, root)[0] == 0


def test_unreadable_file_is_one_problem(root: Path) -> None:
    (root / "orgs" / "folder.yaml").mkdir()
    problems = validate_paths([root / "orgs" / "folder.yaml", root / "orgs" / "missing.yaml"], root)
    assert [(Path(p.file).name, p.line, p.key) for p in problems] == [("folder.yaml", 1, "file"),
                                                                       ("missing.yaml", 1, "file")]
    assert all(p.message.startswith("cannot read: ") for p in problems)


@pytest.mark.parametrize(("extra", "line", "key", "message"), [
    ('phone_region: "U\x01S"\n', 6, "yaml", "invalid YAML: unacceptable character #x0001"),
    ("clock_skew_tolerance: 2025-02-30\n", 6, "clock_skew_tolerance", "invalid value: day is out of range"),
    ("sandbox_fallback: " + "9" * 5000 + "\n", 6, "sandbox_fallback", "invalid value: Exceeds the limit"),
    ("phone_region: US\n---\nname: two\n", 7, "yaml", "invalid YAML: but found another document"),
])
def test_yaml_that_cannot_be_constructed_is_a_problem(root: Path, extra: str, line: int, key: str,
                                                      message: str) -> None:
    path = org_file(root, "acme", extra)
    code, lines = validate(path, root)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"{path}:{line}: {key}: {message}")


# -- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo\n", "demo ", " demo", "demo\r\n", "Demo", "de-mo", "", "x" * 64])
def test_org_name_must_match_in_full(name: str) -> None:
    assert IDENTIFIER.match(name) is None
    with pytest.raises(MappingError) as caught:
        load_org(name, MAPPINGS)
    assert len(str(caught.value).splitlines()) == 1 and "is not a valid org name" in str(caught.value)


def test_org_name_with_newline_inside_the_file_is_refused(root: Path) -> None:
    path = org_file(root, "acme", text=ORG.format(name='"acme\\n"'))
    problems = validate_paths([path], root)
    assert [(p.line, p.key) for p in problems] == [(1, "name"), (1, "name")]
    assert all(len(str(p).splitlines()) == 1 for p in problems)  # the newline is shown escaped


def test_a_problem_prints_on_one_line() -> None:
    assert str(Problem("f.yaml", 2, "k", "bad\nvalue\x00")) == "f.yaml:2: k: bad\\nvalue\\x00"


# -- error hierarchy and thresholds -------------------------------------------------------------------------


def test_mapping_error_is_a_configuration_error() -> None:
    problem = Problem("f.yaml", 3, "timezone", "bad")
    error = MappingError([problem, problem])
    assert isinstance(error, ConfigurationError) and isinstance(error, BloomPipelineError)
    assert error.problems == [problem] and str(error) == "f.yaml:3: timezone: bad"


def test_min_rejects_default_and_set(root: Path) -> None:
    assert load_org("demo", MAPPINGS).thresholds.min_rejects == 10
    org_file(root, "acme", "thresholds: {max_reject_share: 0.1, min_rejects: 0}\n")
    assert load_org("acme", root).thresholds.min_rejects == 0


@pytest.mark.parametrize("value", ["-1", "true", '"10"', "2.5"])
def test_min_rejects_must_be_a_whole_number_at_least_zero(root: Path, value: str) -> None:
    path = org_file(root, "acme", f"thresholds:\n  min_rejects: {value}\n")
    code, lines = validate(path, root)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"{path}:7: thresholds.min_rejects: ")


# -- the repository's own files ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((MAPPINGS / "defaults").glob("*.yaml")) + sorted(
    (MAPPINGS / "orgs").glob("*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_repository_mapping_files_still_validate(path: Path) -> None:
    assert validate_paths([path], MAPPINGS) == []
