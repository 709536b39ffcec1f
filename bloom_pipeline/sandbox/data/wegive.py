"""WeGive records as the simulator stores them: donors, funds, campaigns, transactions (amounts in integer cents).

One record per object with everything WeGive's database holds for it (a donor's ``last_name``,
``middle_name`` and ``mailing_address``, a transaction's ``donor_id`` and ``pledge_id``); what each answer
shows of it is decided by ``sandbox/wegive/resources.py`` (a donor list row is a ``DonorTableResource``, the
detail a ``DonorViewResource``, as ``wegive-openapi.json`` documents them). Nested objects are stored in
their documented read shape — the payment ``source`` as ``CardResource`` / ``BankResource`` (``issuer``,
``last_four``, ``expiration`` "MM/YY"; ``bank_account_type``, ``transit_number``) or ``{"type": ...}``; the
owner as ``DonorSimpleResource`` — and the store re-renders owner and fund at read time, so an edit to a
donor or fund shows in its transactions as it would in WeGive. An in-kind or stock gift is described in the
transaction's ``description`` (WeGive documents no description on the source, and no check number at all).

The generators stream: ``iter_wegive_records(n, seed)`` yields ``(donor, [transactions])`` one donor at
a time, so a million-donor benchmark never holds the world in memory.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any

from bloom_pipeline.sandbox.data.people import Pools, build_pools, person
from bloom_pipeline.sandbox.wegive.resources import donor_simple, fund_simple

# The org's donor custom fields (WeGive ``CustomFieldResource``: ``api_name`` -> ``name``). A donor's
# ``custom_fields`` is an object keyed by these names; the generated world leaves it null (record counts stay).
DONOR_CUSTOM_FIELDS = {"tshirt_size": "T-Shirt Size", "volunteer_interests": "Volunteer Interests",
                       "dietary_notes": "Dietary Notes", "member_since": "Member Since",
                       "giving_capacity": "Giving Capacity", "engagement_score": "Engagement Score",
                       "class_year": "Class Year"}

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)  # "now" of generated worlds (fixed: byte-identical output)
ORGANIZATION_ID = 7
ORGANIZATION_NAME = "Bloom Community Foundation"
FIRST_DONOR_ID = 1001
FIRST_TRANSACTION_ID = 88001
FIRST_ALLOCATION_ID = 501
STATUSES = ("Pending", "Processing", "Success", "Failed", "Cancelled", "Refunded", "Disputed")
STATUS_WEIGHTS = (2, 1, 82, 5, 2, 6, 2)
SOURCE_TYPES = ("card", "bank", "check", "cash", "paypal", "venmo", "stock", "crypto", "in_kind", "other")
SOURCE_WEIGHTS = (48, 14, 10, 5, 7, 4, 3, 2, 4, 3)
_STATUS_CUMULATIVE = tuple(accumulate(STATUS_WEIGHTS))
_SOURCE_CUMULATIVE = tuple(accumulate(SOURCE_WEIGHTS))
FUND_NAMES = ("General Fund", "Scholarship Fund", "Building Fund", "Annual Fund", "Youth Programs",
              "Gala Fund", "Endowment", "Disaster Relief")
CAMPAIGN_NAMES = ("Spring Appeal", "Year-End Giving", "Giving Tuesday", "Spring Gala")
PLEDGE_INSTALLMENTS = (6, 4, 12)  # monthly installments of the generated pledges, by donor in turn
AMOUNTS = (1000, 2000, 2500, 5000, 5000, 10000, 10000, 25000, 50000, 100000)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, the month's last day when it is shorter (Jan 31 + 1 → Feb 28)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def laravel_ts(dt: datetime | None) -> str | None:
    """``2026-03-02T15:00:03.000000Z`` — Laravel's UTC serialisation with microseconds."""
    if dt is None:
        return None
    utc = dt if dt.tzinfo is UTC else dt.astimezone(UTC)  # the generated stamps are UTC already
    if utc.year < 1000:  # strftime's %Y does not pad; isoformat (a fifth of the cost: ~400k stamps at 100k) does
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat() without ``timespec`` (its keyword parsing was a third of the call) omits a zero fraction
    text = utc.isoformat()[:-6]  # "+00:00" dropped
    return text + ".000000Z" if utc.microsecond == 0 else text + "Z"


