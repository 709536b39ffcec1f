"""Step 5 — apply: the plan's writes to Bloomerang, in dependency order, crash-safe and idempotent.

Takes the stored push plan; gives one ``RecordResult`` per record (created / updated / unchanged /
failed, with the API's message), durable in the write journal the moment it happens and in
``sync_state`` / ``sync_log`` in batches.

* ``loop`` — the records in plan order, several requests in flight; outcome-unknown creates looked up by
  correlation id before a retry.
* ``pool`` — how many writes to keep in flight: enough to spend the rate budget, at most ``write_connections``.
* ``writers`` — the Bloomerang write of each entity, with its correlation custom value.
* ``refs`` — ``ref:`` placeholders of a payload resolved to Bloomerang ids.
* ``journal`` — the SQLite write journal (crash record).
* ``outcomes`` — results moved from the journal into DuckDB.
* ``recurring`` — recurring-donation schedules and pledges, created before their payments.
* ``load`` — funds → constituents → transactions for one run.
"""
