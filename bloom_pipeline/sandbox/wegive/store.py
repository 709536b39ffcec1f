"""In-memory WeGive database behind the simulator (thread-safe, settable clock, knobs for unknown facts).

Public surface for tests and demos ("edit as a user would"):

* ``store.clock`` — callable returning an aware UTC datetime; every write stamps ``updated_at`` with it.
* Knobs for what the documents leave open (contracts/wegive-handbid.md §3; defaults **decided**):
  ``amount_units`` — ``"cents"`` (default) or ``"dollars"``: how amounts are *served*;
  ``donor_spread`` — True (default): the donor detail carries the raw columns ``bloomerang_id`` and
  ``updated_at`` of its ``...parent::toArray()`` spread; False: it carries none;
  ``bank_transit_number`` — False (default, the less convenient reading): a bank source's
  ``institution_number`` / ``transit_number`` are empty; True: ``transit_number`` is the US routing number;
  ``donor_custom_fields`` — ``"list"`` (default, the less convenient reading): a detail's ``custom_fields`` is a
  list of ``{api_name, name, value}``; ``"object"``: ``{api_name: value}``, as the store holds it;
  ``pledge_spread`` — True (default): a pledge carries the spread columns its list filters on
  (``donor_id``, ``installment_frequency``, ``start_date``, ``end_date``); False: only its ``id``.
* Schedules: ``pledges`` and ``scheduled_donations`` (cents); ``add_pledge(...)`` /
  ``add_scheduled_donation(...)`` create one, ``add_transaction(..., pledge_id=, scheduled_donation_id=)``
  a payment on it, ``remove_schedule(kind, id)`` deletes one (its payments keep naming it).
* ``update_donor(id, body)`` / ``update_fund(id, body)`` — the PUT validation; raise ``Invalid``. A donor's
  ``custom_fields`` (untyped in the document) is held as an object keyed by the org's donor custom field
  ``api_name``s (``DONOR_CUSTOM_FIELDS``; null when the donor has none) and served per ``donor_custom_fields``.
* ``archive_donor(id)`` / ``restore_donor(id)`` — staff archive (soft delete: ``deleted_at``; listed only under
  ``view=archived|both``; detail and PUT answer 404) and restore.
* ``find_or_create_donor(body)``; ``edit_transaction(id, **fields)``; ``refund_transaction(id)``;
  ``add_transaction(donor_id, amount_cents, ...)`` — a new gift as a donor would make one.
* ``render_donor(id)`` (the detail), ``render_donor_row(id)`` (a list row), ``render_transaction(id)``,
  ``render_fund(id)`` — exact GET bodies.
* ``served_as_is`` — ``{"donors": [...], "transactions": [...]}``: list rows the list endpoints serve exactly
  as given, after the rows of the tables above (empty unless ``sandbox/data/messy.py`` planted some). They
  are what a dict keyed by id cannot hold — a row whose ``id`` is null, a second row under an id already
  taken — and so have no detail of their own: ``GET …/{id}`` answers the table's record or 404, as WeGive's
  detail would (one database row per id, however the list repeats it).

Records hold everything WeGive's database has (``sandbox/data/wegive.py``); ``resources`` renders each
answer with the properties its documented resource names, and nested owner/fund objects in transactions
from the current donor/fund at read time, as WeGive's resources are.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email

from bloom_pipeline.sandbox.answer_text import TextCache, compact
from bloom_pipeline.sandbox.data.wegive import (
    DONOR_CUSTOM_FIELDS,
    address_resource,
    donor_name,
    laravel_ts,
    transaction,
    wegive_donor,
)
from bloom_pipeline.sandbox.tree import copy_bulk, copy_tree
from bloom_pipeline.sandbox.wegive import resources

DONOR_TEXT = ("first_name", "middle_name", "last_name", "mobile_phone", "home_phone")
ADDRESS_KEYS = ("address_1", "address_2", "city", "state", "zip", "country")


class Invalid(Exception):  # noqa: N818 - named after Laravel's ValidationException semantics
    """A 422: ``errors`` maps field → messages, as Laravel renders them."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        first = next(iter(errors.values()))[0]
        more = sum(len(v) for v in errors.values()) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        super().__init__(first + suffix)


