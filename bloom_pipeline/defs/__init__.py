"""The Dagster shell of bloom_pipeline: the core's functions wrapped as assets, checks, jobs, schedules and
sensors, with no logic of its own (``bloom_pipeline.sync`` does the work; ``sync/runner.py`` knows the order).

``assets/`` one module per layer (extract, staging, plan, load, backfill); ``checks.py`` the asset checks;
``jobs.py``, ``schedules.py``, ``sensors.py`` what launches runs; ``resources.py`` paths and credentials;
``runs.py`` which sync run a step belongs to; ``orgs.py`` and ``partitions.py`` the orgs as partitions;
``tags.py`` run tags; ``metadata.py`` what the UI shows; ``alerts.py`` (plain Python) failure alerts;
``definitions_builder.py`` assembles the one ``Definitions`` (``bloom_pipeline/definitions.py``).
"""
