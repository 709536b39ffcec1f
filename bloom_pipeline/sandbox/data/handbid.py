"""Handbid records in the decided manager-scope shape (contract §4.2): camelCase, epoch seconds, cents.

Auctions exist in every status (at least two ``reconciled``); receipts (invoices) carry line items with
item names, an ``emailed`` flag and ``emailedAt`` (epoch or null) so "the receipt was emailed" — which
marks the synced Bloomerang transaction *acknowledged* — is knowable; one receipt may be settled by
several payments (partial payments are allowed in Handbid). Registrations (``bidders``): every contact with a
receipt was registered and checked in; a few contacts registered for the upcoming events (presale, preview)
and one no-show per closed or reconciled event registered without checking in — derived from the rows
above without a random draw, so adding them changed no other record of a seeded world.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any

from bloom_pipeline.sandbox.data.people import Pools, person

HANDBID_ORG_ID = 4127
ORG_NAME = "Bloom Community Foundation"
AUCTION_STATUSES = ("setup", "presale", "preview", "open", "ending", "extended", "closed", "reconciled",
                    "reconciled")
AUCTION_NAMES = ("Winter Wonderland 2027", "Spring Gala 2027", "Preview Night", "Fall Festival Auction",
                 "Online Holiday Auction", "Golf Classic Auction", "Harvest Dinner", "Spring Gala 2026",
                 "Summer Soiree 2026")
ITEM_NAMES = ("Wine basket", "Weekend getaway", "Signed jersey", "Chef's table dinner", "Spa day",
              "Golf foursome", "Artwork by local artist", "Fund-a-Need paddle raise", "Concert tickets",
              "Cooking class", "Beach house week", "Handmade quilt", "Private wine tasting", "Hot air balloon ride")
PAYMENT_METHODS = ("handbid_card", "handbid_card", "external_card", "cash", "check", "credit")


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def handbid_contact(contact_id: int, p: dict[str, Any], rng: random.Random, inserted: int, updated: int,
                    first_name: str | None = None) -> dict[str, Any]:
    """A contact (bidder/user) from a person; companies are entered as a contact person with a name."""
    first = first_name if first_name is not None else p["first_name"]
    last = p["last_name"]
    if p["is_company"]:
        first, last = (p["company"] or "").split(" ")[0], "(company)"
    address = p["address"]
    addresses = []
    if address:
        addresses.append({"id": contact_id * 10 + 1, "street1": address.get("address_1"),
                          "street2": address.get("address_2"), "city": address.get("city"),
                          "province": address.get("state") or None, "postalCode": address.get("zip"),
                          "country": address.get("country")})
    return {
        "id": contact_id, "usersGuid": _guid(rng), "firstName": first, "lastName": last,
        "name": " ".join(x for x in (first, last) if x), "email": p["email"],
        "userCellPhone": p["mobile_phone"], "userPhone": p["home_phone"],
        "countryCode": (address or {}).get("country") or "US", "addresses": addresses,
        "dateInserted": inserted, "dateUpdated": updated,
    }


def handbid_world(rng: random.Random, pools: Pools, anchor: datetime, wegive_people: list[tuple[dict, dict]],
                  n_contacts: int) -> dict[str, list[dict[str, Any]]]:
    """Auctions, contacts (~10% the same people as WeGive donors), items, receipts and payments."""
    from bloom_pipeline.sandbox.data.people import NICKNAMES

    now = _epoch(anchor)
    contacts: list[dict[str, Any]] = []
    twins = [(p, d) for p, d in wegive_people if not p["is_company"] and p["email"] and "@" in p["email"]
             and p["first_name"] and p["last_name"]]
    twins.sort(key=lambda pair: (pair[0]["first_name"] not in NICKNAMES, pair[1]["id"]))  # nickname-able first
    n_twins = min(len(twins), max(1, n_contacts // 10))
    for index in range(n_contacts):
        inserted = now - rng.randrange(150 * 86400, 700 * 86400)
        updated = inserted + rng.randrange(0, 30 * 86400)
        if index < n_twins:
            p = twins[index][0]
            first = NICKNAMES.get(p["first_name"], p["first_name"])
            contacts.append(handbid_contact(501 + index, p, rng, inserted, updated, first_name=first))
        else:
            contacts.append(handbid_contact(501 + index, person(rng, pools, 900_000 + index, company_share=0.0),
                                            rng, inserted, updated))
    auctions, items, receipts, payments = [], [], [], []
    item_id, receipt_id, line_id, payment_id = 77, 3001, 1, 9001
    for index, status in enumerate(AUCTION_STATUSES):
        auction_id = 45401 + index
        offset_days = {"setup": -60, "presale": -30, "preview": -7, "open": 0, "ending": 0, "extended": 0,
                       "closed": 10}.get(status, 30 + 25 * index)
        start = now - offset_days * 86400 - 6 * 3600
        end = start + 5 * 3600 if status not in ("open", "ending", "extended") else now + 3600
        updated = min(now, max(start, end))
        auction = {"id": auction_id, "guid": _guid(rng), "key": AUCTION_NAMES[index].lower().replace(" ", "-"),
                   "name": AUCTION_NAMES[index], "status": status, "startTime": start, "endTime": end,
                   "timeZone": "America/Denver", "currencyCode": "USD", "currencySymbol": "$",
                   "organizationId": HANDBID_ORG_ID, "organizationName": ORG_NAME,
                   "reconciledAt": updated + 86400 if status == "reconciled" else None,
                   "dateInserted": start - 60 * 86400, "dateUpdated": updated}
        if status == "reconciled":
            auction["dateUpdated"] = auction["reconciledAt"]
        auctions.append(auction)
        auction_items = []
        for k in range(rng.randrange(8, 15)):
            value = rng.choice((5000, 10000, 25000, 30000, 50000, 120000))
            name = ITEM_NAMES[(index + k) % len(ITEM_NAMES)]
            auction_items.append({"id": item_id, "itemGuid": _guid(rng), "auctionId": auction_id,
                                  "itemCode": str(100 + k), "name": name, "statusId": 4,
                                  "categoryName": "Live" if k % 3 == 0 else "Silent",
                                  "isDirectPurchaseItem": name == "Fund-a-Need paddle raise",
                                  "isAppeal": name == "Fund-a-Need paddle raise", "isTicket": False,
                                  "buyNowPrice": None, "value": value, "currentPrice": 0, "winnerId": None,
                                  "winningBidderName": None, "donor": None})
            item_id += 1
        items.extend(auction_items)
        if status in ("setup", "presale", "preview"):
            continue
        bidders = rng.sample(contacts, min(len(contacts), rng.randrange(6, 14) + n_contacts // 25))
        if status == "reconciled" and n_twins:  # make sure twins buy something at a final event
            bidders[0] = contacts[index % n_twins]
        for paddle, bidder in enumerate(bidders, start=100):
            lines, sub_total = [], 0
            for item in rng.sample(auction_items, rng.randrange(1, 4)):
                price = item["value"] + rng.choice((-2000, 0, 2500, 5000)) if not item["isAppeal"] else 10000
                item.update(statusId=2 if status in ("open", "ending", "extended") else 3, currentPrice=price,
                            winnerId=bidder["id"], winningBidderName=bidder["name"])
                lines.append({"id": line_id, "receiptId": receipt_id, "auctionId": auction_id, "itemId": item["id"],
                              "name": item["name"], "quantity": 1, "pricePerItem": price, "tax": 0, "discount": 0,
                              "grandTotal": price, "amount": price,
                              "status": "purchase" if item["isDirectPurchaseItem"] else "winning",
                              "paddleNumber": paddle, "isPaid": False,
                              "item": {k: item[k] for k in ("id", "itemCode", "name", "categoryName",
                                                            "isDirectPurchaseItem", "isAppeal", "value")}})
                line_id += 1
                sub_total += price
            inserted = end + rng.randrange(60, 3600)
            paid_share = 0 if status in ("open", "ending", "extended") else rng.choice((1, 1, 1, 1, 0.5, 0))
            amount_paid, rec_updated, receipt_payments = 0, inserted, []
            if paid_share:
                parts = 2 if paid_share == 1 and rng.random() < 0.25 else 1
                due = int(sub_total * paid_share)
                for part in range(parts):
                    cents = due // parts + (due % parts if part == parts - 1 else 0)
                    at = inserted + rng.randrange(60, 86400 * 3) * (part + 1)
                    method = rng.choice(PAYMENT_METHODS)
                    ref = f"check #{rng.randrange(1000, 9999)}" if method == "check" else (
                        f"ch_{rng.getrandbits(40):010x}" if method.endswith("card") else None)
                    receipt_payments.append({"id": payment_id, "receiptId": receipt_id, "auctionId": auction_id,
                                             "bidderId": bidder["id"], "contactId": bidder["id"],
                                             "paddleNumber": paddle, "amount": cents, "currencyCode": "USD",
                                             "method": method, "status": "succeeded", "reference": ref,
                                             "dateInserted": at, "dateUpdated": at})
                    payment_id += 1
                    amount_paid += cents
                    rec_updated = max(rec_updated, at)
                if rng.random() < 0.05:
                    receipt_payments[-1]["status"] = "refunded"
            paid = amount_paid >= sub_total
            for line in lines:
                line["isPaid"] = paid
            emailed = paid and rng.random() < 0.7
            receipts.append({"id": receipt_id, "receiptsGuid": _guid(rng), "auctionId": auction_id,
                             "auctionGuid": auction["guid"], "bidderId": bidder["id"], "contactId": bidder["id"],
                             "bidderName": bidder["name"], "paddleNumber": paddle, "name": auction["name"],
                             "paid": paid, "itemsDelivered": paid, "subTotal": sub_total, "shippingTotal": 0,
                             "tax": 0, "taxRate": 0, "grandTotal": sub_total, "amountPaid": amount_paid,
                             "balanceDue": sub_total - amount_paid, "currencyCode": "USD", "currencySymbol": "$",
                             "emailed": emailed, "emailedAt": rec_updated + 600 if emailed else None,
                             "totalItems": len(lines), "lineItems": lines, "organizationName": ORG_NAME,
                             "dateInserted": inserted, "dateUpdated": rec_updated + (600 if emailed else 0)})
            payments.extend(receipt_payments)
            receipt_id += 1
    return {"auctions": auctions, "contacts": contacts, "receipts": receipts, "payments": payments,
            "items": items, "bidders": event_registrations(auctions, contacts, receipts)}


def event_registrations(auctions: list[dict[str, Any]], contacts: list[dict[str, Any]],
                        receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The auctions' bidder lists (see module docstring); deterministic, no random draw."""
    from bloom_pipeline.sandbox.handbid.store import bidder_row

    rows: list[dict[str, Any]] = []
    for auction in auctions:
        at = int(auction["startTime"]) - 7 * 86400
        held = [(r["bidderId"], r["paddleNumber"]) for r in receipts if r["auctionId"] == auction["id"]]
        for contact_id, paddle in held:
            rows.append(bidder_row(70001 + len(rows), auction["id"], contact_id, paddle, checked_in=True,
                                   at=int(auction["startTime"])) | {"dateInserted": at})
        holders = {h[0] for h in held}  # once per auction (built per contact it was quadratic in the contacts)
        others = [c["id"] for c in contacts if c["id"] not in holders]
        wanted = {"presale": 2, "preview": 2, "closed": 1, "reconciled": 1}.get(auction["status"], 0)
        for contact_id in others[:wanted]:
            rows.append(bidder_row(70001 + len(rows), auction["id"], contact_id, 200 + len(rows), checked_in=False,
                                   at=at))
    return rows

