"""Interactions and notes of the Bloomerang simulator store (the constituent's activity records).

Why they are simulated although the sync writes neither: the official document serves them, third-party
tools post them next to our gifts, and the contract tests generate requests for them — a simulator
missing them cannot stand in for the real service. Shapes are the document's only (``POST|GET|PUT|DELETE
/interaction[/{id}]``, ``GET /interactions``, the same for notes); rules (**decided** where the document
is silent, contracts/bloomerang-v2.md §10):

* Interaction create: ``Date, Channel, Purpose, Subject`` required (document) and ``AccountId`` of an
  existing constituent (**decided**: the document omits it from ``required``, but an interaction belongs
  to a constituent); ``IsInbound`` defaults to false; custom values of area ``Interaction``. Update is
  patch-like; the PUT model has no ``AccountId``, so one naming another constituent is refused.
* Note create: ``AccountId, Date, Note`` required (document); custom values of area ``Note``. Update is
  patch-like and may move the note to another existing constituent (the PUT model declares ``AccountId``).
* ``Subject`` and ``Note`` may not be blank; ``Attachments`` must be absent or empty (**decided**: the
  sandbox stores no files, so a client relying on them fails loudly instead of losing them).
* Deleting a constituent deletes its interactions and notes (as the CRM does).
"""

from __future__ import annotations

from typing import Any

from bloom_pipeline.sandbox.bloomerang.validation import (
    bad,
    boolean,
    business_date,
    custom_value_writes,
    drop_nulls,
    enum,
    integer_id,
    require_object,
    text,
)

CHANNELS = ("Email", "MassEmail", "Phone", "TextMessage", "Mail", "InPerson", "SocialMedia", "Website", "Twitter",
            "Other", "EngagementSurveyEmail", "EngagementSurvey")
PURPOSES = ("Acknowledgement", "ImpactCultivation", "Newsletter", "Receipt", "Solicitation", "SpecialEvent",
            "VolunteerActivity", "PledgeReminder", "Welcome", "BenevonPointOfEntry", "BenevonFollowUp",
            "BenevonAskEvent", "BenevonOneOnOneAsk", "BenevonOngoingCultivation", "Other")
_REQUIRED = {"interaction": ("Date", "Channel", "Purpose", "Subject"), "note": ("AccountId", "Date", "Note")}
_AREA = {"interaction": "Interaction", "note": "Note"}


class ActivitiesMixin:
    """Interaction + note operations; mixed into ``BloomerangStore`` (which provides the tables)."""

    def create_activity(self, kind: str, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            for key in _REQUIRED[kind]:
                if body.get(key) is None:
                    raise bad(f"{key} is required")
            if body.get("AccountId") is None:
                raise bad("AccountId is required")
            fields, writes = self._activity_fields(kind, body, {})
            record = {"IsInbound": False} if kind == "interaction" else {}
            record |= {k: v for k, v in fields.items() if v is not None}
            record |= {"Id": self.next_id(), "_custom": {}, "_audit": self.new_audit()}
            self.apply_custom_values(record["_custom"], writes)
            self.table(kind)[record["Id"]] = record
            self.bump(self.constituents[record["AccountId"]])
            return self.render_activity(kind, record["Id"])

    def update_activity(self, kind: str, record_id: int, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            record = self.get_record(kind, record_id)
            if kind == "interaction" and body.get("AccountId") not in (None, record["AccountId"]):
                raise bad("Cannot move an interaction to another constituent")
            fields, writes = self._activity_fields(kind, body, record)
            for key, value in fields.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
            self.apply_custom_values(record["_custom"], writes)
            self.bump(record)
            return self.render_activity(kind, record_id)

    def _activity_fields(self, kind: str, body: dict[str, Any], record: dict[str, Any]) -> tuple[dict, list]:
        fields: dict[str, Any] = {}
        if not record or (kind == "note" and body.get("AccountId") is not None):
            account_id = integer_id(body["AccountId"], "AccountId")
            if account_id not in self.constituents:
                raise bad(f"No constituent with id {account_id} found")
            fields["AccountId"] = account_id
        if "Date" in body:
            fields["Date"] = business_date(body["Date"], "Date")
        for key in ("Subject", "Note") if kind == "interaction" else ("Note",):
            if key in body:
                value = body[key]
                required = key in _REQUIRED[kind]
                if value is None and not required:
                    fields[key] = None
                    continue
                if value is None or not text(value, key).strip():
                    raise bad(f"{key} cannot be empty")
                fields[key] = value
        if kind == "interaction":
            for key, allowed in (("Channel", CHANNELS), ("Purpose", PURPOSES)):
                if key in body:
                    fields[key] = enum(body[key], key, allowed)
            if body.get("IsInbound") is not None:
                fields["IsInbound"] = boolean(body["IsInbound"], "IsInbound")
        attachments = body.get("Attachments")
        if attachments is not None and (not isinstance(attachments, list) or attachments):
            raise bad("Attachments are not supported: send none (or an empty list)")
        writes = custom_value_writes(body.get("CustomValues"), _AREA[kind], self.custom_fields, self.pick_values)
        return fields, writes

    def delete_activity(self, kind: str, record_id: int) -> dict[str, Any]:
        with self.lock:
            self.get_record(kind, record_id)
            del self.table(kind)[record_id]
            return {"Id": record_id, "Type": _AREA[kind], "Deleted": True}

    def drop_activities_of(self, account_id: int) -> None:
        with self.lock:
            for table in (self.interactions, self.notes):
                for record_id in [i for i, r in table.items() if r["AccountId"] == account_id]:
                    del table[record_id]

    def render_activity(self, kind: str, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.get_record(kind, record_id)
            out = self.public(record) | {"AttachmentIds": [],
                                         "CustomValues": self.read_custom_values(record["_custom"]),
                                         "AuditTrail": self.audit_trail(record)}
            return drop_nulls(out)
