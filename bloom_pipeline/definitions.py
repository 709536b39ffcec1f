"""The one Dagster ``Definitions`` of bloom_pipeline: what ``workspace.yaml``, ``[tool.dagster]`` and
``[tool.dg]`` in pyproject.toml load (``dagster dev``, ``dagster definitions validate``, ``dg check defs``).

A ``@dg.definitions`` function, as in Dagster's project layout: the org files are read when Dagster loads
the code location, not when this module is imported.
"""

import dagster as dg

from bloom_pipeline.defs.definitions_builder import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
