"""``bloom-pipeline status`` and ``bloom-pipeline review``: the sync history and the manual review queue.

Why read the tables and not a tally: the counts come from sync_log and quarantine, the same rows an
analyst would query, so the CLI and SQL never disagree. ``status`` reads the staging file read-only;
when a sync holds it, it falls back to the analyst snapshot (the last finished run) and says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import duckdb

from bloom_pipeline.staging.accounting import stg_entity_of
from bloom_pipeline.staging.store import StagingStore, StoreBusyError

if TYPE_CHECKING:  # review imports pandas: only the review commands load it (`bloom-pipeline --help` does not)
    from bloom_pipeline.staging import review


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain aligned text: numbers right-aligned, everything else left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int) and not isinstance(row[i], bool) for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        )

    return "\n".join([line(list(headers)).rstrip()] + [line(r).rstrip() for r in cells])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _short(value: Any, width: int = 40) -> str:
    text = "-" if value is None else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


DATA_DIR_HELP = "The DuckDB files. Default $BLOOM_DATA_DIR, else ./data."


def data_dir_option(command: Any) -> Any:
    """``--data-dir DIR`` as ``sync`` has it; None means ``$BLOOM_DATA_DIR``, else ``./data`` (``settings``)."""
    return click.option("--data-dir", "data_dir", default=None, metavar="DIR", help=DATA_DIR_HELP)(command)


def _store(org: str, data_dir: str | None = None) -> StagingStore:
    try:
        return StagingStore.for_org(org, data_dir=data_dir, lock_timeout=3.0)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--org") from exc


def _open_for_reading(store: StagingStore, *, sync_running: bool = False) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A read-only connection to the staging file, or to the snapshot when a sync holds the file.

    ``sync_running``: a live sync published its progress; then the staging file is not opened at all, so a
    reader never makes the sync wait for the file (DuckDB allows one process a file while it writes)."""
    if not store.path.exists() and not store.snapshot_path.exists():
        raise click.ClickException(f"no sync history for org {store.org!r}: {store.path} does not exist")
    if sync_running and not store.snapshot_path.exists():
        raise click.ClickException(f"{store.path} is busy (a sync is running); try again")
    if store.path.exists() and not sync_running:
        try:
            con = store.open_connection(read_only=True)
            return con, f"{store.path}"
        except StoreBusyError:
            if not store.snapshot_path.exists():
                raise click.ClickException(f"{store.path} is busy (a sync is running); try again") from None
    con = duckdb.connect()
    con.execute("ATTACH ? AS snap (READ_ONLY)", [str(store.snapshot_path)])
    con.execute("USE snap")
    return con, f"{store.snapshot_path} (snapshot of the last finished run; a sync is running)"


