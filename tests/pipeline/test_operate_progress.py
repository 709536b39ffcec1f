"""Progress of a sync held back by a tight rate limit: plain lines on a non-terminal with a plausible ETA, and
``bloom-pipeline status`` showing the run while it goes, without blocking it."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox
from bloom_pipeline.sync.cli import run_org
from bloom_pipeline.sync.progress import Progress

pytestmark = pytest.mark.slow  # starts a sandbox

ETA = re.compile(r"ETA (?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class _Timed(io.StringIO):
    """A stream that remembers when each line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.lines.append((time.monotonic(), line))
        return super().write(text)


def _seconds(match: re.Match[str]) -> int:
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s


def test_a_rate_limited_sync_prints_progress_with_a_plausible_eta(tmp_path: Path) -> None:
    # 12 requests per second: the ~150 writes of the small world take ~15 s, throttled by 429 + Retry-After
    sb = Sandbox(donors=30, seed=2, knobs=Knobs(rate_limit=12, rate_period=1.0)).start()
    stream = _Timed()
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:  # status, read-only, in another process (as a person would run it) while the sync runs
        while not done.wait(2.0):
            result = subprocess.run([sys.executable, "-m", "bloom_pipeline.cli", "status", "--org", "demo",
                                     "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
            seen.append(result.stdout + result.stderr)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        watcher.start()
        report = run_org("demo", direction="both", dry_run=False, since=None, mappings_dir=None,
                         data_dir=str(tmp_path), urls=sb.urls, quiet=True,
                         overrides={"handbid_org_id": sb.handbid_org_id},
                         progress=Progress(stream, live=False, every=3.0, step=0.25, min_gap=1.0))
        finished = time.monotonic()
    finally:
        done.set()
        watcher.join(10)
        sb.stop()
    assert report.status == "succeeded", report.message
    lines = [line for _, line in stream.lines]
    text = "\n".join(lines)
    for phase in ("extract", "stage", "plan", "apply"):
        assert re.search(rf"^{phase}: done in \d+", text, re.M), text
    assert re.search(r"^apply constituents: \d+/\d+ \(\d+%\), \d+ writes, \d+ failed", text, re.M), text
    assert re.search(r"^apply transactions: (\d+)/\1 \(100%\), \d+ writes, 0 failed, .*done$", text, re.M), text

    # every ETA printed while writes were left is within reach of when the apply really ended
    apply_end = next(t for t, line in stream.lines if line.startswith("apply: done in"))
    checked = 0
    for at, line in stream.lines:
        match = ETA.search(line)
        remaining = apply_end - at
        if match and remaining > 4 and "writes/min" in line:
            eta = _seconds(match)
            assert remaining / 4 - 2 <= eta <= remaining * 4 + 2, (line, remaining)
            checked += 1
    assert checked >= 1, text
    assert finished - apply_end < 30
    # status showed the run in progress while it went, and nothing is left behind once it ended
    assert any("Running now: run " + report.run_id in out for out in seen), seen
    assert not (tmp_path / "demo_progress.json").exists()