class NotFound(Exception):  # noqa: N818
    pass


def _text(errors: dict[str, list[str]], key: str, value: Any, max_len: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.setdefault(key, []).append(f"The {key.replace('_', ' ')} field must be a string.")
        return None
    if len(value) > max_len:
        errors.setdefault(key, []).append(f"The {key.replace('_', ' ')} field must not be greater than "
                                          f"{max_len} characters.")
    return value.strip() or None


def _custom_fields(errors: dict[str, list[str]], value: Any) -> dict[str, Any]:
    """``custom_fields`` of a donor PUT (**decided**, like the PUT itself): an object keyed by the ``api_name`` of
    a donor custom field the org has (``DONOR_CUSTOM_FIELDS``), each value a text, a number, a list of texts
    (a multi-select) or null (clears it); keys not sent keep their values."""
    if not isinstance(value, dict):
        errors.setdefault("custom_fields", []).append("The custom fields field must be an object.")
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"custom_fields.{key}"
        if key not in DONOR_CUSTOM_FIELDS:
            errors.setdefault(where, []).append("The selected custom field is invalid.")
        elif isinstance(item, list) and all(isinstance(x, str) for x in item):
            out[key] = [x for x in (_text(errors, where, x) for x in item) if x]
        elif isinstance(item, int | float) and not isinstance(item, bool):
            out[key] = str(item)
        elif item is None or isinstance(item, str):
            out[key] = _text(errors, where, item)
        else:
            errors.setdefault(where, []).append("The custom field value must be a string or a list of strings.")
    return out


def _email(errors: dict[str, list[str]], key: str, value: Any) -> str | None:
    text = _text(errors, key, value)
    if text is None:
        return None
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        errors.setdefault(key, []).append(f"The {key.replace('_', ' ')} field must be a valid email address.")
    return text


class WeGiveStore:
    """One simulated WeGive organization (see module docstring)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.amount_units = "cents"
        self.donor_spread = True
        self.bank_transit_number = False
        self.donor_custom_fields = "list"
        self.donors: dict[int, dict[str, Any]] = {}
        self.transactions: dict[int, dict[str, Any]] = {}
        self.funds: dict[int, dict[str, Any]] = {}
        self.fund_allocations: dict[int, dict[str, Any]] = {}
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.pledges: dict[int, dict[str, Any]] = {}
        self.scheduled_donations: dict[int, dict[str, Any]] = {}
        self.pledge_spread = True
        self.served_as_is: dict[str, list[dict[str, Any]]] = {"donors": [], "transactions": []}
        self._rng = random.Random(0)
        self.donor_row_texts = TextCache(lambda row: compact(row, ensure_ascii=False))  # answer_text.py
        self.writes = 0  # counts writes through the methods below; app.ScanCache recomputes a list after one

    @classmethod
    def from_world(cls, world: Any) -> WeGiveStore:
        data = world.wegive if hasattr(world, "wegive") else world
        store = cls()
        for name in ("donors", "transactions", "funds", "fund_allocations", "campaigns", "pledges",
                     "scheduled_donations"):
            table = getattr(store, name)
            for record in copy_bulk(data.get(name, [])):
                table[int(record["id"])] = record
        return store

    # -- clock -----------------------------------------------------------------------------------
    def now(self) -> str:
        return laravel_ts(self.clock())  # type: ignore[return-value]

    def _next_id(self, table: dict[int, Any], floor: int) -> int:
        return max(table, default=floor - 1) + 1

    # -- rendering -------------------------------------------------------------------------------
    def money(self, cents: Any) -> Any:
        if cents is None or self.amount_units == "cents":
            return cents
        return round(int(cents) / 100, 2)

    def _donor(self, donor_id: int) -> dict[str, Any]:
        """A donor the detail and PUT routes can reach: an archived one is soft-deleted, and Laravel's route
        model binding does not find a trashed model (404, **decided**: the less convenient reading)."""
        if donor_id not in self.donors or self.donors[donor_id].get("deleted_at") is not None:
            raise NotFound("No query results for model [App\\Models\\Donor].")
        return self.donors[donor_id]

    def archive_donor(self, donor_id: int) -> dict[str, Any]:
        """Archive a donor as staff would in the dashboard (``DELETE /dashboard/model-archive``, a soft delete):
        ``deleted_at`` is set; the donor is listed only under ``view=archived|both``; its gifts stay."""
        with self.lock:
            donor = self._donor(donor_id)
            donor["deleted_at"] = donor["updated_at"] = self.now()
            return copy_tree(resources.donor_row(donor))

    def restore_donor(self, donor_id: int) -> dict[str, Any]:
        """Undo ``archive_donor`` (``PUT /dashboard/model-restore``)."""
        with self.lock:
            if donor_id not in self.donors:
                raise NotFound("No query results for model [App\\Models\\Donor].")
            donor = self.donors[donor_id]
            donor["deleted_at"], donor["updated_at"] = None, self.now()
            return self.render_donor(donor_id)

    def render_donor(self, donor_id: int) -> dict[str, Any]:
        """``GET /dashboard/donors/{id}``: the ``DonorViewResource``."""
        with self.lock:
            detail = copy_tree(resources.donor_detail(self._donor(donor_id), spread=self.donor_spread))
            held = detail.get("custom_fields")
            if isinstance(held, dict) and self.donor_custom_fields == "list":
                detail["custom_fields"] = [{"api_name": key, "name": DONOR_CUSTOM_FIELDS.get(key, key), "value": value}
                                           for key, value in held.items()]
            return detail

    def render_donor_row(self, donor_id: int) -> dict[str, Any]:
        """A ``GET /dashboard/donors`` row: the ``DonorTableResource`` (no last or middle name)."""
        with self.lock:
            if donor_id not in self.donors:
                raise NotFound("No query results for model [App\\Models\\Donor].")
            return copy_tree(resources.donor_row(self.donors[donor_id]))

    def donor_row_text(self, donor_id: int) -> str:
        """``render_donor_row`` as the JSON text a list page sends, reused while the row is unchanged
        (``answer_text``). The row is compared, not copied: it shares the stored donor's values and is only
        encoded, under the lock."""
        with self.lock:
            if donor_id not in self.donors:
                raise NotFound("No query results for model [App\\Models\\Donor].")
            row = resources.donor_row(self.donors[donor_id])
            return self.donor_row_texts.text(donor_id, row, lambda: row)

    def render_fund(self, fund_id: int) -> dict[str, Any]:
        with self.lock:
            if fund_id not in self.funds:
                raise NotFound("No query results for model [App\\Models\\Fund].")
            return copy_tree(resources.fund_resource(self.funds[fund_id]))

    def _allocation(self, alloc: dict[str, Any]) -> dict[str, Any]:
        """A ``FundAllocationResource`` (the fund is the ``Fund`` model, as it is now)."""
        fund = self.funds.get(int(alloc["fund"]["id"]), alloc["fund"])
        return {"id": alloc["id"], "fund": copy_tree(resources.fund_model(fund)),
                "amount": self.money(alloc["amount"])}

    def render_allocation(self, alloc: dict[str, Any]) -> dict[str, Any]:
        """A ``GET /dashboard/fund-allocations`` row: the resource plus its ``transaction_id`` (§4.1)."""
        return {**self._allocation(alloc), "transaction_id": alloc.get("transaction_id")}

    def render_campaign(self, campaign: dict[str, Any]) -> dict[str, Any]:
        return copy_tree(resources.campaign(campaign))

    def render_transaction(self, txn_id: int) -> dict[str, Any]:
        """``GET /dashboard/transactions/{id}``: the ``TransactionViewResource`` and its spread columns."""
        return resources.transaction_detail(self._render_transaction(txn_id))

    def render_transaction_row(self, txn_id: int) -> dict[str, Any]:
        """A ``GET /dashboard/transactions`` row (see ``resources``)."""
        return resources.transaction_row(self._render_transaction(txn_id))

    def _render_transaction(self, txn_id: int) -> dict[str, Any]:
        with self.lock:
            if txn_id not in self.transactions:
                raise NotFound("No query results for model [App\\Models\\Transaction].")
            return self.render_transaction_record(self.transactions[txn_id])

    def render_transaction_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored-shape transaction with its owner, fund and allocations rendered as they are now (the
        rows ``served_as_is`` are built with it from records the table does not hold)."""
        with self.lock:
            txn = copy_tree(record)
            donor = self.donors.get(int(txn["donor_id"]))
            if donor is not None:
                txn["owner"] = txn["donor"] = resources.donor_simple(donor)
            if int(txn["fund"]["id"]) in self.funds:
                txn["fund"] = resources.fund_simple(self.funds[int(txn["fund"]["id"])])
            txn["fund_allocations"] = [self._allocation(a) for a in txn["fund_allocations"]]
            txn["source"] = resources.payment_source(txn.get("source"), bank_transit_number=self.bank_transit_number)
            for key in ("amount", "fee", "fee_amount", "scheduled_donation_amount"):
                txn[key] = self.money(txn.get(key))
            return txn

    # -- schedules -------------------------------------------------------------------------------
    def _payments(self, key: str, schedule_id: int) -> list[dict[str, Any]]:
        return sorted((t for t in self.transactions.values() if t.get(key) == schedule_id),
                      key=lambda t: (t["created_at"], t["id"]))

    def _campaign_name(self, campaign_id: Any) -> str | None:
        return (self.campaigns.get(int(campaign_id)) or {}).get("name") if campaign_id is not None else None

    def render_pledge(self, pledge_id: int) -> dict[str, Any]:
        """A ``PledgeViewResource``: the terms as stored, what was paid counted from its successful payments."""
        with self.lock:
            if pledge_id not in self.pledges:
                raise NotFound("No query results for model [App\\Models\\Pledge].")
            pledge = copy_tree(self.pledges[pledge_id])
            paid = [t for t in self._payments("pledge_id", pledge_id) if t["status"] == "Success"]
            total, size = int(pledge["total_amount"]), int(pledge["installment_size"]) or 1
            paid_cents = sum(int(t["amount"]) for t in paid)
            donor = self.donors.get(int(pledge["donor_id"]))
            fund = self.funds.get(int(pledge["fund_id"]))
            pledge.update(
                donor=resources.donor_simple(donor) if donor else None,
                fund=resources.pledge_fund(fund) if fund else None,
                campaign=self._campaign_name(pledge.get("campaign_id")),
                total_amount=self.money(total), installment_size=self.money(size),
                total_amount_paid=self.money(paid_cents), transaction_count=len(paid),
                future_installments=max(0, -(-(total - paid_cents) // size)), completed=paid_cents >= total,
                donations=[resources._pick(self.render_transaction_record(t), resources.TRANSACTION_TABLE_KEYS)
                           for t in paid])
            return resources.pledge_view(pledge, spread=self.pledge_spread)

    def render_scheduled_donation(self, schedule_id: int, *, detail: bool = False) -> dict[str, Any]:
        """A list row (``ScheduledDonationResource``) or the detail (``…OrganizationViewResource``)."""
        with self.lock:
            if schedule_id not in self.scheduled_donations:
                raise NotFound("No query results for model [App\\Models\\ScheduledDonation].")
            schedule = copy_tree(self.scheduled_donations[schedule_id])
            payments = [t for t in self._payments("scheduled_donation_id", schedule_id) if t["status"] == "Success"]
            donor = self.donors.get(int(schedule["donor_id"]))
            fund = self.funds.get(int(schedule["fund_id"]))
            amount, fee = int(schedule["amount"]), int(schedule.get("fee_amount") or 0)
            schedule.update(
                donor=resources.donor_row(donor) if donor else None,
                fund=resources.fund_model(fund) if fund else None,
                fund_allocations=[{"id": schedule_id * 10, "fund": resources.fund_model(fund),
                                   "amount": self.money(amount)}] if fund else [],
                amount=self.money(amount), charge_amount=self.money(amount), fee_amount=self.money(fee),
                net_amount=self.money(amount - fee),
                all_transactions_total=self.money(sum(int(t["amount"]) for t in payments)),
                iteration=str(len(payments)), last_processed=payments[-1]["created_at"] if payments else None,
                first_processed=payments[0]["created_at"] if payments else None,
                campaign_name=self._campaign_name(schedule.get("campaign_id")),
                campaign=self._campaign_name(schedule.get("campaign_id")), type="donation", locked=False,
                payment_method=schedule.get("payment_method_type"), anonymous=False)
            if detail:
                return resources.scheduled_donation_detail(schedule)
            return resources.scheduled_donation_row(schedule)

    def add_pledge(self, donor_id: int, total_cents: int, installment_cents: int, *, frequency: str = "monthly",
                   start_date: str, end_date: str | None = None, fund_id: int = 1) -> int:
        """A new pledge of ``donor_id`` as WeGive's pledge form makes one; returns its id."""
        with self.lock:
            if donor_id not in self.donors:
                raise NotFound(f"donor {donor_id}")
            pledge_id = self._next_id(self.pledges, 3000)
            now = self.now()
            self.pledges[pledge_id] = {
                "id": pledge_id, "name": "Pledge", "donor_id": donor_id, "fund_id": fund_id, "campaign_id": None,
                "total_amount": total_cents, "installment_size": installment_cents, "installment_frequency": frequency,
                "start_date": start_date, "end_date": end_date, "status": "active", "messages": None,
                "payment_method": None, "pledge_create": None, "created_at": now, "updated_at": now,
                "deleted_at": None}
            return pledge_id

    def add_scheduled_donation(self, donor_id: int, amount_cents: int, *, frequency: str = "monthly",
                               start_date: str, fund_id: int = 1) -> int:
        """A new recurring schedule of ``donor_id``; returns its id."""
        with self.lock:
            if donor_id not in self.donors:
                raise NotFound(f"donor {donor_id}")
            schedule_id = self._next_id(self.scheduled_donations, 7000)
            now = self.now()
            self.scheduled_donations[schedule_id] = {
                "id": schedule_id, "name": "Recurring donation", "donor_id": donor_id, "amount": amount_cents,
                "fee_amount": 0, "cover_fees": False, "frequency": frequency, "start_date": start_date,
                "ends_at": None, "status": "active", "fund_id": fund_id, "campaign_id": None,
                "payment_method_type": "card", "created_at": now, "updated_at": now, "paused_at": None,
                "deleted_at": None, "is_test": False}
            return schedule_id

    def remove_schedule(self, kind: str, schedule_id: int) -> None:
        """Delete a pledge (``kind="pledges"``) or a scheduled donation; its payments keep their reference."""
        with self.lock:
            getattr(self, kind).pop(schedule_id)

    # -- donors ----------------------------------------------------------------------------------
    def update_donor(self, donor_id: int, body: Any) -> dict[str, Any]:
        """``PUT /dashboard/donors/{id}``: validate, apply, bump ``updated_at``."""
        self.writes += 1
        with self.lock:
            changes = self._validate_donor(body, self._donor(donor_id))
            self._apply_donor(self.donors[donor_id], changes)
            return self.render_donor(donor_id)

    def _validate_donor(self, body: Any, donor: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Invalid({"body": ["The request body must be a JSON object."]})
        errors: dict[str, list[str]] = {}
        changes: dict[str, Any] = {}
        for key in DONOR_TEXT:
            if key in body:
                changes[key] = _text(errors, key, body[key], 32 if key.endswith("phone") else 255)
        if "name" in body and donor.get("type") == "company":
            changes["name"] = _text(errors, "name", body["name"])
            if not changes["name"]:
                errors.setdefault("name", []).append("The name field is required for a company.")
        if "email_1" in body:
            changes["email_1"] = _email(errors, "email_1", body["email_1"])
        if "bloomerang_id" in body:
            value = body["bloomerang_id"]
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value > 0) \
                    and not (isinstance(value, str) and value.isdigit() and int(value) > 0):
                errors.setdefault("bloomerang_id", []).append("The bloomerang id field must be a positive integer.")
            else:
                changes["bloomerang_id"] = None if value is None else int(value)
        if "do_not_contact" in body:  # a Laravel boolean rule: true/false, 1/0, "1"/"0"
            value = body["do_not_contact"]
            if value in (True, False, 1, 0, "1", "0") and not isinstance(value, float):
                changes["do_not_contact"] = bool(int(value))
            else:
                errors.setdefault("do_not_contact", []).append("The do not contact field must be true or false.")
        if "custom_fields" in body:
            changes["custom_fields"] = _custom_fields(errors, body["custom_fields"])
        if "mailing_address" in body:
            address = body["mailing_address"]
            if address is not None and not isinstance(address, dict):
                errors.setdefault("mailing_address", []).append("The mailing address field must be an object.")
            elif address is not None:
                changes["mailing_address"] = {k: _text(errors, f"mailing_address.{k}", address.get(k))
                                              for k in ADDRESS_KEYS if k in address}
            else:
                changes["mailing_address"] = None
        if errors:
            raise Invalid(errors)
        if not changes:
            raise Invalid({"body": ["At least one updatable field is required."]})
        return changes

    def _apply_donor(self, donor: dict[str, Any], changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key == "custom_fields":
                held = {**(donor.get("custom_fields") or {}), **value}
                donor["custom_fields"] = {k: v for k, v in held.items() if v not in (None, "", [])} or None
            elif key == "mailing_address":
                if value is None:
                    donor["mailing_address"] = None
                else:
                    current = {k: (donor.get("mailing_address") or {}).get(k) for k in ADDRESS_KEYS}
                    current.update(value)
                    donor["mailing_address"] = address_resource(current, int(donor["id"]) * 10 + 1) \
                        if any(current.values()) else None
            else:
                donor[key] = value
        donor["email"] = donor.get("email_1")
        donor["phone"] = donor.get("mobile_phone") or donor.get("home_phone")
        if donor.get("type") != "company":
            donor["name"] = donor_name(donor)
        donor["updated_at"] = self.now()

    def find_or_create_donor(self, body: Any) -> dict[str, Any]:
        """``POST /dashboard/donors/find-or-create``: match on email (case-insensitive), else create."""
        self.writes += 1
        if not isinstance(body, dict):
            raise Invalid({"type": ["The type field is required."], "email": ["The email field is required."]})
        errors: dict[str, list[str]] = {}
        if body.get("type") not in ("individual", "company"):
            missing = not body.get("type")
            errors["type"] = ["The type field is required." if missing else "The selected type is invalid."]
        email = body.get("email")
        if not email:
            errors["email"] = ["The email field is required."]
        else:
            email = _email(errors, "email", email)
        first = _text(errors, "first_name", body.get("first_name"))
        last = _text(errors, "last_name", body.get("last_name"))
        phone = _text(errors, "phone", body.get("phone"), 32)
        address = body.get("address")
        if address is not None and not isinstance(address, list | dict):
            errors["address"] = ["The address field must be an array."]
        if errors:
            raise Invalid(errors)
        with self.lock:
            wanted = str(email).lower()
            for donor in self.donors.values():
                if donor.get("deleted_at") is None and (donor.get("email_1") or "").lower() == wanted:
                    return self.render_donor(int(donor["id"]))
            donor_id = self._next_id(self.donors, 1001)
            is_company = body["type"] == "company"
            if isinstance(address, list):
                parts = [str(x) for x in address]
                address = dict(zip(ADDRESS_KEYS, parts, strict=False)) if parts else None
            person = {"is_company": is_company, "company": body.get("name") or first or str(email).split("@")[0],
                      "first_name": first, "middle_name": None, "last_name": last, "email": email,
                      "mobile_phone": phone, "home_phone": None,
                      "address": {k: address.get(k) for k in ADDRESS_KEYS} if isinstance(address, dict) else None}
            now = self.clock()
            self.donors[donor_id] = wegive_donor(donor_id, person, now, now)
            return self.render_donor(donor_id)

    # -- funds -----------------------------------------------------------------------------------
    def update_fund(self, fund_id: int, body: Any) -> dict[str, Any]:
        """``PUT /dashboard/funds/{id}`` (decided): write ``bloomerang_id`` back; name/description/code too."""
        self.writes += 1
        with self.lock:
            if fund_id not in self.funds:
                raise NotFound("No query results for model [App\\Models\\Fund].")
            if not isinstance(body, dict):
                raise Invalid({"body": ["The request body must be a JSON object."]})
            errors: dict[str, list[str]] = {}
            changes: dict[str, Any] = {}
            for key in ("name", "description", "code"):
                if key in body:
                    changes[key] = _text(errors, key, body[key])
            if "name" in changes and not changes["name"]:
                errors.setdefault("name", []).append("The name field is required.")
            if "active" in body:
                if not isinstance(body["active"], bool):
                    errors.setdefault("active", []).append("The active field must be true or false.")
                changes["active"] = body["active"]
            if "bloomerang_id" in body:
                value = body["bloomerang_id"]
                if value is not None and not (str(value).isdigit() and int(value) > 0) or isinstance(value, bool):
                    errors.setdefault("bloomerang_id", []).append("The bloomerang id field must be a positive integer.")
                changes["bloomerang_id"] = None if value is None else str(value)
            if errors:
                raise Invalid(errors)
            if not changes:
                raise Invalid({"body": ["At least one updatable field is required."]})
            self.funds[fund_id].update(changes)
            self.funds[fund_id]["updated_at"] = self.now()
            return self.render_fund(fund_id)

    # -- user actions for tests ----------------------------------------------------------------
    def edit_transaction(self, txn_id: int, **fields: Any) -> dict[str, Any]:
        """Change stored fields of a transaction (cents) as WeGive's back office would; bumps updated_at."""
        self.writes += 1
        with self.lock:
            if txn_id not in self.transactions:
                raise NotFound(f"transaction {txn_id}")
            self.transactions[txn_id].update(fields)
            self.transactions[txn_id]["updated_at"] = self.now()
            return self.render_transaction(txn_id)

    def refund_transaction(self, txn_id: int) -> dict[str, Any]:
        now = self.now()
        return self.edit_transaction(txn_id, status="Refunded", refunded_at=now)

    def _embedded_pledge(self, pledge_id: int) -> dict[str, Any]:
        """The pledge a new payment embeds: its terms as stored (the list answer counts what was paid)."""
        if pledge_id not in self.pledges:
            raise NotFound(f"pledge {pledge_id}")
        stored = self.pledges[pledge_id]
        keys = resources.PLEDGE_VIEW_KEYS + resources.PLEDGE_SPREAD_KEYS
        return {k: copy_tree(stored.get(k)) for k in keys} | {"donor": None, "fund": None, "donations": []}

    def add_transaction(self, donor_id: int, amount_cents: int, *, source_type: str = "card",
                        status: str = "Success", fund_id: int = 1, pledge_id: int | None = None,
                        scheduled_donation_id: int | None = None) -> dict[str, Any]:
        """A new gift made now by ``donor_id`` (all keys as generated gifts have them), optionally a payment
        on one of the store's pledges or scheduled donations."""
        self.writes += 1
        with self.lock:
            if donor_id not in self.donors:
                raise NotFound(f"donor {donor_id}")
            txn_id = self._next_id(self.transactions, 88001)
            now = self.clock()
            fund = self.funds[fund_id]
            txn = transaction(self._rng, txn_id, self.donors[donor_id], [fund], list(self.campaigns.values()) or
                              [{"id": 0, "name": "Donation"}], now - timedelta(seconds=5), now,
                              kind=source_type, status=status, amount=amount_cents,
                              frequency="monthly" if scheduled_donation_id else "once",
                              scheduled_id=scheduled_donation_id,
                              pledge=self._embedded_pledge(pledge_id) if pledge_id else None)
            txn["updated_at"] = laravel_ts(now)
            for alloc in txn["fund_allocations"]:
                alloc["id"] = self._next_id(self.fund_allocations, 501)
                self.fund_allocations[alloc["id"]] = alloc
            self.transactions[txn_id] = txn
            return self.render_transaction(txn_id)
