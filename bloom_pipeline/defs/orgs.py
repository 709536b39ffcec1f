"""The orgs of the code location: discovered from the org files, loaded, and named for Dagster.

Orgs are the files ``<mappings>/orgs/*.yaml`` — adding an org is adding a file, no code change — read when
the Definitions are built (``build_definitions``), never at import. An org file that does not load is
skipped, never fatal: one broken file must not take the other orgs' schedules, sensors and runs down with
the code location. The skip is logged and returned, so the Definitions can show it where operators look
(the jobs' descriptions in the UI, and the Definitions metadata); ``bloom-pipeline mapping validate``
names every problem of the file.
"""

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bloom_pipeline.mapping.loader import MappingError, load_org
from bloom_pipeline.mapping.spec import OrgConfig

log = logging.getLogger(__name__)

PROBLEM_LIMIT = 300  # characters of the first problem shown in the UI


@dataclass(frozen=True)
class SkippedOrg:
    """An org file that did not load: its name, its first problem and how many it has."""

    name: str
    problem: str
    problems: int = 1


def discover_orgs(mappings_dir: str | Path) -> list[str]:
    """Org names: the stems of ``<mappings_dir>/orgs/*.yaml``, sorted."""
    return sorted(path.stem for path in (Path(mappings_dir) / "orgs").glob("*.yaml"))


def load_orgs(mappings_dir: str | Path) -> tuple[list[OrgConfig], list[SkippedOrg]]:
    """Every org of ``mappings_dir`` that loads, and the ones skipped (each logged as a warning)."""
    orgs: list[OrgConfig] = []
    skipped: list[SkippedOrg] = []
    where = f"{Path(mappings_dir)}{os.sep}"  # shown relative to the mappings folder: orgs/<org>.yaml:LINE
    for name in discover_orgs(mappings_dir):
        try:
            orgs.append(load_org(name, mappings_dir=mappings_dir))
        except (MappingError, OSError) as exc:  # an unreadable file is as broken as an invalid one
            log.warning("skipping org %s: %s", name, exc)
            problems = getattr(exc, "problems", None) or [f"{type(exc).__name__}: {exc}"]
            lines = [str(p).replace(where, "") for p in problems]
            first = lines[0] if len(lines[0]) <= PROBLEM_LIMIT else lines[0][: PROBLEM_LIMIT - 1] + "…"
            skipped.append(SkippedOrg(name, first, len(lines)))
    return orgs, skipped


def safe_name(org: str) -> str:
    """``org`` folded to Dagster name characters (letters, digits, underscore)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", org)


def ships_running(org: OrgConfig, running: bool | None = None) -> bool:
    """Whether the org's schedule and Handbid sensor ship RUNNING: yes for an org on real APIs (a nightly
    sync that must first be switched on in the UI silently never runs), no for one with ``sandbox_fallback``
    (the demo: the sandbox is not up at 02:00). ``running`` overrides the rule."""
    return (not org.sandbox_fallback) if running is None else running
