"""The sync as Dagster assets, one module per layer (asset group): a thin shell over ``bloom_pipeline.sync``.

Org-partitioned graph (the nightly bidirectional job): ``extract.py`` (``raw_bloomerang``, then
``raw_wegive``, ``raw_handbid``) → ``staging.py`` (``stg_funds`` / ``stg_constituents`` /
``stg_transactions``, with the blocking ``valid`` checks: a table that failed, or a batch over the org's
reject threshold, stops the load) → ``plan.py`` (``push_plan``) → ``load.py`` (``bloomerang_funds`` /
``bloomerang_constituents`` / ``bloomerang_transactions`` / ``source_writebacks``; the row-accounting check is
in ``defs/checks.py``). ``backfill.py``: ``wegive_transactions_daily``, partitioned by date × org.

Each module has one ``build(partitions_def)`` returning its layer's definitions: the partitions are the orgs
found when the Definitions are built, so the assets are made then, not at import. Layers refer to each
other by asset key, and every step works on the sync run of ``defs/runs.py``. The resources come in as typed
parameters (``sync_settings: SyncSettings``, ``credentials: OrgCredentials``).
"""