def readable(address: dict[str, Any] | None) -> str:
    if not address:
        return ""
    line = ", ".join(p for p in (address.get("address_1"), address.get("address_2")) if p)
    tail = " ".join(p for p in (address.get("state"), address.get("zip")) if p)
    return ", ".join(p for p in (line, address.get("city"), tail, address.get("country")) if p)


def address_resource(address: dict[str, Any] | None, address_id: int) -> dict[str, Any] | None:
    """An ``AddressResource`` (all keys present; strings never null except ``address_2``)."""
    if not address:
        return None
    out = {"id": address_id, "address_1": address.get("address_1") or "", "address_2": address.get("address_2"),
           "city": address.get("city") or "", "state": address.get("state") or "",
           "country": address.get("country") or "", "zip": address.get("zip") or ""}
    out["readable_string"] = readable(out)
    return out


def donor_name(donor: dict[str, Any]) -> str:
    if donor.get("type") == "company":
        return donor.get("name") or ""
    return " ".join(p for p in (donor.get("first_name"), donor.get("last_name")) if p)


# The documented DonorViewResource keys the generator leaves null, in the order they are added to a donor.
_DONOR_NULL_KEYS = dict.fromkeys((
    "chat_id", "scheduled_donations", "households", "pledge_plans", "tags", "address_me_as",
    "anniversary", "communication_settings", "custom_communication_settings", "profile_settings",
    "page_settings", "referral_count", "avatar", "handle", "donor_profile_type", "profile_privacy",
    "dollar_amount_privacy", "include_name", "include_profile_picture", "desktop_notifications",
    "mobile_notifications", "email_notifications", "sms_notifications", "general_communication",
    "marketing_communication", "donation_updates_receipts", "impact_stories_use_of_funds",
    "service_revenue_count", "total_service_revenue", "total_soft_credit", "soft_credit_count",
    "total_given", "total_referrals", "donations_by_year", "total_lifetime_impact", "birthdate",
    "notes", "preferred_phone", "preferred_email", "accounts", "primary_user", "first_gift",
    "custom_fields", "preferred_email_value", "preferred_phone_value"))


# A donor's keys in their order with the values nothing is drawn for (copied per donor by ``wegive_donor``;
# the lists and ``donor_details`` are made per donor, never shared).
_DONOR_TEMPLATE: dict[str, Any] = {
    "id": None, "uuid": None, "organization_id": ORGANIZATION_ID, "organization_name": ORGANIZATION_NAME,
    "type": "individual", "donor_level": None, "name": None, "first_name": None, "middle_name": None,
    "last_name": None, "short_name": None, "email": None, "email_1": None, "email_2": None, "email_3": None,
    "phone": None, "mobile_phone": None, "home_phone": None, "office_phone": None, "other_phone": None, "fax": None,
    "mailing_address": None, "billing_address": None, "bloomerang_id": None, "enabled": True,
    "do_not_contact": False, "created_at": None, "updated_at": None, "deleted_at": None,
    **_DONOR_NULL_KEYS, "users": None, "custom_question_answers": None, "donor_details": None,
}


