"""A staff merge of two constituents in the Bloomerang UI, as a test knob (not an API route).

Bloomerang's ``POST /constituent/merge`` is "create or merge" of one incoming record, not a merge of two
stored ones, and how a merge done by staff in the CRM shows through the API is not documented
(contracts/bloomerang-v2.md §4). The simulator takes the reading the people issue gives, the less convenient
one for a sync: the loser's id answers 404 and is gone from every list, and the survivor holds what the loser
had -- its transactions (``AccountId`` moved, their ``LastModifiedDate`` bumped, so an incremental pull sees
them again), interactions, notes, e-mails, phones and addresses (as non-primary records) and, per
``custom_values``, the loser's custom values:

* ``"fill"`` (default): the survivor keeps every value it has and takes the loser's where it has none;
* ``"loser"``: the loser's value wins where both have one;
* ``"survivor"``: the survivor keeps its own values only (the loser's are lost).
"""

from __future__ import annotations

from typing import Any

from bloom_pipeline.sandbox.bloomerang.validation import bad

CUSTOM_VALUE_MODES = ("fill", "loser", "survivor")


class MergesMixin:
    """``merge_constituents``; mixed into ``BloomerangStore`` (which provides the tables and the clock)."""

    def merge_constituents(self, survivor_id: int, loser_id: int, *, custom_values: str = "fill",
                           actor: str = "Front Desk") -> dict[str, Any]:
        """Merge ``loser_id`` into ``survivor_id`` as a staff member would; returns the survivor's GET body."""
        if custom_values not in CUSTOM_VALUE_MODES:
            raise ValueError(f"custom_values must be one of {CUSTOM_VALUE_MODES}")
        with self.lock:
            survivor = self.get_record("constituent", survivor_id)
            loser = self.get_record("constituent", loser_id)
            if survivor_id == loser_id:
                raise bad("A constituent cannot be merged into itself")
            if survivor["Type"] != loser["Type"]:
                raise bad("Cannot merge constituents of different types")
            for transaction in self.transactions.values():
                if transaction["AccountId"] == loser_id:
                    transaction["AccountId"] = survivor_id
                    self.bump(transaction, actor)
            for table in (self.interactions, self.notes):
                for record in table.values():
                    if record["AccountId"] == loser_id:
                        record["AccountId"] = survivor_id
            for kind, table in (("email", self.emails), ("phone", self.phones), ("address", self.addresses)):
                for record in table.values():
                    if record["AccountId"] == loser_id:
                        record["AccountId"] = survivor_id
                        record["IsPrimary"] = False
                        self.contacts_by_account[kind].add(survivor_id, record["Id"])
                self.contacts_by_account[kind].drop(loser_id)
            kept, theirs = survivor["_custom"], loser["_custom"]
            for field_id, value in theirs.items():
                if custom_values == "loser" or (custom_values == "fill" and field_id not in kept):
                    kept[field_id] = value
            self.index_custom_values("constituent", survivor)  # the indexes of store.py follow the merge
            del self.constituents[loser_id]
            self.modified_order["constituent"].remove(loser["_audit"]["modified"], loser_id)
            self.bump(survivor, actor)
            return self.render_constituent(survivor_id)
