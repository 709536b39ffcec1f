"""``bloom-pipeline query --org ORG "SQL"``: run SQL on the org's analyst snapshot, read-only, print the result.

Why here and not the ``duckdb`` CLI: installing the project gives the DuckDB Python module, not its command
line, so the demo's "query the results" line must be a command the install already has. The snapshot
(``<data dir>/<org>.duckdb``, published atomically at the end of each run, ``staging/snapshot.py``) is attached
``READ_ONLY`` into an in-memory database and then external access is switched off: the query can read the
snapshot and nothing else, and writes nothing anywhere. Never the staging file, which a running sync holds.

Exit status: 0 printed; 1 the SQL failed (DuckDB's message, one line); 2 no snapshot, or not a DuckDB file.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import duckdb

from bloom_pipeline import settings
from bloom_pipeline.staging import ddl

FORMATS = ("table", "csv", "json")


def _one_line(text: str) -> str:
    """The first line of ``text`` (DuckDB adds the query with a caret under the error on later lines)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else str(text)


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {_one_line(message)}", err=True)
    sys.exit(code)


def snapshot_path(org: str, data_dir: str | None) -> Path:
    """``<data dir>/<org>.duckdb`` (``--data-dir``, else ``$BLOOM_DATA_DIR``, else ``./data``)."""
    return settings.data_dir(data_dir) / f"{ddl.check_identifier(org)}.duckdb"


def open_snapshot(path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with ``path`` attached read-only as the default database, external access off.

    ATTACH from a fresh connection (not ``duckdb.connect(path)``) always reads the file as it is now, and
    works on the 0444 file the snapshot is published as."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.execute("ATTACH ? AS snapshot (READ_ONLY)", [str(path)])
        con.execute("USE snapshot")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _text(value: Any, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def render_table(headers: list[str], rows: list[tuple[Any, ...]], max_width: int = 60) -> str:
    """Aligned columns (numbers right-aligned), each cell cut at ``max_width``; ``NULL`` for missing values."""
    cells = [[_clip(_text(v, "NULL"), max_width) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], (int, float, Decimal)) and not isinstance(r[i], bool)
                                  or r[i] is None for r in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))

    return "\n".join([line(headers).rstrip(), line(["-" * w for w in widths])] + [line(r).rstrip() for r in cells])


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("query")
@click.option("--org", required=True, help="Org name: reads <data dir>/<org>.duckdb, the analyst snapshot.")
@click.option("--data-dir", default=None, metavar="DIR", help="Default $BLOOM_DATA_DIR, else ./data.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people; csv and json (an array of objects) for other tools.")
@click.option("--max-rows", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Rows a table shows (0: all); csv and json print every row.")
@click.argument("sql")
def query_command(org: str, data_dir: str | None, fmt: str, max_rows: int, sql: str) -> None:
    """Run SQL on an org's analyst snapshot (read-only) and print the result, e.g.
    bloom-pipeline query --org demo "SELECT action, count(*) FROM sync_log GROUP BY 1"."""
    try:
        path = snapshot_path(org, data_dir)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--org") from exc
    if not path.is_file():
        _fail(f"no analyst snapshot for org {org!r}: {path} does not exist (a sync publishes it at the end of "
              f"each run: bloom-pipeline sync --org {org})", 2)
    try:
        con = open_snapshot(path)
    except duckdb.Error as exc:
        _fail(f"{path}: not a readable DuckDB snapshot ({exc})", 2)
    try:
        try:
            cursor = con.execute(sql)
            headers = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall() if headers else []
        except duckdb.Error as exc:
            _fail(str(exc), 1)
    finally:
        con.close()
    if not headers:
        click.echo("OK (the statement returned no result)")
        return
    if fmt == "csv":
        writer = csv.writer(click.get_text_stream("stdout"), lineterminator="\n")
        writer.writerow(headers)
        writer.writerows([[_text(v, "") for v in row] for row in rows])
    elif fmt == "json":
        click.echo(json.dumps([{h: _json_value(v) for h, v in zip(headers, row, strict=True)} for row in rows],
                              default=str, ensure_ascii=False, indent=2))
    else:
        shown = rows if max_rows == 0 else rows[:max_rows]
        click.echo(render_table(headers, shown))
        more = f"; first {len(shown)} shown, --max-rows 0 for all" if len(shown) < len(rows) else ""
        click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{more})")


def register(group: click.Group) -> None:
    group.add_command(query_command)
