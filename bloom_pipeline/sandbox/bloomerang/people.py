"""Constituents and their email / phone / address records for the Bloomerang simulator store.

Rules enforced (fact sheet + live observations): ``Type`` required and fixed once set; Individuals need
FirstName + LastName and refuse ``FullName`` even when null ("Cannot set FullName for individuals")
because the server computes it from First/Middle/Last/Suffix; Organizations need FullName. PUT is
patch-like (**decided**, fact sheet "INF: yes, likely"): omitted fields are kept, explicit nulls clear.
``PrimaryEmail/Phone/Address`` create separate records with their own ids; on PUT a primary object
with an ``Id`` updates that record, without one it updates the current primary in place (or creates
it). The constituent's ``EmailIds/PhoneIds/AddressIds`` and ``Primary*`` are always derived from the
contact tables, so they cannot drift. Editing a contact record bumps its own AuditTrail and the
constituent's (**decided**, unknown live). ``PUT /constituent/{id}/updateCommunicationSettings`` sets
restrictions, preferred channel and email interests (``Custom`` only here, naming ``store.email_interests``)
with the update reasons the document requires; ``PUT /constituent`` still refuses ``EmailInterestType:
Custom``.
"""

from __future__ import annotations

from typing import Any

from bloom_pipeline.sandbox.bloomerang import duplicates as dupes
from bloom_pipeline.sandbox.bloomerang.validation import (
    CHANNELS,
    CONSTITUENT_TYPES,
    GENDERS,
    INTEREST_TYPES,
    PICTURE_TYPES,
    RESTRICTIONS,
    STATUSES,
    address_fields,
    bad,
    boolean,
    business_date,
    custom_value_writes,
    drop_nulls,
    email_fields,
    enum,
    integer_id,
    not_found,
    phone_fields,
    require_object,
    text,
)

_TEXT_FIELDS = (
    "FirstName", "LastName", "MiddleName", "Prefix", "Suffix", "InformalName", "FormalName", "EnvelopeName",
    "RecognitionName", "JobTitle", "Employer", "Website", "FacebookId", "TwitterId", "LinkedInId",
)
_ENUM_FIELDS = {
    "Status": STATUSES, "Gender": GENDERS, "ProfilePictureType": PICTURE_TYPES,
    "PreferredCommunicationChannel": CHANNELS, "EmailInterestType": INTEREST_TYPES,
}
_CONTACTS = {
    "email": ("emails", "PrimaryEmail", "SecondaryEmails", email_fields),
    "phone": ("phones", "PrimaryPhone", "SecondaryPhones", phone_fields),
    "address": ("addresses", "PrimaryAddress", "SecondaryAddresses", address_fields),
}
_COUNTRY_CODES = {"united states": "US", "usa": "US", "us": "US", "canada": "CA", "united kingdom": "GB",
                  "mexico": "MX", "australia": "AU"}


def _restrictions(values: Any) -> list[str]:
    if not isinstance(values, list):
        raise bad("CommunicationRestrictions must be a list")
    return list(dict.fromkeys(enum(v, "CommunicationRestriction", RESTRICTIONS) for v in values))


def _reason(part: dict[str, Any], section: str) -> str:
    reason = part.get("UpdateReason")
    if reason is None or not text(reason, "UpdateReason").strip():
        raise bad(f"{section}.UpdateReason is required")
    return reason.strip()


