"""Identity of transactions and funds: by source reference, never twice.

A transaction is the same Bloomerang transaction when we linked it before (``sync_state``), when the
source stores the Bloomerang id (WeGive ``bloomerang_id``) or when the Bloomerang correlation custom
field of the transaction (``WeGive Transaction ID`` / ``Handbid Payment ID``) holds its source id --
the "transaction reference number tracking" of the reference mapping. There is deliberately no fuzzy
rule (same donor, date and amount can be two real gifts): no reference means a new transaction.

A fund is the same when linked, when the source stores its Bloomerang id, or when a Bloomerang fund
has the same name (case and whitespace ignored, per the issue); staged funds sharing a name become one
fund (one ``create_key``). Output columns are those of ``identity.resolve_constituents``.
"""

from __future__ import annotations

import pandas as pd

from bloom_pipeline.sync.identity import names as nm
from bloom_pipeline.sync.identity.constituents import (
    OUTPUT_COLUMNS,
    Resolution,
    _id_order,
    assign_custom_field_matches,
    record_key,
)


def _prepare(staged: pd.DataFrame) -> pd.DataFrame:
    staged = staged.astype({"source_id": str}).drop_duplicates(["source", "source_id"], keep="last")
    return staged.reset_index(drop=True)


def _base(staged: pd.DataFrame, links: pd.DataFrame | None) -> tuple[Resolution, pd.DataFrame]:
    """Apply the two exact-id rules every entity shares: ``linked`` then ``correlation_id``."""
    n = len(staged)
    result = Resolution(n)
    rows = pd.DataFrame({"_row": range(n), "source": staged["source"].astype(str), "source_id": staged["source_id"]})
    if links is not None and len(links):
        linked = links.dropna(subset=["bloomerang_id"]).astype({"source_id": str})
        result.assign(rows.merge(linked[["source", "source_id", "bloomerang_id"]], on=["source", "source_id"])
                      [["_row", "bloomerang_id"]], "linked")
    if "bloomerang_id" in staged:
        corr = pd.DataFrame({"_row": range(n), "bloomerang_id": pd.to_numeric(staged["bloomerang_id"])}).dropna()
        result.assign(corr, "correlation_id")
    return result, rows


def _frame(staged: pd.DataFrame, result: Resolution, create_key: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({
        "source": staged["source"].astype(str).tolist(),
        "source_id": staged["source_id"].tolist(),
        "bloomerang_id": pd.array(result.bloomerang_id, dtype="Int64"),
        "rule": result.rule,
        "create_key": create_key,
        "ambiguous": result.ambiguous,
        "note": ["; ".join(notes) or None for notes in result.notes],
    }, columns=list(OUTPUT_COLUMNS))


def resolve_transactions(
    staged: pd.DataFrame, snapshot: pd.DataFrame | None = None, links: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``snapshot``: Bloomerang transactions with ``bloomerang_id`` and ``corr_wegive``/``corr_handbid``."""
    staged = _prepare(staged)
    result, rows = _base(staged, links)
    if snapshot is not None and len(snapshot):
        assign_custom_field_matches(result, rows, snapshot)
    keys = [record_key(s, i) if bid is None else None
            for s, i, bid in zip(rows["source"], rows["source_id"], result.bloomerang_id, strict=True)]
    return _frame(staged, result, keys)


def resolve_funds(
    staged: pd.DataFrame, bloomerang_funds: pd.DataFrame | None = None, links: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``bloomerang_funds``: ``bloomerang_id, name`` of the funds Bloomerang has."""
    staged = _prepare(staged)
    result, rows = _base(staged, links)
    rows["name"] = nm.series_key(staged["name"] if "name" in staged else pd.Series(None, index=staged.index),
                                 nm.text_key)
    if bloomerang_funds is not None and len(bloomerang_funds):
        funds = pd.DataFrame({"name": nm.series_key(bloomerang_funds["name"], nm.text_key),
                              "bloomerang_id": pd.to_numeric(bloomerang_funds["bloomerang_id"])}).dropna()
        result.assign(rows.dropna(subset=["name"]).merge(funds, on="name")[["_row", "bloomerang_id"]], "name")
    create_key: list[str | None] = [None] * len(rows)
    for _, group in rows.groupby(rows["name"].fillna(rows["source"] + ":" + rows["source_id"]), sort=False):
        members = group["_row"].tolist()
        matched = [r for r in members if result.bloomerang_id[r] is not None]
        if matched:
            anchor = min(matched, key=lambda r: (result.bloomerang_id[r], r))
            for row in members:
                if result.bloomerang_id[row] is None:
                    result.bloomerang_id[row], result.rule[row] = result.bloomerang_id[anchor], "name"
            continue
        leader = min(members, key=lambda r: _id_order(rows.at[r, "source"], rows.at[r, "source_id"]))
        for row in members:
            create_key[row] = record_key(rows.at[leader, "source"], rows.at[leader, "source_id"])
    return _frame(staged, result, create_key)
