"""In-memory Handbid manager data behind the simulator (thread-safe, settable clock).

Public surface for tests ("edit as a manager would"):

* ``store.clock`` — aware UTC datetime callable; writes stamp ``dateUpdated`` with its epoch second.
* ``update_contact(id, body)`` — the PUT validation (raises ``HandbidError``); ``edit_contact(id, **f)``
  is the same thing for a test acting as a manager editing a contact in Handbid's UI.
* ``set_auction_status(id, status)`` — e.g. an auction becomes ``reconciled`` (sets ``reconciledAt``).
* ``mark_receipt_emailed(id)``; ``add_payment(receipt_id, amount_cents, method=...)``.
* ``register_bidder(auction_id, contact_id)`` / ``check_in(auction_id, contact_id)`` — a contact registered
  for an event, then checked in at the door (the ``bidders`` list of the auction; **assumed** shape,
  contracts/wegive-handbid.md §4.2). Knob ``flags_as``: ``"int"`` (default: ``isBidder`` / ``isComing`` /
  ``isCheckedIn`` served as 0/1, the legacy PHP/MySQL reading — the less convenient one) or ``"bool"``.
* ``served_as_is`` — per table (``"contacts"``, ``"receipts"``, ``"payments"``, ``"items"``), rows the lists
  serve exactly as given after the table's own (empty unless ``sandbox/data/messy.py`` planted some): what a
  dict keyed by id cannot hold, such as one payment id listed under two events. The detail of such an id
  is the table's record (or 404), one database row per id.
* ``updated_after(value, floor)`` — the ``updatedSince`` comparison, for a ``dateUpdated`` of any type.

Payments and receipts of an auction are served whatever its status: gating on ``reconciled`` is the
sync's job (Handbid only releases transactions of finalized + reconciled events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

from bloom_pipeline.sandbox.tree import copy_bulk, copy_tree

AUCTION_STATUSES = ("setup", "presale", "preview", "open", "ending", "extended", "closed", "reconciled")
PAYMENT_METHODS = ("handbid_card", "external_card", "cash", "check", "credit")
CONTACT_TEXT = ("firstName", "lastName", "userCellPhone", "userPhone", "countryCode")
BIDDER_FLAGS = ("isBidder", "isComing", "isCheckedIn")
ADDRESS_KEYS = ("street1", "street2", "city", "province", "postalCode", "country")


class HandbidError(Exception):
    """An error answer: ``status`` and Handbid's ``{"error": code, "message"}`` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(what: str) -> HandbidError:
    return HandbidError(404, "not_found", f"{what} not found")


def invalid(message: str) -> HandbidError:
    return HandbidError(400, "validation_error", message)


