"""Sensors: what starts a run, or reacts to one, without a clock.

* ``handbid_reconciled_<org>`` — polls the org's Handbid auctions; when one becomes ``reconciled`` (its
  payments are final, contracts/wegive-handbid.md §2.5) it requests the Handbid sync for it. Only for orgs
  that use Handbid. Default status as the org's schedule (``orgs.ships_running``).
* ``run_failure_alerts`` — one sensor for every job of the code location: records a failed run in the
  org's ``sync_runs`` and posts to the org's webhook (``alerts.py``). Always RUNNING.
"""

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from bloom_pipeline.clients.http import Redactor
from bloom_pipeline.defs import alerts
from bloom_pipeline.defs.jobs import Job
from bloom_pipeline.defs.orgs import safe_name, ships_running
from bloom_pipeline.defs.tags import AUCTIONS_TAG, DIRECTION_TAG, ORG_TAG, PARTITION_TAGS, TRIGGER_TAG
from bloom_pipeline.errors import ApiError, ConfigurationError
from bloom_pipeline.mapping.loader import MappingError, load_org
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import ddl
from bloom_pipeline.sync.endpoints import resolve_endpoints

logger = logging.getLogger(__name__)

RECONCILED_INTERVAL_SECONDS = 300
FAILURE_SENSOR_NAME = "run_failure_alerts"


# -- reconciled Handbid auctions ------------------------------------------------------------------------


def uses_handbid(org: OrgConfig) -> bool:
    """Whether the org syncs Handbid at all (no sensor polls an API the org does not use)."""
    hb = org.handbid
    return bool(org.mappings.get("handbid") or hb.organization_id is not None or hb.token_env or hb.base_url)


def read_seen(cursor: str | None) -> dict[str, int | None]:
    """The sensor cursor: ``{"reconciled": {"<auction id>": <reconciledAt epoch or null>}}``."""
    if not cursor:
        return {}
    try:
        seen = json.loads(cursor).get("reconciled", {})
    except (ValueError, AttributeError):
        logger.warning("ignoring an unreadable reconciled-auctions cursor")
        return {}
    return {str(k): v for k, v in seen.items()} if isinstance(seen, dict) else {}


def newly_reconciled(seen: Mapping[str, int | None], current: Mapping[str, int | None]) -> list[str]:
    """Auctions reconciled now that were not at the last tick — or were reconciled again since (their
    ``reconciledAt`` moved, e.g. reopened to fix a payment and reconciled again). Sorted numerically."""
    new = [aid for aid, stamp in current.items() if aid not in seen or seen[aid] != stamp]
    return sorted(new, key=lambda a: (len(a), a))


def list_reconciled(org: OrgConfig, names: dict[str, Any] | None = None) -> dict[str, int | None]:
    """``{auction id: reconciledAt}`` of the org's reconciled auctions, read from Handbid now (``names``, when
    given, is filled with each one's name: the org YAML may configure an event by name)."""
    from bloom_pipeline.clients.handbid import HandbidClient

    endpoints = resolve_endpoints(org)
    if endpoints.handbid_org_id is None:
        raise ConfigurationError(f"org {org.name!r}: handbid.organization_id is not set in the org YAML")
    client = HandbidClient(
        endpoints.handbid.base_url, endpoints.handbid.key, endpoints.handbid_org_id,
        token_env=endpoints.handbid.key_env, timeout=(5.0, 20.0), max_attempts=3, max_wait=30.0,
    )
    try:
        found = {}
        for a in client.iter_auctions(status="reconciled"):
            if a.get("status", "reconciled") == "reconciled":
                found[str(a["id"])] = a.get("reconciledAt")
                if names is not None:
                    names[str(a["id"])] = a.get("name")
        return found
    finally:
        client.close()


