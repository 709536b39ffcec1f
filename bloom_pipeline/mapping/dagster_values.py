"""Values of the org YAML that Dagster parses when the code location loads, checked by `mapping validate`.

Why: the nightly schedule of every org is built when the Dagster definitions load; a cron Dagster refuses
(`99 99 * * *`) used to pass `mapping validate` and then break loading. The check uses Dagster's own cron
parser (imported on first use — importing dagster costs about a second), so validate and the code location
cannot disagree. Time zones are checked in `spec` (the models refuse a zone `zoneinfo` cannot load, which
is what Dagster and the schedule's run key both use); org names by `spec.IDENTIFIER` (also a valid
Dagster partition key and tag value). The schedule's partitions start on a fixed date
(`defs.partitions.TRANSACTIONS_START_DATE`), not an org setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bloom_pipeline.mapping.spec import MappingDocument

Found = Iterator[tuple[tuple[Any, ...], str]]

_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_CRON_HELP = "minute 0-59, hour 0-23, day of month 1-31, month 1-12, weekday 0-7; e.g. '0 2 * * *'"


def cron_problem(cron: str) -> str | None:
    """What is wrong with `cron` as a Dagster schedule, or None when Dagster runs it as written."""
    from dagster._utils import schedules

    try:
        valid = schedules.is_valid_cron_string(cron)
    except Exception:  # the parser raising on odd text is the same answer: not usable
        valid = False
    if not valid:
        return f"'{cron}' is not a cron expression Dagster accepts ({_CRON_HELP})"
    if schedules.has_out_of_range_cron_interval(cron):
        return (f"'{cron}' has a step larger than its field's range (like */90 minutes): Dagster would run it "
                "more often than written; use a step within the range")
    fields = schedules.CroniterShim.expand(cron)[0]
    days, months, weekdays = fields[2], fields[3], fields[4]
    if weekdays == ["*"] and all(isinstance(v, int) for v in (*days, *months)):
        longest = max(_MONTH_DAYS.get(m, 31) for m in months)
        if min(days) > longest:
            return f"'{cron}' never runs: no month it names has day {min(days)}"
    return None


def check_document(doc: MappingDocument) -> Found:
    """(key path, message) for each value of `doc` that Dagster would refuse or misread."""
    if doc.schedule is not None and (problem := cron_problem(doc.schedule.cron)) is not None:
        yield ("schedule", "cron"), problem
