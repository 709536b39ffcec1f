"""Org custom fields, the pure part: resolve the Bloomerang field, read both sides, validate, build the write.

Why a module of its own: a custom field is typed in Bloomerang (``DataType`` Currency | Date | Decimal | Text |
Year, ``PickType`` Freeform | PickOne | PickMultiple, contracts/bloomerang-v2.md "Custom fields"), while WeGive
holds whatever a person or a form typed. Every value crossing to Bloomerang is checked here against the field's
type and pick list, so a value Bloomerang would refuse (or, worse, store as something else) never leaves; the
step (``custom_fields.py``) turns a refusal into a quarantine row of kind 'field' for that field of that donor.

Values are compared in one *canonical* form on both sides: text stripped; a date ``YYYY-MM-DD``; a currency
with two decimals; a decimal without trailing zeros; a year as four digits; a pick value as Bloomerang spells
it; a multi-pick as the sorted list of its pick texts. Blank is None.

Shapes (read ≠ write, the classic round-trip bug):

* Bloomerang read: ``{"FieldId": n, "Value": {"Id": m, "Value": "text"}}`` or ``{"FieldId": n, "Values":
  [{"Id": m, "Value": "text"}, …]}`` (``FieldText`` optional).
* Bloomerang write: ``{"FieldId": n, "Value": "text"}`` (Freeform; null clears), ``{"FieldId": n, "ValueId": m}``
  (PickOne; null clears), ``{"FieldId": n, "ValueIds": [m, …]}`` (PickMultiple; ``[]`` clears).
* WeGive: the document types a donor's ``custom_fields`` as an untyped string (DonorViewResource). Two shapes
  are plausible, and the sandbox serves either (knob ``donor_custom_fields``, docs/sandbox.md): a list of
  ``{api_name, name, value}`` objects (its default, the less convenient reading) or an object keyed by the WeGive
  custom field's ``api_name``. This reader takes both (also ``key`` / ``answer`` spellings, and either as JSON
  text), by ``api_name`` or by name, case-insensitively; a write goes back under the ``api_name``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bloom_pipeline.mapping.spec import CustomFieldMap

AREA = "Constituent"
DATA_TYPES = ("Currency", "Date", "Decimal", "Text", "Year")
PICK_TYPES = ("Freeform", "PickOne", "PickMultiple")
TEXT_LIMIT = 255  # what Bloomerang's text columns hold (contracts/bloomerang-v2.md §10: the 255 cap)
DECIMAL_LIMIT = Decimal("79228162514264337593543950335")  # System.Decimal
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)\Z")
_GROUPED_NUMBER = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?\Z")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})\Z")


@dataclass(frozen=True)
class BloomerangField:
    """A resolved Bloomerang custom field and its active pick-list values (``picks``: casefold text → (id, text))."""

    id: int
    name: str
    data_type: str
    pick_type: str
    picks: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def is_pick(self) -> bool:
        return self.pick_type in ("PickOne", "PickMultiple")

    def pick_ids(self) -> dict[str, int]:
        """Pick text (as Bloomerang spells it) → value id."""
        return {text: value_id for value_id, text in self.picks.values()}


@dataclass(frozen=True)
class Resolved:
    """The org's custom fields matched to Bloomerang's: ``fields`` by entry key, and what could not be."""

    fields: Mapping[str, tuple[CustomFieldMap, BloomerangField]]
    problems: tuple[str, ...] = ()


def resolve(entries: Iterable[CustomFieldMap], fields: Iterable[Mapping[str, Any]],
            values: Iterable[Mapping[str, Any]], reserved: Iterable[int] = ()) -> Resolved:
    """Match each YAML entry to a Bloomerang Constituent custom field by id or (case-insensitive) name.

    ``fields`` are ``GET /customFields/Constituent/`` records (an ``Area`` key other than Constituent is skipped),
    ``values`` the ``GET /customValues/Constituent`` pick values (inactive ones are left out of the pick list),
    ``reserved`` the correlation field ids: an org field mapped onto one of them would overwrite the link of
    every donor, so it is refused. A field that cannot be used is a problem sentence, and is not synced."""
    by_id: dict[int, Mapping[str, Any]] = {}
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for record in fields:
        if str(record.get("Area", AREA)) != AREA or record.get("Id") is None:
            continue
        by_id[int(record["Id"])] = record
        by_name.setdefault(str(record.get("Name", "")).strip().casefold(), []).append(record)
    picks: dict[int, dict[str, tuple[int, str]]] = {}
    for value in values:
        if value.get("IsActive") is False or value.get("FieldId") is None or value.get("Id") is None:
            continue
        text = str(value.get("Value", "")).strip()
        picks.setdefault(int(value["FieldId"]), {})[text.casefold()] = (int(value["Id"]), text)
    blocked = {int(i) for i in reserved}
    found: dict[str, tuple[CustomFieldMap, BloomerangField]] = {}
    problems: list[str] = []
    for entry in entries:
        wanted = entry.bloomerang
        where = f"custom field '{entry.wegive}' -> '{wanted}'"
        if isinstance(wanted, int) or str(wanted).isdigit():
            record = by_id.get(int(wanted))
            if record is None:
                problems.append(f"{where}: Bloomerang has no {AREA} custom field with id {wanted}; not synced")
                continue
        else:
            named = by_name.get(str(wanted).casefold(), [])
            if len(named) != 1:
                problems.append(f"{where}: Bloomerang has {'no' if not named else 'more than one'} {AREA} "
                                f"custom field named '{wanted}'; not synced")
                continue
            record = named[0]
        field_id = int(record["Id"])
        if field_id in blocked:
            problems.append(f"{where}: field {field_id} holds the pipeline's correlation ids "
                            "(bloomerang.custom_fields); not synced")
            continue
        data_type, pick_type = str(record.get("DataType", "Text")), str(record.get("PickType", "Freeform"))
        if data_type not in DATA_TYPES or pick_type not in PICK_TYPES:
            problems.append(f"{where}: unknown Bloomerang field type {data_type}/{pick_type}; not synced")
            continue
        found[entry.key] = (entry, BloomerangField(field_id, str(record.get("Name", "")), data_type, pick_type,
                                                    picks.get(field_id, {})))
    return Resolved(found, tuple(problems))


# -- reading ------------------------------------------------------------------------------------------------

def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == [] or value == {}


def wegive_values(custom_fields: Any) -> dict[str, tuple[str, Any]]:
    """A donor's ``custom_fields`` → casefold key (``api_name`` and name) → (the key as WeGive spells it, value)."""
    data = custom_fields
    if isinstance(data, str):
        try:
            data = json.loads(data) if data.strip() else None
        except ValueError:
            return {}
    out: dict[str, tuple[str, Any]] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(value, Mapping) and ("value" in value or "answer" in value):
                value = value.get("value", value.get("answer"))
            out[str(key).strip().casefold()] = (str(key), value)
    elif isinstance(data, list):
        for item in data:
            if not isinstance(item, Mapping):
                continue
            value = item.get("value", item.get("answer"))
            api_name = item.get("api_name") or item.get("key")
            spelled = str(api_name or item.get("name") or "")
            for key in (api_name, item.get("name"), item.get("key")):
                if key is not None and str(key).strip():
                    out.setdefault(str(key).strip().casefold(), (spelled, value))
    return out


