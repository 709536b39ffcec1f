"""Values of the org YAML that Dagster parses when the code location loads, checked by `mapping validate`.

Why: the nightly schedule of every org is built when the Dagster definitions load; a cron Dagster refuses
(`99 99 * * *`) used to pass `mapping validate` and then break loading. The check uses Dagster's own cron
parser, so validate and the code location cannot disagree — except for the plain expressions almost every org
writes (numbers, `*`, ranges, steps, lists; `simple_cron_is_valid`), which are certified here without it:
every org load (each `sync`) goes through this check, and importing dagster costs about 1.5 s of a night's run.
Anything else, and every expression that does not pass that narrow test, goes to Dagster's parser (imported on
first use); `tests/unit/mapping/test_cron_fast_path.py` holds the two to the same answers. Time zones are
checked in `spec` (the models refuse a zone `zoneinfo` cannot load, which is what Dagster and the schedule's
run key both use); org names by `spec.IDENTIFIER` (also a valid Dagster partition key and tag value). The
schedule's partitions start on a fixed date (`defs.partitions.TRANSACTIONS_START_DATE`), not an org setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bloom_pipeline.mapping.spec import MappingDocument

Found = Iterator[tuple[tuple[Any, ...], str]]

_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_CRON_HELP = "minute 0-59, hour 0-23, day of month 1-31, month 1-12, weekday 0-7; e.g. '0 2 * * *'"


# The fields' ranges as Dagster's (vendored croniter's) parser reads them; a weekday of 7 (Sunday) is left to it.
_FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_SIMPLE_ITEM = re.compile(r"^(?:\*|(\d{1,2})(?:-(\d{1,2}))?)(?:/(\d{1,2}))?$")


def simple_cron_is_valid(cron: str) -> bool:
    """True only when `cron` is certainly one Dagster runs as written, without asking Dagster: five fields, each a
    list of `*`, `N` or `N-M` (ascending) with an optional step `/S` (1 ≤ S ≤ the range's top, so never a
    step larger than its field) and every number in its field's range; a day of month of 28 or less (or `*`), so
    no month can lack it. False means "not certified here" (not "invalid"): the caller asks Dagster."""
    fields = cron.split()
    if len(fields) != 5:
        return False
    for index, (text, (low, high)) in enumerate(zip(fields, _FIELD_RANGES, strict=True)):
        for item in text.split(","):
            match = _SIMPLE_ITEM.match(item)
            if match is None:
                return False
            start, end, step = match.groups()
            first = int(start) if start is not None else low
            last = int(end) if end is not None else (first if start is not None else high)
            if start is not None and step is not None and end is None:
                return False  # `N/S`: Dagster reads it as N-top/S; not worth certifying here
            if not (low <= first <= last <= high):
                return False
            if step is not None and not (1 <= int(step) <= last):
                return False
            if index == 2 and start is not None and first > 28:
                return False
    return True


def cron_problem(cron: str) -> str | None:
    """What is wrong with `cron` as a Dagster schedule, or None when Dagster runs it as written."""
    return None if simple_cron_is_valid(cron) else dagster_cron_problem(cron)


def dagster_cron_problem(cron: str) -> str | None:
    """`cron_problem` as Dagster's own parser answers it (imports dagster)."""
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
