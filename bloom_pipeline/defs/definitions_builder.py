"""Build the one ``Definitions`` of the code location from the org files in the mappings directory.

The one place that puts the shell together: the orgs (``orgs.py``) give the partitions, the partitions the
assets of each layer (``assets/``) and the checks (``checks.py``, ``reconciliation_check.py``,
``review_check.py``), and the jobs (``jobs.py``) are what the schedules (``schedules.py``) and sensors
(``sensors.py``) request. An org whose YAML does not load is
skipped with a warning, so one bad file never takes the whole code location down: the warning is logged,
appended to every job's description (what the UI shows) and kept in the Definitions metadata
(``skipped org files``); ``bloom-pipeline mapping validate`` names the problem.
"""

from pathlib import Path

import dagster as dg

from bloom_pipeline import settings
from bloom_pipeline.defs import checks, partitions, reconciliation_check, review_check
from bloom_pipeline.defs.assets import backfill, extract, load, plan, review, staging
from bloom_pipeline.defs.jobs import Job, build_jobs
from bloom_pipeline.defs.metadata import markdown_table
from bloom_pipeline.defs.orgs import SkippedOrg, load_orgs
from bloom_pipeline.defs.resources import build_resources
from bloom_pipeline.defs.schedules import build_schedules
from bloom_pipeline.defs.sensors import build_sensors
from bloom_pipeline.mapping.spec import OrgConfig

SKIPPED_KEY = "skipped org files"


def build_assets(orgs: list[str]) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """Every asset and check of the code location, for the org partitions ``orgs``."""
    org_parts = partitions.org_partitions(orgs)
    return [*extract.build(org_parts), *staging.build(org_parts), *plan.build(org_parts), *load.build(org_parts),
            *review.build(org_parts), *checks.build(org_parts), *reconciliation_check.build(org_parts),
            *review_check.build(org_parts),
            *backfill.build(partitions.org_day_partitions(orgs))]


def build_automation(
    orgs: list[OrgConfig],
    *,
    sync_job: Job,
    handbid_job: Job,
    mappings_dir: str,
    webserver_url: str | None = None,
    running: bool | None = None,
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """All schedules and sensors for ``orgs``: a nightly schedule per org, a reconciled-auction sensor per
    org that uses Handbid, and the one failure sensor. ``webserver_url`` (e.g. ``http://localhost:3000``)
    adds a link to the run in alerts; ``running`` overrides the per-org default status (``orgs.ships_running``).
    """
    schedules = build_schedules(orgs, sync_job, running=running)
    sensors = build_sensors(orgs, handbid_job, mappings_dir=mappings_dir, webserver_url=webserver_url,
                            running=running)
    return schedules, sensors


def skipped_note(skipped: list[SkippedOrg]) -> str:
    """Markdown telling operators which org files did not load (empty when every file loaded)."""
    if not skipped:
        return ""
    rows = [(s.name, s.problems, s.problem) for s in skipped]
    return ("**Skipped org files** — these orgs have no partition, schedule or sensor until their file loads "
            "(`bloom-pipeline mapping validate` lists every problem; then reload the code location):\n\n"
            + markdown_table(("org", "problems", "first problem"), rows))


def build_definitions(mappings_dir: str | Path | None = None, data_dir: str | None = None) -> dg.Definitions:
    """Assets, checks, jobs, schedules, sensors and resources for every org in ``<mappings_dir>/orgs``
    (default ``$BLOOM_MAPPINGS_DIR`` or ``./mappings``); ``data_dir`` None means ``$BLOOM_DATA_DIR`` or
    ``./data``, read when a run starts. Reads no secret: the definitions load with no credential set."""
    root = settings.mappings_dir(mappings_dir)
    orgs, skipped = load_orgs(root)
    names = [org.name for org in orgs] or ["demo"]
    note = skipped_note(skipped)
    jobs = build_jobs(note=note)
    schedules, sensors = build_automation(orgs, sync_job=jobs.sync, handbid_job=jobs.handbid,
                                          mappings_dir=str(root))
    return dg.Definitions(
        assets=build_assets(names),
        jobs=jobs.all(),
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(str(root.resolve()), orgs, names, data_dir=data_dir),
        metadata={SKIPPED_KEY: dg.MetadataValue.md(note or "none: every org file loaded")},
    )