def wegive_donor(donor_id: int, p: dict[str, Any], created: datetime, updated: datetime) -> dict[str, Any]:
    """A ``DonorViewResource`` body for the person ``p`` (see ``people.person``)."""
    is_company = p["is_company"]
    donor = _DONOR_TEMPLATE.copy()  # every key in its order (C-level copy), then the ones that vary
    donor["id"] = donor_id
    donor["uuid"] = f"d0a0{donor_id:08x}-0000-4000-8000-{donor_id:012x}"
    if is_company:
        donor["type"] = "company"
        donor["name"] = p["company"]
    else:
        donor["first_name"], donor["middle_name"], donor["last_name"] = p["first_name"], p["middle_name"], \
            p["last_name"]
    donor["email"] = donor["email_1"] = p["email"]
    donor["phone"] = p["mobile_phone"] or p["home_phone"]
    donor["mobile_phone"], donor["home_phone"] = p["mobile_phone"], p["home_phone"]
    donor["mailing_address"] = address_resource(p["address"], donor_id * 10 + 1)
    donor["created_at"], donor["updated_at"] = laravel_ts(created), laravel_ts(updated)
    if not is_company:
        donor["name"] = donor_name(donor)
    donor["users"], donor["custom_question_answers"], donor["tags"], donor["households"] = [], [], [], []
    donor["donor_details"] = {"total_given": "0", "total_given_count": "0", "total_fundraised": "0",
                              "total_fundraised_count": "0"}
    return donor


def wegive_fund(fund_id: int, name: str, created: datetime) -> dict[str, Any]:
    """A fund carrying every key of both ``Fund`` and ``FundResource`` (bloomerang_id is a string)."""
    ts = laravel_ts(created)
    return {
        "id": fund_id, "organization_id": ORGANIZATION_ID, "name": name, "active": True, "default": fund_id == 1,
        "type": "fund", "code": f"F{fund_id:03d}", "description": f"{name} (WeGive)", "notes": None,
        "created_at": ts, "updated_at": ts, "last_cached_at": None, "last_activity": None,
        "total_given_this_year": "0", "total_given": "0", "gross_donation_volume": "0", "net_donation_volume": "0",
        "recurring_donation_volume": "0", "one_time_donation_volume": "0", "override_thank_you": False,
        "thank_you_url": None, "is_tax_deductible": True, "deleted_at": None, "has_fmv": False, "fmv": 0,
        "salesforce_id": None, "ccb_id": None, "planning_center_id": None, "bloomerang_id": None,
        "virtuous_id": None, "dp_id": None, "raisers_edge_id": None, "custom_import_reference": None,
        "dp_gl_code": None, "import_id": None, "merged_into_id": None, "undesignated": name == "General Fund",
    }


def default_funds() -> list[dict[str, Any]]:
    return [wegive_fund(i + 1, name, ANCHOR - timedelta(days=400 - i)) for i, name in enumerate(FUND_NAMES)]


def default_campaigns() -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(CAMPAIGN_NAMES, start=1):
        ts = laravel_ts(ANCHOR - timedelta(days=200 - i))
        out.append({"id": i, "organization_id": ORGANIZATION_ID, "name": name,
                    "slug": name.lower().replace(" ", "-"), "type": 1 if i != 4 else 3,
                    "goal": 1_000_000 * i, "start_date": None, "end_date": None, "created_at": ts, "updated_at": ts})
    return out


@functools.cache
def _expires_at(month: int, year: int) -> str:
    """A card's last valid day (``expires_at``), as a date (cached: ~70 distinct values, one per gift by card)."""
    return f"{year:04d}-{month:02d}-{calendar.monthrange(year, month)[1]:02d}"


# The keys of a card / bank source in their order (the owner part first); ``_source`` copies one and fills it.
_SOURCE_OWNER_KEYS = ("id", "email", "created_at", "owner_type", "owner_id", "primary", "last_activity",
                      "total_charged", "charges", "scheduled_donations_count", "scheduled_donations_monthly_estimate")
_CARD_TEMPLATE: dict[str, Any] = dict(dict.fromkeys(_SOURCE_OWNER_KEYS), owner_type="donor", primary=True,
                                      type="card", name=None, issuer=None, last_four=None, expiration=None,
                                      expires_at=None, has_vgs_tokens=False, zip_code=None)
