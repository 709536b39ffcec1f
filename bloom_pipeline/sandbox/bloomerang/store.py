"""In-memory Bloomerang v2 database behind the simulator, safe to share between threads.

The simulator app runs in a uvicorn thread while tests read and mutate the same store from the main
thread, so every public method takes the store's re-entrant lock. Records are kept *normalized*
(write-side field names, nulls dropped, plus an ``_audit`` entry); the ``render_*`` methods build the
API read shape (nested ``Fund {Id, Name}``, ``Primary*`` objects, custom values as
``{FieldId, FieldText, Value: {Id, Value}}``, AuditTrail in UTC with ``Z``).

Public surface for tests and the sync (beyond the HTTP API):

* ``store.clock`` — callable returning an aware UTC datetime; set it to make ``lastModified`` exact.
* dicts ``constituents, emails, phones, addresses, transactions, designations, refunds, interactions,
  notes, funds, campaigns, appeals, custom_fields, custom_field_categories, pick_values, wallet_items,
  email_interests`` keyed by Id.
* ``create_constituent(body)``, ``update_constituent(id, body, actor=...)`` — the same validation as
  HTTP; ``actor`` becomes ``AuditTrail.LastModifiedName`` (a user editing in the CRM).
* ``touch("constituent", id, at=None, actor=...)`` — bump a record's LastModifiedDate.
* ``render_constituent(id)``, ``render_transaction(id)`` — the exact GET bodies.
* ``merge_constituents(survivor_id, loser_id, custom_values="fill")`` — a staff merge in the CRM (``merges.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bloom_pipeline.sandbox.answer_text import TextCache, compact
from bloom_pipeline.sandbox.bloomerang.activities import ActivitiesMixin
from bloom_pipeline.sandbox.bloomerang.gifts import GiftsMixin
from bloom_pipeline.sandbox.bloomerang.indexes import ModifiedOrder, Postings
from bloom_pipeline.sandbox.bloomerang.merges import MergesMixin
from bloom_pipeline.sandbox.bloomerang.people import _CONTACTS as CONTACT_KINDS
from bloom_pipeline.sandbox.bloomerang.people import PeopleMixin
from bloom_pipeline.sandbox.bloomerang.validation import (
    CUSTOM_FIELD_TYPES,
    bad,
    boolean,
    business_date,
    drop_nulls,
    enum,
    format_timestamp,
    int32,
    integer_id,
    money,
    not_found,
    require_object,
    text,
)

API_USER = "Sandbox API"

SEED_CATEGORIES = [
    {"Id": 801, "Name": "Integrations", "SortIndex": 1, "ObjectType": "Constituent"},
    {"Id": 811, "Name": "Integrations", "SortIndex": 1, "ObjectType": "Transaction"},
]
SEED_FIELDS = [
    {"Id": 901, "Name": "WeGive Donor ID", "ObjectType": "Constituent", "CategoryId": 801},
    {"Id": 902, "Name": "Handbid Contact ID", "ObjectType": "Constituent", "CategoryId": 801},
    {"Id": 911, "Name": "WeGive Transaction ID", "ObjectType": "Transaction", "CategoryId": 811},
    {"Id": 912, "Name": "Handbid Payment ID", "ObjectType": "Transaction", "CategoryId": 811},
]

# Custom email interests (``EmailInterestType: Custom`` names some of them); fixed ids outside the id counter.
SEED_EMAIL_INTERESTS = [{"Id": 701, "Name": "Newsletter"}, {"Id": 702, "Name": "Event Invitations"}]


def _utc_now() -> datetime:
    return datetime.now(UTC)


TRIBUTE_TYPES = ("InHonorOf", "InMemoryOf")


class BloomerangStore(PeopleMixin, GiftsMixin, ActivitiesMixin, MergesMixin):
    """One simulated Bloomerang database (see module docstring for the public surface)."""

    api_actor: str = API_USER  # AuditTrail name of writes made through the API key

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or _utc_now
        self.constituents: dict[int, dict[str, Any]] = {}
        self.emails: dict[int, dict[str, Any]] = {}
        self.phones: dict[int, dict[str, Any]] = {}
        self.addresses: dict[int, dict[str, Any]] = {}
        self.transactions: dict[int, dict[str, Any]] = {}
        self.designations: dict[int, dict[str, Any]] = {}
        self.refunds: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.email_interests: dict[int, dict[str, Any]] = {e["Id"]: dict(e) for e in SEED_EMAIL_INTERESTS}
        self.funds: dict[int, dict[str, Any]] = {}
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.appeals: dict[int, dict[str, Any]] = {}
        self.tributes: dict[int, dict[str, Any]] = {}
        self.wallet_items: dict[int, dict[str, Any]] = {}
        self.custom_field_categories: dict[int, dict[str, Any]] = {}
        self.custom_fields: dict[int, dict[str, Any]] = {}
        self.pick_values: dict[int, dict[str, Any]] = {}
        # Indexes beside the tables (indexes.py), kept by the write methods: every request O(log n + page).
        self.contacts_by_account = {"email": Postings(), "phone": Postings(), "address": Postings()}
        self.designations_by_transaction = Postings()
        self.payments_by_schedule = Postings()  # PledgeId / RecurringDonationId -> payment designation ids
        self.custom_value_index = {"constituent": Postings(), "designation": Postings()}  # (field, value) -> ids
        self.constituents_by_name = Postings()  # duplicate rule: normalized last name / organization name
        self.modified_order = {"constituent": ModifiedOrder(), "transaction": ModifiedOrder()}
        self.transactions_by_date = ModifiedOrder()  # (Date, Id): the default order of GET /transactions
        self.constituent_texts = TextCache(compact)  # list pages' JSON per constituent (answer_text.py)
        # Separate counters, as in Bloomerang: API ids vs human-facing numbers.
        self._next = {"id": 1001, "account": 1, "transaction": 1, "designation": 1, "value": 5001}
        for category in SEED_CATEGORIES:
            self.custom_field_categories[category["Id"]] = dict(category)
        for field in SEED_FIELDS:
            self.add_custom_field(field)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_world(cls, world: Any) -> BloomerangStore:
        """Seed from ``World.bloomerang`` (or a plain dict of lists) through the normal validation."""
        data = world.bloomerang if hasattr(world, "bloomerang") else (world or {})
        store = cls()
        for field in data.get("custom_fields", []):
            if int(field.get("Id", 0)) not in store.custom_fields:
                store.add_custom_field(field)
        for fund in data.get("funds", []):
            store.create_named("fund", fund)
        for campaign in data.get("campaigns", []):
            store.create_named("campaign", campaign)
        for appeal in data.get("appeals", []):
            store.create_named("appeal", appeal)
        for constituent in data.get("constituents", []):
            store.insert_constituent(constituent)
        return store

    @classmethod
    def seeded_constituent_ids(cls, world: Any) -> list[int]:
        """The Ids ``from_world`` gives ``world``'s constituents, in order, without seeding a store (the world
        generator needs them before any store exists): the id counter is taken by every custom field without
        an Id, every fund, campaign and appeal, then by each constituent and after it by each contact record
        it carries. ``tests/unit/sandbox/test_seeded_ids.py`` compares this with a seeded store."""
        data = world.bloomerang if hasattr(world, "bloomerang") else (world or {})
        next_id = cls()._next["id"]
        next_id += sum(not field.get("Id") for field in data.get("custom_fields", []))
        next_id += sum(len(data.get(kind, [])) for kind in ("funds", "campaigns", "appeals"))
        ids = []
        for body in data.get("constituents", []):
            ids.append(next_id)
            next_id += 1 + sum((body.get(primary) is not None) + len(body.get(secondary) or [])
                               for _table, primary, secondary, _validate in CONTACT_KINDS.values())
        return ids

    def add_custom_field(self, field: dict[str, Any]) -> dict[str, Any]:
        """Register a custom field (``Values``: pick-list texts for PickOne/PickMultiple fields)."""
        with self.lock:
            area = field.get("ObjectType") or field.get("Type") or "Constituent"
            if area not in CUSTOM_FIELD_TYPES:
                raise bad(f"Invalid custom field type '{area}'")
            field_id = int(field.get("Id") or self.next_id())
            record = {
                "Id": field_id,
                "CategoryId": int(field.get("CategoryId") or (801 if area == "Constituent" else 811)),
                "Name": str(field["Name"]),
                "IsRequired": bool(field.get("IsRequired", False)),
                "IsActive": bool(field.get("IsActive", True)),
                "DataType": field.get("DataType", "Text"),
                "PickType": field.get("PickType", "Freeform"),
                "SortIndex": int(field.get("SortIndex", len(self.custom_fields) + 1)),
                "ObjectType": area,
                "_audit": self.new_audit(),
            }
            self.custom_fields[field_id] = record
            for value in field.get("Values", []):
                value_id = self.next_value_id()
                self.pick_values[value_id] = {
                    "Id": value_id, "FieldId": field_id, "Value": str(value), "IsActive": True,
                    "_audit": self.new_audit(),
                }
            return record

    # -- counters, clock, audit ---------------------------------------------------------------
    def _take(self, counter: str) -> int:
        with self.lock:
            value = self._next[counter]
            self._next[counter] += 1
            return value

    def next_id(self) -> int:
        return self._take("id")

    def next_value_id(self) -> int:
        return self._take("value")

    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("store.clock must return an aware datetime")
        return moment.astimezone(UTC).replace(microsecond=0)

    def new_audit(self, actor: str = API_USER) -> dict[str, Any]:
        moment = self.now()
        return {"created": moment, "created_by": actor, "modified": moment, "modified_by": actor}

    def bump(self, record: dict[str, Any], actor: str = API_USER, at: datetime | None = None) -> None:
        old = record["_audit"]["modified"]
        record["_audit"]["modified"] = (at or self.now()).astimezone(UTC).replace(microsecond=0)
        record["_audit"]["modified_by"] = actor
        for kind, order in self.modified_order.items():  # ids are unique across tables: one identity check
            if self.table(kind).get(record.get("Id")) is record:
                order.move(old, record["_audit"]["modified"], record["Id"])

    def index_modified(self, kind: str, record: dict[str, Any]) -> None:
        """File a newly stored constituent / transaction in the ``lastModified`` order."""
        self.modified_order[kind].add(record["_audit"]["modified"], record["Id"])

    def index_custom_values(self, kind: str, record: dict[str, Any]) -> None:
        """File the record's current custom values for ``customFieldId``/``customFieldValue`` lookups (a value
        it no longer holds stays filed: readers check ``custom_value_matches``)."""
        for field_id, value in record["_custom"].items():
            for item in value if isinstance(value, list) else [value]:
                self.custom_value_index[kind].add((field_id, item.get("Value")), record["Id"])

    def with_custom_value(self, kind: str, field_id: int, wanted: str) -> list[dict[str, Any]]:
        """The stored records of ``kind`` holding ``wanted`` in custom field ``field_id``, by Id."""
        table = self.table(kind)
        found = (table.get(i) for i in self.custom_value_index[kind].ids((field_id, wanted)))
        return [r for r in found if r is not None and self.custom_value_matches(r["_custom"], field_id, wanted)]

    @staticmethod
    def audit_trail(record: dict[str, Any]) -> dict[str, str]:
        audit = record["_audit"]
        return {
            "CreatedDate": format_timestamp(audit["created"]),
            "CreatedName": audit["created_by"],
            "LastModifiedDate": format_timestamp(audit["modified"]),
            "LastModifiedName": audit["modified_by"],
        }

    def touch(self, kind: str, record_id: int, at: datetime | None = None, actor: str = "Sandbox User") -> None:
        """Simulate a user editing a record in the CRM: bump its LastModifiedDate/Name."""
        with self.lock:
            table = self.table(kind)
            if record_id not in table:
                raise not_found(kind, record_id)
            self.bump(table[record_id], actor, at)

    def table(self, kind: str) -> dict[int, dict[str, Any]]:
        plural = {"address": "addresses", "refund": "refunds", "fund": "funds"}.get(kind, kind + "s")
        return getattr(self, plural)

    @staticmethod
    def public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    # -- funds, campaigns, appeals -------------------------------------------------------------
    def create_named(self, kind: str, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            if not isinstance(body.get("Name"), str) or not body["Name"].strip():
                raise bad("Name is required")
            record: dict[str, Any] = {"Id": self.next_id(), "IsActive": True, "SortIndex": 0}
            if kind in ("fund", "tribute"):
                record["IsDefault"] = False
            if kind == "tribute" and body.get("TributeType") is None:
                raise bad("TributeType is required")  # TributeCreateModel: required Name, TributeType
            self._apply_named(kind, record, body)
            if kind not in ("fund", "tribute"):  # funds and tributes carry no AuditTrail (OpenAPI)
                record["_audit"] = self.new_audit()
            self.table(kind)[record["Id"]] = record
            return self.render_named(kind, record["Id"])

    def update_named(self, kind: str, record_id: int, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            record = self.get_record(kind, record_id)
            if "Name" in body and (not isinstance(body["Name"], str) or not body["Name"].strip()):
                raise bad("Name cannot be empty")
            self._apply_named(kind, record, body)
            if "_audit" in record:
                self.bump(record)
            return self.render_named(kind, record_id)

    def _apply_named(self, kind: str, record: dict[str, Any], body: dict[str, Any]) -> None:
        allowed = {
            "fund": ("Name", "IsActive", "IsDefault", "SortIndex", "GeneralLedgerClass",
                     "DefaultQuickbooksAccountId", "QuickbooksAccountIds"),
            "campaign": ("Name", "IsActive", "SortIndex", "StartDate", "EndDate", "Goal"),
            "appeal": ("Name", "IsActive", "SortIndex"),
            "tribute": ("Name", "IsActive", "IsDefault", "SortIndex", "Note", "TributeType", "NotificantAccountIds"),
        }[kind]
        for key in allowed:
            if key not in body:
                continue
            value = body[key]
            if value is None:
                record.pop(key, None)
            elif key in ("IsActive", "IsDefault"):
                record[key] = boolean(value, key)
            elif key == "SortIndex":
                record[key] = int32(value, key)
            elif key == "DefaultQuickbooksAccountId":
                record[key] = integer_id(value, key)
            elif key in ("StartDate", "EndDate"):
                record[key] = business_date(value, key)
            elif key == "Goal":
                record[key] = money(value, key)
            elif key == "TributeType":
                record[key] = enum(value, key, TRIBUTE_TYPES)
            elif key == "NotificantAccountIds":
                if not isinstance(value, list):
                    raise bad(f"{key} must be a list of integer ids")
                for account in value:
                    if integer_id(account, key) not in self.constituents:
                        raise bad(f"No constituent with id {account} found")
                record[key] = [integer_id(v, key) for v in value]
            elif key == "QuickbooksAccountIds":
                if not isinstance(value, list):
                    raise bad(f"{key} must be a list of integer ids")
                record[key] = [integer_id(v, key) for v in value]
            else:
                record[key] = text(value, key).strip() if key == "Name" else text(value, key)

    def get_record(self, kind: str, record_id: int) -> dict[str, Any]:
        record = self.table(kind).get(record_id)
        if record is None:
            raise not_found(kind, record_id)
        return record

    def render_named(self, kind: str, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.get_record(kind, record_id)
            out = self.public(record)
            if kind == "campaign":
                out["Raised"] = self.campaign_raised(record_id)
            if "_audit" in record:
                out["AuditTrail"] = self.audit_trail(record)
            return drop_nulls(out)

    def named_ref(self, kind: str, record_id: int | None) -> dict[str, Any] | None:
        record = self.table(kind).get(record_id) if record_id is not None else None
        return None if record is None else {"Id": record["Id"], "Name": record["Name"]}

    # -- custom fields --------------------------------------------------------------------------
    def render_custom_field(self, field: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in self.public(field).items() if k != "ObjectType"}
        return out | {"AuditTrail": self.audit_trail(field)}

    def render_pick_value(self, value: dict[str, Any]) -> dict[str, Any]:
        return self.public(value) | {"AuditTrail": self.audit_trail(value)}

    def read_custom_values(self, stored: dict[int, Any]) -> list[dict[str, Any]]:
        """Stored ``{field_id: {"Id", "Value"} | [ {...} ]}`` → read shape, ordered by field."""
        out = []
        for field_id in sorted(stored):
            value = stored[field_id]
            name = self.custom_fields[field_id]["Name"] if field_id in self.custom_fields else None
            key = "Values" if isinstance(value, list) else "Value"
            out.append(drop_nulls({"FieldId": field_id, "FieldText": name, key: value}))
        return out

    def apply_custom_values(self, stored: dict[int, Any], writes: Iterable[tuple[int, str, Any]]) -> None:
        for field_id, pick, value in writes:
            if value is None or value == []:
                stored.pop(field_id, None)
            elif pick == "Freeform":
                current = stored.get(field_id)
                if not (isinstance(current, dict) and current.get("Value") == value):
                    stored[field_id] = {"Id": self.next_value_id(), "Value": value}
            elif pick == "PickOne":
                stored[field_id] = {"Id": value, "Value": self.pick_values[value]["Value"]}
            else:
                stored[field_id] = [{"Id": v, "Value": self.pick_values[v]["Value"]} for v in value]

    @staticmethod
    def custom_value_matches(stored: dict[int, Any], field_id: int, wanted: str) -> bool:
        value = stored.get(field_id)
        items = value if isinstance(value, list) else [value] if value else []
        return any(item.get("Value") == wanted for item in items)
