"""Every field the default mappings read is one the vendor documents, and the documented card / bank
source fields map to Bloomerang's card and EFT fields.

WeGive paths are resolved against ``contracts/wegive-openapi.json`` (the resource each record is: a donor
*detail*, ``DonorViewResource``; a transaction list row, ``TransactionTableResource`` ∪
``TransactionViewResource``; a ``FundResource``), with the extra names the fact sheet documents
(``wegive_check.DOCUMENTED_EXTRAS``: the spread columns). Handbid has no public document for these
endpoints, so its paths are held to the shapes of contracts/wegive-handbid.md §4.2; the ones the mapping
reads beyond them are listed in ``HANDBID_BEYOND_4_2`` (reported, not fixed: a change either way fails here).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
import yaml
from wegive_check import DOCUMENTED_EXTRAS, load_spec

from bloom_pipeline.mapping import catalog
from bloom_pipeline.mapping.compile import map_frame
from bloom_pipeline.mapping.transforms import Context, card_expiry, routing_number

from .conftest import MAPPINGS, REPO, TRANSACTION, payloads, record

WEGIVE_RESOURCES = {
    "donors": ("DonorViewResource",),
    "transactions": ("TransactionTableResource", "TransactionViewResource"),
    "funds": ("FundResource",),
}
ELEMENT_OF = {"transactions": "fund_allocations"}
# Read by mappings/defaults/handbid.yaml but not in the §4.2 shapes: a contact address's `state` (§2.4's
# AddressModel has it, §4.2's contact does not) and the receipt context the caller joins onto a payment
# (mappings/README.md "Handbid payments"), which no §4.2 payment carries; and the org YAML's "Send to CRM"
# choice the caller joins the same way (mappings/README.md "Handbid selection").
HANDBID_BEYOND_4_2 = {
    ("contacts", "addresses.0.state"),
    ("payments", "auctionName"), ("payments", "itemNames"), ("payments", "receiptEmailed"),
    ("payments", "crmSelection"),
}
# Read by the NonDeductibleAmount designation rule from each allocation's fund (the ``Fund`` model documents
# ``has_fmv`` / ``fmv``); a gift without allocations falls back to the transaction's ``fund``, ``{"id", "name"}``
# (§4.1), which has no fair-market value: there the rule sees none, so only ``is_tax_deductible`` counts.
FALLBACK_WITHOUT_FMV = {("transactions", "fund.has_fmv"), ("transactions", "fund.fmv")}

# -- WeGive: paths against the OpenAPI document ---------------------------------------------------------

def _concrete(schema: Any, extras: frozenset[str] = frozenset()) -> list[tuple[dict[str, Any], frozenset[str]]]:
    """A schema's concrete alternatives: refs resolved, anyOf / oneOf / allOf expanded, null dropped."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = load_spec()["components"]["schemas"][name]
        return _concrete(target, extras | DOCUMENTED_EXTRAS.get(name, frozenset()))
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return [c for branch in schema[key] for c in _concrete(branch, extras)]
    return [] if schema.get("type") == "null" else [(schema, extras)]


def wegive_documented(entity: str, path: str) -> bool:
    """Whether every step of a dotted path (``[]`` = each element) is a property the document names."""
    current = [c for name in WEGIVE_RESOURCES[entity] for c in _concrete({"$ref": f"#/components/schemas/{name}"})]
    parts = path.split(".")
    for index, part in enumerate(parts):
        name, each = part.removesuffix("[]"), part.endswith("[]")
        found, following = False, []
        for schema, extras in current:
            if name in schema.get("properties", {}):
                found = True
                following.append(schema["properties"][name])
            elif name in extras and index == len(parts) - 1:
                found = True
        if not found:
            return False
        if each:
            following = [s["items"] for f in following for s, _ in _concrete(f) if "items" in s]
        current = [c for f in following for c in _concrete(f)]
    return True


def _rule_sources(rule: dict[str, Any]) -> list[str]:
    found = rule.get("from")
    paths = [found] if isinstance(found, str) else list(found or [])
    return paths + [case["if_present"] for case in rule.get("cases") or []]


