"""Test helper: find what the pipeline wrote into the Bloomerang simulator by the correlation values it stores."""

from __future__ import annotations

from typing import Any


def custom_values(record: dict[str, Any], field_id: int) -> list[str]:
    """The values of custom field ``field_id`` on a rendered constituent or designation."""
    out = []
    for value in record.get("CustomValues") or []:
        if value.get("FieldId") == field_id:
            inner = value.get("Value")
            out.append(str(inner.get("Value") if isinstance(inner, dict) else inner))
    return out


def custom_value(record: dict[str, Any], field_id: int) -> str | None:
    """The first value of custom field ``field_id`` on a rendered constituent or designation (None: not set)."""
    values = custom_values(record, field_id)
    return values[0] if values else None


def by_correlation(store: Any, kind: str, field_id: int) -> dict[str, list[dict[str, Any]]]:
    """Rendered constituents (``kind`` "constituents") or transactions (through their designations) by the value
    of custom field ``field_id``: the source id the pipeline wrote there."""
    out: dict[str, list[dict[str, Any]]] = {}
    if kind == "constituents":
        for cid in list(store.constituents):
            record = store.render_constituent(cid)
            for value in custom_values(record, field_id):
                out.setdefault(value, []).append(record)
    else:
        for tid in list(store.transactions):
            record = store.render_transaction(tid)
            for value in {v for d in record.get("Designations", []) for v in custom_values(d, field_id)}:
                out.setdefault(value, []).append(record)
    return out
