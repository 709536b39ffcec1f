"""``bloom-pipeline demo``: the whole product on a fresh machine — sandbox, both directions, a queued conflict —
run from a folder that is not the repository (the packaged mappings and demo org are found), ending with a
command that works right after the install."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from bloom_pipeline.cli import cli

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance


def test_demo_syncs_both_ways_and_shows_a_conflict_queued_for_review(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"  # no mappings/ here: the packaged copy is used
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("BLOOM_MAPPINGS_DIR", raising=False)
    result = CliRunner().invoke(cli, ["demo", "--donors", "60", "--seed", "5", "--data-dir", str(tmp_path)])
    out = result.output
    assert result.exit_code == 0, out
    assert "no mapping file" not in out

    # the last line is a command that works on a fresh install
    prefix = "Query the results: "
    last = out.strip().splitlines()[-1]
    assert last.startswith(prefix + "bloom-pipeline query --org demo "), last
    query = CliRunner().invoke(cli, shlex.split(last[len(prefix):])[1:])
    assert query.exit_code == 0, query.output
    assert query.output.splitlines()[0].split() == ["action", "count_star()"] and "created" in query.output

    # the per-entity summary of each run
    for entity in ("funds", "constituents", "transactions"):
        assert re.search(rf"^{entity}\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s*$", out, re.M), entity
    header = re.search(r"^entity\s+created\s+updated\s+unchanged\s+quarantined\s+failed\s*$", out, re.M)
    assert header, out
    created = int(re.search(r"^constituents\s+(\d+)", out, re.M).group(1))
    assert created > 0, "the first run creates the donors in Bloomerang"

    # both directions: a Bloomerang edit reached WeGive, a WeGive edit reached Bloomerang
    assert re.search(r"^pull: WeGive donor \d+ city is now 'Boulder' \(edited in Bloomerang\)$", out, re.M), out
    assert re.search(r"^push: Bloomerang constituent \d+ last name is now 'Demo' \(edited in WeGive\)$", out, re.M)
    assert re.search(r"^custom field: Bloomerang constituent \d+ T-Shirt Size is now 'M' \(set in WeGive\)$",
                     out, re.M), out
    assert re.search(r"^opt-out: Bloomerang constituent \d+ restrictions DoNotCall, DoNotMail, DoNotSolicit; "
                     r"e-mail OptedOut \(do_not_contact in WeGive\)$", out, re.M), out
    assert re.search(r"^interaction: Bloomerang constituent \d+ '(Registered for|Attended) .+' on \d{4}-\d\d-\d\d "
                     r"\(InPerson, SpecialEvent; [1-9]\d* from Handbid", out, re.M), out
    assert re.search(r"^linked donors: [1-9]\d* pushed to Bloomerang, [1-9]\d* written back to the sources$", out, re.M)

    # the conflict: detected, recorded and queued, with the command that resolves it
    assert re.search(r"conflicts: [1-9]\d*; queued for review: [1-9]", out), out
    assert re.search(r"review queue: [1-9]\d* open item\(s\)", out), out
    item = re.search(r"#(\d+) wegive (\d+) phone: source=\"([^\"]+)\" bloomerang=\"([^\"]+)\" \(within_skew\)", out)
    assert item, out
    assert "bloom-pipeline review resolve --org demo --id" in out
    # the totals agree in the three systems, day by day and fund by fund
    assert re.search(r"^reconciliation: demo \S+: every day and fund matches \([1-9]\d* day/fund rows", out, re.M), out

    # where the DuckDB files are, and that they hold what the output says
    database = tmp_path / "demo_staging.duckdb"
    snapshot = tmp_path / "demo.duckdb"
    assert str(database) in out and str(snapshot) in out
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        status, field = con.execute("SELECT status, field FROM review_queue WHERE id = ?",
                                    [int(item.group(1))]).fetchone()
        assert (status, field) == ("open", "phone")
        runs = con.execute("SELECT count(*) FROM sync_runs WHERE status = 'succeeded'").fetchone()[0]
        assert runs == 2
        pulled = con.execute("SELECT count(*) FROM conflicts WHERE field = 'phone' AND winner = 'review' "
                             "AND source_id = ?", [item.group(2)]).fetchone()[0]
        assert pulled == 1
        assert con.execute("SELECT count(*) FROM reconciliation WHERE status = 'differs'").fetchone()[0] == 0
    finally:
        con.close()
