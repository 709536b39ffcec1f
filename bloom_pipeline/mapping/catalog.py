"""What the mapping YAML may name: source fields, their value sets, and Bloomerang v2 write targets.

Why a catalogue: `mapping validate` must tell an admin that `emial_1` or `PrimaryEmail.Valeu` is a typo
*before* any API call, and that a lookup table misses a source value the API can send. The field lists
come from contracts/ (wegive-openapi.json with wegive-handbid.md §1, §4.2 and bloomerang-v2-openapi.json); list paths
use `name[]` for "every element of the list" and digits for one element (`addresses.0.city`).
"""

from __future__ import annotations

# WeGive: the properties contracts/wegive-openapi.json names for the records the pipeline maps, plus the
# spread columns the fact sheet documents (tests/unit/mapping/test_documented_fields.py holds every name
# here, and every `from:` of mappings/defaults, to those documents).
_ADDRESS = ("id", "address_1", "address_2", "city", "state", "country", "zip", "readable_string")  # AddressResource
_FUND_MODEL = ("id", "organization_id", "name", "created_at", "updated_at", "last_cached_at", "description",
               "salesforce_id", "raisers_edge_id", "planning_center_id", "bloomerang_id", "ccb_id", "virtuous_id",
               "dp_id", "custom_import_reference", "active", "default", "deleted_at", "dp_gl_code", "code", "notes",
               "override_thank_you", "thank_you_url", "is_tax_deductible", "import_id", "merged_into_id",
               "has_fmv", "fmv", "undesignated")  # Fund, as a FundAllocationResource embeds it
_DONOR_SIMPLE = ("primary_user", "id", "deleted_at", "organization_id", "created_at", "type", "mobile_phone",
                 "home_phone", "office_phone", "other_phone", "fax", "mailingAddress", "billingAddress", "email_1",
                 "email_2", "email_3", "name", "total_given", "total_given_this_year", "avatar", "last_donation",
                 "enabled", "total_given_to_element", "pivot", "tagged_on")  # DonorSimpleResource (owner, donor)
_CARD = ("id", "email", "name", "created_at", "last_four", "issuer", "expiration", "expires_at", "owner_type",
         "owner_id", "type", "has_vgs_tokens", "zip_code", "primary", "last_activity", "total_charged", "charges",
         "scheduled_donations_count", "scheduled_donations_monthly_estimate")  # CardResource
_BANK = ("id", "email", "name", "created_at", "owner_type", "owner_id", "last_four", "plaid_token", "primary",
         "type", "institution_number", "transit_number", "bank_account_type", "mandate_acceptance",
         "last_activity", "total_charged", "charges", "scheduled_donations_count",
         "scheduled_donations_monthly_estimate")  # BankResource
_PLEDGE = ("id", "donor", "fund", "name", "total_amount", "total_amount_paid", "campaign", "messages",
           "transaction_count", "future_installments", "installment_size", "payment_method", "donations",
           "pledge_create", "completed", "status")  # PledgeViewResource (+ its spread id)


def _nested(prefix: str, names: tuple[str, ...]) -> set[str]:
    return {prefix} | {f"{prefix}.{n}" for n in names}


# The donor *detail* (DonorViewResource): the extract stages details, not list rows (contracts §1.4).
WEGIVE_DONOR_FIELDS = {
    "id", "uuid", "organization_id", "organization_name", "type", "name", "first_name", "middle_name",
    "last_name", "short_name", "email", "email_1", "email_2", "email_3", "preferred_email", "preferred_email_value",
    "phone", "mobile_phone", "home_phone", "office_phone", "other_phone", "fax", "preferred_phone",
    "preferred_phone_value", "birthdate", "notes", "enabled", "created_at", "address_me_as", "anniversary",
    "handle", "total_given", "first_gift", "custom_fields", "households", "tags",
    "bloomerang_id", "updated_at",  # the spread's raw columns (§1.4)
} | _nested("mailing_address", _ADDRESS) | _nested("billing_address", _ADDRESS) \
  | _nested("donor_details", ("total_given", "total_given_count", "total_fundraised", "total_fundraised_count"))

