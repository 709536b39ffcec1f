"""`bloom-pipeline mapping validate|preview`: check mapping files, and show what records would become.

Why here: admins need both answers before any API call — is my YAML right (FILE:LINE: KEY: problem,
exit 2), and what payload does a given source record produce. Neither command touches the network.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bloom_pipeline.mapping import catalog

_DIR_HELP = "Folder of mapping files (default: $BLOOM_MAPPINGS_DIR or ./mappings)."


def read_records(path: Path) -> list[dict[str, Any]]:
    """A JSON array, a JSON-lines file, or an API list envelope ({"data": [...]}, {"payments": [...]})."""
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("expected a JSON array of objects, or one JSON object per line")
    return data


def _fail(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(2)


@click.group("mapping")
def mapping() -> None:
    """Validate mapping YAML files and preview mapped records."""


@mapping.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mappings-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=_DIR_HELP)
def validate(paths: tuple[Path, ...], mappings_dir: Path | None) -> None:
    """Check mapping files (all under the mappings dir when no PATH is given).

    Prints one line per problem, FILE:LINE: KEY: what is wrong, and exits 2; exits 0 when valid.
    """
    from bloom_pipeline.mapping.loader import mappings_root, validate_paths

    root = mappings_root(mappings_dir)
    if not paths and not root.is_dir():
        _fail([f"{root}:1: mappings-dir: no such folder"])
    problems = validate_paths(list(paths), root)
    if problems:
        _fail([str(p) for p in problems])
    count = len(paths) or len(list(root.rglob("*.yaml")) + list(root.rglob("*.yml")))
    click.echo(f"OK: {count} mapping file(s) valid")


@mapping.command("preview")
@click.option("--org", required=True, help="Org name (mappings/orgs/<org>.yaml).")
@click.option("--entity", required=True, type=click.Choice(sorted(catalog.SOURCE_FIELDS)),
              help="SOURCE.ENTITY, e.g. wegive.donors.")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Source records as the API returns them: a JSON array or JSON lines.")
@click.option("--mappings-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help=_DIR_HELP)
def preview(org: str, entity: str, input_path: Path, mappings_dir: Path | None) -> None:
    """Print {"mapped": [{source_id, payload}], "rejected": [{source_id, errors}], "dropped": [{source_id, field,
    errors}]} — no network calls. `dropped` lists the optional values left out of a mapped record's payload.
    A refunded gift also shows "refund": the POST /refund body the sync sends after creating it, dated by the
    source's refund (WeGive refunded_at), else by the gift.

    References to other records are shown by source id ("ref:wegive.donors:1012").
    """
    from bloom_pipeline.mapping.compile import map_frame
    from bloom_pipeline.mapping.loader import MappingError, load_org

    try:
        config = load_org(org, mappings_dir)
    except MappingError as exc:
        _fail([str(p) for p in exc.problems])
    try:
        config.entity(entity)
    except KeyError as exc:
        _fail([f"mapping preview: {exc.args[0]}"])
    try:
        records = read_records(input_path)
    except (ValueError, UnicodeDecodeError) as exc:
        _fail([f"{input_path}: cannot read records: {exc}"])
    result = map_frame(config, entity, records)
    refunded = (result.mapped["is_refunded"].fillna(False).astype(bool).tolist() if "is_refunded" in result.mapped
                else [False] * len(result.mapped))
    output = {
        "mapped": [_previewed(entity, sid, json.loads(payload), refund)
                   for sid, payload, refund in zip(result.mapped["source_id"], result.mapped["payload"], refunded,
                                                   strict=True)],
        "rejected": [{"source_id": sid, "errors": list(errors)}
                     for sid, errors in zip(result.rejected["source_id"], result.rejected["errors"], strict=True)],
        "dropped": [{"source_id": sid, "field": name, "errors": list(errors)}
                    for sid, name, errors in zip(result.fields["source_id"], result.fields["field"],
                                                 result.fields["errors"], strict=True)],
    }
    click.echo(json.dumps(output, indent=2, ensure_ascii=False))


def _previewed(entity: str, source_id: str, payload: dict[str, Any], refunded: bool) -> dict[str, Any]:
    """One mapped record as the sync writes it: the transaction payload without the planned refund and tributes,
    and beside it the refund (`writers.refund_body`, the same body the writer posts) when the source refunded the
    gift, and the tributes it names (`apply/tributes.py`, found by name or created once)."""
    from bloom_pipeline.sync.apply import tributes
    from bloom_pipeline.sync.apply.writers import refund_body

    planned = payload.pop("Refund", None)
    honored = tributes.wanted_tributes([payload])
    out: dict[str, Any] = {"source_id": source_id, "payload": tributes.without_tribute(payload)}
    if honored:  # the POST /tribute body the load sends unless Bloomerang has a tribute of that name
        out["tributes"] = list(honored.values())
    if refunded:
        date = planned.get("Date") if isinstance(planned, dict) else None
        source = entity.split(".")[0]
        out["refund"] = refund_body(f"ref:{entity}:{source_id}", date or payload.get("Date"), source, source_id)
    return out


def register(cli: click.Group) -> None:
    """Add the `mapping` group to the top-level CLI."""
    cli.add_command(mapping)
