"""The response shapes of the WeGive simulator: each stored record rendered as the Laravel resource WeGive
documents for that answer, with exactly the properties that resource names.

Why a module of its own: WeGive answers the same donor in three shapes — a list row
(``DonorTableResource``), the detail (``DonorViewResource``) and the owner embedded in a transaction
(``DonorSimpleResource``) — and the differences matter (a list row has ``first_name`` and ``name`` but no
``last_name``, ``middle_name`` or ``mailing_address``; contracts/wegive-handbid.md §1.4). The store keeps one
record per donor with everything WeGive's database holds; these functions decide what each answer shows.
The key lists are copied from ``contracts/wegive-openapi.json``; ``tests/contract/wegive_check.py`` fails any
answer that carries a property its resource does not name.

Spread columns: ``DonorViewResource``, ``TransactionViewResource`` and ``PledgeViewResource`` end in
``...parent::toArray()`` (the ``""`` property of the document): the model's raw columns. We serve only the
raw columns the fact sheet names — donors ``bloomerang_id`` and ``updated_at`` (§1.4, §4.1); transactions
``id``, ``source_type``, the Laravel timestamps and those behind the range filters, ``bloomerang_id``,
``correlation_id`` and the foreign keys of documented relations (``fund_id``, ``campaign_id``,
``pledge_id``, ``scheduled_donation_id``) (§1.3, §1.5); a pledge's ``id``.

A transaction list row is still ``TransactionTableResource`` ∪ the detail's keys (decided, and the one
list/detail conflation left: the pipeline reads transactions from the list only, and needs the pledge link
and ``updated_at``, which the table resource lacks). Payment sources are ``CardResource`` /
``BankResource``; any other source is the documented ``{"type": ...}`` object (WeGive documents no check
number).
"""

from __future__ import annotations

from typing import Any