_BANK_TEMPLATE: dict[str, Any] = dict(dict.fromkeys(_SOURCE_OWNER_KEYS), owner_type="donor", primary=True,
                                      type="bank", bank_account_type=None, last_four=None, institution_number=None,
                                      transit_number=None, plaid_token=None, mandate_acceptance=False, name=None)


def _source(rng: random.Random, kind: str, donor: dict[str, Any], amount: int,
            source_id: int) -> tuple[dict[str, Any], str]:
    """The documented payment source of one gift and its ``description``.

    The random draws are the same for every source type as before the documented shapes, so one seed
    still yields the same donors and gifts; a check number is drawn and dropped (WeGive sends none).
    """
    if kind == "card":
        card = _CARD_TEMPLATE.copy()
        card["id"], card["email"], card["owner_id"] = source_id, donor.get("email_1"), donor["id"]
        card["name"] = donor_name(donor)
        card["issuer"] = rng.choice(("visa", "mastercard", "amex", "discover"))
        month, year = rng.randrange(1, 13), rng.randrange(2026, 2032)
        card["last_four"] = f"{rng.randrange(10000):04d}"
        card["expiration"] = f"{month:02d}/{year % 100:02d}"
        card["expires_at"] = _expires_at(month, year)
        card["zip_code"] = (donor.get("mailing_address") or {}).get("zip") or None
        return card, "Donation"
    if kind == "bank":
        bank = _BANK_TEMPLATE.copy()
        bank["id"], bank["email"], bank["owner_id"] = source_id, donor.get("email_1"), donor["id"]
        bank["bank_account_type"] = rng.choice(("checking", "checking", "savings"))
        bank["last_four"] = f"{rng.randrange(10000):04d}"
        bank["transit_number"] = rng.choice(("110000000", "021000021"))  # the US routing number; see resources
        bank["name"] = rng.choice(("Chase", "Wells Fargo", "Credit Union"))
        return bank, "Donation"
    description = "Donation"
    if kind == "check":
        rng.randrange(1000, 9999)
    elif kind == "stock":
        description = f"{max(1, amount // 18000)} shares of VTI"
    elif kind == "crypto":
        description = "Bitcoin donation via processor"
    elif kind == "in_kind":
        description = rng.choice(("Box of books", "Catering for gala", "Laptop"))
    elif kind == "other":
        description = "Donor-advised fund grant"
    return {"type": kind}, description


def _fee(kind: str, amount: int) -> int:
    """The processor's fee: only the gift's own kind is computed (not all four per gift)."""
    if kind == "card":
        return round(amount * 0.029) + 30
    if kind == "bank":
        return min(500, round(amount * 0.008))
    if kind == "paypal":
        return round(amount * 0.0349) + 49
    if kind == "venmo":
        return round(amount * 0.019) + 10
    return 0


