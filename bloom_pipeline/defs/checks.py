"""Asset checks: the blocking ``valid`` check of each staged table and ``row_accounting`` on the load.

* ``valid`` (on ``stg_funds`` / ``stg_constituents`` / ``stg_transactions``, **blocking**): the pandera
  schema (lazy) and the org's reject threshold. The staging step computes the gate, so it reports this check
  (``defs/assets/staging.py``); the declaration and the result's wording live here. A failure stops the load.
* ``row_accounting`` (on ``bloomerang_transactions``, not blocking): ``extracted = staged + quarantined`` and
  ``staged = created + updated + unchanged + skipped + failed``, per entity, for the run. Partitioned like the
  asset it checks (one org per partition), so its result is recorded for the org the run synced — the UI
  shows each org's last accounting, not whichever org ran last. Partitioned checks are a preview feature of
  Dagster (1.13.27, pinned); the preview warning is silenced where the check is declared, on purpose.
"""

import warnings
from collections.abc import Iterable
from typing import Any

import dagster as dg

from bloom_pipeline.defs import metadata as md
from bloom_pipeline.defs.resources import SyncSettings
from bloom_pipeline.defs.runs import run_direction, sync_run_id
from bloom_pipeline.staging import accounting
from bloom_pipeline.sync.stage import EntityGate

VALID = "valid"
ACCOUNTED_ASSET = "bloomerang_transactions"


def valid_specs(assets: Iterable[str]) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(VALID, asset=asset, blocking=True,
                              description="pandera schema (lazy) and the org's reject threshold; "
                                          "a failure stops the load")
            for asset in assets]


def valid_result(asset: str, gate: EntityGate, metadata: dict[str, Any]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset, check_name=VALID, passed=gate.passed, severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{gate.blocked_reason}; the load was stopped" if gate.blocked_reason
                     else "schema valid and rejects within the org's threshold"),
        metadata=metadata,
    )


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The checks that are definitions of their own (``row_accounting``), for the org partitions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitions_def on a check: deliberate (docstring)

        @dg.asset_check(asset=ACCOUNTED_ASSET, partitions_def=partitions_def,
                        description="extracted = staged + quarantined; staged = created + updated + unchanged + "
                                    "skipped + failed, per entity, for this run")
        def row_accounting(context: dg.AssetCheckExecutionContext,
                           sync_settings: SyncSettings) -> dg.AssetCheckResult:
            store = sync_settings.store(context.partition_key)
            with store.connect() as con:
                accounts = accounting.compute_accounts(con, sync_run_id(context), direction=run_direction(context))
            problems = accounting.check_accounts(accounts)
            return dg.AssetCheckResult(passed=not problems,
                                       description="; ".join(problems) or "every row accounted for",
                                       metadata={"counts": dg.MetadataValue.json(accounting.counts_json(accounts)),
                                                 "accounts": dg.MetadataValue.md(md.accounting_markdown(accounts))})

    return [row_accounting]
