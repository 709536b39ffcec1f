"""The one Dagster ``Definitions`` object of bloom_pipeline (loaded by workspace.yaml)."""

import dagster as dg

defs = dg.Definitions()
