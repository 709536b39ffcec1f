"""The one Dagster ``Definitions`` object of bloom_pipeline (loaded by workspace.yaml / ``dagster dev``)."""

from bloom_pipeline.defs.definitions_builder import build_definitions

defs = build_definitions()
