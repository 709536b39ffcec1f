"""Bloomerang's duplicate-constituent rule (v1 reference, kept by v2), as pure functions.

From the reference: a candidate is a duplicate when the name matches and one contact point matches —
email address, standardized street address, or the last seven digits of a phone number. Organization
names must be identical; for individuals the last name must be identical, the first name may be a
common nickname of the other (``nicknames`` package), and the suffix must match only when both sides
have one. Name alone, or a contact point alone (e.g. only an email), is never a duplicate.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nicknames import NickNamer

_STREET_WORDS = {
    "street": "st", "st.": "st", "avenue": "ave", "ave.": "ave", "av": "ave", "road": "rd", "rd.": "rd",
    "drive": "dr", "dr.": "dr", "lane": "ln", "ln.": "ln", "boulevard": "blvd", "blvd.": "blvd",
    "court": "ct", "ct.": "ct", "place": "pl", "pl.": "pl", "parkway": "pkwy", "circle": "cir",
    "highway": "hwy", "terrace": "ter", "trail": "trl", "way": "way", "square": "sq", "suite": "ste",
    "apartment": "apt", "#": "apt", "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
}


@lru_cache(maxsize=1)
def _namer() -> NickNamer:
    return NickNamer()


def _norm(value: str | None) -> str:
    return re.sub(r"\s+", " ", (value or "").strip().lower())


def first_names_match(a: str | None, b: str | None) -> bool:
    """Identical (case-insensitive) or one is a common nickname / canonical form of the other."""
    left, right = _norm(a), _norm(b)
    if not left or not right:
        return False
    if left == right:
        return True
    namer = _namer()
    left_family = {left} | namer.nicknames_of(left) | namer.canonicals_of(left)
    right_family = {right} | namer.nicknames_of(right) | namer.canonicals_of(right)
    return right in left_family or left in right_family


def standardize_street(street: str | None) -> str:
    """Lower-case, drop punctuation, abbreviate the usual USPS suffixes and directions."""
    words = re.sub(r"[,.]", " ", _norm(street)).split()
    return " ".join(_STREET_WORDS.get(w, w) for w in words)


def phone_key(number: str | None) -> str:
    """The last seven digits (shorter numbers never match)."""
    digits = re.sub(r"\D", "", number or "")
    return digits[-7:] if len(digits) >= 7 else ""


def name_matches(query: dict[str, str | None], candidate: dict) -> bool:
    if query.get("Type", "Individual") == "Organization" or query.get("OrganizationName"):
        return candidate.get("Type") == "Organization" and _norm(candidate.get("FullName")) == _norm(
            query.get("OrganizationName")
        ) != ""
    if candidate.get("Type") != "Individual":
        return False
    if _norm(candidate.get("LastName")) != _norm(query.get("LastName")) or not _norm(query.get("LastName")):
        return False
    if not first_names_match(query.get("FirstName"), candidate.get("FirstName")):
        return False
    q_suffix, c_suffix = _norm(query.get("Suffix")).rstrip("."), _norm(candidate.get("Suffix")).rstrip(".")
    return not (q_suffix and c_suffix and q_suffix != c_suffix)


def name_key(query: dict[str, str | None]) -> tuple[str, str]:
    """The part of a name that must be identical for ``name_matches``: an index key (organization name, or an
    individual's last name), so the duplicate check looks only at constituents that can match."""
    if query.get("Type", "Individual") == "Organization" or query.get("OrganizationName"):
        return "Organization", _norm(query.get("OrganizationName"))
    return "Individual", _norm(query.get("LastName"))


def record_name_key(record: dict) -> tuple[str, str]:
    """``name_key`` of a stored constituent (organizations by ``FullName``)."""
    if record.get("Type") == "Organization":
        return "Organization", _norm(record.get("FullName"))
    return "Individual", _norm(record.get("LastName"))


def contact_matches(
    query: dict[str, str | None], emails: list[str], streets: list[str], phones: list[str]
) -> bool:
    email = _norm(query.get("EmailAddress"))
    if email and email in {_norm(e) for e in emails}:
        return True
    street = standardize_street(query.get("Street"))
    if street and street in {standardize_street(s) for s in streets}:
        return True
    phone = phone_key(query.get("PhoneNumber"))
    return bool(phone) and phone in {phone_key(p) for p in phones}


def has_name_and_contact(query: dict[str, str | None]) -> bool:
    named = bool(_norm(query.get("OrganizationName"))) or (
        bool(_norm(query.get("FirstName"))) and bool(_norm(query.get("LastName")))
    )
    contact = any(_norm(query.get(k)) for k in ("EmailAddress", "Street", "PhoneNumber"))
    return named and contact
