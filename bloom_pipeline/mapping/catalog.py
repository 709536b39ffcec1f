"""What the mapping YAML may name: source fields, their value sets, and Bloomerang v2 write targets.

Why a catalogue: `mapping validate` must tell an admin that `emial_1` or `PrimaryEmail.Valeu` is a typo
*before* any API call, and that a lookup table misses a source value the API can send. The field lists
come from contracts/ (wegive-handbid.md §4.1/§4.2 and bloomerang-v2-openapi.json); list paths
use `name[]` for "every element of the list" and digits for one element (`addresses.0.city`).
"""

from __future__ import annotations

_ADDRESS = ("id", "address_1", "address_2", "city", "state", "country", "zip", "readable_string")
_FUND = ("id", "name", "active", "default", "type", "code", "description", "is_tax_deductible", "undesignated",
         "bloomerang_id", "created_at", "updated_at", "deleted_at", "organization_id")


def _nested(prefix: str, names: tuple[str, ...]) -> set[str]:
    return {prefix} | {f"{prefix}.{n}" for n in names}


WEGIVE_DONOR_FIELDS = {
    "id", "uuid", "organization_id", "organization_name", "type", "name", "first_name", "middle_name",
    "last_name", "short_name", "email", "email_1", "email_2", "email_3", "preferred_email", "phone",
    "mobile_phone", "home_phone", "office_phone", "other_phone", "fax", "preferred_phone", "birthdate", "notes",
    "enabled", "do_not_contact", "bloomerang_id", "crm_id", "created_at", "updated_at", "deleted_at",
} | _nested("mailing_address", _ADDRESS) | _nested("billing_address", _ADDRESS)

WEGIVE_TRANSACTION_FIELDS = {
    "id", "name", "description", "amount", "fee", "fee_amount", "cover_fees", "source_type", "status",
    "campaign", "campaign_id", "frequency", "date", "created_at", "succeeded_at", "updated_at", "refunded_at",
    "receipt_id", "correlation_id", "bloomerang_id", "deleted_at", "scheduled_donation_id", "pledge_id",
    "is_tax_deductible", "tribute", "tribute_name", "fundraiser_id", "fundraiser_name",
    "owner.id", "owner.type", "owner.name", "owner.email_1", "donor.id", "donor.name", "owner_id",
    "source", "source.id", "source.brand", "source.last_four", "source.exp_month", "source.exp_year",
    "source.account_type", "source.routing_number", "source.check_number", "source.description",
    "source.market_value", "pledge", "pledge.id", "fund_allocations",
} | _nested("fund", _FUND) | _nested("fund_allocations[]", ("id", "amount", "transaction_id")) \
  | _nested("fund_allocations[].fund", _FUND)

WEGIVE_FUND_FIELDS = set(_FUND) | {"last_activity", "total_given", "notes"}

HANDBID_CONTACT_FIELDS = {
    "id", "usersGuid", "firstName", "lastName", "name", "email", "userPhone", "userCellPhone", "countryCode",
    "currentPaddleNumber", "dateInserted", "dateUpdated", "addresses",
} | _nested("addresses.0", ("id", "street", "street1", "street2", "city", "province", "state", "postalCode",
                            "country"))

HANDBID_PAYMENT_FIELDS = {
    "id", "receiptId", "auctionId", "bidderId", "paddleNumber", "amount", "currencyCode", "method", "status",
    "reference", "dateInserted", "dateUpdated",
    # receipt context joined by the caller (see mappings/README.md, "Handbid payments")
    "auctionName", "itemNames", "receiptEmailed",
}

SOURCE_FIELDS: dict[str, set[str]] = {
    "wegive.donors": WEGIVE_DONOR_FIELDS,
    "wegive.transactions": WEGIVE_TRANSACTION_FIELDS,
    "wegive.funds": WEGIVE_FUND_FIELDS,
    "handbid.contacts": HANDBID_CONTACT_FIELDS,
    "handbid.payments": HANDBID_PAYMENT_FIELDS,
}

