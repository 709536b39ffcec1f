"""Tributes: the person a gift honors (WeGive ``tribute*``) becomes one Bloomerang tribute, reused by name.

A staged designation carries ``TributeId: "ref:bloomerang.tributes:name=Jane Doe"`` and, beside it, the
``Tribute`` body the mapping built (``Name``, ``TributeType``, ``Note``, ``IsActive``) — not a designation field,
so the writer takes it out (``without_tribute``). Before the gifts are written the load makes sure each named
tribute exists: it is found by name among the tributes Bloomerang lists (this run's extract), else created
once with ``POST /tribute``. Bloomerang is the record of what exists, so a lost answer or a lost data folder
never creates a second tribute: a create whose outcome is unknown is settled by listing the tributes again.
A tribute that cannot be created fails only the gifts naming it (their reference stays unresolved, with the
reason), and they are retried on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.errors import ApiError

log = logging.getLogger(__name__)

TRIBUTE_KEY = "Tribute"
TRIBUTE_TYPES = ("InHonorOf", "InMemoryOf")
DEFAULT_TYPE = "InHonorOf"

Record = dict[str, Any]


def name_key(name: Any) -> str:
    """Tributes are the same when their names are (case and surrounding spaces ignored)."""
    return str(name).strip().casefold()


def without_tribute(body: Record) -> Record:
    """A transaction body with each designation's planned ``Tribute`` taken out (Bloomerang has no such field)."""
    # A new body and new designations (what the writer changes: it pops top-level keys and sets each
    # designation's CustomValues); the values inside are shared, not deep-copied — the payload was already
    # copied by the reference resolver, and a deep copy of every gift was a tenth of the write threads' CPU.
    out = dict(body)
    designations = out.get("Designations")
    if isinstance(designations, list):
        out["Designations"] = [{k: v for k, v in d.items() if k != TRIBUTE_KEY} if isinstance(d, dict) else d
                               for d in designations]
    return out


def tribute_body(planned: Any, default_type: str = DEFAULT_TYPE) -> Record | None:
    """The ``POST /tribute`` body of one designation's planned tribute; None when it names nobody."""
    if not isinstance(planned, Mapping):
        return None
    name = str(planned.get("Name") or "").strip()
    if not name:
        return None
    kind = planned.get("TributeType")
    body: Record = {"Name": name, "TributeType": kind if kind in TRIBUTE_TYPES else default_type,
                    "IsActive": True}
    note = str(planned.get("Note") or "").strip()
    if note:
        body["Note"] = note
    return body


def wanted_tributes(payloads: Iterable[Any], default_type: str = DEFAULT_TYPE) -> dict[str, Record]:
    """``{name_key: body}`` of the tributes the payloads name — the first gift's body for each name."""
    wanted: dict[str, Record] = {}
    for payload in payloads:
        for designation in (payload or {}).get("Designations") or []:
            body = tribute_body(designation.get(TRIBUTE_KEY) if isinstance(designation, dict) else None,
                                default_type)
            if body is not None:
                wanted.setdefault(name_key(body["Name"]), body)
    return wanted


def by_name(tributes: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{name_key: id}`` of Bloomerang's tributes; of two with one name, the older (lower id) is used."""
    out: dict[str, int] = {}
    for tribute in sorted(tributes, key=lambda t: int(t.get("Id") or 0)):
        if tribute.get("Name") and tribute.get("Id") is not None:
            out.setdefault(name_key(tribute["Name"]), int(tribute["Id"]))
    return out


def ensure_tributes(client: Any, wanted: Mapping[str, Record], known: dict[str, int]) -> dict[str, int]:
    """Create each wanted tribute ``known`` lacks, once; returns ``{name: id}`` of every wanted one that exists.

    ``known``: ``by_name`` of the tributes Bloomerang listed this run (updated in place)."""
    out: dict[str, int] = {}
    for key, body in wanted.items():
        if key not in known:
            found = _create(client, body)
            if found is None:
                continue
            known[key] = found
        out[body["Name"]] = known[key]
    return out


def _create(client: Any, body: Record) -> int | None:
    """The new tribute's id; None when it could not be created (its gifts fail, retried next run)."""
    try:
        try:
            return int(client.create_tribute(body)["Id"])
        except OutcomeUnknownError:
            # the create may have landed: Bloomerang's list says whether it did (never a second tribute)
            found = by_name(client.iter_tributes()).get(name_key(body["Name"]))
            return found if found is not None else int(client.create_tribute(body)["Id"])
    except ApiError as exc:  # a second lost answer too: the next run's list finds it, or creates it then
        log.warning("could not create the Bloomerang tribute %r: %s", body["Name"], exc)
        return None