def _run_rows(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """run_id -> entity label -> {succeeded, failed, skipped, quarantined}, from sync_log + quarantine."""
    out: dict[str, dict[str, dict[str, int]]] = {r: {} for r in run_ids}
    marks = ", ".join("?" for _ in run_ids)

    def bucket(run_id: str, label: str) -> dict[str, int]:
        return out[run_id].setdefault(label, {"succeeded": 0, "failed": 0, "skipped": 0, "quarantined": 0})

    for run_id, source, entity, direction, action, n in con.execute(
        f"SELECT run_id, source, entity, direction, action, count(*) FROM sync_log WHERE run_id IN ({marks}) "
        "AND action <> 'quarantined' GROUP BY ALL",
        run_ids,
    ).fetchall():
        label = stg_entity_of(source, entity) + (" (pull)" if direction == "pull" else "")
        key = "succeeded" if action in ("created", "updated", "unchanged") else action
        bucket(run_id, label)[key] += int(n)
    for run_id, source, entity, n in con.execute(
        # a 'field' row is a value left out of a record that was synced, not a quarantined record
        f"SELECT run_id, source, entity, count(*) FROM quarantine WHERE run_id IN ({marks}) AND kind <> 'field' "
        "GROUP BY ALL",
        run_ids,
    ).fetchall():
        bucket(run_id, stg_entity_of(source, entity))["quarantined"] += int(n)
    return out


@click.command("status")
@click.option("--org", required=True, help="Org name (mappings/orgs/<org>.yaml).")
@click.option(
    "--runs", "runs", default=10, show_default=True, type=click.IntRange(min=1), help="How many runs."
)
@click.option("--failures", is_flag=True, help="Also list the failed and quarantined records with reasons.")
@data_dir_option
def status_command(org: str, runs: int, failures: bool, data_dir: str | None) -> None:
    """Show the sync history of an org: per run and entity, succeeded / failed / quarantined; and the progress
    of a sync running now."""
    store = _store(org, data_dir)
    running = _running_lines(store)
    try:
        con, where = _open_for_reading(store, sync_running=bool(running))
    except click.ClickException:
        if not running:
            raise
        # the first run of the org: it holds the staging file and has published no snapshot yet
        click.echo(f"Sync history of org {org} — no finished run yet ({store.path} is held by the running sync)")
        for line in running:
            click.echo(line)
        return
    try:
        con.execute("SET TimeZone = 'UTC'")
        history = con.execute(
            "SELECT run_id, started_at, ended_at, direction, dry_run, status, message FROM sync_runs "
            "ORDER BY started_at DESC, run_id DESC LIMIT ?",
            [runs],
        ).fetchall()
        click.echo(f"Sync history of org {org} — {where}")
        for line in running:
            click.echo(line)
        if not history:
            click.echo("No runs recorded yet.")
            return
        counts = _run_rows(con, [h[0] for h in history])
        rows: list[list[Any]] = []
        for run_id, started, ended, direction, dry_run, status, _ in history:
            entities = counts[run_id] or {"-": {"succeeded": 0, "failed": 0, "skipped": 0, "quarantined": 0}}
            for label in sorted(entities):
                c = entities[label]
                rows.append(
                    [
                        run_id,
                        started,
                        ended,
                        direction + (" (dry run)" if dry_run else ""),
                        status,
                        label,
                        c["succeeded"],
                        c["failed"],
                        c["quarantined"],
                        c["skipped"],
                    ]
                )
        click.echo(
            format_table(
                [
                    "RUN",
                    "STARTED (UTC)",
                    "ENDED (UTC)",
                    "DIRECTION",
                    "STATUS",
                    "ENTITY",
                    "SUCCEEDED",
                    "FAILED",
                    "QUARANTINED",
                    "SKIPPED",
                ],
                rows,
            )
        )
        notes = [(h[0], h[6]) for h in history if h[6]]
        for run_id, message in notes:
            click.echo(f"{run_id}: {message}")
        if failures:
            _echo_failures(con, [h[0] for h in history])
    finally:
        con.close()


def _running_lines(store: StagingStore) -> list[str]:
    """The live progress of a sync of this org, from the file the running sync publishes (``sync/progress.py``):
    read without touching the staging file, which the sync may hold for hours. Empty when none runs."""
    from bloom_pipeline.sync.progress import read_state, state_lines

    state = read_state(store.path.parent, store.org)
    return [] if state is None else state_lines(state)


def _echo_failures(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> None:
    marks = ", ".join("?" for _ in run_ids)
    failed = con.execute(
        f"SELECT run_id, entity, source, source_id, bloomerang_id, 'failed', error FROM sync_log "
        f"WHERE run_id IN ({marks}) AND action = 'failed' ORDER BY logged_at, seq",
        run_ids,
    ).fetchall()
    quarantined = con.execute(
        f"SELECT run_id, entity, source, source_id, NULL, 'quarantined (' || kind || ')', "
        f"array_to_string(reasons, '; ') FROM quarantine WHERE run_id IN ({marks}) AND kind <> 'field' "
        "ORDER BY quarantined_at, id",
        run_ids,
    ).fetchall()
    # a dropped optional value: the record itself was staged and loaded, without this field (a file no sync
    # has opened since the column came has no such rows, and is read as it is: this command never writes)
    has_field = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'quarantine' AND column_name = 'field' "
        "AND database_name = current_database()"
    ).fetchone()[0]
    dropped = con.execute(
        f"SELECT run_id, entity, source, source_id, NULL, 'field dropped: ' || field, "
        f"array_to_string(reasons, '; ') FROM quarantine WHERE run_id IN ({marks}) AND kind = 'field' "
        "ORDER BY quarantined_at, id",
        run_ids,
    ).fetchall() if has_field else []
    people = _people_step_failures(con, run_ids)
    click.echo("")
    if not failed and not quarantined and not dropped and not people:
        click.echo("No failed or quarantined records in these runs.")
        return
    rows = [[r[0], stg_entity_of(r[2], r[1]), r[2], r[3], r[4], r[5], r[6]] for r in failed + quarantined + dropped]
    rows += [list(r) for r in people]
    click.echo(
        format_table(["RUN", "ENTITY", "SOURCE", "SOURCE ID", "BLOOMERANG ID", "OUTCOME", "REASON"], rows)
    )


# The people steps (``sync/people/``) log their writes in tables of their own, not in sync_log: a failed
# communication preference, custom field value, event interaction, WeGive create or source-deletion write
# counts in the run's exit status, so ``--failures`` lists it too. Each query gives RUN, ENTITY, SOURCE,
# SOURCE ID, BLOOMERANG ID, OUTCOME, REASON; a table a file does not have yet (no sync with that step has run
# on it) is skipped.
PEOPLE_STEP_FAILURES = {
    "communication_log": (
        "SELECT run_id, 'communication', source, source_id, bloomerang_id, 'failed (' || direction || ')', error "
        "FROM communication_log WHERE action = 'failed' AND run_id IN ({marks}) ORDER BY logged_at"
    ),
    "custom_field_log": (
        "SELECT run_id, 'custom fields', source, source_id, bloomerang_id, "
        "'failed (' || direction || ' ' || field || ')', error FROM custom_field_log "
        "WHERE action = 'failed' AND run_id IN ({marks}) ORDER BY logged_at"
    ),
    "event_interaction_log": (
        "SELECT run_id, 'event interactions', 'handbid', contact_id, bloomerang_id, "
        "'failed (' || participation || ', auction ' || auction_id || ')', error FROM event_interaction_log "
        "WHERE action = 'failed' AND run_id IN ({marks}) ORDER BY logged_at"
    ),
    "wegive_create_log": (
        "SELECT run_id, 'wegive creates', 'bloomerang', bloomerang_id::VARCHAR, bloomerang_id, "
        "'failed (create in WeGive)', reason FROM wegive_create_log "
        "WHERE action = 'failed' AND run_id IN ({marks}) ORDER BY logged_at"
    ),
    "source_deletions": (
        "SELECT run_id, 'source deletions', source, source_id, bloomerang_id, 'failed (' || policy || ')', error "
        "FROM source_deletions WHERE action = 'failed' AND run_id IN ({marks}) ORDER BY recorded_at"
    ),
}


def _people_step_failures(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[tuple[Any, ...]]:
    present = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "AND database_name = current_database()"
        ).fetchall()
    }
    marks = ", ".join("?" for _ in run_ids)
    rows: list[tuple[Any, ...]] = []
    for table, query in PEOPLE_STEP_FAILURES.items():
        if table in present:
            rows += con.execute(query.format(marks=marks), run_ids).fetchall()
    return rows


