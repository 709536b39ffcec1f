"""`mapping validate`: each bad-mapping case has a fixture and its exact FILE:LINE: KEY: message."""

import os

import pytest
from click.testing import CliRunner

from bloom_pipeline.mapping.cli import mapping
from bloom_pipeline.mapping.loader import MappingError, load_org, validate_paths

from .conftest import FIXTURES, MAPPINGS

CASES = {
    "bad_unknown_key.yaml": "7: wegive.tokn_ttl: unknown key",
    "bad_unknown_transform.yaml": "11: mappings.wegive.donors.branches.individual.FirstName.transform[1]: "
                                  "unknown transform 'titlecase' (known: account_type, card_expiry, card_type, "
                                  "cents_to_dollars, digits_only, dollars, email, epoch_to_date, event_setting, "
                                  "integer, join_lines, last_four, lower, named_ref, non_deductible, note_list, phone, "
                                  "phone_formatted, positive, ref, routing_number, strip, to_date, to_string)",
    "bad_unknown_source_field.yaml": "11: mappings.wegive.donors.branches.individual.MiddleName.from: "
                                     "unknown source field 'midle_name' for wegive.donors",
    "bad_unknown_target_field.yaml": "10: mappings.wegive.donors.fields.PrimaryEmail.Valeu: "
                                     "unknown Bloomerang target field 'PrimaryEmail.Valeu'",
    "bad_lookup_missing_value.yaml": "13: mappings.wegive.transactions.designations.fields.AcknowledgementStatus."
                                     "lookup: lookup has no entry for source value 'Cancelled' of status",
    "bad_timezone.yaml": "3: timezone: 'Mars/Olympus_Mons' is not a valid IANA time zone (e.g. America/Denver)",
    "bad_yaml.yaml": "5: yaml: invalid YAML: expected ',' or '}', but got ':'",
    "bad_inline_credential.yaml": "5: bloomerang.api_key_env: expects the NAME of an environment variable "
                                  "(e.g. DEMO_BLOOMERANG_API_KEY), not a credential value written inline",
    "bad_inline_token.yaml": "6: wegive.token: credential value written inline; put it in an environment variable "
                             "and name that variable with 'token_env'",
    "bad_required_target.yaml": "10: mappings.wegive.donors.branches.individual: "
                                "required Bloomerang field 'LastName' has no rule",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_mapping_exact_message_and_exit_2(name):
    path = FIXTURES / name
    result = CliRunner().invoke(mapping, ["validate", str(path), "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"{path}:{CASES[name]}"]


def test_extends_cycle_is_reported_where_it_closes():
    path = FIXTURES / "bad_extends_cycle.yaml"
    problems = validate_paths([path], MAPPINGS)
    assert [str(p) for p in problems] == [
        f"{FIXTURES / 'bad_extends_cycle_base.yaml'}:1: extends[1]: cycle in extends: "
        "bad_extends_cycle.yaml -> bad_extends_cycle_base.yaml -> bad_extends_cycle.yaml"]


def test_inline_secrets_are_never_echoed():
    for name in ("bad_inline_credential.yaml", "bad_inline_token.yaml"):
        output = CliRunner().invoke(mapping, ["validate", str(FIXTURES / name), "--mappings-dir",
                                              str(MAPPINGS)]).output
        assert "9f8e7d6c" not in output and "s3cr3t" not in output


def test_repository_mappings_are_valid():
    result = CliRunner().invoke(mapping, ["validate", "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output


def test_mappings_dir_from_environment(monkeypatch):
    monkeypatch.setenv("BLOOM_MAPPINGS_DIR", str(MAPPINGS))
    assert CliRunner().invoke(mapping, ["validate"]).exit_code == 0
    assert load_org("demo").name == "demo"


def test_load_org_raises_with_problems():
    with pytest.raises(MappingError) as caught:
        load_org("../etc/passwd", MAPPINGS)
    assert "not a valid org name" in str(caught.value)


def test_yaml_tags_are_never_constructed(tmp_path):
    evil = tmp_path / "orgs" / "evil.yaml"
    evil.parent.mkdir()
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    problems = validate_paths([evil], tmp_path)
    assert len(problems) == 1 and "invalid YAML" in problems[0].message
    assert not os.path.exists("pwned")


def test_demo_org_settings():
    org = load_org("demo", MAPPINGS)
    assert org.bloomerang.api_key_env == "DEMO_BLOOMERANG_API_KEY"
    assert org.wegive.token_env == "DEMO_WEGIVE_TOKEN" and org.handbid.token_env == "DEMO_HANDBID_TOKEN"
    assert org.sandbox_fallback is True
    assert org.timezone == "America/Denver" and org.schedule_timezone == "America/Denver"
    assert org.schedule.cron == "0 2 * * *" and org.clock_skew_tolerance.total_seconds() == 120
    assert org.thresholds.max_reject_share == 0.05
    assert org.custom_field("constituent", "wegive") == 901
    assert org.field_policy("constituents", "email") == ("overwrite", "both")
    assert org.field_policy("wegive.donors", "constituent_type") == ("overwrite", "push")
    assert org.field_policy("transactions", "amount") == ("overwrite", "push")


def test_org_overrides_a_rule_and_a_policy(tmp_path):
    (tmp_path / "orgs").mkdir()
    (tmp_path / "defaults").symlink_to(MAPPINGS / "defaults")
    (tmp_path / "orgs" / "acme.yaml").write_text(
        "name: acme\nextends: [defaults/wegive]\ntimezone: Europe/London\nphone_region: GB\n"
        "bloomerang: {api_key_env: ACME_KEY}\nwegive: {token_env: ACME_TOKEN}\n"
        "policies: {constituents: {email: {policy: fill_empty, direction: push}}}\n"
        "mappings:\n  wegive:\n    donors:\n      branches:\n        individual:\n"
        "          FirstName: {default: Friend}\n")
    acme = load_org("acme", tmp_path)
    assert acme.field_policy("constituents", "email") == ("fill_empty", "push")
    rule = acme.entity("wegive.donors").branches["individual"]["FirstName"]
    assert rule.default == "Friend" and rule.from_ == "first_name"