def _allocations(rng: random.Random, amount: int, funds: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(fund index, cents) pairs; ~12% of gifts are split across 2–3 funds, summing to ``amount``."""
    first = rng.randrange(len(funds)) if rng.random() < 0.6 else 0
    if rng.random() >= 0.12 or amount < 300 or len(funds) < 3:
        return [(first, amount)]
    parts = rng.choice((2, 3))
    others = rng.sample([i for i in range(len(funds)) if i != first], parts - 1)
    cuts = sorted(rng.sample(range(100, amount, 100), parts - 1)) if amount > 100 * parts else [amount // 2]
    bounds = [0, *cuts, amount]
    return [(idx, bounds[i + 1] - bounds[i]) for i, idx in enumerate([first, *others])]


# A few gifts honor someone (decided: WeGive types `tribute` as a bare string and documents no values; the
# sandbox sends "in_honor" / "in_memory"). Chosen by id, not by the world's random stream, so adding tributes
# moved no other generated value; three names, so one tribute is named by several gifts.
TRIBUTES = (("in_memory", "Margaret Lane", "In loving memory of Grandma"), ("in_honor", "Coach Rivera", None),
            ("in_honor", "The Okafor Family", "Thank you for everything"))
TRIBUTE_EVERY = 7


def tribute_fields(txn_id: int) -> dict[str, Any]:
    """The ``tribute*`` keys of one transaction: one gift in ``TRIBUTE_EVERY`` names a tribute."""
    if txn_id % TRIBUTE_EVERY:
        return {}
    kind, name, message = TRIBUTES[(txn_id // TRIBUTE_EVERY) % len(TRIBUTES)]
    return {"tribute": kind, "tribute_name": name, "tribute_email": None, "tribute_message": message}


# Every stored transaction key in its order, at the value the generator leaves when nothing is drawn for it;
# ``transaction`` copies it and sets the rest (a ~70-key dict literal per gift was a fifth of the generation).
# The three lists are replaced per gift: a template's list would be shared by every transaction.
_TRANSACTION_TEMPLATE: dict[str, Any] = dict.fromkeys((
    "id", "name", "description", "amount", "fee", "fee_amount", "calculated_fees_paid", "cover_fees",
    "source_type", "source", "status", "owner", "donor", "donor_id", "destination", "fund", "fund_id",
    "fund_allocations", "fund_allocations_count", "campaign", "campaign_id", "fundraiser", "campaign_fundraiser",
    "frequency", "scheduled_donation_id", "pledge", "pledge_id", "date", "created_at", "succeeded_at", "failed_at",
    "refunded_at", "updated_at", "deleted_at", "receipt_id", "correlation_id", "bloomerang_id",
    "is_tax_deductible", "tracking_url", "checkout", "scheduledDonation", "payout_items", "tribute",
    "tribute_name", "tribute_email", "tribute_message", "communications", "retries", "retried_transaction",
    "user", "custom_question_answers", "custom_fields", "has_registrations", "message", "session_id",
    "scheduled_donation_amount", "scheduled_donation_status", "scheduled_donation_first_processed",
    "scheduled_donation_next", "scheduled_donation_total_count", "scheduled_donation_total_given",
    "scheduled_donation_iteration", "fundraiser_id", "fundraiser_name", "fundraiser_slug"))
_TRANSACTION_TEMPLATE["has_registrations"] = False


def _weighted(rng: random.Random, population: tuple[str, ...], cum_weights: tuple[int, ...]) -> str:
    """``rng.choices(population, cum_weights=cum_weights)[0]``, the same draw and the same pick (``random.choices``
    bisects ``random() * total`` the same way) without the per-call checks and list: a tenth of a gift's cost."""
    return population[bisect.bisect(cum_weights, rng.random() * (cum_weights[-1] + 0.0), 0, len(population) - 1)]


def transaction(rng: random.Random, txn_id: int, donor: dict[str, Any], funds: list[dict[str, Any]],
                campaigns: list[dict[str, Any]], created: datetime, anchor: datetime, *, kind: str | None = None,
                status: str | None = None, amount: int | None = None, frequency: str = "once",
                scheduled_id: int | None = None, pledge: dict[str, Any] | None = None,
                owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """One stored transaction (cents): the documented transaction keys plus ``donor_id`` (the filter's column).
    ``owner``: ``donor_simple(donor)`` when the caller already made it: one dict per donor, held by all its gifts as
    both ``owner`` and ``donor`` (read-only: the store renders both afresh from the donor, ``store.py``
    ``render_transaction_record``; two copies per gift were ~400 MB of a 100,000-donor world, and again of its
    store)."""
    # cumulative weights computed once: the same draws as ``weights=`` (random.choices accumulates them itself)
    kind = kind or _weighted(rng, SOURCE_TYPES, _SOURCE_CUMULATIVE)
    status = status or _weighted(rng, STATUSES, _STATUS_CUMULATIVE)
    amount = amount or (rng.choice(AMOUNTS) if rng.random() < 0.8 else rng.randrange(500, 200000))
    created = created.replace(microsecond=0)
    succeeded = failed = refunded = None
    updated = created
    if status in ("Success", "Refunded", "Disputed"):
        succeeded = updated = created + timedelta(seconds=rng.randrange(1, 6))
    if status == "Refunded":
        refunded = updated = min(created + timedelta(days=rng.randrange(1, 20), hours=rng.randrange(24)), anchor)
    elif status == "Disputed":
        updated = min(created + timedelta(days=rng.randrange(3, 30)), anchor)
    elif status in ("Failed", "Cancelled"):
        failed = updated = created + timedelta(seconds=rng.randrange(1, 600))
    campaign = rng.choice(campaigns) if rng.random() < 0.5 else None
    splits = _allocations(rng, amount, funds)
    allocations = [{"id": 0, "transaction_id": txn_id, "amount": cents, "fund": funds[i]} for i, cents in splits]
    main_fund = funds[splits[0][0]]
    fee = _fee(kind, amount)
    cover_fees = rng.random() < 0.3
    source, description = _source(rng, kind, donor, amount, txn_id)
    simple = owner if owner is not None else donor_simple(donor)
    # each instant formatted once: ``updated`` is one of the others, ``date`` is ``created_at``
    stamps: dict[datetime | None, str | None] = {None: None}
    for moment in (created, succeeded, failed, refunded, updated):
        if moment not in stamps:
            stamps[moment] = laravel_ts(moment)
    # one C-level copy of the template (every key in its documented order), then the keys that vary
    txn: dict[str, Any] = _TRANSACTION_TEMPLATE.copy()
    txn["id"] = txn_id
    txn["name"] = campaign["name"] if campaign else "Donation"
    txn["description"] = description
    txn["amount"] = amount
    txn["fee"] = txn["fee_amount"] = fee
    txn["cover_fees"] = cover_fees
    txn["source_type"] = kind
    txn["source"] = source
    txn["status"] = status
    txn["owner"] = txn["donor"] = simple
    txn["donor_id"] = donor["id"]
    txn["fund"] = fund_simple(main_fund)
    txn["fund_id"] = main_fund["id"]
    txn["fund_allocations"] = allocations
    txn["fund_allocations_count"] = len(allocations)
    if campaign:
        txn["campaign"] = campaign["name"]
        txn["campaign_id"] = campaign["id"]
    txn["frequency"] = frequency
    txn["scheduled_donation_id"] = scheduled_id
    if pledge:
        txn["pledge"] = pledge
        txn["pledge_id"] = pledge["id"]
    txn["date"] = txn["created_at"] = stamps[created]
    txn["succeeded_at"] = stamps[succeeded]
    txn["failed_at"] = stamps[failed]
    txn["refunded_at"] = stamps[refunded]
    txn["updated_at"] = stamps[updated]
    txn["receipt_id"] = f"R-{txn_id}"
    txn["correlation_id"] = f"ch_{rng.getrandbits(48):012x}"
    txn["is_tax_deductible"] = kind != "in_kind"
    txn["communications"], txn["retries"], txn["custom_question_answers"] = [], [], []  # each gift its own lists
    if txn_id % TRIBUTE_EVERY == 0:
        txn.update(tribute_fields(txn_id))
    if scheduled_id:
        txn["scheduled_donation_amount"] = amount
        txn["scheduled_donation_status"] = "active"
    return txn


def donor_transactions(rng: random.Random, donor: dict[str, Any], funds: list[dict[str, Any]],
                       campaigns: list[dict[str, Any]], anchor: datetime, next_id: int,
                       serial: int) -> list[dict[str, Any]]:
    """~3 gifts over the last 120 days: one-off, monthly recurring (scheduled) or pledge payments."""
    window = 120 * 86400
    owner = donor_simple(donor)
    roll = rng.random()
    out: list[dict[str, Any]] = []
    if roll < 0.10:  # monthly recurring: same day each month
        start = anchor - timedelta(seconds=rng.randrange(window - 90 * 86400, window))
        amount, kind = rng.choice((1000, 2500, 5000)), rng.choice(("card", "card", "bank"))
        for month in range(4):
            created = start + timedelta(days=30 * month)
            if created < anchor:
                out.append(transaction(rng, next_id + len(out), donor, funds, campaigns, created, anchor, kind=kind,
                                       amount=amount, frequency="monthly", scheduled_id=7000 + serial,
                                       owner=owner))
        return out
    if roll < 0.15:  # the first two monthly payments on a pledge of several installments
        installment = rng.choice((50000, 100000, 240000)) // 4
        count = PLEDGE_INSTALLMENTS[serial % len(PLEDGE_INSTALLMENTS)]  # no draw: the world's gifts stay the same
        total = installment * count
        pledge = {"id": 3000 + serial, "name": "Capital pledge", "total_amount": total, "total_amount_paid": None,
                  "installment_size": installment, "future_installments": count - 2, "transaction_count": 2,
                  "status": "active", "completed": False, "donor": None, "fund": None, "campaign": None,
                  "messages": None, "payment_method": None, "donations": [], "pledge_create": None,
                  "donor_id": donor["id"], "installment_frequency": "monthly", "start_date": None, "end_date": None}
        for k in range(2):
            created = anchor - timedelta(seconds=rng.randrange(window)) if k == 0 else out[0]["_created"] + \
                timedelta(days=30)
            txn = transaction(rng, next_id + k, donor, funds, campaigns, min(created, anchor - timedelta(hours=1)),
                              anchor, amount=installment, status="Success", pledge=dict(pledge), owner=owner)
            txn["_created"] = created
            out.append(txn)
        start = min(out[0]["_created"], anchor - timedelta(hours=1)).date()
        for txn in out:
            txn.pop("_created")
            txn["pledge"].update(total_amount_paid=installment * 2, start_date=start.isoformat(),
                                 end_date=add_months(start, count - 1).isoformat())
        return out
    for _ in range(rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6))):
        created = anchor - timedelta(seconds=rng.randrange(window))
        out.append(transaction(rng, next_id + len(out), donor, funds, campaigns, created, anchor, owner=owner))
    return out


