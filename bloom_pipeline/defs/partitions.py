"""Partitions: donors and funds by org; transactions by org × day (created date, UTC).

Orgs are the files in ``mappings/orgs/*.yaml`` — adding an org is adding a file, no code change.
They are read when the Definitions are built (``build_definitions``), never at import.
"""

from pathlib import Path

import dagster as dg

TRANSACTIONS_START_DATE = "2025-01-01"
# A year of days is 4 runs per org, not 365 (STACK.md trap 3: multi_run, not single_run).
TRANSACTION_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=100)


def discover_orgs(mappings_dir: str | Path) -> list[str]:
    """Org names: the stems of ``<mappings_dir>/orgs/*.yaml``, sorted."""
    return sorted(path.stem for path in (Path(mappings_dir) / "orgs").glob("*.yaml"))


def org_partitions(orgs: list[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(orgs or ["demo"])


def org_day_partitions(orgs: list[str]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {"date": dg.DailyPartitionsDefinition(start_date=TRANSACTIONS_START_DATE), "org": org_partitions(orgs)}
    )


def org_of(context: dg.AssetExecutionContext) -> str:
    """The org of the running partition (org-partitioned or org × day)."""
    key = context.partition_key
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension["org"]
    if "|" in key:  # a run launched with only the dagster/partition tag (STACK.md trap 8)
        return dict(zip(("date", "org"), key.split("|"), strict=True))["org"]
    return key


def days_by_org(context: dg.AssetExecutionContext) -> dict[str, list[str]]:
    """The days of the run's partitions per org (a multi_run backfill passes many keys at once)."""
    grouped: dict[str, set[str]] = {}
    for key in context.partition_keys:
        if isinstance(key, dg.MultiPartitionKey):
            day, org = key.keys_by_dimension["date"], key.keys_by_dimension["org"]
        else:
            day, org = str(key).split("|")
        grouped.setdefault(org, set()).add(day)
    return {org: sorted(days) for org, days in sorted(grouped.items())}
