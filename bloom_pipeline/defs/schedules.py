"""Schedules: ``nightly_sync_<org>``, one per org — the org's nightly bidirectional sync.

Cron and time zone come from the org YAML (default ``0 2 * * *`` in the org's time zone); each tick requests
the org's partition of ``org_sync_job``. Default status: RUNNING for an org on real APIs, STOPPED for one with
``sandbox_fallback`` (``orgs.ships_running``).
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg

from bloom_pipeline.defs.jobs import Job
from bloom_pipeline.defs.orgs import safe_name, ships_running
from bloom_pipeline.defs.tags import DIRECTION_TAG, ORG_TAG, TRIGGER_TAG
from bloom_pipeline.mapping.spec import OrgConfig


def nightly_schedule(org: OrgConfig, job: Job, *, running: bool | None = None) -> dg.ScheduleDefinition:
    """The org's nightly bidirectional sync: one run of partition ``org`` per tick, in the org's time zone.

    The run key is the tick's local time, so a tick evaluated twice (daemon restart) launches one run.
    """
    name, cron, tz = org.name, org.schedule.cron, org.schedule_timezone
    tags = {ORG_TAG: name, DIRECTION_TAG: "both", TRIGGER_TAG: "schedule"}

    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        when = context.scheduled_execution_time or datetime.now(UTC)
        local = when.astimezone(ZoneInfo(tz))
        return dg.RunRequest(
            run_key=f"nightly_sync:{name}:{local.isoformat(timespec='minutes')}", partition_key=name, tags=tags
        )

    status = dg.DefaultScheduleStatus.RUNNING if ships_running(org, running) else dg.DefaultScheduleStatus.STOPPED
    try:
        return dg.schedule(
            name=f"nightly_sync_{safe_name(name)}",
            cron_schedule=cron,
            execution_timezone=tz,
            job=job,
            default_status=status,
            description=f"Nightly bidirectional sync of org {name} ({cron}, {tz}).",
            tags={ORG_TAG: name},
        )(nightly)
    except dg.DagsterInvalidDefinitionError as exc:
        raise ValueError(f"org {name!r}: schedule.cron {cron!r} / time zone {tz!r} is not usable: {exc}") from None


def build_schedules(orgs: list[OrgConfig], job: Job, *, running: bool | None = None) -> list[dg.ScheduleDefinition]:
    """A nightly schedule per org; ``running`` overrides the per-org default status."""
    return [nightly_schedule(org, job, running=running) for org in orgs]
