"""The staged Bloomerang snapshot in canonical form, for identity matching and the three-way merge.

Bloomerang's read shape nests contact points (``PrimaryEmail.Value``, ``PrimaryAddress.Street``) and
custom values (``{FieldId, Value: {Id, Value}}``). Identity and merge compare canonical columns
(``docs/INTERFACES.md``), so this module flattens a snapshot once per run, vectorised with pandas.
It also resolves the org YAML's correlation custom fields (a name or an id) to field ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from bloom_pipeline.mapping.spec import OrgConfig

CANONICAL_COLUMNS = (
    "bloomerang_id", "constituent_type", "first_name", "middle_name", "last_name", "suffix", "full_name",
    "email", "phone", "street", "city", "state", "postal_code", "country", "last_modified",
    "corr_wegive", "corr_handbid",
)


class CustomFieldError(LookupError):
    """The org YAML names a correlation custom field Bloomerang does not have."""


def custom_field_ids(org: OrgConfig, fields: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """``{"constituent": {"wegive": 901, ...}, "transaction": {...}}`` from the org YAML's names/ids."""
    by_area: dict[str, dict[str, int]] = {"Constituent": {}, "Transaction": {}}
    ids_by_area: dict[str, set[int]] = {"Constituent": set(), "Transaction": set()}
    for field in fields:
        area = str(field.get("Area", "Constituent"))
        by_area.setdefault(area, {})[str(field.get("Name", "")).strip().casefold()] = int(field["Id"])
        ids_by_area.setdefault(area, set()).add(int(field["Id"]))
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
    return resolved


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


def snapshot_frame(records: list[dict[str, Any]], field_ids: Mapping[str, int]) -> pd.DataFrame:
    """Flatten Bloomerang constituents (read shape) into the canonical snapshot columns."""
    if not records:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CANONICAL_COLUMNS})
    flat = pd.json_normalize(records, max_level=1)

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
        "phone": col("PrimaryPhone.Number"),
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


def names_by_id(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{name: id}`` of funds / campaigns / appeals."""
    return {str(r["Name"]): int(r["Id"]) for r in records if r.get("Name") and r.get("Id") is not None}
