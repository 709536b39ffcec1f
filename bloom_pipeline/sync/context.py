"""The typed context of one run: what every step needs, built once and passed instead of long lists.

The run context holds the org, its staging store, its three clients, the run's id and direction, what
the run extracted, the Bloomerang custom field ids of the org's correlation fields, and the staged
Bloomerang snapshots (constituents in canonical form, transactions with their correlation values) —
each computed once per run, for identity, the plan, the apply ledger and the merge, and dropped when
the stored snapshot changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging.flat_rows import flattened_rows
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.endpoints import Clients
from bloom_pipeline.sync.extract.records import Extracted, stored_records
from bloom_pipeline.sync.snapshot import (
    CorrelationFields,
    custom_field_ids,
    snapshot_frame,
    transaction_row,
    transaction_rows_frame,
)

CUSTOM_FIELD_AREAS = ("Constituent", "Transaction")
_PACKAGE = Path(__file__).resolve().parents[1]


@functools.cache
def _flattening_code() -> str:
    """sha256 of the code that flattens a stored Bloomerang transaction (a new version flattens them again)."""
    digest = hashlib.sha256()
    for part in ("sync/snapshot.py", "staging/flat_rows.py", "sync/fields.py"):
        digest.update((_PACKAGE / part).read_bytes())
    return digest.hexdigest()


@dataclass
class RunContext:
    """One org's run: inputs every step shares, and the values derived from them once."""

    org: OrgConfig
    store: StagingStore
    clients: Clients
    run_id: str
    direction: str = "both"
    extracted: Extracted = field(default_factory=Extracted)
    # ref -> plan.named.MissingName: org-YAML names Bloomerang lacks, found by the plan (the dry-run lists them)
    missing_names: dict = field(default_factory=dict)
    _fields: CorrelationFields | None = field(default=None, repr=False)
    _constituents: list[dict] | None = field(default=None, repr=False)
    _snapshot: pd.DataFrame | None = field(default=None, repr=False)
    _transactions: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def pushing(self) -> bool:
        return self.direction in ("push", "both")

    @property
    def fields(self) -> CorrelationFields:
        """The correlation custom field ids, from this run's extract (or one read per area if none yet)."""
        if self._fields is None:
            found = self.extracted.records.get("bloomerang.custom_fields")
            if found is None:
                found = [dict(f, Area=area) for area in CUSTOM_FIELD_AREAS
                         for f in self.clients.bloomerang.custom_fields(area)]
            self._fields = custom_field_ids(self.org, found)
        return self._fields

    def bloomerang_constituents(self) -> list[dict]:
        """The stored Bloomerang constituents as read (read shape), parsed once per run: the snapshot frame and
        the communication step both need them, and parsing every stored record grows with the org. Read only."""
        if self._constituents is None:
            self._constituents = stored_records(self.store, "bloomerang", "constituents")
        return self._constituents

    def bloomerang_snapshot(self) -> pd.DataFrame:
        """The staged Bloomerang constituents in canonical columns, flattened once per run."""
        if self._snapshot is None:
            self._snapshot = snapshot_frame(self.bloomerang_constituents(), self.fields.constituent)
        return self._snapshot

    def bloomerang_transactions(self) -> pd.DataFrame:
        """The staged Bloomerang transactions with their correlation values, once per run. Their rows are kept
        flattened beside the raw table (``staging/flat_rows.py``): a run parses only the transactions that changed,
        not every gift the org ever synced."""
        if self._transactions is None:
            field_ids = dict(self.fields.transaction)
            key = hashlib.sha256((json.dumps(field_ids, sort_keys=True) + _flattening_code()).encode()).hexdigest()
            rows = flattened_rows(self.store, "bloomerang", "transactions", key,
                                  lambda record: transaction_row(record, field_ids))
            self._transactions = transaction_rows_frame(rows)
        return self._transactions

    def snapshot_changed(self) -> None:
        """The stored Bloomerang snapshots were rewritten (a new extract): flatten them again when asked."""
        self._constituents = None
        self._snapshot = None
        self._transactions = None