def reconciled_sensor(org: OrgConfig, job: Job, *, running: bool | None = None) -> dg.SensorDefinition:
    """Requests ``job`` (partition ``org``) for auctions that became reconciled since the last tick."""
    name = org.name
    status = dg.DefaultSensorStatus.RUNNING if ships_running(org, running) else dg.DefaultSensorStatus.STOPPED

    def handbid_reconciled(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        seen = read_seen(context.cursor)
        names: dict[str, Any] = {}
        try:
            current = list_reconciled(org, names)
        except (ApiError, ConfigurationError, ValueError) as exc:
            text = Redactor(alerts.org_secrets(org))(str(exc))
            return dg.SensorResult(skip_reason=f"could not list Handbid auctions of org {name}: {text}")
        # an event the org YAML sends none of (`send: none`) starts no run; it stays in the cursor, so setting
        # it back to `send: all` later is picked up when the auction is reconciled again
        new = [aid for aid in newly_reconciled(seen, current) if org.handbid_sends_event(aid, names.get(aid))]
        cursor = json.dumps({"reconciled": dict(sorted(current.items()))}, sort_keys=True)
        if not new:
            return dg.SensorResult(skip_reason=f"no newly reconciled Handbid auctions for org {name}", cursor=cursor)
        stamps = ",".join(f"{aid}@{current[aid]}" for aid in new)
        request = dg.RunRequest(
            run_key=f"handbid_reconciled:{name}:{stamps}",
            partition_key=name,
            tags={ORG_TAG: name, TRIGGER_TAG: "auction_reconciled", AUCTIONS_TAG: ",".join(new)},
        )
        context.log.info("org %s: %d newly reconciled auction(s): %s", name, len(new), ",".join(new))
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return dg.sensor(
        name=f"handbid_reconciled_{safe_name(name)}",
        job=job,
        minimum_interval_seconds=RECONCILED_INTERVAL_SECONDS,
        default_status=status,
        description=f"Syncs Handbid payments of org {name} once an auction is reconciled.",
        tags={ORG_TAG: name},
    )(handbid_reconciled)


# -- run failures ---------------------------------------------------------------------------------------


def org_of_run(tags: Mapping[str, str], known: Iterable[str]) -> str | None:
    """The org a run belongs to: its ``org`` tag, else the org part of its partition key."""
    if _is_identifier(tags.get(ORG_TAG, "")):
        return tags[ORG_TAG]
    known = set(known)
    for tag in PARTITION_TAGS:
        for part in tags.get(tag, "").split("|"):
            if part in known:
                return part
    return None


def _is_identifier(name: str) -> bool:
    try:
        ddl.check_identifier(name)
    except ValueError:
        return False
    return True


def failure_text(context: dg.RunFailureSensorContext) -> str:
    """Each failed step's own error (the user exception, not the Dagster wrapper around it) first — the
    alert's summary line — then Dagster's run failure message."""
    lines = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cls_name.startswith("Dagster") and error.cause is not None:
            error = error.cause
        if error is not None:
            lines.append(f"{event.step_key}: {error.message.strip()}")
    lines.append(context.failure_event.message or "run failed")
    return "\n".join(lines)


def _load(name: str, orgs: Mapping[str, OrgConfig], mappings_dir: str) -> OrgConfig | None:
    """The org YAML as it is now (a webhook added since the code location loaded counts), else the one
    loaded with the Definitions (a YAML broken since must not silence the alert)."""
    try:
        return load_org(name, mappings_dir=mappings_dir)
    except (MappingError, OSError) as exc:
        logger.warning("org %s: cannot reload its YAML (%d problem(s)); using the loaded one", name,
                       len(getattr(exc, "problems", [])))
        return orgs.get(name)


def failure_sensor(
    orgs: list[OrgConfig], *, mappings_dir: str, push_jobs: Iterable[str] = (), webserver_url: str | None = None
) -> dg.SensorDefinition:
    """``run_failure_alerts``: every failed run of the code location that belongs to an org is recorded in
    that org's ``sync_runs`` (run id = Dagster run id) and announced on its webhook."""
    by_name = {org.name: org for org in orgs}
    push = set(push_jobs)

    def run_failure_alerts(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
        run = context.dagster_run
        org_name = org_of_run(run.tags, by_name)
        if org_name is None:
            return dg.SkipReason(f"run {run.run_id} of {run.job_name} belongs to no org; nothing recorded")
        direction = run.tags.get(DIRECTION_TAG)
        if direction not in ddl.DIRECTIONS:
            direction = "push" if run.job_name in push else "both"
        url = f"{webserver_url.rstrip('/')}/runs/{run.run_id}" if webserver_url else None
        outcome = alerts.alert_failure(
            org_name, _load(org_name, by_name, mappings_dir), job=run.job_name, run_id=run.run_id,
            error=failure_text(context), direction=direction, dagster_url=url,
        )
        posted = {None: "no webhook configured", True: "alert posted", False: "alert NOT posted"}[outcome.posted]
        context.log.info("org %s: failed run %s recorded (%s); %s", org_name, run.run_id, outcome.recorded, posted)
        for problem in outcome.problems:
            context.log.warning("org %s: %s", org_name, problem)
        return None

    return dg.run_failure_sensor(
        name=FAILURE_SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records failed runs in the org's sync_runs and posts to the org's alert webhook.",
    )(run_failure_alerts)



def build_sensors(
    orgs: list[OrgConfig],
    handbid_job: Job,
    *,
    mappings_dir: str,
    webserver_url: str | None = None,
    running: bool | None = None,
) -> list[dg.SensorDefinition]:
    """A reconciled-auction sensor per org that uses Handbid, and the one failure sensor. ``webserver_url``
    (e.g. ``http://localhost:3000``) adds a link to the run in alerts; ``running`` overrides the per-org
    default status of the Handbid sensors."""
    sensors = [reconciled_sensor(org, handbid_job, running=running) for org in orgs if uses_handbid(org)]
    sensors.append(failure_sensor(orgs, mappings_dir=mappings_dir, push_jobs=[handbid_job.name],
                                  webserver_url=webserver_url))
    return sensors
