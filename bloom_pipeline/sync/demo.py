"""``bloom-pipeline demo``: the whole product on a fresh machine, with no credentials.

1. Start the three sandbox APIs on loopback with generated data (messy on purpose).
2. Run the demo org's full bidirectional sync and print the per-entity summary.
3. Edit one linked donor in WeGive and in Bloomerang within the clock-skew tolerance — a real conflict —
   and run the nightly sync again: the conflict is detected, recorded in the ledger and queued for review.
   Between the runs a donor also sets an org custom field (T-shirt size) and another opts out of all contact
   in WeGive; run 2 carries both to Bloomerang. Run 1 has already turned Handbid registrations into
   interactions; the demo shows one of each.
"""

from __future__ import annotations

import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from bloom_pipeline.sandbox.process import SandboxProcess
from bloom_pipeline.settings import BLOOMERANG_SANDBOX_KEY, DEFAULT_DATA_DIR, WEGIVE_SANDBOX_TOKEN

DEMO_ORG = "demo"
# The demo lifts the sandbox's 1000/hour so 2,000 donors sync in about a minute; demo.yaml's client budget
# (100,000/hour) stays a little under it.
DEMO_RATE = "120000/3600"


class Apis:
    """The demo's own hands on the sandbox: staff and donors editing records through the real APIs."""

    def __init__(self, urls: dict[str, str]) -> None:
        from bloom_pipeline.clients.bloomerang import BloomerangClient
        from bloom_pipeline.clients.wegive import WeGiveClient

        self.bloomerang = BloomerangClient(urls["bloomerang"], BLOOMERANG_SANDBOX_KEY, rate_budget=None)
        self.wegive = WeGiveClient(urls["wegive"], WEGIVE_SANDBOX_TOKEN)

    def close(self) -> None:
        self.bloomerang.close()
        self.wegive.close()


def _linked_wegive_donors(report: Any, count: int) -> list[tuple[int, int]]:
    """(WeGive donor id, Bloomerang id) of linked individuals, each the only source record on its constituent.

    Individuals, because a company has no phone or person name in WeGive's mapping; alone on their
    constituent, so the edit shows one clear path (a person also in Handbid would take two runs to settle).
    """
    from bloom_pipeline.staging.store import StagingStore

    store = StagingStore(report.database, org=report.org)
    frame = store.read_frame(
        "SELECT s.source_id, s.bloomerang_id FROM sync_state s JOIN raw_wegive_donors r USING (source_id) "
        "WHERE s.entity = 'constituents' AND s.source = 'wegive' AND s.bloomerang_id IS NOT NULL "
        "AND s.source_snapshot IS NOT NULL AND json_extract_string(r.record, '$.type') = 'individual' "
        "AND s.bloomerang_id NOT IN (SELECT bloomerang_id FROM sync_state WHERE entity = 'constituents' "
        "AND source = 'handbid' AND bloomerang_id IS NOT NULL) ORDER BY s.source_id::INTEGER LIMIT ?",
        [count],
    )
    return [(int(r.source_id), int(r.bloomerang_id)) for r in frame.itertuples(index=False)]


def _make_conflict(apis: Apis, donor_id: int, constituent_id: int) -> None:
    """The same donor edited in both systems seconds apart: neither side can be trusted to win."""
    apis.wegive.update_donor(donor_id, {"mobile_phone": "(303) 555-0101"})
    apis.bloomerang.update_constituent(constituent_id, {"PrimaryPhone": {"Type": "Mobile", "Number": "(720) 555-0199"}})


TSHIRT = ("tshirt_size", "T-Shirt Size", "M")  # demo.yaml maps this WeGive donor field to the Bloomerang one


def _make_edits(apis: Apis, pulled: tuple[int, int], pushed: tuple[int, int], opted: tuple[int, int]) -> None:
    """One edit in Bloomerang (flows back to WeGive), one in WeGive with an org custom field (flows to
    Bloomerang), and a donor opting out of all contact in WeGive (reaches Bloomerang's settings)."""
    apis.bloomerang.update_constituent(pulled[1], {"PrimaryAddress": {"Type": "Home", "City": "Boulder"}})
    apis.wegive.update_donor(pushed[0], {"last_name": "Demo", "custom_fields": {TSHIRT[0]: TSHIRT[2]}})
    apis.wegive.update_donor(opted[0], {"do_not_contact": True})


def _show_edits(apis: Apis, pulled: tuple[int, int], pushed: tuple[int, int]) -> None:
    city = (apis.wegive.get_donor(pulled[0]).get("mailing_address") or {}).get("city")
    last = apis.bloomerang.get_constituent(pushed[1]).get("LastName")
    click.echo(f"pull: WeGive donor {pulled[0]} city is now {city!r} (edited in Bloomerang)")
    click.echo(f"push: Bloomerang constituent {pushed[1]} last name is now {last!r} (edited in WeGive)")


