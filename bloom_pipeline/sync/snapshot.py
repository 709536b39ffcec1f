"""The staged Bloomerang snapshot in canonical form, for identity matching and the three-way merge.

Bloomerang's read shape nests contact points (``PrimaryEmail.Value``, ``PrimaryAddress.Street``) and
custom values (``{FieldId, Value: {Id, Value}}``). Identity and merge compare canonical columns
(``fields.CANONICAL_FIELDS``), so this module flattens a snapshot once per run (``RunContext``), vectorised with pandas.
It also resolves the org YAML's correlation custom fields (a name or an id) to field ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bloom_pipeline.errors import ConfigurationError
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.sync.fields import CANONICAL_FIELDS, present

CANONICAL_COLUMNS = ("bloomerang_id", "constituent_type", "suffix", *CANONICAL_FIELDS, "last_modified",
                     "corr_wegive", "corr_handbid")


class CustomFieldError(ConfigurationError):
    """The org YAML names a correlation custom field Bloomerang does not have."""


@dataclass(frozen=True)
class CorrelationFields:
    """The Bloomerang custom field ids that hold each source's id, per area: ``constituent["wegive"]``."""

    constituent: Mapping[str, int] = field(default_factory=dict)
    transaction: Mapping[str, int] = field(default_factory=dict)


def custom_field_ids(org: OrgConfig, fields: Iterable[Mapping[str, Any]]) -> CorrelationFields:
    """The org YAML's correlation custom fields (a name or an id) resolved against Bloomerang's fields."""
    by_area: dict[str, dict[str, int]] = {"Constituent": {}, "Transaction": {}}
    ids_by_area: dict[str, set[int]] = {"Constituent": set(), "Transaction": set()}
    for custom in fields:
        area = str(custom.get("Area", "Constituent"))
        by_area.setdefault(area, {})[str(custom.get("Name", "")).strip().casefold()] = int(custom["Id"])
        ids_by_area.setdefault(area, set()).add(int(custom["Id"]))
    resolved: dict[str, dict[str, int]] = {"constituent": {}, "transaction": {}}
    for area, bloomerang_area in (("constituent", "Constituent"), ("transaction", "Transaction")):
        for source in ("wegive", "handbid"):
            wanted = org.custom_field(area, source)
            if wanted is None:
                continue
            if isinstance(wanted, int) or str(wanted).isdigit():
                if int(wanted) not in ids_by_area[bloomerang_area]:
                    raise CustomFieldError(f"Bloomerang has no {bloomerang_area} custom field with id {wanted}")
                resolved[area][source] = int(wanted)
                continue
            found = by_area[bloomerang_area].get(str(wanted).strip().casefold())
            if found is None:
                raise CustomFieldError(
                    f"Bloomerang has no {bloomerang_area} custom field named {wanted!r} "
                    f"(org YAML bloomerang.custom_fields.{area}.{source})"
                )
            resolved[area][source] = found
    return CorrelationFields(constituent=resolved["constituent"], transaction=resolved["transaction"])


def _custom_value(values: Any, field_id: int | None) -> str | None:
    if field_id is None or not isinstance(values, list):
        return None
    for value in values:
        if value.get("FieldId") == field_id:
            inner = value.get("Value")
            if isinstance(inner, dict):
                inner = inner.get("Value")
            return None if inner is None else str(inner)
    return None


def with_extension(numbers: pd.Series, extensions: pd.Series) -> pd.Series:
    """A phone as one text: Bloomerang keeps an extension in its own ``Extension`` field, a source in the number
    it was typed with (``(303) 555-1212 ext. 44``); read as ``Number ext. Extension``, so the same number and
    extension compare equal whichever way each side holds them, and a pull carries the extension along."""
    out = []
    for number, extension in zip(numbers.astype(object), extensions.astype(object), strict=True):
        number, extension = present(number), present(extension)
        if number is not None and extension is not None and str(extension).strip():
            number = f"{str(number).strip()} ext. {str(extension).strip()}"
        out.append(number)
    return pd.Series(out, index=numbers.index, dtype=object)


_SNAPSHOT_KEYS = ("Id", "Type", "FirstName", "MiddleName", "LastName", "Suffix", "FullName", "CustomValues")
_SNAPSHOT_NESTED = {"PrimaryEmail": ("Value",), "PrimaryPhone": ("Number", "Extension"),
                    "PrimaryAddress": ("Street", "City", "State", "PostalCode", "Country"),
                    "AuditTrail": ("LastModifiedDate",)}
# (parent, ((key, flattened name), ...)): the names made once, not per record (117,113 constituents a night at 100k)
_NESTED_NAMES = tuple((parent, tuple((key, f"{parent}.{key}") for key in keys))
                      for parent, keys in _SNAPSHOT_NESTED.items())


def _flat_constituent(record: dict[str, Any]) -> dict[str, Any]:
    """The keys ``snapshot_frame`` reads, flattened as ``pd.json_normalize(max_level=1)`` names them.

    Why not json_normalize itself: it deep-copies every record and flattens every key, and the snapshot is
    flattened on every run — a quiet night's largest single cost. A key a record lacks is left out, so the
    frame holds NaN there exactly as json_normalize's frame does."""
    row = {key: record[key] for key in _SNAPSHOT_KEYS if key in record}
    for parent, pairs in _NESTED_NAMES:
        inner = record.get(parent)
        if isinstance(inner, dict):
            for key, name in pairs:
                if key in inner:
                    row[name] = inner[key]
    return row