def updated_after(value: Any, floor: int) -> bool:
    """``dateUpdated > floor`` for the ``updatedSince`` filter, for a stored value of any type.

    Epoch seconds (an int, or a numeric string) compare as numbers. Anything else compares the way PHP 8
    compares a number with a non-numeric string: as text, against the number's decimal digits — so
    ``"0000-00-00 00:00:00"`` (a zero date leaking from MySQL) is before every cursor and ``"soon"`` after
    every one. A null or a true/false is never after anything (SQL's NULL comparison; a flag is no time).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value > floor
    if isinstance(value, float):
        return value > floor
    if isinstance(value, str):
        try:
            return float(value.strip()) > floor
        except ValueError:
            return value > str(floor)
    return False


class HandbidStore:
    """One organization's Handbid data (see module docstring)."""

    def __init__(self, org_id: int, clock: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.org_id = org_id
        self.auctions: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.receipts: dict[int, dict[str, Any]] = {}
        self.payments: dict[int, dict[str, Any]] = {}
        self.items: dict[int, dict[str, Any]] = {}
        self.bidders: dict[int, dict[str, Any]] = {}  # auction <-> contact registrations, by registration id
        self.flags_as = "int"
        self.served_as_is: dict[str, list[dict[str, Any]]] = {"contacts": [], "receipts": [], "payments": [],
                                                               "items": []}

    @classmethod
    def from_world(cls, world: Any) -> HandbidStore:
        store = cls(int(world.handbid_org_id))
        for name in ("auctions", "contacts", "receipts", "payments", "items", "bidders"):
            table = getattr(store, name)
            for record in copy_bulk(world.handbid.get(name, [])):
                table[int(record["id"])] = record
        return store

    def epoch(self) -> int:
        return int(self.clock().timestamp())

    # -- reads -----------------------------------------------------------------------------------
    def auction(self, auction_id: int) -> dict[str, Any]:
        with self.lock:
            if auction_id not in self.auctions:
                raise not_found("Auction")
            return self.auctions[auction_id]

    def contact(self, contact_id: int) -> dict[str, Any]:
        with self.lock:
            if contact_id not in self.contacts:
                raise not_found("Contact")
            return copy_tree(self.contacts[contact_id])

    def of_auction(self, table: str, auction_id: int) -> list[dict[str, Any]]:
        with self.lock:
            self.auction(auction_id)
            return [copy_tree(r) for r in getattr(self, table).values() if r["auctionId"] == auction_id]

    def bidders_of(self, auction_id: int) -> list[dict[str, Any]]:
        """The auction's registrations as served: flags as 0/1 or true/false (``flags_as``)."""
        rows = self.of_auction("bidders", auction_id)
        if self.flags_as == "int":
            for row in rows:
                for key in BIDDER_FLAGS:
                    row[key] = int(bool(row.get(key)))
        return rows

    def served_of_auction(self, table: str, auction_id: int) -> list[dict[str, Any]]:
        """The rows ``served_as_is`` lists under ``auction_id``, in the order given."""
        with self.lock:
            self.auction(auction_id)
            return [copy_tree(r) for r in self.served_as_is.get(table, []) if r.get("auctionId") == auction_id]

    def served_contacts(self, floor: int | None) -> list[dict[str, Any]]:
        """The contact rows ``served_as_is`` holds that an ``updatedSince=floor`` read lists."""
        with self.lock:
            return [copy_tree(r) for r in self.served_as_is.get("contacts", [])
                    if floor is None or updated_after(r.get("dateUpdated"), floor)]

    # -- writes ----------------------------------------------------------------------------------
    def update_contact(self, contact_id: int, body: Any) -> dict[str, Any]:
        """``PUT /v3/manager/contacts/{id}``: validate, apply, bump ``dateUpdated``."""
        with self.lock:
            if contact_id not in self.contacts:
                raise not_found("Contact")
            if not isinstance(body, dict):
                raise invalid("Request body must be a JSON object")
            changes: dict[str, Any] = {}
            for key in CONTACT_TEXT:
                if key in body:
                    value = body[key]
                    if value is not None and not isinstance(value, str):
                        raise invalid(f"{key} must be a string")
                    if isinstance(value, str) and len(value) > 255:
                        raise invalid(f"{key} must be at most 255 characters")
                    changes[key] = value.strip() or None if isinstance(value, str) else None
            if "email" in body:
                email = body["email"]
                if not isinstance(email, str) or not email.strip():
                    raise invalid("email is required and must be a string")
                try:
                    validate_email(email.strip(), check_deliverability=False)
                except EmailNotValidError:
                    raise invalid("email must be a valid email address") from None
                changes["email"] = email.strip()
            if "addresses" in body:
                addresses = body["addresses"]
                if not isinstance(addresses, list) or not all(isinstance(a, dict) for a in addresses):
                    raise invalid("addresses must be a list of address objects")
                changes["addresses"] = [
                    {"id": a.get("id") or contact_id * 10 + i + 1,
                     **{k: (str(a[k]) if a.get(k) is not None else None) for k in ADDRESS_KEYS}}
                    for i, a in enumerate(addresses)
                ]
            if not changes:
                raise invalid("No updatable fields given")
            contact = self.contacts[contact_id]
            contact.update(changes)
            contact["name"] = " ".join(x for x in (contact.get("firstName"), contact.get("lastName")) if x)
            contact["dateUpdated"] = self.epoch()
            return copy_tree(contact)

    def edit_contact(self, contact_id: int, **fields: Any) -> dict[str, Any]:
        """A manager edits a contact in Handbid (same rules as the PUT)."""
        return self.update_contact(contact_id, fields)

    def set_auction_status(self, auction_id: int, status: str) -> dict[str, Any]:
        if status not in AUCTION_STATUSES:
            raise invalid(f"status must be one of {', '.join(AUCTION_STATUSES)}")
        with self.lock:
            auction = self.auction(auction_id)
            now = self.epoch()
            auction["status"] = status
            auction["reconciledAt"] = now if status == "reconciled" else None
            auction["dateUpdated"] = now
            return copy_tree(auction)

    def mark_receipt_emailed(self, receipt_id: int) -> dict[str, Any]:
        with self.lock:
            if receipt_id not in self.receipts:
                raise not_found("Receipt")
            receipt = self.receipts[receipt_id]
            now = self.epoch()
            receipt.update(emailed=True, emailedAt=now, dateUpdated=now)
            return copy_tree(receipt)

    def add_payment(self, receipt_id: int, amount_cents: int, method: str = "handbid_card",
                    reference: str | None = None) -> dict[str, Any]:
        """Record a payment on a receipt (partial payments allowed); updates paid/balance."""
        if method not in PAYMENT_METHODS:
            raise invalid(f"method must be one of {', '.join(PAYMENT_METHODS)}")
        with self.lock:
            if receipt_id not in self.receipts:
                raise not_found("Receipt")
            receipt = self.receipts[receipt_id]
            now = self.epoch()
            payment_id = max(self.payments, default=9000) + 1
            payment = {"id": payment_id, "receiptId": receipt_id, "auctionId": receipt["auctionId"],
                       "bidderId": receipt["bidderId"], "contactId": receipt["bidderId"],
                       "paddleNumber": receipt["paddleNumber"], "amount": int(amount_cents), "currencyCode": "USD",
                       "method": method, "status": "succeeded", "reference": reference,
                       "dateInserted": now, "dateUpdated": now}
            self.payments[payment_id] = payment
            receipt["amountPaid"] += int(amount_cents)
            receipt["balanceDue"] = receipt["grandTotal"] - receipt["amountPaid"]
            receipt["paid"] = receipt["balanceDue"] <= 0
            for line in receipt["lineItems"]:
                line["isPaid"] = receipt["paid"]
            receipt["dateUpdated"] = now
            return copy_tree(payment)

    def register_bidder(self, auction_id: int, contact_id: int, *, paddle: int | None = None) -> dict[str, Any]:
        """A manager registers a contact as a bidder of an event (not checked in yet); again: unchanged."""
        with self.lock:
            self.auction(auction_id)
            if contact_id not in self.contacts:
                raise not_found("Contact")
            for row in self.bidders.values():
                if row["auctionId"] == auction_id and row["contactId"] == contact_id:
                    return copy_tree(row)
            now = self.epoch()
            taken = [int(r["currentPaddleNumber"] or 0) for r in self.bidders.values() if r["auctionId"] == auction_id]
            row = bidder_row(max(self.bidders, default=70000) + 1, auction_id, contact_id,
                             paddle or max(taken, default=99) + 1, checked_in=False, at=now)
            self.bidders[row["id"]] = row
            return copy_tree(row)

    def check_in(self, auction_id: int, contact_id: int) -> dict[str, Any]:
        """The contact checks in at the event (registered first if they were not)."""
        with self.lock:
            row_id = self.register_bidder(auction_id, contact_id)["id"]
            row = self.bidders[row_id]
            row.update(isCheckedIn=True, isComing=True, dateUpdated=self.epoch())
            return copy_tree(row)


def bidder_row(row_id: int, auction_id: int, contact_id: int, paddle: int, *, checked_in: bool,
               at: int) -> dict[str, Any]:
    """One auction <-> contact registration as stored (flags true/false; ``bidders_of`` serves them)."""
    return {"id": row_id, "auctionId": auction_id, "contactId": contact_id, "bidderId": contact_id,
            "currentPaddleNumber": paddle, "status": "bidder", "isBidder": True, "isComing": True,
            "isCheckedIn": checked_in, "dateInserted": at, "dateUpdated": at}
