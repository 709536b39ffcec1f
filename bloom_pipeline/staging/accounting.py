"""Row accounting: every record a run extracted is either staged or quarantined, and every staged record
ends in exactly one load outcome. If the numbers do not add up, records were lost or double-counted.

Per run and staged entity (constituents, transactions, funds):

    extracted = staged + quarantined
    staged    = created + updated + unchanged + skipped + failed

``skipped`` (a staged record deliberately not written, e.g. held for review) is zero in a normal run;
it is counted so that holding a record back is never mistaken for losing it. The numbers are read back
from the tables the run wrote (raw_*, stg_*, quarantine, sync_log), so the check tests the data, not
the loader's own tally. ``counts_json`` freezes them into ``sync_runs.counts`` at the end of the run.

``extracted`` counts every raw row of the run: a record without an id (kept under ``missing-id:…``) and
every copy of a duplicated id are records received, and each ends quarantined. ``quarantined`` counts the
record-level kinds only ('invalid', 'excluded'); a 'field' row is one value left out of a record that was
staged, so it is counted apart, as ``fields_dropped``, and never in either equation.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import duckdb

from bloom_pipeline.staging import ddl

OUTCOMES = ("created", "updated", "unchanged", "skipped", "failed")


@dataclass
class EntityAccount:
    """The row counts of one entity in one run."""

    entity: str
    extracted: int = 0
    staged: int = 0
    quarantined: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    logged_quarantined: int = 0  # sync_log rows with action 'quarantined'
    duplicate_log_rows: int = 0  # extra sync_log rows for a record already logged in this run
    fields_dropped: int = 0  # quarantine rows of kind 'field': values left out of staged records

    @property
    def loaded_total(self) -> int:
        return self.created + self.updated + self.unchanged + self.skipped + self.failed

    @property
    def succeeded(self) -> int:
        return self.created + self.updated + self.unchanged


def stg_entity_of(source: str, entity: str, feeds: Mapping[tuple[str, str], str] = ddl.FEEDS) -> str:
    """The staged entity a source entity feeds (``wegive.donors`` -> ``constituents``)."""
    if entity in ddl.STAGED_ENTITIES:
        return entity
    return feeds.get((source, entity), entity)


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main' "
        "AND database_name = current_database()",
        [table],
    ).fetchone()
    return bool(row and row[0])


def compute_accounts(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    direction: str = "push",
    feeds: Mapping[tuple[str, str], str] = ddl.FEEDS,
) -> dict[str, EntityAccount]:
    """Count one run's rows per staged entity from the tables. ``direction`` picks which sync_log rows
    are the load outcomes: 'push' and 'both' count pushes to Bloomerang, 'pull' the write-backs."""
    # a record's one outcome row is a push or a pull row; 'both' runs count either kind
    log_directions = ["push", "pull"] if direction == "both" else (["pull"] if direction == "pull" else ["push"])
    accounts = {e: EntityAccount(e) for e in ddl.STAGED_ENTITIES}

    def account(entity: str) -> EntityAccount:
        return accounts.setdefault(entity, EntityAccount(entity))

    for (source, entity), target in feeds.items():
        table = ddl.raw_table(source, entity)
        if _table_exists(con, table):
            row = con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()
            account(target).extracted += int(row[0]) if row else 0
    for entity in ddl.STAGED_ENTITIES:
        row = con.execute(
            f"SELECT count(*) FROM {ddl.staged_table(entity)} WHERE run_id = ?", [run_id]
        ).fetchone()
        account(entity).staged = int(row[0]) if row else 0
    for source, entity, is_field, n in con.execute(
        "SELECT source, entity, kind = 'field', count(*) FROM quarantine WHERE run_id = ? GROUP BY ALL", [run_id]
    ).fetchall():
        acc = account(stg_entity_of(source, entity, feeds))
        if is_field:
            acc.fields_dropped += int(n)
        else:
            acc.quarantined += int(n)
    for source, entity, action, n in con.execute(
        "SELECT source, entity, action, count(*) FROM sync_log WHERE run_id = ? AND list_contains(?, direction) "
        "GROUP BY ALL",
        [run_id, log_directions],
    ).fetchall():
        acc = account(stg_entity_of(source, entity, feeds))
        if action == "quarantined":
            acc.logged_quarantined += int(n)
        else:
            setattr(acc, action, getattr(acc, action) + int(n))
    # A record has one outcome row. The copies of a duplicated id are quarantined together under one
    # source_id, so their 'quarantined' rows count as one; any other second row is a record logged twice.
    for source, entity, extra in con.execute(
        "SELECT source, entity, sum(n - 1) FROM (SELECT source, entity, source_id, "
        "count(*) FILTER (WHERE action <> 'quarantined') "
        "+ CAST(count(*) FILTER (WHERE action = 'quarantined') > 0 AS INTEGER) AS n FROM sync_log "
        "WHERE run_id = ? AND list_contains(?, direction) AND source_id IS NOT NULL GROUP BY ALL) WHERE n > 1 "
        "GROUP BY ALL",
        [run_id, log_directions],
    ).fetchall():
        account(stg_entity_of(source, entity, feeds)).duplicate_log_rows += int(extra)
    return accounts


def check_accounts(accounts: Mapping[str, EntityAccount], *, loaded: bool = True) -> list[str]:
    """The problems with a run's numbers, one sentence each; empty when everything adds up.

    ``loaded=False`` (a dry run, or a run halted before the load) checks only the first equation.
    """
    problems: list[str] = []
    for name, a in accounts.items():
        if a.extracted != a.staged + a.quarantined:
            problems.append(
                f"{name}: extracted {a.extracted} != staged {a.staged} + quarantined {a.quarantined} "
                f"({a.extracted - a.staged - a.quarantined:+d} unaccounted)"
            )
        if loaded and a.staged != a.loaded_total:
            problems.append(
                f"{name}: staged {a.staged} != created {a.created} + updated {a.updated} + unchanged "
                f"{a.unchanged} + skipped {a.skipped} + failed {a.failed} "
                f"({a.staged - a.loaded_total:+d} without an outcome)"
            )
        if a.logged_quarantined and a.logged_quarantined != a.quarantined:
            problems.append(
                f"{name}: sync_log has {a.logged_quarantined} quarantined rows, "
                f"quarantine has {a.quarantined}"
            )
        if a.duplicate_log_rows:
            problems.append(f"{name}: {a.duplicate_log_rows} record(s) logged more than once in this run")
    return problems


def counts_json(accounts: Mapping[str, EntityAccount]) -> dict[str, Any]:
    """The accounts as plain JSON-able data, for ``sync_runs.counts`` and Dagster metadata."""
    out: dict[str, Any] = {}
    for name, a in accounts.items():
        row = asdict(a)
        row.pop("entity")
        row["succeeded"] = a.succeeded
        out[name] = row
    return out