# Closed value sets: a lookup table (or branch set) on one of these fields must cover every value.
SOURCE_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("wegive.donors", "type"): ("individual", "company"),
    ("wegive.transactions", "status"): ("Pending", "Processing", "Success", "Failed", "Cancelled", "Refunded",
                                        "Disputed"),
    ("wegive.transactions", "source_type"): ("card", "bank", "check", "cash", "paypal", "venmo", "stock",
                                             "crypto", "in_kind", "other"),
    ("handbid.payments", "method"): ("handbid_card", "external_card", "cash", "check", "credit"),
    ("handbid.payments", "status"): ("succeeded", "refunded", "voided"),
    ("handbid.payments", "receiptEmailed"): ("true", "false"),
}

ENTITY_TARGET = {
    "wegive.donors": "constituents", "wegive.transactions": "transactions", "wegive.funds": "funds",
    "handbid.contacts": "constituents", "handbid.payments": "transactions",
}

_EMAIL = ("Type", "Value", "IsPrimary")
_PHONE = ("Type", "Number", "Extension", "IsPrimary")
_ADDR = ("Type", "Street", "City", "State", "PostalCode", "Country", "IsPrimary")

CONSTITUENT_TARGETS = {
    "Type", "Status", "FirstName", "LastName", "MiddleName", "Prefix", "Suffix", "FullName", "InformalName",
    "FormalName", "EnvelopeName", "RecognitionName", "JobTitle", "Employer", "Website", "Gender", "Birthdate",
} | {f"PrimaryEmail.{k}" for k in _EMAIL} | {f"PrimaryPhone.{k}" for k in _PHONE} \
  | {f"PrimaryAddress.{k}" for k in _ADDR}

# `IsRefunded` is read-only in Bloomerang v2 (a refund is its own POST /refund): the rule is kept so the
# reference table lives in the YAML, and it fills the staged `is_refunded` column, never the payload.
STAGED_ONLY_TARGETS = {"IsRefunded"}

TRANSACTION_TARGETS = {
    "AccountId", "Date", "Amount", "FeeAmount", "Method", "IntegrationUrl", "CheckNumber", "CheckDate",
    "InKindDescription", "InKindType", "InKindMarketValue", "CreditCardType", "CreditCardLastFourDigits",
    "CreditCardExpMonth", "CreditCardExpYear", "EftAccountType", "EftLastFourDigits", "EftRoutingNumber",
    "WalletItemId",
} | STAGED_ONLY_TARGETS

DESIGNATION_TARGETS = {
    "Type", "Amount", "Note", "FundId", "CampaignId", "AppealId", "TributeId", "QuickbooksAccountId",
    "NonDeductibleAmount", "AcknowledgementStatus", "RecurringDonationId", "IsExtraPayment", "PledgeId",
}

FUND_TARGETS = {"Name", "IsActive", "IsDefault", "SortIndex", "GeneralLedgerClass"}

TARGETS = {"constituents": CONSTITUENT_TARGETS, "transactions": TRANSACTION_TARGETS, "funds": FUND_TARGETS}

# Required by Bloomerang (OpenAPI + the reference tables' "Required: Yes").
REQUIRED_BY_TYPE = {"Individual": ("Type", "FirstName", "LastName"), "Organization": ("Type", "FullName")}
REQUIRED = {"transactions": ("AccountId", "Date", "Amount", "Method"), "funds": ("Name",)}
REQUIRED_DESIGNATION = ("Type", "Amount", "FundId")

METHODS = ("None", "Cash", "Check", "CreditCard", "Eft", "InKind", "ApplePay", "GooglePay", "PayPal", "Venmo")

CANONICAL_COLUMNS = {
    "constituents": ("constituent_type", "first_name", "middle_name", "last_name", "full_name", "email", "phone",
                     "street", "city", "state", "postal_code", "country", "bloomerang_id"),
    "transactions": ("donor_source_id", "date", "amount", "method", "is_refunded", "status", "fund_source_ids",
                     "bloomerang_id"),
    "funds": ("name", "bloomerang_id"),
}


def source_field_known(entity: str, path: str, element_of: str | None = None) -> bool:
    """True when `path` names a field the source API sends (`parent.` reaches the enclosing record)."""
    fields = SOURCE_FIELDS[entity]
    if element_of is not None:
        if path.startswith("parent."):
            return path[len("parent."):] in fields
        return f"{element_of}[].{path}" in fields or path in fields
    return path in fields