def mapped_paths(source: str) -> list[tuple[str, str]]:
    """``(entity, record path)`` of every source field ``mappings/defaults/<source>.yaml`` reads."""
    spec = yaml.safe_load((MAPPINGS / "defaults" / f"{source}.yaml").read_text())["mappings"][source]
    out: list[tuple[str, str]] = []
    for entity, body in spec.items():
        for key in ("id", "updated_at", "bloomerang_id", "status", "branch_on"):
            if body.get(key):
                out.append((entity, body[key]))
        out += [(entity, rule["field"]) for rule in body.get("exclude_when") or []]
        rules = list((body.get("fields") or {}).values())
        rules += [r for branch in (body.get("branches") or {}).values() for r in branch.values()]
        out += [(entity, p) for rule in rules for p in _rule_sources(rule)]
        designations = body.get("designations")
        if designations:
            element = designations.get("list")
            fallback = designations.get("fallback") or {}
            if element:
                out.append((entity, element))
            out += [(entity, p) for p in fallback.values()]
            for rule in (designations.get("fields") or {}).values():
                for p in _rule_sources(rule):
                    if p.startswith("parent."):
                        out.append((entity, p.removeprefix("parent.")))
                        continue
                    if element:
                        out.append((entity, f"{element}[].{p}"))
                    head, _, rest = p.partition(".")
                    if head in fallback:
                        out.append((entity, fallback[head] + (f".{rest}" if rest else "")))
                    elif not element:
                        out.append((entity, p))
    return out


def test_every_wegive_field_the_default_mapping_reads_is_documented():
    paths = mapped_paths("wegive")
    assert {e for e, _ in paths} == set(WEGIVE_RESOURCES)
    undocumented = sorted({(e, p) for e, p in paths if not wegive_documented(e, p)} - FALLBACK_WITHOUT_FMV)
    assert undocumented == []
    assert all((e, f"fund_allocations[].{p}") in paths and wegive_documented(e, f"fund_allocations[].{p}")
               for e, p in FALLBACK_WITHOUT_FMV)


def test_every_wegive_field_the_validator_accepts_is_documented():
    """``mapping validate`` must not accept a field WeGive does not send (the catalogue is hand-written)."""
    undocumented = sorted(
        (entity, path) for entity, fields in catalog.SOURCE_FIELDS.items() if entity.startswith("wegive.")
        for path in fields if not wegive_documented(entity.removeprefix("wegive."), path))
    assert undocumented == []


def test_the_documented_path_check_rejects_what_wegive_does_not_send():
    for entity, path in (("donors", "do_not_contact"), ("donors", "mailing_address_object.city"),
                         ("transactions", "source.brand"), ("transactions", "source.exp_month"),
                         ("transactions", "source.routing_number"), ("transactions", "source.check_number"),
                         ("transactions", "fund_allocations[].transaction_id"), ("funds", "updated_at")):
        assert not wegive_documented(entity, path), (entity, path)
    for entity, path in (("donors", "last_name"), ("donors", "mailing_address.zip"), ("donors", "bloomerang_id"),
                         ("transactions", "source.issuer"), ("transactions", "source.transit_number"),
                         ("transactions", "fund_allocations[].fund.id"), ("transactions", "pledge.id")):
        assert wegive_documented(entity, path), (entity, path)


# -- Handbid: paths against the fact sheet's §4.2 shapes ---------------------------------------------------

def handbid_4_2_keys() -> dict[str, set[str]]:
    """The keys of the §4.2 example answers, per endpoint (contacts, payments)."""
    text = (REPO / "contracts" / "wegive-handbid.md").read_text()
    section = text[text.index("### 4.2"):]
    start = section.index("```")
    blocks = re.split(r"\n(?=(?:GET|PUT)\s+/v3/)", section[start:section.index("```", start + 3)])
    keys: dict[str, set[str]] = {}
    for block in blocks:
        for entity in ("contacts", "payments"):
            if re.match(rf"GET\s+/v3/manager/\S+/{entity}\?", block):
                keys[entity] = set(re.findall(r'"(\w+)":', block)) - {entity, "totalCount"}
    return keys


def handbid_documented(keys: set[str], path: str) -> bool:
    return all(part.isdigit() or part in keys for part in path.split("."))


def test_handbid_fields_beyond_the_fact_sheet_are_the_known_ones():
    keys = handbid_4_2_keys()
    assert {"firstName", "addresses", "street1", "dateUpdated"} <= keys["contacts"]
    assert {"bidderId", "amount", "method", "reference"} <= keys["payments"]
    beyond = {(e, p) for e, p in mapped_paths("handbid") if not handbid_documented(keys[e], p)}
    assert beyond == HANDBID_BEYOND_4_2


# -- the documented sources map to Bloomerang's card and EFT fields -----------------------------------------

