"""``payload_keys_by_field`` gives the same writable keys as building a whole source body per field."""

import pytest

from bloom_pipeline.mapping.loader import default_org
from bloom_pipeline.mapping.reverse import payload_keys_by_field, to_source_payload
from bloom_pipeline.sync.fields import CANONICAL_FIELDS

SAMPLES = {"email": "sample@example.org", "phone": "3035550100"}


def brute_force(source, org, constituent_type):
    """The definition: the keys whose value differs once only that field is set."""
    kind = {"constituent_type": constituent_type}
    baseline = to_source_payload(source, kind, org)
    keys = {}
    for name in CANONICAL_FIELDS:
        body = to_source_payload(source, {**kind, name: SAMPLES.get(name, "Sample")}, org)
        touched = frozenset(k for k in body if body.get(k) != baseline.get(k))
        if touched:
            keys[name] = touched
    return keys


@pytest.mark.parametrize("source", ["wegive", "handbid"])
@pytest.mark.parametrize("constituent_type", ["Individual", "Organization", None])
def test_same_keys_as_a_body_per_field(org, source, constituent_type):
    for config in (org, default_org(source)):
        expected = brute_force(source, config, constituent_type)
        assert payload_keys_by_field(source, config, constituent_type, SAMPLES, CANONICAL_FIELDS) == expected


def test_demo_org_writable_keys(org):
    """An address field writes the whole address object; an individual's computed full name is not writable."""
    individual = payload_keys_by_field("wegive", org, "Individual", SAMPLES, CANONICAL_FIELDS)
    assert individual["email"] == {"email_1"} and individual["city"] == {"mailing_address"}
    assert "full_name" not in individual
    assert payload_keys_by_field("wegive", org, "Organization", SAMPLES, CANONICAL_FIELDS)["full_name"] == {"name"}
    assert "middle_name" not in payload_keys_by_field("handbid", org, "Individual", SAMPLES, CANONICAL_FIELDS)
