"""Step 3 — identity: which Bloomerang record each staged record is, or that it is new.

Takes the staged records of the run, the links stored in ``sync_state`` and the staged Bloomerang
snapshot; gives one resolution per record (Bloomerang id or a create key, the rule that matched, and
whether the match is ambiguous). Runs locally, never one search call per record.

* ``names`` — comparison keys (names with nicknames, e-mail, street, phone digits).
* ``constituents`` — donors and contacts: correlation id, e-mail, name + address, the duplicate rule.
* ``by_reference`` — transactions and funds: by source reference, never twice.
* ``reviews`` — identity items in the review queue: raised once, turned into decisions, closed when applied.
"""
