import pytest

from bloom_pipeline.sync.apply.refs import RefResolver, UnresolvedRefError, parse_ref, refs_in

TXN = {
    "AccountId": "ref:wegive.donors:1012",
    "Amount": 50.0,
    "Designations": [
        {"Type": "Donation", "Amount": 30.0, "FundId": "ref:wegive.funds:3"},
        {"Type": "Donation", "Amount": 20.0, "FundId": "ref:bloomerang.funds:name=Spring Gala", "AppealId": 7},
    ],
}


def test_parse_ref_splits_source_entity_key():
    assert parse_ref("ref:wegive.funds:3") == ("wegive", "funds", "3")
    assert parse_ref("ref:bloomerang.funds:name=A:B") == ("bloomerang", "funds", "name=A:B")
    assert parse_ref("General Fund") is None
    assert parse_ref(17) is None


def test_refs_in_finds_nested_placeholders():
    assert refs_in(TXN) == {"ref:wegive.donors:1012", "ref:wegive.funds:3", "ref:bloomerang.funds:name=Spring Gala"}


def test_resolve_replaces_every_placeholder_and_leaves_the_input_alone():
    resolver = RefResolver()
    resolver.add("wegive", "donors", 1012, 501)
    resolver.add("wegive", "funds", "3", 11)
    resolver.add_names("funds", {"Spring Gala ": 12})
    resolved = resolver.resolve(TXN)
    assert resolved["AccountId"] == 501
    assert [d["FundId"] for d in resolved["Designations"]] == [11, 12]
    assert resolved["Designations"][1]["AppealId"] == 7
    assert TXN["AccountId"] == "ref:wegive.donors:1012"


def test_unknown_record_raises_with_the_reference():
    with pytest.raises(UnresolvedRefError, match="ref:wegive.donors:9"):
        RefResolver().resolve({"AccountId": "ref:wegive.donors:9"})


def test_missing_named_object_can_be_created_once():
    created = []

    def create(entity, name):
        created.append((entity, name))
        return 99

    resolver = RefResolver(on_missing_name=create)
    assert resolver.lookup("ref:bloomerang.appeals:name=Gala Night") == 99
    assert resolver.lookup("ref:bloomerang.appeals:name=gala night") == 99
    assert created == [("appeals", "Gala Night")]