DONOR_TABLE_KEYS = (
    "chat_id", "id", "organization_id", "created_at", "type", "mobile_phone", "home_phone", "office_phone",
    "other_phone", "fax", "mailingAddress", "mailing_address_object", "billing_address_object", "billingAddress",
    "email_1", "email_2", "email_3", "first_name", "name", "total_given", "total_given_this_year", "avatar",
    "last_donation", "enabled", "total_given_to_element", "pivot", "tagged_on", "preferred_email",
    "preferred_phone", "do_not_contact", "deleted_at",
)
DONOR_VIEW_KEYS = (
    "chat_id", "scheduled_donations", "households", "pledge_plans", "tags", "address_me_as", "anniversary",
    "communication_settings", "custom_communication_settings", "profile_settings", "page_settings", "id", "uuid",
    "organization_id", "organization_name", "type", "donor_level", "name", "email", "phone", "created_at",
    "referral_count", "avatar", "mailing_address", "billing_address", "mobile_phone", "home_phone", "office_phone",
    "other_phone", "fax", "handle", "email_1", "email_2", "email_3", "short_name", "first_name", "middle_name",
    "last_name", "donor_profile_type", "profile_privacy", "dollar_amount_privacy", "include_name",
    "include_profile_picture", "desktop_notifications", "mobile_notifications", "email_notifications",
    "sms_notifications", "general_communication", "marketing_communication", "donation_updates_receipts",
    "impact_stories_use_of_funds", "service_revenue_count", "total_service_revenue", "total_soft_credit",
    "soft_credit_count", "total_given", "enabled", "total_referrals", "donations_by_year", "total_lifetime_impact",
    "users", "birthdate", "notes", "preferred_phone", "preferred_email", "accounts", "custom_question_answers",
    "primary_user", "first_gift", "custom_fields", "donor_details", "preferred_email_value", "preferred_phone_value",
)
DONOR_SPREAD_KEYS = ("bloomerang_id", "updated_at")
DONOR_SIMPLE_KEYS = (
    "primary_user", "id", "deleted_at", "organization_id", "created_at", "type", "mobile_phone", "home_phone",
    "office_phone", "other_phone", "fax", "mailingAddress", "mailing_address_object", "billingAddress",
    "billing_address_object", "email_1", "email_2", "email_3", "name", "total_given", "total_given_this_year",
    "avatar", "last_donation", "enabled", "total_given_to_element", "pivot", "tagged_on",
)
CARD_KEYS = (
    "id", "email", "name", "created_at", "last_four", "issuer", "expiration", "expires_at", "owner_type", "owner_id",
    "type", "has_vgs_tokens", "zip_code", "primary", "last_activity", "total_charged", "charges",
    "scheduled_donations_count", "scheduled_donations_monthly_estimate",
)
BANK_KEYS = (
    "id", "email", "name", "created_at", "owner_type", "owner_id", "last_four", "plaid_token", "primary", "type",
    "institution_number", "transit_number", "bank_account_type", "mandate_acceptance", "last_activity",
    "total_charged", "charges", "scheduled_donations_count", "scheduled_donations_monthly_estimate",
)
FUND_RESOURCE_KEYS = (
    "id", "name", "active", "created_at", "last_activity", "total_given_this_year", "total_given", "description",
    "default", "type", "gross_donation_volume", "net_donation_volume", "recurring_donation_volume",
    "one_time_donation_volume", "code", "notes", "override_thank_you", "thank_you_url", "is_tax_deductible",
    "deleted_at", "has_fmv", "fmv", "salesforce_id", "ccb_id", "planning_center_id", "bloomerang_id", "virtuous_id",
    "dp_id", "raisers_edge_id", "undesignated",
)
FUND_MODEL_KEYS = (
    "id", "organization_id", "name", "created_at", "updated_at", "last_cached_at", "description", "salesforce_id",
    "raisers_edge_id", "planning_center_id", "bloomerang_id", "ccb_id", "virtuous_id", "dp_id",
    "custom_import_reference", "active", "default", "deleted_at", "dp_gl_code", "code", "notes",
    "override_thank_you", "thank_you_url", "is_tax_deductible", "import_id", "merged_into_id", "has_fmv", "fmv",
    "undesignated",
)
CAMPAIGN_KEYS = (
    "id", "created_at", "updated_at", "last_cached_at", "deleted_at", "name", "organization_id", "campaign_id",
    "slug", "salesforce_id", "raisers_edge_id", "virtuous_id", "goal", "start_date", "end_date", "neon_id", "type",
    "checkout_id", "p2p_preset_id", "custom_import_reference", "import_id",
)
TRANSACTION_TABLE_KEYS = (
    "owner", "name", "destination", "donor", "source", "amount", "fee", "cover_fees", "source_type", "status",
    "description", "fund", "id", "date", "scheduled_donation_amount", "scheduled_donation_status",
    "scheduled_donation_first_processed", "scheduled_donation_next", "scheduled_donation_total_count",
    "scheduled_donation_total_given", "scheduled_donation_iteration", "scheduled_donation_id", "campaign",
    "created_at", "succeeded_at", "frequency", "fundraiser_id", "fundraiser_name", "fundraiser_slug", "tribute",
    "tribute_name", "tribute_email", "tribute_message", "is_tax_deductible", "receipt_id", "tracking_url",
    "deleted_at", "fund_allocations_count", "fund_allocations",
)
TRANSACTION_VIEW_KEYS = (
    "fund_allocations", "payout_items", "checkout", "name", "scheduledDonation", "amount", "fee_amount", "fee",
    "calculated_fees_paid", "owner", "status", "tribute_name", "tribute", "tribute_message", "tribute_email",
    "campaign", "fundraiser", "campaign_fundraiser", "communications", "fund", "pledge", "source", "retries",
    "retried_transaction", "user", "custom_question_answers", "custom_fields", "has_registrations", "message",
    "session_id",
)
TRANSACTION_SPREAD_KEYS = ("id", "source_type", "created_at", "updated_at", "succeeded_at", "refunded_at", "failed_at",
                           "bloomerang_id", "correlation_id", "fund_id", "campaign_id", "pledge_id",
                           "scheduled_donation_id")