def _custom_value(constituent: dict[str, Any], field_name: str, fields: list[dict[str, Any]]) -> str | None:
    """The text a constituent holds in the custom field named ``field_name`` (read shape: a pick's
    ``Value`` is ``{Id, Value}``)."""
    ids = {int(f["Id"]) for f in fields if str(f.get("Name", "")).casefold() == field_name.casefold()}
    for item in constituent.get("CustomValues") or []:
        if item.get("FieldId") is not None and int(item["FieldId"]) in ids:
            value = item.get("Value")
            return str(value.get("Value") if isinstance(value, dict) else value)
    return None


def _show_people(apis: Apis, report: Any, pushed: tuple[int, int], opted: tuple[int, int]) -> None:
    """The People features on real records: the custom field and the opt-out run 2 carried to Bloomerang,
    and one of the interactions run 1 made from Handbid registrations."""
    from bloom_pipeline.staging.store import StagingStore

    fields = list(apis.bloomerang.custom_fields("Constituent"))
    shirt = _custom_value(apis.bloomerang.get_constituent(pushed[1]), TSHIRT[1], fields)
    click.echo(f"custom field: Bloomerang constituent {pushed[1]} {TSHIRT[1]} is now {shirt!r} (set in WeGive)")
    settings = apis.bloomerang.get_constituent(opted[1])
    marks = ", ".join(settings.get("CommunicationRestrictions") or []) or "none"
    click.echo(f"opt-out: Bloomerang constituent {opted[1]} restrictions {marks}; e-mail "
               f"{settings.get('EmailInterestType')} (do_not_contact in WeGive)")
    store = StagingStore(report.database, org=report.org)
    try:
        rows = store.read_frame("SELECT interaction_id, participation FROM event_interactions "
                                "ORDER BY auction_id, bloomerang_id")
    except Exception:  # noqa: BLE001 - no Handbid participation this run: nothing to show
        rows = None
    if rows is None or not len(rows):
        click.echo("interactions: none from Handbid")
        return
    first = apis.bloomerang.get_interaction(int(rows["interaction_id"].iloc[0]))
    click.echo(f"interaction: Bloomerang constituent {first.get('AccountId')} {first.get('Subject')!r} on "
               f"{first.get('Date')} ({first.get('Channel')}, {first.get('Purpose')}; {len(rows)} from Handbid "
               "registrations and check-ins)")


def _progress() -> Any:
    """On a terminal, a live progress line erased as each step ends (the printed story stays as documented);
    elsewhere nothing on stderr — but always the state file ``bloom-pipeline status`` reads."""
    import sys

    from bloom_pipeline.sync.progress import Progress

    tty = sys.stderr.isatty()
    return Progress(sys.stderr, live=tty, transient=True, quiet=not tty)


def query_command(snapshot: Path, org: str = DEMO_ORG) -> str:
    """The ``bloom-pipeline query`` line that reads ``snapshot``: it works right after ``pip install`` (no
    ``duckdb`` CLI needed); ``--data-dir`` only when the snapshot is not in the default ``./data``."""
    folder = snapshot.parent
    where = "" if folder == Path(DEFAULT_DATA_DIR) else f" --data-dir {shlex.quote(str(folder))}"
    return f'bloom-pipeline query --org {org}{where} "SELECT action, count(*) FROM sync_log GROUP BY 1"'


RECONCILE_DAYS = 150  # the generated gifts span the last ~120 days


def _reconcile(database: Path, urls: dict[str, str], overrides: dict[str, Any], org: Any = None) -> str:
    """Reconcile the demo org's totals per day and fund over the generated gifts (source, staged, read back
    from Bloomerang), keep them in the `reconciliation` tables of the snapshot, and say how they compare.
    ``org``: the demo org as loaded while the sandbox started (None: loaded here)."""
    from datetime import timedelta

    from bloom_pipeline.mapping.loader import load_org
    from bloom_pipeline.reconcile.render import summary
    from bloom_pipeline.reconcile.run import default_window, reconcile_org
    from bloom_pipeline.reconcile.table import write_reconciliation
    from bloom_pipeline.reconcile.totals import DayWindow
    from bloom_pipeline.staging.snapshot import publish_snapshot
    from bloom_pipeline.staging.store import StagingStore
    from bloom_pipeline.sync.endpoints import build_clients, resolve_endpoints

    org = org if org is not None else load_org(DEMO_ORG)
    store = StagingStore(database, org=org.name)
    until = default_window(org.timezone).until
    endpoints = resolve_endpoints(org, urls=urls, handbid_org_id=overrides.get("handbid_org_id"))
    clients = build_clients(org, endpoints, budget_dir=database.parent / "ratelimit")
    try:
        result = reconcile_org(org, store, clients.bloomerang,
                               DayWindow(until - timedelta(days=RECONCILE_DAYS - 1), until))
    finally:
        clients.close()
    write_reconciliation(store, result)
    publish_snapshot(store)
    return summary(result)