def iter_wegive_records(n: int, seed: int = 42, *, anchor: datetime = ANCHOR, pools: Pools | None = None
                        ) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    """Stream ``(person, donor, transactions)`` for ``n`` donors; ids are sequential, not chronological."""
    pools = pools or build_pools(seed)
    rng = random.Random(f"wegive-{seed}")
    funds, campaigns = default_funds(), default_campaigns()
    next_txn = FIRST_TRANSACTION_ID
    for index in range(n):
        p = person(rng, pools, index)
        created = anchor - timedelta(days=rng.randrange(130, 900), seconds=rng.randrange(86400))
        updated = created + timedelta(days=rng.randrange(0, 60), seconds=rng.randrange(86400))
        donor = wegive_donor(FIRST_DONOR_ID + index, p, created, min(updated, anchor - timedelta(days=121)))
        txns = donor_transactions(rng, donor, funds, campaigns, anchor, next_txn, index)
        next_txn += len(txns)
        yield p, donor, txns


def iter_wegive_donors(n: int, seed: int = 42) -> Iterator[dict[str, Any]]:
    """Donors only, streamed (the mapping benchmark's input for a million rows)."""
    for _p, donor, _txns in iter_wegive_records(n, seed):
        yield donor


def iter_wegive_transactions(n_donors: int, seed: int = 42) -> Iterator[dict[str, Any]]:
    """Transactions of ``n_donors`` donors, streamed; the same seed yields the donors' own gifts."""
    allocation_id = FIRST_ALLOCATION_ID
    for _p, _donor, txns in iter_wegive_records(n_donors, seed):
        for txn in txns:
            for alloc in txn["fund_allocations"]:
                alloc["id"] = allocation_id
                allocation_id += 1
            yield txn
