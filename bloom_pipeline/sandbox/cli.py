"""``bloom-pipeline sandbox``: run the three simulators in the foreground until stopped."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import click

from bloom_pipeline.sandbox.faults import Knobs


def parse_rate_limit(text: str) -> tuple[int | None, float]:
    """``"1000/3600"`` → (1000, 3600.0); ``"off"`` or ``"0"`` → no limit."""
    if text.strip().lower() in ("off", "none", "0"):
        return None, 3600.0
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*", text)
    if not match:
        raise click.BadParameter("expected N/PERIOD, e.g. 1000/3600 (requests per key per seconds)")
    return int(match.group(1)), float(match.group(2))


def _share(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise click.BadParameter("must be a share between 0 and 1")
    return value


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to serve on.")
@click.option("--bloomerang-port", type=int, default=8701, show_default=True)
@click.option("--wegive-port", type=int, default=8702, show_default=True)
@click.option("--handbid-port", type=int, default=8703, show_default=True)
@click.option("--donors", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--rate-limit", default="1000/3600", show_default=True, help="Requests per key per seconds.")
@click.option("--fault-rate", type=float, default=0.0, callback=_share, help="Share of 5xx answers.")
@click.option("--drop-after-commit", type=float, default=0.0, callback=_share,
              help="Share of writes applied, then answered by a closed connection.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Added latency per request.")
@click.option("--messy", is_flag=True, default=False,
              help="Plant the hostile records real APIs hold (null and duplicate ids, impossible dates and amounts, "
                   "timestamps of year 9999) into WeGive and Handbid; see docs/sandbox.md.")
@click.option("--state", "state", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Serve a state saved by --save-state (or nightly_cost.py --keep) instead of generating a world; "
                   "--donors / --seed / --messy, when given, must be the saved ones.")
@click.option("--save-state", "save_state", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="On Ctrl-C / SIGTERM, save the whole state of the three simulators to this file.")
@click.pass_context
def sandbox_command(
    ctx: click.Context,
    host: str,
    bloomerang_port: int,
    wegive_port: int,
    handbid_port: int,
    donors: int,
    seed: int,
    rate_limit: str,
    fault_rate: float,
    drop_after_commit: float,
    latency_ms: float,
    messy: bool,
    state: Path | None,
    save_state: Path | None,
) -> None:
    """Run the Bloomerang, WeGive and Handbid simulators until Ctrl-C."""
    from bloom_pipeline.sandbox.server import Sandbox
    from bloom_pipeline.sandbox.state import SandboxStateError

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT

    limit, period = parse_rate_limit(rate_limit)
    knobs = Knobs(
        rate_limit=limit,
        rate_period=period,
        fault_rate=fault_rate,
        drop_after_commit=drop_after_commit,
        latency_ms=latency_ms,
        seed=seed,
    )
    ports = {"bloomerang": bloomerang_port, "wegive": wegive_port, "handbid": handbid_port}
    stop = threading.Event()
    world = {"donors": donors if state is None or given("donors") else None,
             "seed": seed if state is None or given("seed") else None}
    try:
        sandbox = Sandbox(**world, knobs=knobs, host=host, ports=ports, messy=messy, state=state).start()
    except (OSError, ValueError, SandboxStateError) as exc:
        raise click.ClickException(f"cannot start the sandbox: {exc}") from exc
    if state is not None:
        click.echo(f"Saved state: {state} ({sandbox.donors} donors, seed {sandbox.seed})")
    click.echo(f"Bloomerang v2 URL: {sandbox.urls['bloomerang']}")
    click.echo(f"Bloomerang API key: {sandbox.keys['bloomerang']}")
    click.echo(f"WeGive URL:        {sandbox.urls['wegive']}")
    click.echo(f"WeGive token:      {sandbox.keys['wegive']}")
    click.echo(f"Handbid URL:       {sandbox.urls['handbid']}")
    click.echo(f"Handbid token:     {sandbox.keys['handbid']}")
    click.echo(f"Handbid organization id: {sandbox.handbid_org_id}")
    limit_text = "off" if limit is None else f"{limit} per {period:g}s per key"
    click.echo(
        f"Knobs: rate limit {limit_text}; fault rate {fault_rate:g}; "
        f"drop-after-commit {drop_after_commit:g}; latency {latency_ms:g} ms"
    )
    if sandbox.messy:
        from bloom_pipeline.sandbox.data.messy import summary

        click.echo(summary(sandbox.messy_manifest))
    click.echo("Serving until Ctrl-C ...", err=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
        if save_state is not None:
            sandbox.save_state(save_state)
            click.echo(f"State saved to {save_state}", err=True)


def register(group: click.Group) -> None:
    group.add_command(sandbox_command)
