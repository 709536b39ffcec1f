"""Deterministic fake people, companies and addresses for the sandbox worlds.

Faker is slow per call (tens of microseconds), so it is used once per world to fill *pools* of names,
streets and cities from a seeded instance; every record then draws from the pools with a seeded
``random.Random``. That keeps 2,000 donors well under a second, makes a million-donor stream feasible,
and keeps the output byte-identical for the same seed.

The messiness is deliberate — it is what the mapping and identity code must survive: missing first or
last names, invalid emails, phones in odd formats, international addresses, nicknames.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from faker import Faker

# Canonical first name -> nickname, all known to the ``nicknames`` package the identity code uses.
NICKNAMES: dict[str, str] = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Margaret": "Peggy", "James": "Jim",
    "Richard": "Rick", "Katherine": "Kate", "Michael": "Mike", "Jennifer": "Jenny", "Thomas": "Tom",
    "Joseph": "Joe", "Charles": "Chuck", "Christopher": "Chris", "Daniel": "Dan", "Patricia": "Pat",
    "Susan": "Sue", "Anthony": "Tony", "Edward": "Ed", "Jonathan": "Jon", "Samuel": "Sam",
}
BAD_EMAILS = ("{local}@", "{local}.example.org", "{local}@@example.org", "{local} @example.org",
              "{local}@example", "mailto:{local}@example.org")
INTERNATIONAL = (  # (Faker locale, ISO country, phone sample)
    ("en_GB", "GB", "+44 20 7946 0{n:03d}"),
    ("de_DE", "DE", "+49 30 901820{n:02d}"),
    ("fr_FR", "FR", "+33 1 70 36 {n:02d} 00"),
    ("en_CA", "CA", "+1 (416) 555-0{n:03d}"),
    ("en_AU", "AU", "+61 2 9374 4{n:03d}"),
)
EMAIL_DOMAINS = ("example.org", "example.com", "example.net", "mail.example.org", "givers.example")


@dataclass
class Pools:
    first_names: list[str]
    last_names: list[str]
    middle_names: list[str]
    companies: list[str]
    streets: list[str]
    us_places: list[tuple[str, str, str]]  # (city, state, zip)
    intl_addresses: list[dict[str, Any]]


def build_pools(seed: int) -> Pools:
    """Fill the pools from Faker instances seeded with ``seed`` (the only Faker calls per world)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    first = sorted({fake.first_name() for _ in range(400)}) + list(NICKNAMES) * 3
    last = sorted({fake.last_name() for _ in range(600)})
    companies = sorted({fake.company() for _ in range(300)})
    streets = [fake.street_address() for _ in range(500)]
    places = [(fake.city(), fake.state_abbr(include_territories=False), fake.zipcode()) for _ in range(300)]
    intl: list[dict[str, Any]] = []
    for index, (locale, country, _phone) in enumerate(INTERNATIONAL):
        local = Faker(locale)
        local.seed_instance(seed + index + 1)
        for _ in range(30):
            state = ""
            if country in ("CA", "AU"):
                state = local.administrative_unit()
            intl.append({"address_1": local.street_address().replace("\n", ", "), "city": local.city(),
                         "state": state, "zip": local.postcode(), "country": country})
    middle = ["A.", "B.", "C.", "J.", "K.", "L.", "M.", "Marie", "Ann", "Lee", "Ray", "Jo"]
    return Pools(first, last, middle, companies, streets, places, intl)


def phone_variants(rng: random.Random, intl_country: str | None) -> str:
    """A phone number as humans type them: many formats, some incomplete (7 digits)."""
    n = rng.randrange(1000)
    if intl_country:
        pattern = next(p for _l, c, p in INTERNATIONAL if c == intl_country)
        return pattern.format(n=n % (100 if "{n:02d}" in pattern else 1000))
    area, exchange, line = rng.choice((303, 720, 212, 415, 617, 312, 512)), 555, rng.randrange(100, 10000)
    style = rng.random()
    if style < 0.30:
        return f"{area}{exchange}{line:04d}"
    if style < 0.50:
        return f"({area}) {exchange}-{line:04d}"
    if style < 0.65:
        return f"{area}.{exchange}.{line:04d}"
    if style < 0.78:
        return f"{area}-{exchange}-{line:04d}"
    if style < 0.88:
        return f"+1 {area} {exchange} {line:04d}"
    if style < 0.95:
        return f"1-{area}-{exchange}-{line:04d} x{rng.randrange(10, 99)}"
    return f"{exchange}{line:04d}"  # no area code


def email_for(rng: random.Random, first: str | None, last: str | None, serial: int, invalid: bool) -> str:
    """A unique-ish email from the name; ``invalid`` produces one that fails validation."""
    stem = ".".join(p.lower() for p in (first, last) if p) or "donor"
    stem = "".join(ch for ch in stem if ch.isalnum() or ch == ".").strip(".") or "donor"
    local = f"{stem}{serial}"
    if invalid:
        return rng.choice(BAD_EMAILS).format(local=local)
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def person(rng: random.Random, pools: Pools, serial: int, *, company_share: float = 0.10,
           intl_share: float = 0.06, bad_email_share: float = 0.02) -> dict[str, Any]:
    """One source-neutral person or company: names, email, phones, address (messy on purpose)."""
    is_company = rng.random() < company_share
    intl = rng.choice(INTERNATIONAL)[1] if rng.random() < intl_share else None
    first = last = middle = None
    company = None
    if is_company:
        company = rng.choice(pools.companies)
    else:
        first, last = rng.choice(pools.first_names), rng.choice(pools.last_names)
        roll = rng.random()
        if roll < 0.025:
            first = None
        elif roll < 0.045:
            last = None
        if rng.random() < 0.12:
            middle = rng.choice(pools.middle_names)
    email: str | None = email_for(rng, first or company, last, serial, rng.random() < bad_email_share)
    if rng.random() < 0.02:
        email = None
    if intl:
        address = dict(rng.choice([a for a in pools.intl_addresses if a["country"] == intl]))
    elif rng.random() < 0.05:
        address = None
    else:
        city, state, zip_code = rng.choice(pools.us_places)
        address = {"address_1": rng.choice(pools.streets), "city": city, "state": state, "zip": zip_code,
                   "country": "US"}
        if rng.random() < 0.15:
            address["address_2"] = f"Apt {rng.randrange(1, 999)}"
        if rng.random() < 0.05:  # zip+4 or a zip that lost its leading zero in a spreadsheet
            address["zip"] = f"{zip_code}-{rng.randrange(1000, 9999)}" if rng.random() < 0.5 else zip_code.lstrip("0")
    return {
        "is_company": is_company, "company": company, "first_name": first, "middle_name": middle,
        "last_name": last, "email": email, "mobile_phone": phone_variants(rng, intl) if rng.random() < 0.7 else None,
        "home_phone": phone_variants(rng, intl) if rng.random() < 0.2 else None, "address": address,
    }
