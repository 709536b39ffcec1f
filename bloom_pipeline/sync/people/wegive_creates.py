"""Pull creates: a Bloomerang constituent linked to no source becomes a WeGive donor — only where the org says so.

The reference's pull rule "New Records: Create new WeGive records". Why it is opt-in and filtered
(``pull.create_missing: wegive`` with a ``pull.create_filter``, mappings/README.md): a constituent typed into
the CRM did not sign up with the giving platform, so which of them may be sent there is the development
director's decision, never "all of them". Even inside the filter a constituent is **not** sent when it

* has no e-mail (WeGive's find-or-create needs one, and a donor without one cannot be matched again),
* is not ``Active`` (deceased, inactive), or holds an opt-out the org pulls (``communication.pull_when``:
  a donor who asked for no solicitation is not exported to a fundraising platform),
* already shares its e-mail with a WeGive donor: pairing those is identity resolution's job (the push
  matches by e-mail and compatible names, or asks a person), not this step's.

A created donor is linked both ways: the constituent gets the org's WeGive correlation custom value (the
identity in the systems, so a lost data folder finds the pair again), WeGive gets ``bloomerang_id`` (the write
the correlation write-back already makes, ``merge/writeback.py``), and ``sync_state`` records the link so
later steps of the same run see it. Created once: a constituent holding a correlation value is linked and
never a candidate again; if the Bloomerang write failed, the next run's find-or-create (by e-mail) returns
the same donor, or the push's e-mail match links it first. A donor find-or-create returns that the
pipeline already knows is never re-linked to a second constituent.

Log: ``wegive_create_log`` (owned here) keeps every create, skip-after-call and failure of a run. Skips
decided before any call (no e-mail, opted out, ...) are counted in the run's counts, not logged per person.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from bloom_pipeline.errors import ApiError, ConfigurationError
from bloom_pipeline.mapping.spec import PullCreateFilter
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import transaction
from bloom_pipeline.sync.context import RunContext
from bloom_pipeline.sync.people.communication import bloomerang_marks

log = logging.getLogger(__name__)

LOG_DDL = """
CREATE TABLE IF NOT EXISTS wegive_create_log (
    run_id         VARCHAR NOT NULL,
    bloomerang_id  BIGINT NOT NULL,
    wegive_id      VARCHAR,
    action         VARCHAR NOT NULL CHECK (action IN ('created', 'skipped', 'failed')),
    reason         VARCHAR,
    logged_at      TIMESTAMPTZ NOT NULL
)"""
SKIPS = ("no_email", "inactive", "opted_out", "email_in_wegive")


# -- the pure part ----------------------------------------------------------------------------------------------

def custom_texts(values: Any, field_id: int | None) -> set[str]:
    """The texts a constituent's custom field holds (read shape ``{"FieldId", "Value": {"Id", "Value"}}``; a
    multi-pick field holds a list), trimmed and case-folded."""
    out: set[str] = set()
    if field_id is None or not isinstance(values, list):
        return out
    for value in values:
        if not isinstance(value, dict) or value.get("FieldId") != field_id:
            continue
        inner = value.get("Value")
        for item in inner if isinstance(inner, list) else [inner]:
            text = item.get("Value") if isinstance(item, dict) else item
            if text is not None and str(text).strip():
                out.add(str(text).strip().casefold())
    return out


def email_of(record: Mapping[str, Any]) -> str | None:
    """The constituent's primary e-mail, if it looks like one (``x@y.z``, no spaces)."""
    value = (record.get("PrimaryEmail") or {}).get("Value") if isinstance(record.get("PrimaryEmail"), dict) else None
    text = str(value or "").strip()
    if not text or " " in text or text.count("@") != 1 or "." not in text.split("@")[1]:
        return None
    return text


def in_filter(record: Mapping[str, Any], rule: PullCreateFilter | None, field_id: int | None) -> bool:
    """Every criterion of the org's filter holds (no filter: nobody — ``spec.PullSettings`` requires one)."""
    if rule is None:
        return False
    if rule.constituent_type is not None and record.get("Type") != rule.constituent_type:
        return False
    if rule.custom_field is not None:
        return rule.custom_field.value.strip().casefold() in custom_texts(record.get("CustomValues"), field_id)
    return True


def skip_reason(record: Mapping[str, Any], pull_marks: Iterable[str], wegive_emails: set[str]) -> str | None:
    """Why a constituent inside the filter is not sent to WeGive (one of ``SKIPS``), or None."""
    email = email_of(record)
    if email is None:
        return "no_email"
    if str(record.get("Status") or "Active") != "Active":
        return "inactive"
    if bloomerang_marks(record) & set(pull_marks):
        return "opted_out"
    if email.casefold() in wegive_emails:
        return "email_in_wegive"
    return None