def bloomerang_value(custom_values: Any, bloomerang: BloomerangField) -> Any:
    """The canonical value a constituent's read-shape ``CustomValues`` holds in ``bloomerang``'s field."""
    for item in custom_values if isinstance(custom_values, list) else []:
        if not isinstance(item, Mapping) or item.get("FieldId") is None or int(item["FieldId"]) != bloomerang.id:
            continue
        if isinstance(item.get("Values"), list):
            texts = sorted({str(v.get("Value", "")).strip() for v in item["Values"] if isinstance(v, Mapping)} - {""})
            return texts or None
        value = item.get("Value")
        if isinstance(value, Mapping):
            value = value.get("Value")
        if _blank(value):
            return None
        canonical, reason = validate(bloomerang, value)
        return str(value).strip() if reason else canonical  # Bloomerang's own value is kept as it holds it
    return None


# -- validating ----------------------------------------------------------------------------------------------

def validate(bloomerang: BloomerangField, raw: Any) -> tuple[Any, str | None]:
    """``(canonical value, None)`` when ``raw`` fits the field's type and pick list, else ``(None, reason)``.

    Blank is ``(None, None)``: an empty WeGive value is no value, and never erases one (the merge's rule)."""
    if _blank(raw):
        return None, None
    label = f"Bloomerang custom field '{bloomerang.name}'"
    if bloomerang.pick_type == "PickMultiple":
        items = _pick_items(raw, bloomerang)
        if items is None:
            return None, f"{shown(raw)} is not a list of values of {label}"
        chosen, missing = _picks(items, bloomerang)
        if missing:
            return None, f"{shown(missing[0])} is not in the pick list of {label} ({_options(bloomerang)})"
        return sorted(set(chosen)) or None, None
    if bloomerang.pick_type == "PickOne":
        if isinstance(raw, list):
            if len(raw) != 1:
                return None, f"{shown(raw)}: {label} takes one value"
            raw = raw[0]
        if isinstance(raw, bool | Mapping | list):
            return None, f"{shown(raw)} is not a value of {label}"
        chosen, missing = _picks([str(raw)], bloomerang)
        if missing:
            return None, f"{shown(raw)} is not in the pick list of {label} ({_options(bloomerang)})"
        return chosen[0], None
    return _freeform(bloomerang, raw, label)


