"""Pydantic models of the mapping YAML: one org's whole configuration, field rules included.

Why pydantic with extra="forbid": a misspelt key must be an error with a line number, never a silently
ignored setting. `MappingDocument` is what one file may hold (everything optional, `extends` allowed);
`OrgConfig` is the resolved org after `extends` is merged, with the helpers other modules call.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bloom_pipeline.mapping.catalog import ENTITY_TARGET

# \Z, not $: `$` also matches before a trailing newline, so "demo\n" passed as an org name
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*\Z")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h)?\s*\Z")


def zone_problem(name: str) -> str | None:
    """None when `zoneinfo` loads the time zone `name` (what Dagster's execution_timezone and the schedule's
    run key use), else the problem. Any failure counts: 'America' is a folder (IsADirectoryError), an over-long
    name is an OSError, 'zone.tab' is not a TZif file — none of them may end in a traceback."""
    try:
        ZoneInfo(name)
    except Exception:
        return f"'{name}' is not a valid IANA time zone (e.g. America/Denver)"
    return None


def _zone(value: str | None) -> str | None:
    if value is not None and (problem := zone_problem(value)) is not None:
        raise PydanticCustomError("time_zone", problem)
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Case(Strict):
    """One arm of `cases`: the first arm whose `if_present` field is non-empty gives `value`."""

    if_present: str
    value: Any


TransformRef = str | dict[str, Any]
OnInvalid = Literal["drop_field", "reject_record"]


class FieldRule(Strict):
    """How one Bloomerang target field is produced from source fields (see mappings/README.md)."""

    from_: str | list[str] | None = Field(default=None, alias="from")
    const: Any = None
    cases: list[Case] | None = None
    transform: list[TransformRef] = Field(default_factory=list)
    lookup: dict[str | bool | int, Any] | None = None
    default: Any = None
    required: bool = False
    when: dict[str, list[Any]] | None = None
    canonical: str | None = None
    requires: dict[str, list[str]] | None = None
    fallback: Any = None
    fallback_note: str | None = None
    note: dict[str, str] | None = None
    on_invalid: OnInvalid | None = None

    @field_validator("transform", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | dict) else value

    @model_validator(mode="after")
    def _required_values_reject(self) -> FieldRule:
        if self.required and self.on_invalid == "drop_field":
            raise PydanticCustomError(
                "on_invalid", "a required field cannot be dropped: 'on_invalid: drop_field' needs 'required: false' "
                "(an invalid value of a required field rejects the record)")
        return self

    def invalid_policy(self, *, lookup: bool = False) -> OnInvalid:
        """What an invalid value of this field does: `on_invalid` when set; else a required field rejects the
        record and an optional one is left out (`drop_field`) — except a value missing from a `lookup` table,
        which rejects the record: the table gives the value its meaning (a status → refunded or not), and a
        meaning nobody mapped is not a contact detail to leave out."""
        if self.on_invalid is not None:
            return self.on_invalid
        return "reject_record" if self.required or lookup else "drop_field"

    def sources(self) -> list[str]:
        found = [self.from_] if isinstance(self.from_, str) else list(self.from_ or [])
        return found + [case.if_present for case in self.cases or []]


class Exclusion(Strict):
    """Records that are not gifts by design (e.g. failed payments): rejected with kind 'excluded'."""

    field: str
    in_: list[str] = Field(alias="in")
    reason: str


# Designation targets that name a Bloomerang fund / campaign / appeal: a text value a rule gives them (its
# `lookup` values, `default`, `const`) is a Bloomerang *name*, as in `handbid.events`, and becomes
# 'ref:bloomerang.<plural>:name=…' for the sync to resolve; an integer is a Bloomerang id.
NAMED_TARGETS = {"FundId": "funds", "CampaignId": "campaigns", "AppealId": "appeals"}


def _named(value: Any, plural: str) -> Any:
    if isinstance(value, str) and value.strip() and not value.startswith("ref:"):
        return f"ref:bloomerang.{plural}:name={value.strip()}"
    return value


class DesignationSpec(Strict):
    """Designations: one per element of `list` (else one per record); `fallback` builds the element
    from the record's own fields when the list is empty."""

    list: str | None = None
    fallback: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, FieldRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_to_refs(self) -> DesignationSpec:
        """Why here: the mapping runs with no network, so an org's campaign map (WeGive campaign → Bloomerang
        campaign name) can only carry the name; the engine passes values through, the sync resolves them."""
        for target, plural in NAMED_TARGETS.items():
            rule = self.fields.get(target)
            if rule is None:
                continue
            update: dict[str, Any] = {}
            if rule.lookup is not None:
                update["lookup"] = {k: _named(v, plural) for k, v in rule.lookup.items()}
            for key in ("default", "const"):
                if getattr(rule, key) is not None:
                    update[key] = _named(getattr(rule, key), plural)
            if update:
                self.fields[target] = rule.model_copy(update=update)
        return self


