"""Comparison keys for identity matching: names, nicknames, suffixes, e-mail, street, phone.

Bloomerang's duplicate rule (``contracts/reference/bloomerang-rest-api-v1.txt``, "How a Duplicate Is
Determined") compares *standardized* street addresses, the *last seven digits* of phone numbers, last
names, first names *accounting for common nicknames*, and suffixes only when both records have one.
Identity matching runs locally over whole frames, so every key here has a scalar form (tested one by
one) and a Series form that normalises each distinct value once (names and streets repeat a lot).

Deliberate choices, so matching stays as strict as Bloomerang's and never merges two people wrongly:

* Organisation names are unique per organisation donor (the reference mapping's duplicate prevention,
  ``contracts/reference/wegive-bloomerang-data-mapping.txt``), so they compare *normalised*: case, accents,
  punctuation, "&" = "and", a leading "The" and trailing legal designators ("Inc.", "LLC", "Ltd", "Co",
  "Corp", ...) are ignored -- "The Acme Foundation, Inc." = "Acme Foundation". Words that name what the
  organisation is ("Foundation", "Company", "Trust") are kept: "Acme Trust" and "Acme Foundation" differ.
* Person names additionally drop accents and punctuation ("O'Brien" = "OBrien", "José" = "Jose").
* The mapping's placeholders for a missing name ("FNU" / "LNU", first / last name unknown) are missing
  names when names are compared for an e-mail match (``known_name``), never a name of their own: an
  unknown name contradicts nothing, a known one that differs does (``names_compatible``).
* Nicknames come from the ``nicknames`` package (a curated dataset); two first names are compatible
  when equal or when one is listed as a nickname or canonical form of the other -- *not* when they only
  share a third name (the dataset lists "Bill" under "Robert", which must not make Bill = Bob).
* Streets follow the USPS Publication 28 abbreviations for the common suffixes, directionals and unit
  designators; punctuation and case are dropped; a multi-line street is compared as one line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import pandas as pd

from bloom_pipeline.sync.fields import is_blank

# USPS Publication 28: street suffixes (C1), directionals and secondary unit designators (C2).
STREET_ABBREVIATIONS: dict[str, str] = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "aven": "ave", "avenu": "ave", "boulevard": "blvd",
    "boul": "blvd", "road": "rd", "drive": "dr", "drv": "dr", "lane": "ln", "court": "ct", "place": "pl",
    "terrace": "ter", "parkway": "pkwy", "pky": "pkwy", "highway": "hwy", "circle": "cir", "square": "sq",
    "trail": "trl", "crossing": "xing", "expressway": "expy", "freeway": "fwy", "turnpike": "tpke",
    "heights": "hts", "point": "pt", "ridge": "rdg", "center": "ctr", "centre": "ctr", "plaza": "plz",
    "mount": "mt", "mountain": "mtn", "junction": "jct", "alley": "aly", "loop": "loop", "way": "way",
    "route": "rte", "causeway": "cswy", "creek": "crk", "estates": "ests", "grove": "grv", "harbor": "hbr",
    "hill": "hl", "hills": "hls", "island": "is", "lake": "lk", "meadows": "mdws", "park": "park",
    "spring": "spg", "springs": "spgs", "station": "sta", "valley": "vly", "view": "vw", "village": "vlg",
    "north": "n", "south": "s", "east": "e", "west": "w", "northeast": "ne", "northwest": "nw",
    "southeast": "se", "southwest": "sw",
    "apartment": "apt", "suite": "ste", "building": "bldg", "floor": "fl", "room": "rm", "department": "dept",
    "#": "apt", "no": "apt", "number": "apt",
}
SUFFIXES: dict[str, str] = {
    "jr": "jr", "junior": "jr", "sr": "sr", "senior": "sr", "ii": "ii", "2nd": "ii", "iii": "iii", "3rd": "iii",
    "iv": "iv", "4th": "iv", "esq": "esq", "md": "md", "phd": "phd", "dds": "dds", "cpa": "cpa",
}
# Legal-form words at the end of an organisation's name: "Acme, Inc." is "Acme" (dots are dropped first,
# so "L.L.C." is "llc"). "Company" is not one: it is often what the organisation is ("Dance Company").
ORG_DESIGNATORS = frozenset({"inc", "incorporated", "llc", "ltd", "limited", "co", "corp", "corporation", "plc",
                             "llp", "lp", "pllc", "pc"})
# The reference mapping's defaults for a missing first / last name (mappings/defaults: FNU / LNU).
NAME_PLACEHOLDERS = frozenset({"fnu", "lnu", "nfn", "nln", "unknown"})
_UNITS = frozenset({"apt", "ste", "unit", "rm", "fl", "bldg", "dept"})
_PUNCT = re.compile(r"[^\w\s#]")
_ORG_PUNCT = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_NON_DIGIT = re.compile(r"\D")


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def org_name_key(value: Any) -> str | None:
    """Organisation full name, normalised: "The Acme Foundation, Inc." → "acme foundation".

    Case, accents, punctuation and a leading "The" are dropped, "&" reads "and", and trailing legal
    designators (``ORG_DESIGNATORS``) are dropped one after the other ("Acme Holdings Co., Ltd." →
    "acme holdings") -- but never the whole name ("The Co" stays "co").
    """
    if is_blank(value):
        return None
    text = _ascii_fold(str(value)).casefold().replace("&", " and ")
    words = _SPACES.sub(" ", _ORG_PUNCT.sub(" ", text.replace(".", ""))).split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in ORG_DESIGNATORS:
        words = words[:-1]
    return " ".join(words) or None


def person_name_key(value: Any) -> str | None:
    """A first or last name: case, accents, punctuation and whitespace ignored; None when blank."""
    if is_blank(value):
        return None
    text = _PUNCT.sub("", _ascii_fold(str(value)).replace("-", " ")).replace("#", "")
    text = _SPACES.sub(" ", text).strip().casefold()
    return text or None


def split_suffix(last_name: Any, suffix: Any = None) -> tuple[str | None, str | None]:
    """``("Smith Jr.", None)`` → ``("smith", "jr")``: the last-name key and the suffix key.

    A suffix typed into the last name ("Smith, Jr.", "Smith III") is recognised when it is the final
    word of a longer name; an explicit ``suffix`` wins.
    """
    key = person_name_key(last_name)
    suffix_key = SUFFIXES.get(person_name_key(suffix) or "", person_name_key(suffix))
    if key and " " in key:
        head, tail = key.rsplit(" ", 1)
        if tail in SUFFIXES:
            key = head
            suffix_key = suffix_key or SUFFIXES[tail]
    return key, suffix_key


def suffixes_compatible(left: str | None, right: str | None) -> bool:
    """Bloomerang's suffix rule: must be equal only when *both* records have one."""
    return left is None or right is None or left == right