# A transaction list row: TransactionTableResource ∪ TransactionViewResource ∪ the spread (§1.5).
WEGIVE_TRANSACTION_FIELDS = {
    "id", "name", "description", "amount", "fee", "fee_amount", "calculated_fees_paid", "cover_fees",
    "source_type", "status", "campaign", "frequency", "date", "created_at", "succeeded_at", "receipt_id",
    "tracking_url", "deleted_at", "is_tax_deductible", "tribute", "tribute_name", "tribute_email",
    "tribute_message", "fundraiser_id", "fundraiser_name", "fundraiser_slug", "scheduled_donation_id",
    "scheduled_donation_amount", "scheduled_donation_status", "scheduled_donation_iteration",
    "fund_allocations_count", "message", "fund_allocations",
    # the spread's raw columns (§1.3, §1.5)
    "updated_at", "refunded_at", "failed_at", "bloomerang_id", "correlation_id", "owner_type", "owner_id",
    "source_id", "fund_id", "campaign_id", "pledge_id",
} | _nested("owner", _DONOR_SIMPLE) | _nested("donor", _DONOR_SIMPLE) \
  | _nested("owner.mailing_address_object", _ADDRESS) | _nested("source", tuple(dict.fromkeys(_CARD + _BANK))) \
  | _nested("fund", ("id", "name")) | _nested("fund_allocations[]", ("id", "amount")) \
  | _nested("fund_allocations[].fund", _FUND_MODEL) | _nested("pledge", _PLEDGE)

# FundResource (list rows and the show endpoint): no updated_at, no organization_id.
WEGIVE_FUND_FIELDS = {
    "id", "name", "active", "created_at", "last_activity", "total_given_this_year", "total_given", "description",
    "default", "type", "gross_donation_volume", "net_donation_volume", "recurring_donation_volume",
    "one_time_donation_volume", "code", "notes", "override_thank_you", "thank_you_url", "is_tax_deductible",
    "deleted_at", "has_fmv", "fmv", "salesforce_id", "ccb_id", "planning_center_id", "bloomerang_id", "virtuous_id",
    "dp_id", "raisers_edge_id", "undesignated",
}

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
    # the org YAML's choice for the payment (`handbid.events`: send / exclude_payments), joined by the caller
    "crmSelection",
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
    ("handbid.payments", "crmSelection"): ("send", "event_held", "payment_held"),
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

# The refund a refunded gift posts (POST /refund): not a field of the transaction, so the writer takes it out
# of the payload before the transaction is written and sends it as the refund's body (`Date` is the one field
# of that body the source can give: WeGive `refunded_at`). Staged in the payload so its hash follows the date.
REFUND_TARGETS = {"Refund.Date"}

TRANSACTION_TARGETS = {
    "AccountId", "Date", "Amount", "FeeAmount", "Method", "IntegrationUrl", "CheckNumber", "CheckDate",
    "InKindDescription", "InKindType", "InKindMarketValue", "CreditCardType", "CreditCardLastFourDigits",
    "CreditCardExpMonth", "CreditCardExpYear", "EftAccountType", "EftLastFourDigits", "EftRoutingNumber",
    "WalletItemId",
} | STAGED_ONLY_TARGETS | REFUND_TARGETS

# The tribute a gift honors (POST /tribute body, found again by name): not a field of the designation, so the
# writer takes `Tribute` out of each designation; the load creates the tribute once and `TributeId` (a
# 'ref:bloomerang.tributes:name=…') resolves to it. TributeType lives on the tribute: the designation write
# model has no TributeType (OpenAPI), its read model shows the tribute's.
TRIBUTE_TARGETS = {"Tribute.Name", "Tribute.TributeType", "Tribute.Note", "Tribute.IsActive"}

DESIGNATION_TARGETS = {
    "Type", "Amount", "Note", "FundId", "CampaignId", "AppealId", "TributeId", "QuickbooksAccountId",
    "NonDeductibleAmount", "AcknowledgementStatus", "RecurringDonationId", "IsExtraPayment", "PledgeId",
} | TRIBUTE_TARGETS

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