class CustomFieldMap(Strict):
    """One org custom field synced both ways: a WeGive donor custom field (its ``api_name`` or name) and the
    Bloomerang Constituent custom field (a name or an id) that holds it, with a direction and a merge policy
    like any field (mappings/README.md, "Custom fields"). Not the correlation ids (``bloomerang.custom_fields``):
    those are the pipeline's own; these are values people type."""

    wegive: str = Field(min_length=1, max_length=255)
    bloomerang: int | str
    direction: Literal["push", "pull", "both"] = "push"
    policy: Literal["overwrite", "fill_empty", "review"] = "overwrite"

    @field_validator("wegive")
    @classmethod
    def _wegive_named(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("custom_field", "the WeGive custom field name cannot be blank")
        return value.strip()

    @field_validator("bloomerang")
    @classmethod
    def _bloomerang_named(cls, value: int | str) -> int | str:
        if isinstance(value, bool) or (isinstance(value, int) and value <= 0):
            raise PydanticCustomError("custom_field", "a Bloomerang custom field is a name or an id above 0")
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("custom_field", "the Bloomerang custom field name cannot be blank")
        return value.strip() if isinstance(value, str) else value

    @property
    def key(self) -> str:
        """The field's name in the merge, the ledgers and the review queue (``custom_field:<bloomerang>``)."""
        return f"custom_field:{self.bloomerang}"


class EntitySpec(Strict):
    id: str = "id"
    updated_at: str | None = None
    bloomerang_id: str | None = None
    status: str | None = None
    correlation: bool = True
    exclude_when: list[Exclusion] = Field(default_factory=list)
    branch_on: str | None = None
    branches: dict[str, dict[str, FieldRule]] = Field(default_factory=dict)
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    designations: DesignationSpec | None = None
    custom_fields: list[CustomFieldMap] = Field(default_factory=list)  # wegive.donors only (checks.py)

    def branch_rules(self, branch: str | None) -> dict[str, FieldRule]:
        rules = dict(self.fields)
        if branch is not None:
            rules.update(self.branches.get(branch, {}))
        return rules


class FieldPolicy(Strict):
    policy: Literal["overwrite", "fill_empty", "review"] = "overwrite"
    direction: Literal["push", "pull", "both"] = "push"


class EventChoice(Strict):
    """Bloomerang fund / appeal / campaign for Handbid gifts: an int id or a name (resolved by the sync);
    and which payments of the event go to Bloomerang at all — Handbid staff choose ("Send to CRM"), so the
    org YAML says it: `send: all | none` (unset: the default's, else all) and `exclude_payments` (payment
    ids held back). Held payments are quarantined as 'excluded' with the reason, never silently dropped."""

    fund: int | str | None = None
    appeal: int | str | None = None
    campaign: int | str | None = None
    send: Literal["all", "none"] | None = None
    exclude_payments: list[int | str] = Field(default_factory=list)

    @field_validator("exclude_payments")
    @classmethod
    def _payment_ids(cls, value: list[int | str]) -> list[int | str]:
        for item in value:
            if isinstance(item, bool) or not str(item).strip().isdigit():
                raise PydanticCustomError("payment_id", f"'{item}' is not a Handbid payment id (a whole number)")
        return value


class CustomFieldNames(Strict):
    wegive: int | str | None = None
    handbid: int | str | None = None


class CustomFields(Strict):
    constituent: CustomFieldNames = CustomFieldNames()
    transaction: CustomFieldNames = CustomFieldNames()


class BloomerangSettings(Strict):
    base_url: str | None = None
    api_key_env: str | None = None
    requests_per_hour: int = Field(default=1000, gt=0)
    # most writes in flight at once in the apply step (sync/apply/pool.py sizes the pool below it from the
    # budget and the observed latency); 1 = one write at a time
    write_connections: int = Field(default=4, ge=1, le=16)
    # most list pages in flight at once once a list's first page told its length (clients/bloomerang.py
    # iter_pages: a first rerun reads back every record a load wrote); 1 = one page at a time
    read_connections: int = Field(default=4, ge=1, le=16)
    custom_fields: CustomFields = CustomFields()
    # A fund / campaign / appeal the org YAML names but Bloomerang lacks: false (default) blocks its gifts
    # with the missing name (a typo never becomes a new fund in the books); true creates it once.
    create_missing: bool = Field(default=False, strict=True)


class WeGiveSettings(Strict):
    base_url: str | None = None
    token_env: str | None = None
    # most write-backs of correlation ids in flight at once (sync/merge/writeback.py); 1 = one at a time
    write_connections: int = Field(default=4, ge=1, le=16)
    # most donor-detail reads in flight at once (sync/extract/wegive.py: a first load reads every donor's)
    read_connections: int = Field(default=4, ge=1, le=16)


class HandbidSettings(Strict):
    base_url: str | None = None
    token_env: str | None = None
    organization_id: int | None = None
    events: dict[str, EventChoice] = Field(default_factory=dict)
    default: EventChoice = EventChoice()
    event_interactions: Literal["registered", "attended", "off"] = Field(
        default="registered",
        description="Which Handbid event participation becomes a Bloomerang interaction (InPerson, SpecialEvent; "
                    "sync/people/events.py): `registered` (registrations and check-ins), `attended` (check-ins "
                    "only) or `off`.")


class Schedule(Strict):
    cron: str = "0 2 * * *"
    timezone: str | None = None

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        # the values themselves are checked by `mapping validate` with Dagster's parser (dagster_values.py)
        if len(value.split()) != 5:
            raise PydanticCustomError("cron", "cron must have five fields (minute hour day month weekday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _zone(value)


class Alerts(Strict):
    webhook_url: str | None = None
    webhook_url_env: str | None = None


class Thresholds(Strict):
    max_reject_share: float = Field(default=0.05, ge=0, le=1)
    min_rejects: int = Field(
        default=10, ge=0, strict=True,
        description="Fewest rejected records of one entity in one run for `max_reject_share` to halt its load: "
                    "the share stops a load only when at least this many records were rejected, so 1 bad record "
                    "out of 4 does not stop a small run. 0 applies the share from the first reject. A whole "
                    "number >= 0 (YAML `thresholds: {min_rejects: 10}`); default 10.")


class ReviewSettings(Strict):
    max_age_days: int = Field(
        default=7, ge=1, strict=True,
        description="Days an open review item may wait for a person before the Dagster check `review_age` on "
                    "the `review_queue` asset warns. A whole number >= 1 (YAML `review: {max_age_days: 7}`); "
                    "default 7.")


CommunicationMark = Literal["DoNotCall", "DoNotMail", "DoNotSolicit", "OptedOut"]


class CommunicationSettings(Strict):
    """WeGive ``do_not_contact`` <-> Bloomerang communication restrictions and email interest (mappings/README.md,
    "Communication preferences"). The defaults live here and not in a defaults YAML: an org that extends no
    default file, or overrides one, must still never have an opt-out left unsynced (it is a legal matter)."""

    direction: Literal["push", "pull", "both", "off"] = "both"
    restrictions: list[Literal["DoNotCall", "DoNotMail", "DoNotSolicit"]] = Field(
        default_factory=lambda: ["DoNotCall", "DoNotMail", "DoNotSolicit"])
    email_opt_out: bool = True
    pull_when: list[CommunicationMark] = Field(default_factory=lambda: ["DoNotSolicit", "OptedOut"])
    update_reason: str = Field(default="Donor asked not to be contacted (WeGive do_not_contact, synced by "
                                       "bloom-pipeline)", min_length=1, max_length=500)

    @model_validator(mode="after")
    def _something_to_sync(self) -> CommunicationSettings:
        if not self.update_reason.strip():
            raise PydanticCustomError("update_reason", "update_reason cannot be blank: Bloomerang requires a reason")
        if self.direction in ("push", "both") and not self.restrictions and not self.email_opt_out:
            raise PydanticCustomError(
                "communication", "a push of do_not_contact needs 'restrictions' or 'email_opt_out: true' (else "
                "nothing would reach Bloomerang; say 'direction: pull' or 'off' instead)")
        if self.direction in ("pull", "both") and not self.pull_when:
            raise PydanticCustomError(
                "communication", "a pull needs 'pull_when' (the Bloomerang marks that set do_not_contact)")
        return self

    @property
    def push_marks(self) -> frozenset[str]:
        """What WeGive's ``do_not_contact: true`` must make Bloomerang hold."""
        return frozenset(self.restrictions) | ({"OptedOut"} if self.email_opt_out else set())


class CustomFieldMatch(Strict):
    """A Bloomerang constituent custom field (exactly one of `id` / `name`) and the value it must hold."""

    id: int | None = None
    name: str | None = Field(default=None, min_length=1)
    value: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_field(self) -> CustomFieldMatch:
        if (self.id is None) == (self.name is None):
            raise PydanticCustomError("custom_field", "name the custom field by exactly one of 'id' or 'name'")
        return self


class PullCreateFilter(Strict):
    """Which unlinked Bloomerang constituents become WeGive donors (all given criteria must hold)."""

    constituent_type: Literal["Individual", "Organization"] | None = None
    custom_field: CustomFieldMatch | None = None


class PullSettings(Strict):
    """Bloomerang -> source creates (mappings/README.md, "Pull creates"): off unless the org opts in, and then
    only for the constituents its filter names -- exporting a whole CRM to a giving platform is not a default."""

    create_missing: Literal["none", "wegive"] = "none"
    create_filter: PullCreateFilter | None = None

    @model_validator(mode="after")
    def _filter_when_creating(self) -> PullSettings:
        if self.create_missing == "wegive" and (
                self.create_filter is None
                or (self.create_filter.constituent_type is None and self.create_filter.custom_field is None)):
            raise PydanticCustomError(
                "pull", "create_missing: wegive needs a create_filter (constituent_type and/or custom_field): "
                "which Bloomerang constituents may be sent to WeGive is the org's decision, never all of them")
        return self


def _duration(value: Any) -> Any:
    if isinstance(value, str) and (match := _DURATION.match(value)):
        unit = {"s": 1, "m": 60, "h": 3600}[match[2] or "s"]
        return timedelta(seconds=int(match[1]) * unit)
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


class MappingDocument(Strict):
    """What one YAML file may contain; every key optional so defaults and orgs share the grammar."""

    extends: list[str] = Field(default_factory=list)
    name: str | None = None
    timezone: str | None = None
    phone_region: str | None = None
    sandbox_fallback: bool | None = None
    clock_skew_tolerance: timedelta | None = None
    on_source_delete: Literal["keep", "inactivate"] | None = None
    schedule: Schedule | None = None
    alerts: Alerts | None = None
    thresholds: Thresholds | None = None
    review: ReviewSettings | None = None
    communication: CommunicationSettings | None = None
    pull: PullSettings | None = None
    bloomerang: BloomerangSettings | None = None
    wegive: WeGiveSettings | None = None
    handbid: HandbidSettings | None = None
    policies: dict[str, dict[str, FieldPolicy]] = Field(default_factory=dict)
    mappings: dict[Literal["wegive", "handbid"], dict[str, EntitySpec]] = Field(default_factory=dict)

    @field_validator("clock_skew_tolerance", mode="before")
    @classmethod
    def _duration_value(cls, value: Any) -> Any:
        return _duration(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _zone(value)

    @field_validator("extends", mode="before")
    @classmethod
    def _extends_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class OrgConfig(Strict):
    """One org, `extends` resolved. Credentials appear only as env-var *names*."""

    name: str
    timezone: str
    phone_region: str = "US"
    sandbox_fallback: bool = False
    clock_skew_tolerance: timedelta = timedelta(minutes=2)
    # a donor archived / deleted in WeGive: "keep" its Bloomerang constituent as it is, or "inactivate" it
    # (Status Inactive, once); either way its link is marked, nothing is written to it (sync/people/lifecycle.py)
    on_source_delete: Literal["keep", "inactivate"] = "keep"
    schedule: Schedule = Schedule()
    alerts: Alerts = Alerts()
    thresholds: Thresholds = Thresholds()
    review: ReviewSettings = ReviewSettings()
    communication: CommunicationSettings = CommunicationSettings()
    pull: PullSettings = PullSettings()
    bloomerang: BloomerangSettings = BloomerangSettings()
    wegive: WeGiveSettings = WeGiveSettings()
    handbid: HandbidSettings = HandbidSettings()
    policies: dict[str, dict[str, FieldPolicy]] = Field(default_factory=dict)
    mappings: dict[str, dict[str, EntitySpec]] = Field(default_factory=dict)

    @field_validator("clock_skew_tolerance", mode="before")
    @classmethod
    def _duration_value(cls, value: Any) -> Any:
        return _duration(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _zone(value) or value

    @property
    def schedule_timezone(self) -> str:
        return self.schedule.timezone or self.timezone

    def entity(self, name: str) -> EntitySpec:
        """`name` is SOURCE.ENTITY, e.g. 'wegive.donors'."""
        source, _, entity = name.partition(".")
        try:
            return self.mappings[source][entity]
        except KeyError:
            raise KeyError(f"org {self.name!r} has no mapping for {name!r}") from None

    def entities(self) -> list[str]:
        return [f"{s}.{e}" for s, ents in self.mappings.items() for e in ents]

    def field_policy(self, entity: str, field: str) -> tuple[str, str]:
        """(policy, direction) of a canonical field; `entity` is a staged table ('constituents') or
        SOURCE.ENTITY. Unlisted fields: overwrite/push (source-owned), or the table's '*' entry."""
        table = ENTITY_TARGET.get(entity, entity)
        rules = self.policies.get(table, {})
        rule = rules.get(field) or rules.get("*") or FieldPolicy()
        return rule.policy, rule.direction

    def placeholders(self, name: str) -> dict[str, str]:
        """Canonical field → the rule default that fills it when the source has nothing (FNU, LNU, a default
        country) for SOURCE.ENTITY ``name``: a value the source does not really have, so it may create a
        record but never update one."""
        try:
            spec = self.entity(name)
        except KeyError:
            return {}
        rules = [*spec.fields.values(), *(r for branch in spec.branches.values() for r in branch.values())]
        return {r.canonical: str(r.default) for r in rules if r.canonical and r.default is not None}

    def custom_field(self, area: str, source: str) -> int | str | None:
        """The Bloomerang custom field (id or name) holding `source`'s correlation id in `area`."""
        return getattr(getattr(self.bloomerang.custom_fields, area), source)

    def event_choice(self, auction_id: Any, auction_name: Any, setting: str) -> int | str | None:
        """Fund / appeal / campaign for a Handbid event: by auction id, then by name, then the default."""
        for key in (auction_id, auction_name):
            if key is not None and str(key) in self.handbid.events:
                value = getattr(self.handbid.events[str(key)], setting)
                if value is not None:
                    return value
        return getattr(self.handbid.default, setting)

    def handbid_selection(self, auction_id: Any, auction_name: Any, payment_id: Any) -> str:
        """'send', 'event_held' (the event — or, unset there, `handbid.default` — says `send: none`) or
        'payment_held' (the payment id is in the event's or the default's `exclude_payments`): what the
        mapping's `exclude_when` on `crmSelection` turns into an 'excluded' quarantine row."""
        send = self.event_choice(auction_id, auction_name, "send")
        if send == "none":
            return "event_held"
        held = list(self.handbid.default.exclude_payments)
        for key in dict.fromkeys((auction_id, auction_name)):
            if key is not None and str(key) in self.handbid.events:
                held += self.handbid.events[str(key)].exclude_payments
        if payment_id is not None and str(payment_id).strip() in {str(p).strip() for p in held}:
            return "payment_held"
        return "send"

    def handbid_sends_event(self, auction_id: Any, auction_name: Any = None) -> bool:
        """False when the org YAML sends none of the event's payments (the reconciled-auction sensor skips it)."""
        return self.event_choice(auction_id, auction_name, "send") != "none"