CARD = {"id": 31, "type": "card", "issuer": "mastercard", "last_four": "4444", "expiration": "07/29",
        "expires_at": "2029-07-31", "name": "Ada Lovelace", "email": "ada@example.org", "created_at": None,
        "owner_type": "donor", "owner_id": 1012, "has_vgs_tokens": False, "zip_code": None, "primary": True,
        "last_activity": None, "total_charged": None, "charges": None, "scheduled_donations_count": None,
        "scheduled_donations_monthly_estimate": None}
BANK = {"id": 32, "type": "bank", "bank_account_type": "savings", "last_four": "6789", "institution_number": None,
        "transit_number": "021000021", "name": "Chase", "email": "ada@example.org", "created_at": None,
        "owner_type": "donor", "owner_id": 1012, "plaid_token": None, "primary": True, "mandate_acceptance": False,
        "last_activity": None, "total_charged": None, "charges": None, "scheduled_donations_count": None,
        "scheduled_donations_monthly_estimate": None}


def _payload(org: Any, **changes: Any) -> dict[str, Any]:
    return payloads(map_frame(org, "wegive.transactions", [record(TRANSACTION, **changes)]))["88001"]


def test_a_documented_card_source_is_a_credit_card_with_type_last_four_and_expiry(org):
    payload = _payload(org, source=CARD)
    assert {k: payload.get(k) for k in ("Method", "CreditCardType", "CreditCardLastFourDigits",
                                        "CreditCardExpMonth", "CreditCardExpYear")} == {
        "Method": "CreditCard", "CreditCardType": "MasterCard", "CreditCardLastFourDigits": "4444",
        "CreditCardExpMonth": 7, "CreditCardExpYear": 2029}
    assert "Note" not in payload["Designations"][0]
    from_expires_at = _payload(org, source={**CARD, "expiration": None, "expires_at": "2031-02-28"})
    assert (from_expires_at["CreditCardExpMonth"], from_expires_at["CreditCardExpYear"]) == (2, 2031)
    unreadable = _payload(org, source={**CARD, "expiration": "soon", "expires_at": None})
    assert unreadable["Method"] == "None" and "incomplete for CreditCard" in unreadable["Designations"][0]["Note"]


def test_a_documented_bank_source_is_an_eft_only_with_a_us_routing_number(org):
    payload = _payload(org, source_type="bank", source=BANK)
    assert {k: payload.get(k) for k in ("Method", "EftAccountType", "EftLastFourDigits", "EftRoutingNumber")} == {
        "Method": "Eft", "EftAccountType": "Savings", "EftLastFourDigits": "6789", "EftRoutingNumber": "021000021"}
    for transit in (None, "12345"):  # empty, or a Canadian transit number: no routing number to send
        fallback = _payload(org, source_type="bank", source={**BANK, "transit_number": transit})
        assert fallback["Method"] == "None" and "EftRoutingNumber" not in fallback


def test_checks_and_in_kind_gifts_read_only_documented_fields(org):
    check = _payload(org, source_type="check", source={"type": "check"})
    assert check["Method"] == "None" and check["Designations"][0]["Note"].startswith("Paid by check (WeGive")
    in_kind = _payload(org, source_type="in_kind", source={"type": "in_kind"}, description="Two laptops")
    assert (in_kind["Method"], in_kind["InKindDescription"], in_kind["InKindType"]) == ("InKind", "Two laptops",
                                                                                         "Goods")


# -- the transforms ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "month", "year"), [
    ("05/28", 5, 2028), ("5/28", 5, 2028), ("12/2031", 12, 2031), (" 01 / 30 ", 1, 2030),
    ("2029-07-31", 7, 2029), ("2027-02-28T23:59:59.000000Z", 2, 2027),
    ("13/28", None, None), ("00/28", None, None), ("0528", None, None), ("", None, None), (None, None, None),
])
def test_card_expiry_reads_mm_yy_and_iso_dates(text, month, year):
    values = pd.Series([text], dtype=object)
    got_month = card_expiry(values, Context(), "month")[0].tolist()
    got_year, errors = card_expiry(values, Context(), "year")
    assert (got_month, got_year.tolist(), errors) == ([month], [year], None)


def test_routing_number_keeps_only_valid_nine_digit_aba_numbers():
    values = pd.Series(["110000000", "021-000-021", "021000022", "12345", "1100000000", None], dtype=object)
    assert routing_number(values, Context())[0].tolist() == ["110000000", "021000021", None, None, None, None]