def donor_body(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /dashboard/donors/find-or-create`` body of a constituent (documented keys only).

    The documented body has no company name: an organization's name goes in ``first_name``, where a WeGive
    user sees it, rather than being dropped."""
    company = record.get("Type") == "Organization"
    body: dict[str, Any] = {"type": "company" if company else "individual", "email": email_of(record)}
    names = {"first_name": record.get("FullName") or record.get("Name")} if company else {
        "first_name": record.get("FirstName"), "last_name": record.get("LastName")}
    body |= {k: str(v).strip() for k, v in names.items() if v and str(v).strip()}
    phone = (record.get("PrimaryPhone") or {}).get("Number") if isinstance(record.get("PrimaryPhone"), dict) else None
    if phone:
        body["phone"] = str(phone)
    address = record.get("PrimaryAddress") if isinstance(record.get("PrimaryAddress"), dict) else None
    if address and address.get("Street"):
        street = str(address["Street"]).split("\n")
        body["address"] = {k: v for k, v in {
            "address_1": street[0], "address_2": " ".join(street[1:]) or None, "city": address.get("City"),
            "state": address.get("State"), "zip": address.get("PostalCode"), "country": address.get("Country"),
        }.items() if v}
    return body


# -- the step ---------------------------------------------------------------------------------------------------

@dataclass
class CreateOutcome:
    created: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIPS, 0))

    def counts(self) -> dict[str, int]:
        return {"created": self.created, "failed": self.failed,
                **{f"skipped_{k}": n for k, n in self.skipped.items()}}

    @property
    def anything(self) -> bool:
        return bool(self.created or self.failed or any(self.skipped.values()))


def _filter_field(ctx: RunContext, rule: PullCreateFilter | None) -> int | None:
    """The id of the filter's custom field (by id, or its name resolved among the constituent fields)."""
    if rule is None or rule.custom_field is None:
        return None
    if rule.custom_field.id is not None:
        return int(rule.custom_field.id)
    fields = [f for f in ctx.extracted.records.get("bloomerang.custom_fields") or []
              if str(f.get("Area", f.get("ObjectType", "Constituent"))) == "Constituent"]
    if not fields:
        fields = ctx.clients.bloomerang.custom_fields("Constituent")
    wanted = str(rule.custom_field.name).strip().casefold()
    for custom in fields:
        if str(custom.get("Name", "")).strip().casefold() == wanted:
            return int(custom["Id"])
    raise ConfigurationError(f"pull.create_filter.custom_field: Bloomerang has no constituent custom field named "
                             f"'{rule.custom_field.name}'")


def create_missing_donors(ctx: RunContext, con: duckdb.DuckDBPyConnection) -> CreateOutcome:
    """Send the org's unlinked, filtered Bloomerang constituents to WeGive and link them both ways."""
    outcome = CreateOutcome()
    settings = ctx.org.pull
    donors = ctx.extracted.records.get("wegive.donors")
    if settings.create_missing != "wegive" or ctx.direction not in ("pull", "both") or donors is None:
        return outcome  # off, a push-only run, or a run that did not read WeGive (it must know who WeGive has)
    wegive_field = ctx.fields.constituent.get("wegive")
    if wegive_field is None:
        raise ConfigurationError("pull.create_missing: wegive needs bloomerang.custom_fields.constituent.wegive "
                                 "(the field that links a created donor in Bloomerang)")
    rule = settings.create_filter
    filter_field = _filter_field(ctx, rule)
    con.execute(LOG_DDL)
    states = ledgers.states_frame(con, "constituents")
    linked = {int(b) for b in states["bloomerang_id"].dropna()}
    linked |= {int(d["bloomerang_id"]) for d in donors if str(d.get("bloomerang_id") or "").strip().isdigit()}
    known_donors = {str(d.get("id")) for d in donors} | set(states[states["source"] == "wegive"]["source_id"])
    wegive_emails = {str(d.get(k)).strip().casefold() for d in donors for k in ("email", "email_1")
                     if d.get(k)}
    handbid_field = ctx.fields.constituent.get("handbid")
    latest: dict[int, dict[str, Any]] = {}
    for record in ctx.bloomerang_constituents():  # the run's stored snapshot, read once per run
        if isinstance(record, dict) and str(record.get("Id", "")).isdigit():
            latest[int(record["Id"])] = record
    for bid, record in sorted(latest.items()):
        values = record.get("CustomValues")
        if bid in linked or custom_texts(values, wegive_field) or custom_texts(values, handbid_field):
            continue  # linked to a source already
        if not in_filter(record, rule, filter_field):
            continue
        reason = skip_reason(record, ctx.org.communication.pull_when, wegive_emails)
        if reason is not None:
            outcome.skipped[reason] += 1
            continue
        _create(ctx, con, bid, record, int(wegive_field), known_donors, outcome)
    return outcome


def _create(ctx: RunContext, con: duckdb.DuckDBPyConnection, bid: int, record: Mapping[str, Any], field_id: int,
            known_donors: set[str], outcome: CreateOutcome) -> None:
    """One constituent: find-or-create the donor, write the correlation value, record the link."""
    donor_id: str | None = None
    try:
        donor = ctx.clients.wegive.find_or_create_donor(donor_body(record))
        donor_id = str(donor["id"])
        if donor_id in known_donors:  # its e-mail belongs to a donor the pipeline already pairs: a person decides
            outcome.skipped["email_in_wegive"] += 1
            _log(con, ctx.run_id, bid, donor_id, "skipped", "find-or-create returned a donor already known")
            return
        ctx.clients.bloomerang.update_constituent(bid, {"CustomValues": [{"FieldId": field_id, "Value": donor_id}]})
    except ApiError as exc:
        outcome.failed += 1
        log.warning("could not create the WeGive donor of Bloomerang constituent %s: %s", bid, exc)
        _log(con, ctx.run_id, bid, donor_id, "failed", str(exc))
        return
    known_donors.add(donor_id)
    with transaction(con):
        ledgers.upsert_state(con, ledgers.SyncState("constituents", "wegive", donor_id, bloomerang_id=bid,
                                                    last_run_id=ctx.run_id))
    _log(con, ctx.run_id, bid, donor_id, "created", None)
    outcome.created += 1
    try:
        ctx.clients.wegive.update_donor(int(donor_id), {"bloomerang_id": bid})
    except ApiError as exc:  # the correlation write-back retries it on the next run
        log.warning("could not write bloomerang_id %s to the new WeGive donor %s: %s", bid, donor_id, exc)


def _log(con: duckdb.DuckDBPyConnection, run_id: str, bid: int, donor_id: str | None, action: str,
         reason: str | None) -> None:
    con.execute("INSERT INTO wegive_create_log VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, bid, donor_id, action, reason, datetime.now(UTC)])
