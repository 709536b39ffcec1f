"""Shared helpers: the repo's own mapping files and small record builders shaped like the APIs' records."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.mapping.spec import OrgConfig

REPO = Path(__file__).resolve().parents[3]
MAPPINGS = REPO / "mappings"
FIXTURES = Path(__file__).parent / "fixtures"

DONOR = {
    "id": 1012, "organization_id": 7, "type": "individual", "name": "Ada Lovelace", "first_name": "Ada",
    "middle_name": "King", "last_name": "Lovelace", "email_1": "ada@example.org", "email_2": None,
    "mobile_phone": "3035551212", "home_phone": None,
    "mailing_address": {"id": 55, "address_1": "1 Main St", "address_2": None, "city": "Denver", "state": "CO",
                        "country": "US", "zip": "80202", "readable_string": "1 Main St, Denver, CO 80202"},
    "bloomerang_id": None, "created_at": "2025-03-01T18:22:10.000000Z", "updated_at": "2025-03-04T09:00:00.000000Z",
}

TRANSACTION = {
    "id": 88001, "amount": 5000, "fee": 175, "source_type": "card", "status": "Success",
    "owner": {"id": 1012, "type": "individual", "name": "Ada Lovelace"}, "donor": {"id": 1012},
    "fund": {"id": 3, "name": "General Fund"},
    "fund_allocations": [{"id": 501, "amount": 5000, "fund": {"id": 3, "name": "General Fund"}}],
    "source": {"type": "card", "issuer": "visa", "last_four": "4242", "expiration": "12/30",
               "expires_at": "2030-12-31"},
    "frequency": "once", "scheduled_donation_id": None, "pledge": None, "pledge_id": None,
    "created_at": "2025-03-02T15:00:00.000000Z", "updated_at": "2025-03-02T15:00:03.000000Z", "bloomerang_id": None,
}

CONTACT = {
    "id": 501, "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org",
    "userCellPhone": "3035551212", "userPhone": None,
    "addresses": [{"street1": "1 Main St", "street2": None, "city": "Denver", "province": "CO",
                   "postalCode": "80202", "country": "US"}],
    "dateInserted": 1716000000, "dateUpdated": 1716100000,
}

PAYMENT = {
    "id": 9001, "receiptId": 3001, "auctionId": 45417, "bidderId": 501, "paddleNumber": 12, "amount": 25000,
    "currencyCode": "USD", "method": "cash", "status": "succeeded", "reference": None, "dateInserted": 1716240000,
    "auctionName": "Spring Gala", "itemNames": ["Wine basket", "Ski trip"], "receiptEmailed": True,
}


def record(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `base` with top-level keys replaced (None values kept, to model API nulls)."""
    out = copy.deepcopy(base)
    out.update(copy.deepcopy(changes))
    return out


def payloads(result: Any) -> dict[str, dict[str, Any]]:
    return {sid: json.loads(p) for sid, p in zip(result.mapped["source_id"], result.mapped["payload"], strict=True)}


def errors(result: Any) -> dict[str, list[str]]:
    return dict(zip(result.rejected["source_id"], result.rejected["errors"], strict=True))


@pytest.fixture(scope="session")
def org() -> OrgConfig:
    return load_org("demo", MAPPINGS)