def snapshot_frame(records: list[dict[str, Any]], field_ids: Mapping[str, int]) -> pd.DataFrame:
    """Flatten Bloomerang constituents (read shape) into the canonical snapshot columns."""
    if not records:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CANONICAL_COLUMNS})
    flat = pd.DataFrame([_flat_constituent(r) for r in records])

    def col(name: str) -> pd.Series:
        return flat[name] if name in flat else pd.Series(None, index=flat.index, dtype=object)

    frame = pd.DataFrame({
        "bloomerang_id": col("Id").astype("Int64"),
        "constituent_type": col("Type"),
        "first_name": col("FirstName"),
        "middle_name": col("MiddleName"),
        "last_name": col("LastName"),
        "suffix": col("Suffix"),
        "full_name": col("FullName"),
        "email": col("PrimaryEmail.Value"),
        "phone": with_extension(col("PrimaryPhone.Number"), col("PrimaryPhone.Extension")),
        "street": col("PrimaryAddress.Street"),
        "city": col("PrimaryAddress.City"),
        "state": col("PrimaryAddress.State"),
        "postal_code": col("PrimaryAddress.PostalCode"),
        "country": col("PrimaryAddress.Country"),
        "last_modified": pd.to_datetime(col("AuditTrail.LastModifiedDate"), utc=True, errors="coerce"),
    })
    custom = col("CustomValues")
    frame["corr_wegive"] = [_custom_value(v, field_ids.get("wegive")) for v in custom]
    frame["corr_handbid"] = [_custom_value(v, field_ids.get("handbid")) for v in custom]
    return frame.drop_duplicates("bloomerang_id", keep="last").reset_index(drop=True)


def canonical_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """One Bloomerang constituent's ``CANONICAL_FIELDS``, the values ``snapshot_frame`` gives for it.

    Why beside the frame: the apply step keeps the Bloomerang side of every constituent it writes (the write's
    answer) for the next run's merge, one record at a time; a one-row ``snapshot_frame`` costs ~15 ms of pandas
    per write, more than the write's own request. The values must stay exactly the frame's
    (``tests/unit/sync/test_snapshot_flatten.py`` compares the two)."""
    flat = _flat_constituent(dict(record))
    number, extension = present(flat.get("PrimaryPhone.Number")), present(flat.get("PrimaryPhone.Extension"))
    if number is not None and extension is not None and str(extension).strip():
        number = f"{str(number).strip()} ext. {str(extension).strip()}"
    values = {"first_name": flat.get("FirstName"), "middle_name": flat.get("MiddleName"),
              "last_name": flat.get("LastName"), "full_name": flat.get("FullName"),
              "email": flat.get("PrimaryEmail.Value"), "phone": number,
              "street": flat.get("PrimaryAddress.Street"), "city": flat.get("PrimaryAddress.City"),
              "state": flat.get("PrimaryAddress.State"), "postal_code": flat.get("PrimaryAddress.PostalCode"),
              "country": flat.get("PrimaryAddress.Country")}
    return {name: present(values[name]) for name in CANONICAL_FIELDS}


TRANSACTION_COLUMNS = ("bloomerang_id", "designation_id", "corr_wegive", "corr_handbid", "is_refunded", "amount",
                       "date", "account_id")


def _designation_value(designations: Any, field_id: int | None) -> tuple[str | None, int | None]:
    """The correlation value a transaction carries on (the first of) its designations, and that designation."""
    if field_id is None or not isinstance(designations, list):
        return None, None
    for designation in designations:
        value = _custom_value((designation or {}).get("CustomValues"), field_id)
        if value is not None:
            return value, designation.get("Id")
    return None, None


def transaction_row(record: Mapping[str, Any], field_ids: Mapping[str, int]) -> dict[str, Any] | None:
    """One Bloomerang transaction's row of ``transaction_frame`` (None for a record without an id)."""
    if record.get("Id") is None:
        return None
    wegive, designation = _designation_value(record.get("Designations"), field_ids.get("wegive"))
    handbid, other = _designation_value(record.get("Designations"), field_ids.get("handbid"))
    return {"bloomerang_id": record["Id"], "designation_id": designation or other,
            "corr_wegive": wegive, "corr_handbid": handbid,
            "is_refunded": record.get("IsRefunded") in ("Yes", True),
            "amount": record.get("Amount"), "date": record.get("Date"),
            "account_id": record.get("AccountId")}


def transaction_frame(records: list[dict[str, Any]], field_ids: Mapping[str, int]) -> pd.DataFrame:
    """Bloomerang transactions (read shape) → id, the correlation value per source, refund state, amount, and
    the constituent (``account_id``) the gift is on."""
    return transaction_rows_frame([row for row in (transaction_row(r, field_ids) for r in records) if row is not None])


def transaction_rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``transaction_frame`` of rows ``transaction_row`` made (in the records' order: the last copy of an id wins)."""
    frame = pd.DataFrame(rows, columns=list(TRANSACTION_COLUMNS))
    frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
    return frame.drop_duplicates("bloomerang_id", keep="last").reset_index(drop=True)


def names_by_id(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{name: id}`` of funds / campaigns / appeals."""
    return {str(r["Name"]): int(r["Id"]) for r in records if r.get("Name") and r.get("Id") is not None}
