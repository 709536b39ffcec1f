"""The run tags the shell sets and reads, in one place so the jobs, schedules, sensors and assets agree.

``org`` is also what the run queue in ``dagster.yaml`` limits to one run per value (one writer per DuckDB
file, one rate budget per key); ``dagster/partition`` is Dagster's own and is read as a fallback.
"""

ORG_TAG = "org"
DIRECTION_TAG = "bloom/direction"  # both | push | pull: which way the sync of the run goes
TRIGGER_TAG = "bloom/trigger"  # schedule | auction_reconciled: what launched the run
AUCTIONS_TAG = "bloom/auctions"  # the newly reconciled Handbid auctions a sensor run is for
# Dagster's tags that carry the partition (a backfill of a range carries only the range start / end)
PARTITION_TAGS = ("dagster/partition", "dagster/asset_partition_range_start")