def email_key(value: Any) -> str | None:
    """E-mail trimmed and case-folded (a ``mailto:`` prefix dropped); None when blank or without '@'."""
    if is_blank(value):
        return None
    text = str(value).strip().casefold()
    if text.startswith("mailto:"):
        text = text[len("mailto:"):].strip()
    return text if "@" in text else None


def street_key(value: Any) -> str | None:
    """USPS-style standardized street: "123 Main Street, Apt. 4" → "123 main st apt 4"."""
    if is_blank(value):
        return None
    text = _ascii_fold(str(value)).casefold().replace("#", " # ")
    words = _SPACES.sub(" ", _PUNCT.sub(" ", text)).split()
    out: list[str] = []
    for word in (STREET_ABBREVIATIONS.get(word, word) for word in words):
        if word == "apt" and out and out[-1] in _UNITS:  # "Apt #4" / "Suite #4": one designator
            continue
        out.append(word)
    return " ".join(out) or None


def phone_key(value: Any) -> str | None:
    """The last seven digits of a phone number; None when it has fewer than seven."""
    if is_blank(value):
        return None
    digits = _NON_DIGIT.sub("", str(value))
    return digits[-7:] if len(digits) >= 7 else None


def text_key(value: Any) -> str | None:
    """Case- and whitespace-insensitive text (cities, fund names)."""
    if is_blank(value):
        return None
    return _SPACES.sub(" ", str(value)).strip().casefold()


@lru_cache(maxsize=1)
def _namer() -> Any:
    from nicknames import NickNamer  # the dataset is read on first use, never at import time

    return NickNamer()


@lru_cache(maxsize=65536)
def related_first_names(name_key: str) -> frozenset[str]:
    """``name_key`` plus the names the dataset lists as its nicknames or its canonical forms."""
    namer = _namer()
    return frozenset({name_key} | set(namer.nicknames_of(name_key)) | set(namer.canonicals_of(name_key)))


def known_name(key: str | None) -> str | None:
    """A name key, or None when it is blank or a placeholder for "unknown" ("fnu", "lnu")."""
    return None if key is None or key in NAME_PLACEHOLDERS else key


def names_compatible(first: str | None, last: str | None, other_first: str | None, other_last: str | None,
                     suffix: str | None = None, other_suffix: str | None = None) -> bool:
    """May two people who share an e-mail be one person? (keys from ``person_name_key`` / ``split_suffix``)

    The same last name, first names equal, nicknames of each other or one of them unknown, and suffixes
    equal when both have one. An e-mail a couple shares ("John Smith" / "Jane Smith") or a typo'd address
    of someone else ("Maria Garcia" / "Pat Lee") is not one person. A last name one side does not know
    (blank or "LNU") contradicts nothing, so it is accepted -- but then the first names must both be known
    and agree, so a record with no name at all is never matched on its e-mail alone.
    """
    if not suffixes_compatible(suffix, other_suffix):
        return False
    first, other_first = known_name(first), known_name(other_first)
    last, other_last = known_name(last), known_name(other_last)
    if last != other_last:
        if last is not None and other_last is not None:
            return False
        return first is not None and other_first is not None and first_names_compatible(first, other_first)
    return first is None or other_first is None or first_names_compatible(first, other_first)


def first_names_compatible(left: str | None, right: str | None) -> bool:
    """Equal first-name keys, or one a nickname / canonical form of the other ("bob" ~ "robert")."""
    if not left or not right:
        return False
    if left == right:
        return True
    return right in related_first_names(left) or left in related_first_names(right)


def series_key(values: pd.Series, key: Callable[[Any], str | None]) -> pd.Series:
    """Apply a key function to a Series, computing each distinct value once (object dtype out)."""
    if values.empty:
        return pd.Series([], index=values.index, dtype=object)
    as_object = values.astype(object)
    uniques = pd.unique(as_object)
    # blanks map to None here, once per distinct value, not tested again per row (a NaN object that is not the one
    # ``pd.unique`` kept is not found and gets None too: ``get``)
    mapping = {value: None if is_blank(value) else key(value) for value in uniques}
    return pd.Series([mapping.get(v) for v in as_object], index=values.index, dtype=object)