class PeopleMixin:
    """Constituent + contact operations; mixed into ``BloomerangStore`` (which provides the tables)."""

    # -- constituents ---------------------------------------------------------------------------
    def create_constituent(self, body: Any, actor: str | None = None) -> dict[str, Any]:
        return self.render_constituent(self.insert_constituent(body, actor))

    def insert_constituent(self, body: Any, actor: str | None = None) -> int:
        """``create_constituent`` without rendering the answer (seeding a store renders nothing); the new Id."""
        body = require_object(body)
        with self.lock:
            if body.get("Type") is None:
                raise bad("Type is required")
            record: dict[str, Any] = {
                "Type": enum(body["Type"], "Type", CONSTITUENT_TYPES), "Status": "Active",
                "EmailInterestType": "All", "ProfilePictureType": "None", "IsFavorite": False,
                "_custom": {},
            }
            changes, writes = self._constituent_changes(body, record, creating=True)
            contacts = self._plan_contacts(None, body)
            record.update(changes)
            record["Id"] = self.next_id()
            record["AccountNumber"] = self._take("account")
            self._finish_names(record)
            record["_audit"] = self.new_audit(actor or self.api_actor)
            self.apply_custom_values(record["_custom"], writes)
            self.constituents[record["Id"]] = record
            self._index_constituent(record)
            self.index_modified("constituent", record)
            self._write_contacts(record["Id"], contacts, actor or self.api_actor)
            return record["Id"]

    def update_constituent(self, record_id: int, body: Any, actor: str | None = None) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            record = self.get_record("constituent", record_id)
            if body.get("Type") is not None and body["Type"] != record["Type"]:
                enum(body["Type"], "Type", CONSTITUENT_TYPES)
                raise bad("Cannot change the Type of a constituent")
            changes, writes = self._constituent_changes(body, record, creating=False)
            contacts = self._plan_contacts(record_id, body)
            merged = {k: v for k, v in (record | changes).items() if v is not None}
            self._finish_names(merged)
            record.clear()
            record.update(merged)
            self.apply_custom_values(record["_custom"], writes)
            self._index_constituent(record)
            self._write_contacts(record_id, contacts, actor or self.api_actor)
            self.bump(record, actor or self.api_actor)
            return self.render_constituent(record_id)

    def update_communication_settings(self, record_id: int, body: Any) -> dict[str, Any]:
        """``PUT /constituent/{id}/updateCommunicationSettings``: restrictions, preferred channel and email
        interests, each section optional but at least one sent; restrictions and email interests need their
        ``UpdateReason`` (required by the document, and not blank: **decided**)."""
        body = require_object(body)
        with self.lock:
            record = self.get_record("constituent", record_id)
            if body.get("Id") is not None and integer_id(body["Id"], "Id") != record_id:
                raise bad(f"Id {body['Id']} does not match constituent {record_id} of the path")
            changes: dict[str, Any] = {}
            if body.get("CommunicationRestrictions") is not None:
                part = require_object(body["CommunicationRestrictions"], "CommunicationRestrictions")
                changes["CommunicationRestrictionsUpdateReason"] = _reason(part, "CommunicationRestrictions")
                if part.get("CommunicationRestrictions") is None:
                    raise bad("CommunicationRestrictions.CommunicationRestrictions is required")
                changes["CommunicationRestrictions"] = _restrictions(part["CommunicationRestrictions"])
            if body.get("PreferredChannel") is not None:
                part = require_object(body["PreferredChannel"], "PreferredChannel")
                if part.get("PreferredCommunicationChannel") is None:
                    raise bad("PreferredChannel.PreferredCommunicationChannel is required")
                changes["PreferredCommunicationChannel"] = enum(part["PreferredCommunicationChannel"],
                                                                "PreferredCommunicationChannel", CHANNELS)
            if body.get("EmailInterests") is not None:
                changes |= self._email_interest_changes(require_object(body["EmailInterests"], "EmailInterests"))
            if not changes:
                raise bad("Send at least one of CommunicationRestrictions, PreferredChannel, EmailInterests")
            record.update(changes)
            self.bump(record)
            return self.render_constituent(record_id)

    def _email_interest_changes(self, part: dict[str, Any]) -> dict[str, Any]:
        reason = _reason(part, "EmailInterests")
        if part.get("EmailInterestType") is None:
            raise bad("EmailInterests.EmailInterestType is required")
        kind = enum(part["EmailInterestType"], "EmailInterestType", INTEREST_TYPES)
        ids = part.get("CustomEmailInterestIds")
        if ids is not None and not isinstance(ids, list):
            raise bad("CustomEmailInterestIds must be a list of ids")
        if kind != "Custom":
            if ids:
                raise bad("CustomEmailInterestIds are only allowed when EmailInterestType is Custom")
            return {"EmailInterestType": kind, "EmailInterestsUpdateReason": reason, "_email_interests": []}
        if not ids:
            raise bad("CustomEmailInterestIds is required when EmailInterestType is Custom")
        chosen = list(dict.fromkeys(integer_id(i, "CustomEmailInterestIds") for i in ids))
        unknown = [i for i in chosen if i not in self.email_interests]
        if unknown:
            raise bad(f"No email interest with id {unknown[0]} found")
        return {"EmailInterestType": kind, "EmailInterestsUpdateReason": reason, "_email_interests": chosen}

    def _constituent_changes(
        self, body: dict[str, Any], record: dict[str, Any], creating: bool
    ) -> tuple[dict[str, Any], list]:
        kind = record["Type"]
        changes: dict[str, Any] = {}
        for key in _TEXT_FIELDS:
            if key in body:
                changes[key] = None if body[key] is None else text(body[key], key).strip() or None
        for key, allowed in _ENUM_FIELDS.items():
            if key in body:
                changes[key] = None if body[key] is None else enum(body[key], key, allowed)
        if body.get("EmailInterestType") == "Custom":
            raise bad("EmailInterestType cannot be set to Custom through the API")
        if "Birthdate" in body:
            changes["Birthdate"] = None if body["Birthdate"] is None else business_date(body["Birthdate"], "Birthdate")
        if "CommunicationRestrictions" in body:
            changes["CommunicationRestrictions"] = _restrictions(body["CommunicationRestrictions"] or [])
        if body.get("HouseholdId") is not None:
            raise bad(f"No household with id {body['HouseholdId']} found")
        if "IsFavorite" in body and body["IsFavorite"] is not None:
            changes["IsFavorite"] = boolean(body["IsFavorite"], "IsFavorite")
        merged = record | changes
        if kind == "Individual":
            if "FullName" in body:
                raise bad("Cannot set FullName for individuals")
            if not merged.get("FirstName"):
                raise bad("FirstName is required for individuals")
            if not merged.get("LastName"):
                raise bad("LastName is required for individuals")
        else:
            if "FullName" in body:
                changes["FullName"] = None if body["FullName"] is None else text(body["FullName"], "FullName").strip()
            if not (record | changes).get("FullName"):
                raise bad("FullName is required for organizations")
            for key in ("FirstName", "LastName", "MiddleName"):
                if body.get(key):
                    raise bad(f"Cannot set {key} for organizations")
        for key in ("PrimaryEmail", "PrimaryPhone", "PrimaryAddress"):
            if body.get(key) is not None:
                require_object(body[key], key)
        writes = custom_value_writes(body.get("CustomValues"), "Constituent", self.custom_fields, self.pick_values)
        return changes, writes

    def _index_constituent(self, record: dict[str, Any]) -> None:
        self.constituents_by_name.add(dupes.record_name_key(record), record["Id"])
        self.index_custom_values("constituent", record)

    @staticmethod
    def _finish_names(record: dict[str, Any]) -> None:
        """Server-computed names: FullName of individuals (Prefix excluded, as observed live)."""
        if record["Type"] == "Individual":
            parts = [record.get(k) for k in ("FirstName", "MiddleName", "LastName", "Suffix")]
            record["FullName"] = " ".join(p for p in parts if p)
            record.setdefault("InformalName", record["FirstName"])
            prefix = record.get("Prefix")
            record.setdefault("FormalName", f"{prefix} {record['LastName']}" if prefix else record["FullName"])
        else:
            record.setdefault("InformalName", record["FullName"])
            record.setdefault("FormalName", record["FullName"])
        record.setdefault("EnvelopeName", record["FullName"])
        record.setdefault("RecognitionName", record["FullName"])

    def _plan_contacts(self, account_id: int | None, body: dict[str, Any]) -> list[tuple]:
        """Validate every nested contact before anything is written (a 400 leaves nothing half-applied)."""
        plan: list[tuple] = []
        for kind, (_, primary_key, secondary_key, validate) in _CONTACTS.items():
            primary = body.get(primary_key)
            if primary is not None:
                existing = self._contact_target(kind, account_id, primary)
                plan.append((kind, existing, validate(primary, existing is None), True))
            secondaries = body.get(secondary_key) or []
            if not isinstance(secondaries, list):
                raise bad(f"{secondary_key} must be a list")
            for item in secondaries:
                item = require_object(item, secondary_key)
                existing = self._contact_target(kind, account_id, item, primary=False)
                plan.append((kind, existing, validate(item, existing is None), False))
        return plan

    def _write_contacts(self, account_id: int, plan: list[tuple], actor: str) -> None:
        for kind, existing, fields, is_primary in plan:
            fields = fields | {"IsPrimary": True} if is_primary else fields | {"IsPrimary": False}
            if existing is None:
                self._insert_contact(kind, account_id, fields, actor)
            else:
                self._update_contact_record(kind, existing, fields, actor)

    def _contact_target(self, kind: str, account_id: int | None, item: dict, primary: bool = True) -> dict | None:
        table = getattr(self, _CONTACTS[kind][0])
        if account_id is None:
            return None
        if item.get("Id") is not None:
            found = table.get(integer_id(item["Id"], "Id"))
            if found is None or found["AccountId"] != account_id:
                raise bad(f"No {kind} with id {item['Id']} found on constituent {account_id}")
            return found
        if primary:
            return next((r for r in self.contacts_of(kind, account_id) if r.get("IsPrimary")), None)
        return None

    def _insert_contact(self, kind: str, account_id: int, fields: dict, actor: str) -> dict[str, Any]:
        table = getattr(self, _CONTACTS[kind][0])
        siblings = self.contacts_of(kind, account_id)
        record = {"IsPrimary": not siblings, "IsBad": False} if kind != "phone" else {"IsPrimary": not siblings}
        record |= {k: v for k, v in fields.items() if v is not None}
        record |= {"Id": self.next_id(), "AccountId": account_id, "_audit": self.new_audit(actor)}
        table[record["Id"]] = record
        self.contacts_by_account[kind].add(account_id, record["Id"])
        self._settle_primary(kind, record)
        return record

    def _update_contact_record(self, kind: str, record: dict, fields: dict, actor: str) -> None:
        for key, value in fields.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        self.bump(record, actor)
        self._settle_primary(kind, record)

    def _settle_primary(self, kind: str, record: dict[str, Any]) -> None:
        """Exactly one primary per constituent and kind (when it has any record of that kind)."""
        siblings = self.contacts_of(kind, record["AccountId"])
        if record.get("IsPrimary"):
            for other in siblings:
                if other is not record and other.get("IsPrimary"):
                    other["IsPrimary"] = False
        elif siblings and not any(r.get("IsPrimary") for r in siblings):
            min(siblings, key=lambda r: r["Id"])["IsPrimary"] = True

    # -- contact endpoints ----------------------------------------------------------------------
    def create_contact(self, kind: str, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            if body.get("AccountId") is None:
                raise bad("AccountId is required")
            account_id = integer_id(body["AccountId"], "AccountId")
            if account_id not in self.constituents:
                raise bad(f"No constituent with id {account_id} found")
            record = self._insert_contact(kind, account_id, _CONTACTS[kind][3](body, True), self.api_actor)
            self.bump(self.constituents[account_id])
            return self.render_contact(kind, record["Id"])

    def update_contact(self, kind: str, record_id: int, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            record = self.get_record(kind, record_id)
            if body.get("AccountId") not in (None, record["AccountId"]):
                raise bad(f"Cannot move a {kind} to another constituent")
            self._update_contact_record(kind, record, _CONTACTS[kind][3](body, False), self.api_actor)
            self.bump(self.constituents[record["AccountId"]])
            return self.render_contact(kind, record_id)

    def delete_contact(self, kind: str, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.get_record(kind, record_id)
            del getattr(self, _CONTACTS[kind][0])[record_id]
            self.contacts_by_account[kind].discard(record["AccountId"], record_id)
            remaining = self.contacts_of(kind, record["AccountId"])
            if remaining:
                self._settle_primary(kind, remaining[0])
            self.bump(self.constituents[record["AccountId"]])
            return {"Id": record_id, "Type": kind.capitalize(), "Deleted": True}

    def render_contact(self, kind: str, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.get_record(kind, record_id)
            out = self.public(record) | {"AuditTrail": self.audit_trail(record)}
            if kind == "address":
                state = record.get("State") or ""
                if len(state) == 2:
                    out["StateAbbreviation"] = state.upper()
                code = _COUNTRY_CODES.get(record.get("Country", "").lower())
                if code:
                    out["CountryCode"] = code
            return drop_nulls(out)

    def contacts_of(self, kind: str, account_id: int) -> list[dict[str, Any]]:
        """The constituent's email / phone / address records by Id (from the index, each checked)."""
        table = getattr(self, _CONTACTS[kind][0])
        found = (table.get(i) for i in self.contacts_by_account[kind].ids(account_id))
        return [r for r in found if r is not None and r["AccountId"] == account_id]

    # -- reads ------------------------------------------------------------------------------------
    def render_constituent(self, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.constituents.get(record_id)
            if record is None:
                raise not_found("constituent", record_id)
            out = self.public(record)
            out |= {"IsInHousehold": False, "IsHeadOfHousehold": False, "EngagementScore": "Low",
                    "DonorSearchInfo": {"GenerosityScore": "NotScanned"},
                    "CommunicationRestrictions": record.get("CommunicationRestrictions", [])}
            clean = {"CustomValues"}  # keys given fresh, already null-free values below
            for kind, (_, primary_key, _, _) in _CONTACTS.items():
                records = self.contacts_of(kind, record_id)
                out[kind.capitalize() + "Ids"] = [r["Id"] for r in records]
                primary = next((r for r in records if r.get("IsPrimary")), None)
                if primary is not None:
                    out[primary_key] = self.render_contact(kind, primary["Id"])
                    clean.add(primary_key)
            if record.get("EmailInterestType") == "Custom":
                out["CustomEmailInterests"] = [{"Id": i, "Name": self.email_interests[i]["Name"]}
                                               for i in record.get("_email_interests", [])]
            out["CustomValues"] = self.read_custom_values(record["_custom"])
            out["AuditTrail"] = self.audit_trail(record)
            # the rendered Primary* contacts and CustomValues are fresh and already null-free: only the rest is
            # cleaned (``drop_nulls`` is idempotent, so this is its whole-record result at a fraction of the cost)
            return {k: v if k in clean else drop_nulls(v) for k, v in out.items() if v is not None}

    def constituent_text(self, record_id: int) -> str:
        """``render_constituent`` as compact JSON text, reused while its inputs are unchanged (``answer_text``):
        what a list page sends, without rendering and encoding every record of every page again."""
        with self.lock:
            record = self.constituents.get(record_id)
            if record is None:
                raise not_found("constituent", record_id)
            return self.constituent_texts.text(record_id, self._constituent_inputs(record),
                                               lambda: self.render_constituent(record_id))

    def _constituent_inputs(self, record: dict[str, Any]) -> tuple:
        """Everything ``render_constituent`` reads: the record, its contact records, the names of its custom
        fields and of its email interests."""
        record_id = record["Id"]
        fields = tuple((self.custom_fields.get(f) or {}).get("Name") for f in record["_custom"])
        interests = tuple(self.email_interests.get(i) for i in record.get("_email_interests", ()))
        return (record, [self.contacts_of(kind, record_id) for kind in _CONTACTS], fields, interests)

    def delete_constituent(self, record_id: int) -> dict[str, Any]:
        with self.lock:
            self.get_record("constituent", record_id)
            if any(t["AccountId"] == record_id for t in self.transactions.values()):
                raise bad("Cannot delete constituent because it has transactions.")
            for kind in _CONTACTS:
                for contact in self.contacts_of(kind, record_id):
                    del getattr(self, _CONTACTS[kind][0])[contact["Id"]]
                self.contacts_by_account[kind].drop(record_id)
            self.drop_activities_of(record_id)
            record = self.constituents.pop(record_id)
            self.modified_order["constituent"].remove(record["_audit"]["modified"], record_id)
            return {"Id": record_id, "Type": "Constituent", "Deleted": True}

    def find_duplicates(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Bloomerang's duplicate rule: name (with nicknames) AND one of email / street / phone-7."""
        with self.lock:
            if not dupes.has_name_and_contact(query):
                return []
            found = []
            for record_id in self.constituents_by_name.ids(dupes.name_key(query)):
                record = self.constituents.get(record_id)
                if record is None or not dupes.name_matches(query, record):
                    continue
                emails = [r["Value"] for r in self.contacts_of("email", record_id)]
                streets = [r.get("Street", "") for r in self.contacts_of("address", record_id)]
                phones = [r["Number"] for r in self.contacts_of("phone", record_id)]
                if dupes.contact_matches(query, emails, streets, phones):
                    found.append(self.render_constituent(record_id))
            return found

    def search_constituents(self, term: str, kind: str | None) -> list[dict[str, Any]]:
        """Case-insensitive substring over names, emails and the account number."""
        needle = term.strip().lower()
        with self.lock:
            out = []
            for record_id in sorted(self.constituents):
                record = self.constituents[record_id]
                if kind and record["Type"] != kind:
                    continue
                haystack = [record.get(k) or "" for k in ("FullName", "FirstName", "LastName", "InformalName")]
                haystack += [r["Value"] for r in self.contacts_of("email", record_id)]
                haystack.append(str(record["AccountNumber"]))
                if not needle or any(needle in h.lower() for h in haystack):
                    out.append(self.render_constituent(record_id))
            return out
