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


NESTED = {
    "AccountId": "ref:wegive.donors:1012",
    "Note": "ref: not a reference",
    "Designations": [
        {"FundId": "ref:wegive.funds:3", "CustomValues": [{"FieldId": 4, "Value": "ref:wegive.funds:3"}],
         "Pairs": [["ref:wegive.donors:1012", "x"], []]},
        "ref:bloomerang.funds:name=Spring Gala",
        None, 2.5, True,
    ],
    "Empty": {},
}


def _resolver(created: list[str] | None = None) -> RefResolver:
    def on_missing(entity: str, name: str) -> int:
        created.append(name)
        return 900 + len(created)

    resolver = RefResolver(on_missing_name=on_missing if created is not None else None)
    resolver.add("wegive", "donors", 1012, 501)
    resolver.add("wegive", "funds", "3", 11)
    resolver.add_names("funds", {"Spring Gala": 12})
    return resolver


def test_resolve_owned_gives_what_resolve_gives_in_place():
    import json

    owned = json.loads(json.dumps(NESTED))
    resolved = _resolver().resolve_owned(owned)
    assert resolved is owned  # no copy: the caller's freshly parsed tree is filled in
    assert resolved == _resolver().resolve(NESTED)
    assert resolved["Designations"][0]["Pairs"][0] == [501, "x"] and resolved["Note"] == "ref: not a reference"
    assert _resolver().resolve_owned("ref:wegive.funds:3") == 11 and _resolver().resolve_owned(None) is None


def test_resolve_owned_meets_the_references_in_the_order_resolve_does():
    """The first unresolvable reference is the one named, and a missing fund is created (or not) alike."""
    import json

    payload = {"Designations": [{"FundId": "ref:bloomerang.funds:name=New Fund"}, "ref:wegive.donors:404"],
               "AccountId": "ref:wegive.donors:9", "Later": "ref:bloomerang.funds:name=Later Fund"}
    outcomes = []
    for resolve in ("resolve", "resolve_owned"):
        created: list[str] = []
        with pytest.raises(UnresolvedRefError) as raised:
            getattr(_resolver(created), resolve)(json.loads(json.dumps(payload)))
        outcomes.append((str(raised.value), created))
    expected = ("unresolved reference ref:wegive.donors:404: no Bloomerang id is known for it", ["New Fund"])
    assert outcomes[0] == outcomes[1] == expected
