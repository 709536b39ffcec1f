"""The cron check without Dagster (`dagster_values.simple_cron_is_valid`) never says yes where Dagster says no,
and loading an org with a plain cron does not import dagster (1.5 s of every night's run)."""

import itertools
import random
import subprocess
import sys

import pytest

from bloom_pipeline.mapping.dagster_values import cron_problem, dagster_cron_problem, simple_cron_is_valid

from .conftest import MAPPINGS

# per field: items that are plainly fine, at the edges of the range, out of it, or outside the narrow grammar
ITEMS = (
    ("0", "59", "60", "*", "*/15", "*/59", "*/60", "*/0", "5-10", "10-5", "0-59/30", "0-5/6", "7/5", "1,2", "a"),
    ("0", "23", "24", "*", "*/6", "*/23", "*/24", "1-5", "5-1", "0-23/12", "02", "3/2"),
    ("1", "28", "29", "30", "31", "0", "32", "*", "*/10", "1-31", "29-31", "1-28/7", "L", "?"),
    ("1", "2", "12", "0", "13", "*", "*/3", "1-12", "2-3", "jan", "*/12", "*/13"),
    ("0", "6", "7", "*", "1-5", "mon-fri", "*/2", "*/7", "0-6/6", "1#2", "5L"),
)


def _corpus() -> list[str]:
    rng = random.Random(7)
    picked = {" ".join(rng.choice(items) for items in ITEMS) for _ in range(1500)}
    # every item of each field beside plain values elsewhere, and a few shapes the grammar never certifies
    plain = ["0", "2", "*", "*", "*"]
    for index, items in enumerate(ITEMS):
        for item in items:
            picked.add(" ".join([*plain[:index], item, *plain[index + 1:]]))
    picked |= {"0 2 * *", "0 2 * * * *", "@daily", " 0 2 * * * ", "0\t2 * * *", "0 2 30 2 *", "0 2 31 4 *",
               "99 99 * * *"}
    return sorted(picked)


def test_every_expression_certified_without_dagster_is_one_dagster_runs_as_written() -> None:
    corpus = _corpus()
    certified = [cron for cron in corpus if simple_cron_is_valid(cron)]
    wrongly = [cron for cron in certified if dagster_cron_problem(cron) is not None]
    assert wrongly == []
    # the corpus exercises both sides: plenty certified, plenty left to Dagster, some of those refused by it
    assert len(certified) >= 50
    assert len(corpus) - len(certified) >= 500
    assert any(dagster_cron_problem(cron) is not None for cron in corpus if cron not in certified)


@pytest.mark.parametrize("cron", ["0 2 * * *", "30 1 * * 1-5", "*/15 * * * *", "0 0,12 1 */2 *", "0 3 28 2 *"])
def test_plain_expressions_are_certified(cron: str) -> None:
    assert simple_cron_is_valid(cron)
    assert cron_problem(cron) is None


@pytest.mark.parametrize("cron", ["99 99 * * *", "0 2 30 2 *", "*/90 * * * *", "0 2 31 4 *", "0 2 * * mon"])
def test_what_is_not_certified_is_answered_by_dagster(cron: str) -> None:
    assert not simple_cron_is_valid(cron)
    assert cron_problem(cron) == dagster_cron_problem(cron)


def test_loading_an_org_with_a_plain_cron_does_not_import_dagster() -> None:
    code = ("import sys\nfrom bloom_pipeline.mapping.loader import load_org\n"
            f"org = load_org('demo', {str(MAPPINGS)!r})\n"
            "assert org.schedule is not None and org.schedule.cron  # the check under test ran\n"
            "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("cron", list(itertools.islice(_corpus(), 0, None, 97)))
def test_cron_problem_is_dagsters_answer(cron: str) -> None:
    assert cron_problem(cron) == dagster_cron_problem(cron)
