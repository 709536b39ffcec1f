"""Funds, campaigns and appeals the org YAML names, checked against what Bloomerang has before any write.

A name in the org YAML (``handbid.default.fund: General Fund``, a campaign map's values) reaches a payload as
``ref:bloomerang.funds:name=General Fund``. A typo there used to become a new Bloomerang fund on the first
gift — money booked to a fund the finance director never opened. So a name Bloomerang lacks is *missing*:
with ``bloomerang.create_missing: false`` (the default) every gift naming it that is not in Bloomerang yet is
blocked with the name in the reason (planned again on every run, so it lands once someone creates the fund in
Bloomerang; a gift already there is not held back — were it changed, its write fails on the name, retried);
with ``true`` the load creates it once. Either way ``sync --dry-run`` lists each missing name and how many
gifts name it. Pure: the plan step passes in the staged payloads and the Bloomerang names it read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bloom_pipeline.sync.apply.refs import parse_ref, refs_in

# the Bloomerang lists an org YAML may name (mapping/spec.py NAMED_TARGETS); tributes come from gift data
CHECKED_ENTITIES = ("funds", "campaigns", "appeals")


@dataclass(frozen=True)
class MissingName:
    """One name the org YAML gives that Bloomerang has no record of, and the gifts naming it."""

    entity: str  # funds | campaigns | appeals
    name: str
    gifts: int
    created: bool  # create_missing: true — the load creates it; false — its gifts are blocked

    @property
    def kind(self) -> str:
        return self.entity[:-1]

    @property
    def reason(self) -> str:
        return (f"missing: Bloomerang has no {self.kind} named {self.name!r} (named in the org YAML; create it in "
                "Bloomerang, or set bloomerang.create_missing: true)")


def name_key(name: Any) -> str:
    """How names are compared: case and surrounding spaces ignored, exactly as ``RefResolver`` resolves them."""
    return str(name).strip().casefold()


def named_ref(ref: str) -> tuple[str, str] | None:
    """``ref:bloomerang.funds:name=Gala`` → ("funds", "Gala"); other references → None."""
    parsed = parse_ref(ref)
    if parsed is None:
        return None
    source, entity, key = parsed
    if source != "bloomerang" or entity not in CHECKED_ENTITIES or not key.startswith("name="):
        return None
    return entity, key[len("name="):]


def _payload(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value or {}


def missing_names(payloads: Iterable[Any], known: Mapping[str, Iterable[str]], *,
                  create_missing: bool) -> dict[str, MissingName]:
    """``{ref: MissingName}`` of every named reference in ``payloads`` whose name ``known[entity]`` lacks.

    ``payloads``: the payloads (dicts or JSON text) of the staged gifts not yet in Bloomerang; ``known``:
    entity → Bloomerang names."""
    have = {entity: {name_key(n) for n in names} for entity, names in known.items()}
    counts: dict[str, int] = {}
    found: dict[str, tuple[str, str]] = {}
    for payload in payloads:
        for ref in refs_in(_payload(payload)):
            named = named_ref(ref)
            if named is None or name_key(named[1]) in have.get(named[0], set()):
                continue
            found[ref] = named
            counts[ref] = counts.get(ref, 0) + 1
    return {ref: MissingName(entity, name.strip(), counts[ref], created=create_missing)
            for ref, (entity, name) in sorted(found.items())}


def blocked_gifts(gifts: Iterable[tuple[tuple[str, str], Any]], missing: Mapping[str, MissingName]) -> dict[
        tuple[str, str], str]:
    """The plan's ``blocked`` (``{(source, source_id): reason}``) for the missing names that are not created.

    ``gifts``: ``((source, source_id), payload)`` of the gifts to check — the caller passes the unlinked ones:
    a gift already in Bloomerang is not held back (were it changed, its write fails on the name, retried)."""
    waiting = {ref: m.reason for ref, m in missing.items() if not m.created}
    out: dict[tuple[str, str], str] = {}
    for key, payload in gifts:
        reasons = [f"depends on {ref}, which is {waiting[ref]}" for ref in sorted(refs_in(_payload(payload)))
                   if ref in waiting]
        if reasons:
            out[(str(key[0]), str(key[1]))] = "; ".join(reasons)
    return out


def report_lines(missing: Iterable[MissingName]) -> list[str]:
    """The dry-run's lines about missing names (empty when Bloomerang has every name the org YAML gives)."""
    rows = list(missing)
    if not rows:
        return []
    created = rows[0].created
    head = ("names in the org YAML that Bloomerang lacks (bloomerang.create_missing: true — created on the "
            "first real run):" if created else
            "names in the org YAML that Bloomerang lacks (bloomerang.create_missing: false — their gifts are "
            "blocked until the name exists in Bloomerang):")
    verb = "named by" if created else "blocks"
    return [head] + [f"  {m.kind} {m.name!r}: {verb} {m.gifts} gift(s)" for m in rows]