TRANSACTION_DETAIL_KEYS = tuple(dict.fromkeys(TRANSACTION_VIEW_KEYS + TRANSACTION_SPREAD_KEYS))
TRANSACTION_ROW_KEYS = tuple(dict.fromkeys(TRANSACTION_TABLE_KEYS + TRANSACTION_DETAIL_KEYS))


def _pick(record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: record.get(key) for key in keys}


def donor_row(donor: dict[str, Any]) -> dict[str, Any]:
    """A ``GET /dashboard/donors`` row: ``first_name`` and ``name``, the address as an object and a string."""
    out = _pick(donor, DONOR_TABLE_KEYS)
    mailing, billing = donor.get("mailing_address"), donor.get("billing_address")
    out.update({"mailing_address_object": mailing, "billing_address_object": billing,
                "mailingAddress": (mailing or {}).get("readable_string"),
                "billingAddress": (billing or {}).get("readable_string")})
    return out


def donor_detail(donor: dict[str, Any], *, spread: bool = True) -> dict[str, Any]:
    """``GET /dashboard/donors/{id}``: the ``DonorViewResource``, with the spread columns unless turned off."""
    return _pick(donor, DONOR_VIEW_KEYS + (DONOR_SPREAD_KEYS if spread else ()))


def donor_simple(donor: dict[str, Any]) -> dict[str, Any]:
    """The ``DonorSimpleResource`` a transaction embeds as ``owner`` and ``donor``."""
    out = _pick(donor, DONOR_SIMPLE_KEYS)
    mailing = donor.get("mailing_address")
    out.update({"mailing_address_object": mailing, "mailingAddress": (mailing or {}).get("readable_string"),
                "billing_address_object": donor.get("billing_address"), "billingAddress": None})
    return out


def payment_source(source: dict[str, Any] | None, *, bank_transit_number: bool = False) -> dict[str, Any] | None:
    """A card as ``CardResource``, a bank account as ``BankResource``, anything else as ``{"type": ...}``.

    ``bank_transit_number``: whether ``transit_number`` carries the account's 9-digit US routing number.
    Unknown (the document types ``institution_number`` / ``transit_number`` as nullable strings, Canadian
    banking terms); by default they are served empty, the less convenient reading.
    """
    if not source:
        return source
    kind = source.get("type")
    if kind == "card":
        return _pick(source, CARD_KEYS)
    if kind == "bank":
        out = _pick(source, BANK_KEYS)
        if not bank_transit_number:
            out["institution_number"] = out["transit_number"] = None
        return out
    return {"type": kind}


def fund_resource(fund: dict[str, Any]) -> dict[str, Any]:
    """``GET /dashboard/funds`` rows and ``/funds/{id}``: the ``FundResource`` (no ``updated_at``)."""
    return _pick(fund, FUND_RESOURCE_KEYS)


def fund_model(fund: dict[str, Any]) -> dict[str, Any]:
    """The ``Fund`` model a ``FundAllocationResource`` embeds."""
    return _pick(fund, FUND_MODEL_KEYS)


def fund_simple(fund: dict[str, Any]) -> dict[str, Any]:
    """A transaction's ``fund`` (untyped in the document; fact sheet §4.1: ``{"id", "name"}``)."""
    return {"id": fund["id"], "name": fund["name"]}


def campaign(record: dict[str, Any]) -> dict[str, Any]:
    """A ``GET /dashboard/campaigns`` row: the ``Campaign`` model."""
    return _pick(record, CAMPAIGN_KEYS)


def transaction_detail(txn: dict[str, Any]) -> dict[str, Any]:
    """``GET /dashboard/transactions/{id}`` (nested objects already rendered): view resource + spread."""
    return _pick(txn, TRANSACTION_DETAIL_KEYS)


def transaction_row(txn: dict[str, Any]) -> dict[str, Any]:
    """A ``GET /dashboard/transactions`` row: the table resource and the detail's keys (see above)."""
    return _pick(txn, TRANSACTION_ROW_KEYS)