@click.group("review")
def review_group() -> None:
    """The manual review queue: conflicts waiting for a person's decision."""


@review_group.command("list")
@click.option("--org", required=True, help="Org name.")
@click.option("--all", "show_all", is_flag=True, help="Also show resolved and applied items.")
@data_dir_option
def review_list(org: str, show_all: bool, data_dir: str | None) -> None:
    """List open review items: id, record, field, both values, both timestamps, reason; then, for each
    identity item, the staged record, its candidates and what each --take will do."""
    from bloom_pipeline.staging import review

    con, _ = _open_for_reading(_store(org, data_dir))
    try:
        items = review.list_reviews(con, None if show_all else "open")
    finally:
        con.close()
    if not items:
        click.echo(f"No {'' if show_all else 'open '}review items for org {org}.")
        return
    rows = [
        [
            i.id,
            f"{i.entity} {i.source}:{i.source_id}"
            + (f" / bloomerang:{i.bloomerang_id}" if i.bloomerang_id is not None else ""),
            i.field,
            _clip(_identity_cell(i.source_value)) if i.is_identity else _short(i.source_value),
            _clip(_candidates_cell(i)) if i.is_identity else _short(i.bloomerang_value),
            i.source_modified_at,
            i.bloomerang_modified_at,
            i.reason,
        ]
        + ([i.status, _clip(_decided_cell(i)) if i.is_identity else _short(i.decided_value)] if show_all else [])
        for i in items
    ]
    headers = [
        "ID",
        "RECORD",
        "FIELD",
        "SOURCE VALUE",
        "BLOOMERANG VALUE",
        "SOURCE MODIFIED (UTC)",
        "BLOOMERANG MODIFIED (UTC)",
        "REASON",
    ] + (["STATUS", "DECIDED VALUE"] if show_all else [])
    click.echo(format_table(headers, rows))
    for item in items:
        if item.is_identity and item.status != "applied":
            click.echo("")
            click.echo(_identity_details(org, item))


SOURCE_LABELS = {"wegive": "WeGive donor", "handbid": "Handbid contact"}


def _record_label(item: review.ReviewItem) -> str:
    """``WeGive donor 1040`` / ``Handbid contact 501``: how a fundraiser names the staged record."""
    return f"{SOURCE_LABELS.get(item.source, item.source + ' record')} {item.source_id}"


