"""Partitions: donors and funds by org; transactions by org × day (created date, UTC).

The org list comes from the org files (``orgs.py``) when the Definitions are built, never at import.
"""

import dagster as dg

TRANSACTIONS_START_DATE = "2025-01-01"
# A year of days is 4 runs per org, not 365 (STACK.md trap 3: multi_run, not single_run).
TRANSACTION_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=100)


def org_partitions(orgs: list[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(orgs or ["demo"])


def org_day_partitions(orgs: list[str]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {"date": dg.DailyPartitionsDefinition(start_date=TRANSACTIONS_START_DATE), "org": org_partitions(orgs)}
    )


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
