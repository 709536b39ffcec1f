"""Step 4 — plan: what the load will do to each staged record, decided before anything is written.

Takes the staged records, their identity resolutions, ``sync_state`` and the Bloomerang snapshot; gives
the push plan (create / update / unchanged / blocked / skipped per record, with the field diff and the
payload), stored in ``push_plan`` so a run applies exactly what it planned and a dry run shows it.

* ``records`` — the pure per-record decision (``plan_records``).
* ``entities`` — the inputs of each entity (funds, constituents, transactions with refunds) assembled.
* ``push_plan`` — the run's plan for every entity, computed and stored.
* ``render`` — the dry-run text.
"""