def _clip(text: str | None, width: int = 40) -> str:
    if text is None:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _identity_cell(value: Any) -> str:
    value = value if isinstance(value, dict) else {}
    return ", ".join(str(value[k]) for k in ("name", "email") if value.get(k)) or "-"


def _candidates_cell(item: review.ReviewItem) -> str:
    candidates = [c for c in (item.bloomerang_value or []) if isinstance(c, dict)]
    if len(candidates) == 1:
        return f"{candidates[0].get('id')} {_identity_cell(candidates[0])}"
    return f"{len(candidates)} candidates: " + ", ".join(str(c.get("id")) for c in candidates)


def _decided_cell(item: review.ReviewItem) -> str | None:
    if item.decision == "bloomerang":
        return f"link to {item.decided_value}"
    if item.decision == "source":
        return "create new"
    return f"settled: linked to {item.bloomerang_id}" if item.status == "applied" else None


def _identity_details(org: str, item: review.ReviewItem) -> str:
    """The staged record, its candidates (name, e-mail, phone, address) and what each choice does."""
    from bloom_pipeline.staging import review

    record = _record_label(item)
    candidates = [c for c in (item.bloomerang_value or []) if isinstance(c, dict)]

    def cells(label: str, value: Any) -> list[Any]:
        value = value if isinstance(value, dict) else {}
        return [label, *(value.get(k) for k in ("name", "email", "phone", "address"))]

    people = format_table(["", "NAME", "E-MAIL", "PHONE", "ADDRESS"],
                          [cells(record, item.source_value)]
                          + [cells(f"constituent {c.get('id')}", c) for c in candidates])
    several = len(candidates) > 1
    choices = [[f"--take bloomerang:{c.get('id')}" if several else "--take bloomerang",
                f"link {record} to constituent {c.get('id')}"] for c in candidates]
    choices.append(["--take source", "create a new constituent"])
    lines = [f"Identity item {item.id}: {record} {review.identity_reason_text(str(item.reason))} — which is it?"]
    lines += ["  " + line for line in people.splitlines()]
    lines += ["  " + line for line in format_table(["CHOICE", "WHAT THE NEXT SYNC RUN DOES"], choices).splitlines()]
    if item.status == "resolved":
        lines.append(f"  decided: {_decided_cell(item)} (the next sync run applies it)")
    example = f"bloomerang:{candidates[0].get('id')}" if several else "bloomerang"
    lines.append(f"  bloom-pipeline review resolve --org {org} --id {item.id} --take {example}|source")
    return "\n".join(lines)


def _check_take(_: click.Context, __: click.Parameter, value: str) -> str:
    if value in ("source", "bloomerang") or value.startswith("value:"):
        return value
    if value.startswith("bloomerang:") and value[len("bloomerang:") :].strip().isdigit():
        return value
    raise click.BadParameter("use source, bloomerang, bloomerang:ID (identity items) or value:TEXT")


@review_group.command("resolve")
@click.option("--org", required=True, help="Org name.")
@click.option("--id", "item_id", required=True, type=int, help="Review item id (from review list).")
@click.option(
    "--take",
    required=True,
    callback=_check_take,
    help="source | bloomerang | value:TEXT; identity items: source (create) | bloomerang | bloomerang:ID (link)",
)
@data_dir_option
def review_resolve(org: str, item_id: int, take: str, data_dir: str | None) -> None:
    """Record a decision; the next sync run applies it and logs it."""
    from bloom_pipeline.staging import review

    store = _store(org, data_dir)
    if not store.path.exists():
        raise click.ClickException(f"no staging database for org {org!r} at {store.path}")
    try:
        with store.write() as con:
            item = review.resolve_review(con, item_id, take)
    except KeyError as exc:
        raise click.ClickException(f"no review item {item_id} for org {org}") from exc
    except review.TakeError as exc:
        raise click.UsageError(str(exc)) from exc
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except StoreBusyError as exc:
        raise click.ClickException(f"{exc}; try again when the sync has finished") from exc
    if item.is_identity:
        does = (f"{_record_label(item)} will be linked to constituent {item.decided_value}"
                if item.decision == "bloomerang" else f"a new constituent will be created for {_record_label(item)}")
        click.echo(f"Review item {item.id} resolved: {does}; the next sync run applies it.")
        return
    click.echo(
        f"Review item {item.id} resolved: {item.entity} {item.source}:{item.source_id} field {item.field} "
        f"takes {item.decision} value {_short(item.decided_value, 80)}; the next sync run applies it."
    )


def register(cli: click.Group) -> None:
    """Add ``status`` and ``review`` to the bloom-pipeline command group."""
    cli.add_command(status_command)
    cli.add_command(review_group)