# -- schedules: pledges and scheduled (recurring) donations -------------------------------------------------
PLEDGE_VIEW_KEYS = (
    "donor", "fund", "name", "total_amount", "total_amount_paid", "campaign", "messages", "transaction_count",
    "future_installments", "installment_size", "payment_method", "donations", "pledge_create", "completed", "status",
)
# The pledge's spread (``...parent::toArray()``): its id, and the columns ``GET /dashboard/pledges`` filters and
# sorts on (``donor_id``, ``installment_frequency``, ``start_date``, ``end_date``) — columns of the pledges table.
PLEDGE_SPREAD_KEYS = ("id", "donor_id", "installment_frequency", "start_date", "end_date")
SCHEDULED_DONATION_KEYS = (
    "id", "name", "net_amount", "charge_amount", "amount", "all_transactions_total", "type", "locked", "paused_at",
    "deleted_at", "destination", "frequency", "start_date", "ends_at", "cover_fees", "fee_amount",
    "payment_method_id", "payment_method_type", "payment_method", "created_at", "iteration", "last_processed",
    "tribute_email", "tribute_name", "tribute_message", "paused_type", "paused_until", "anonymous", "fund", "fund_id",
    "checkout", "donor", "last_failed_date", "has_had_pm", "next_retry_at", "campaign_id", "campaign_name",
    "fundraiser_id", "fundraiser_name", "campaign_fundraiser_id", "campaign_fundraiser_name", "is_test",
    "salesforce_id", "tracking_url", "fund_allocations",
)
SCHEDULED_DONATION_VIEW_KEYS = (
    "name", "fund_allocations", "id", "amount", "net_amount", "all_transactions_total", "type", "paused_at",
    "deleted_at", "destination", "frequency", "start_date", "cover_fees", "fee_amount", "payment_method_id",
    "payment_method_type", "payment_method", "created_at", "iteration", "last_processed", "first_processed",
    "tribute_email", "tribute_name", "tribute_message", "paused_type", "paused_until", "donor", "user", "anonymous",
    "fund", "checkout", "fundraiser", "campaign", "last_failed_date", "paymentMethod", "accounts",
    "campaign_fundraiser", "message", "session_id",
)


# ``App.Http.Resources.FundResource``, the fund a pledge embeds: the FundResource without integration ids.
PLEDGE_FUND_KEYS = (
    "id", "name", "created_at", "last_activity", "total_given_this_year", "total_given", "description", "default",
    "type", "gross_donation_volume", "net_donation_volume", "recurring_donation_volume", "one_time_donation_volume",
    "code", "notes", "override_thank_you", "thank_you_url", "is_tax_deductible", "deleted_at", "has_fmv", "fmv",
)


def pledge_fund(fund: dict[str, Any]) -> dict[str, Any]:
    """The fund a ``PledgeViewResource`` embeds (``App.Http.Resources.FundResource``)."""
    return _pick(fund, PLEDGE_FUND_KEYS)


def pledge_view(pledge: dict[str, Any], *, spread: bool = True) -> dict[str, Any]:
    """A ``PledgeViewResource`` (list row and detail), with the spread columns unless turned off (then only
    the pledge's ``id``: the less convenient reading, where no installment plan can be read)."""
    return _pick(pledge, PLEDGE_VIEW_KEYS + (PLEDGE_SPREAD_KEYS if spread else ("id",)))


def scheduled_donation_row(schedule: dict[str, Any]) -> dict[str, Any]:
    """A ``GET /dashboard/scheduled-donations`` row: the ``ScheduledDonationResource``."""
    return _pick(schedule, SCHEDULED_DONATION_KEYS)


def scheduled_donation_detail(schedule: dict[str, Any]) -> dict[str, Any]:
    """``GET /dashboard/scheduled-donations/{id}``: the ``ScheduledDonationOrganizationViewResource``."""
    return _pick(schedule, SCHEDULED_DONATION_VIEW_KEYS)