def _pick_items(raw: Any, bloomerang: BloomerangField) -> list[str] | None:
    """A multi-pick value as items: a list, or text that is one pick value or several split on ``;`` / ``,``."""
    if isinstance(raw, list):
        return [str(x) for x in raw if not _blank(x)] if all(isinstance(x, str | int) for x in raw) else None
    if isinstance(raw, bool | Mapping):
        return None
    text = str(raw).strip()
    if text.casefold() in bloomerang.picks:
        return [text]
    return [part for part in re.split(r"[;,]", text) if part.strip()]


def _picks(items: Iterable[str], bloomerang: BloomerangField) -> tuple[list[str], list[str]]:
    chosen, missing = [], []
    for item in items:
        hit = bloomerang.picks.get(str(item).strip().casefold())
        (chosen if hit else missing).append(hit[1] if hit else str(item).strip())
    return chosen, missing


def _freeform(bloomerang: BloomerangField, raw: Any, label: str) -> tuple[Any, str | None]:
    kind = bloomerang.data_type
    if isinstance(raw, bool | Mapping | list) or (isinstance(raw, float) and raw != raw):  # noqa: PLR0124
        return None, f"{shown(raw)} is not a {kind.lower()} value for {label}"
    text = str(raw).strip()
    if kind == "Text":
        if len(text) > TEXT_LIMIT:
            return None, f"{shown(text)} is longer than {TEXT_LIMIT} characters ({label})"
        return text, None
    if kind == "Date":
        day = _date(text)
        return (day, None) if day else (None, f"{shown(text)} is not a date (YYYY-MM-DD) for {label}")
    if kind == "Year":
        if re.fullmatch(r"\d{4}", text) and 1000 <= int(text) <= 9999:
            return text, None
        return None, f"{shown(text)} is not a year (four digits) for {label}"
    number = _number(text)
    if number is None:
        return None, f"{shown(text)} is not a number for {label} ({kind})"
    if kind == "Currency":
        if number != number.quantize(Decimal("0.01")):
            return None, f"{shown(text)} has more than two decimals ({label} is a currency)"
        return f"{number:.2f}", None
    normal = number.normalize()
    return format(normal, "f") if normal != 0 else "0", None


def _number(text: str) -> Decimal | None:
    """A plain decimal (``1250.5``), or one grouped by thousands with commas (``1,250.50``), an optional ``$``."""
    body = text[1:] if text.startswith("$") else text
    if not (_PLAIN_NUMBER.match(body) or _GROUPED_NUMBER.match(body)):
        return None
    try:
        number = Decimal(body.replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number) <= DECIMAL_LIMIT else None


def _date(text: str) -> str | None:
    """``YYYY-MM-DD``, an ISO date-time (its date, as written), or ``MM/DD/YYYY`` — what Bloomerang's binder
    takes (contracts/bloomerang-v2.md §10) — as ``YYYY-MM-DD``; anything else is not a date."""
    us = _US_DATE.match(text)
    try:
        if us:
            return date(int(us[3]), int(us[1]), int(us[2])).isoformat()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text).isoformat()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\S+", text):
            datetime.fromisoformat(text.replace("Z", "+00:00"))
            return text[:10]
    except ValueError:
        return None
    return None


def _options(bloomerang: BloomerangField) -> str:
    texts = sorted(text for _, text in bloomerang.picks.values())
    shown = ", ".join(texts[:8]) + (", …" if len(texts) > 8 else "")
    return f"values: {shown}" if texts else "it has no active values"


def shown(value: Any) -> str:
    """A value as a reason shows it: quoted, escaped, at most 80 characters (like the mapping's 'field' rows)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return f"'{text if len(text) <= 80 else text[:77] + '...'}'"


# -- writing -------------------------------------------------------------------------------------------------

def write_shape(bloomerang: BloomerangField, canonical: Any) -> dict[str, Any]:
    """The ``CustomValues`` item that sets ``bloomerang``'s field to ``canonical`` (None / ``[]`` clears)."""
    if bloomerang.pick_type == "PickOne":
        return {"FieldId": bloomerang.id, "ValueId": None if canonical is None else bloomerang.pick_ids()[canonical]}
    if bloomerang.pick_type == "PickMultiple":
        ids = bloomerang.pick_ids()
        return {"FieldId": bloomerang.id, "ValueIds": [ids[text] for text in canonical or []]}
    return {"FieldId": bloomerang.id, "Value": canonical}


def wegive_shape(canonical: Any) -> Any:
    """What a WeGive custom field is written as: the text, or the list of texts of a multi-pick."""
    return list(canonical) if isinstance(canonical, list | tuple) else canonical