def _prepare_the_sync() -> Any:
    """The modules a run needs (pandas, DuckDB, pandera, the steps: ~2 s of CPU) imported, and the demo org loaded
    for the reconciliation at the end, while the sandbox child generates its world on the other core — instead of
    when a step would wait for them. Returns the org, or None when it does not load: each run loads it again and
    reports what is wrong with it as always (exit status 2)."""
    import bloom_pipeline.reconcile.run
    import bloom_pipeline.sync.report
    import bloom_pipeline.sync.runner  # noqa: F401
    from bloom_pipeline.mapping.loader import load_org

    try:
        return load_org(DEMO_ORG)
    except Exception:  # noqa: BLE001 - said by run 1, which loads the same files
        return None


def run_demo(donors: int = 2000, seed: int = 42, data_dir: str | None = None) -> int:
    from bloom_pipeline.sync.cli import run_org

    started = time.monotonic()
    click.echo(f"Starting the sandbox APIs with {donors} generated donors (seed {seed}) ...")
    preparing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-imports")
    prepared = preparing.submit(_prepare_the_sync)
    preparing.shutdown(wait=False)
    with SandboxProcess(donors=donors, seed=seed, rate_limit=DEMO_RATE) as sandbox:
        org = prepared.result()
        apis = Apis(sandbox.urls)
        for api, url in sandbox.urls.items():
            click.echo(f"  {api:<10} {url}")
        overrides = {"handbid_org_id": sandbox.handbid_org_id}
        click.echo("\n== Run 1: first bidirectional sync of the demo org ==")
        first = run_org(DEMO_ORG, direction="both", dry_run=False, since=None, mappings_dir=None,
                        data_dir=data_dir, urls=sandbox.urls, overrides=overrides, progress=_progress())
        picked = _linked_wegive_donors(first, 4)
        if len(picked) < 4:
            click.echo("not enough linked donors to demonstrate the merge with", err=True)
            return 1
        (donor_id, constituent_id), pulled, pushed, opted = picked
        click.echo(f"\n== Between the runs: staff edit Bloomerang constituent {pulled[1]} (city), a donor edits "
                   f"WeGive donor {pushed[0]} (last name, T-shirt size), WeGive donor {opted[0]} opts out of all "
                   f"contact, and WeGive donor {donor_id} and Bloomerang constituent {constituent_id} both get a "
                   "new phone number seconds apart: a conflict ==")
        _make_edits(apis, pulled, pushed, opted)
        _make_conflict(apis, donor_id, constituent_id)
        click.echo("\n== Run 2: the nightly sync ==")
        second = run_org(DEMO_ORG, direction="both", dry_run=False, since=None, mappings_dir=None,
                         data_dir=data_dir, urls=sandbox.urls, overrides=overrides, progress=_progress())
        _show_edits(apis, pulled, pushed)
        _show_people(apis, second, pushed, opted)
        _show_review_queue(second)
        click.echo(f"reconciliation: {_reconcile(Path(second.database), sandbox.urls, overrides, org)}")
        apis.close()
    requests = first.requests + second.requests
    click.echo(f"\nBloomerang requests of the two syncs: {sum(requests.values())}; "
               f"demo finished in {time.monotonic() - started:.0f} s")
    click.echo(f"Query the results: {query_command(Path(first.snapshot))}")
    ok = first.status == "succeeded" and second.status == "succeeded"
    return 0 if ok else 1


def _show_review_queue(report: Any) -> None:
    from bloom_pipeline.staging import review
    from bloom_pipeline.staging.store import StagingStore

    store = StagingStore(report.database, org=report.org)
    with store.connect() as con:
        items = review.list_reviews(con, "open")
    if not items:
        click.echo("review queue: empty")
        return
    click.echo(f"review queue: {len(items)} open item(s)")
    for item in items[:5]:
        click.echo(f"  #{item.id} {item.source} {item.source_id} {item.field}: "
                   f"source={json.dumps(item.source_value)} bloomerang={json.dumps(item.bloomerang_value)} "
                   f"({item.reason})")
    click.echo(f"resolve with: bloom-pipeline review resolve --org {report.org} --id {items[0].id} --take source")
