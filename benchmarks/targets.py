"""What every benchmark here shares: the demo org's mappings copied for one run, and the targets' verdict.

Why a module: each benchmark is a script (``python benchmarks/<name>.py``), so this file is imported from the
script's own folder; it holds no figure of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo_mappings(root: Path, *, skew_seconds: int | None = None, write_connections: int | None = None,
                  requests_per_hour: int | None = None) -> Path:
    """The repo's mappings under ``root``, the demo org's ``clock_skew_tolerance``, ``bloomerang.write_connections``
    and / or ``bloomerang.requests_per_hour`` set when given (the rest as shipped)."""
    target = root / "mappings"
    shutil.copytree(REPO / "mappings", target)
    demo = target / "orgs" / "demo.yaml"
    text = demo.read_text()
    if skew_seconds is not None:
        lines = [line for line in text.splitlines() if not line.startswith("clock_skew_tolerance:")]
        text = "\n".join([*lines, f"clock_skew_tolerance: {skew_seconds}s", ""])
    if write_connections is not None:
        text = text.replace("bloomerang:\n", f"bloomerang:\n  write_connections: {write_connections}\n", 1)
    if requests_per_hour is not None:
        shipped = [line for line in text.splitlines() if line.startswith("  requests_per_hour:")]
        assert len(shipped) == 1, "the demo org names its Bloomerang budget once"
        text = text.replace(shipped[0], f"  requests_per_hour: {requests_per_hour}", 1)
    demo.write_text(text)
    return target


def report(checks: list[tuple[str, bool]]) -> int:
    """Print each target as ``[met]`` / ``[MISSED]``; the exit status: 0 when every one is met, else 1."""
    print("\ntargets:")
    for text, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1
