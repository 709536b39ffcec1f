"""Bloomerang seed records in v2 *write* shape: constituents the sources also know, funds, campaigns, appeals.

The Bloomerang store is seeded through its own create path (the same validation as HTTP), so the world
holds write bodies, not read bodies: ``constituent_body`` turns a source-neutral person (see
``people.person``) into the body a user would have entered in Bloomerang, dropping an email Bloomerang
would refuse. Which people become constituents, and how they are linked to WeGive / Handbid, is the
world's decision (``world.generate_world``), because it spans the three APIs.
"""

from __future__ import annotations

from typing import Any

FUNDS = ("General Fund", "Annual Fund", "Building Fund", "Gala Fund", "Capital Campaign")
CAMPAIGNS = ("Annual Fund 2026", "Capital Campaign 2026", "Spring Gala 2026")
APPEALS = ("Spring Gala", "Year-End Appeal", "Spring Appeal", "Giving Tuesday")
# An org's own custom fields, one of every DataType and PickType, for the org custom-field sync (mappings/README.md
# "Custom fields"); no constituent holds a value of them in the generated world, so record counts stay as they were.
PROFILE_FIELDS = (
    {"Id": 921, "Name": "T-Shirt Size", "DataType": "Text", "PickType": "PickOne", "Values": ["S", "M", "L", "XL"]},
    {"Id": 922, "Name": "Volunteer Interests", "DataType": "Text", "PickType": "PickMultiple",
     "Values": ["Events", "Mentoring", "Office Help"]},
    {"Id": 923, "Name": "Dietary Notes", "DataType": "Text", "PickType": "Freeform"},
    {"Id": 924, "Name": "Member Since", "DataType": "Date", "PickType": "Freeform"},
    {"Id": 925, "Name": "Giving Capacity", "DataType": "Currency", "PickType": "Freeform"},
    {"Id": 926, "Name": "Engagement Score", "DataType": "Decimal", "PickType": "Freeform"},
    {"Id": 927, "Name": "Class Year", "DataType": "Year", "PickType": "Freeform"},
    {"Id": 931, "Name": "Gift Channel", "DataType": "Text", "PickType": "PickOne", "ObjectType": "Transaction",
     "Values": ["Online", "Event", "Mail"]},
)


def constituent_body(p: dict[str, Any], first_name: str | None = None) -> dict[str, Any]:
    """Bloomerang *write* shape for a person the sources also know."""
    if p["is_company"]:
        body: dict[str, Any] = {"Type": "Organization", "FullName": p["company"]}
    else:
        body = {"Type": "Individual", "FirstName": first_name or p["first_name"] or "FNU",
                "LastName": p["last_name"] or "LNU"}
        if p["middle_name"]:
            body["MiddleName"] = p["middle_name"]
    email = p["email"]
    if email and "@" in email and " " not in email and email.count("@") == 1 and "." in email.split("@")[1] \
            and not email.startswith("mailto:"):
        body["PrimaryEmail"] = {"Type": "Home", "Value": email}
    phone = p["mobile_phone"] or p["home_phone"]
    if phone:
        body["PrimaryPhone"] = {"Type": "Mobile" if p["mobile_phone"] else "Home", "Number": phone}
    address = p["address"]
    if address:
        body["PrimaryAddress"] = {"Type": "Home", "Street": "\n".join(x for x in (address.get("address_1"),
                                                                                    address.get("address_2")) if x),
                                  "City": address.get("city"), "State": address.get("state") or None,
                                  "PostalCode": address.get("zip"), "Country": address.get("country")}
        body["PrimaryAddress"] = {k: v for k, v in body["PrimaryAddress"].items() if v}
    return body


def bloomerang_seed(constituents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The ``World.bloomerang`` tables: the given constituents plus the fixed funds, campaigns and appeals."""
    return {"constituents": constituents,
            "funds": [{"Name": name} for name in FUNDS],
            "campaigns": [{"Name": name} for name in CAMPAIGNS],
            "appeals": [{"Name": name} for name in APPEALS],
            "custom_fields": [dict(f) for f in PROFILE_FIELDS]}
