"""Step 6 — merge: linked donors both ways, field by field, against the last-synced baseline.

Takes donors already linked to a Bloomerang constituent (``sync_state`` holds both ids and the per-side
baseline), their staged source values and the Bloomerang snapshot; gives the writes to each side, the
conflicts (``conflicts``) and the review items (``review_queue``), and the new baseline.

* ``three_way`` — the pure field-level merge (last modified wins outside the skew tolerance).
* ``baseline`` — echo suppression: did a side really change since the last sync?
* ``decisions`` — field rules and reviewers' decisions.
* ``linked`` — the merge of a run: its writes, the conflict ledger, the queue.
* ``writeback`` — correlation ids written back to the source (WeGive's ``bloomerang_id``).
"""
