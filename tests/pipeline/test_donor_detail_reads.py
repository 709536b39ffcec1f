"""A first load reads every WeGive donor's detail, several at a time (``wegive.read_connections``).

Reading the details on a pool must change nothing but the time it takes: each listed donor's detail is read
once, kept as its stored detail and staged exactly as when the reads go one at a time (what a read that fails
does is in ``tests/unit/sync/test_donor_detail_pool.py``). WeGive answers with a little latency so the reads
overlap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.conftest import SyncHarness, demo_mappings_with, start_sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers

def _detail_reads(h: SyncHarness) -> dict[str, int]:
    return {path: n for (_, method, path), n in h.sb.request_log.counts("wegive").items()
            if method == "GET" and path.rstrip("/").endswith("dashboard/donors/{id}")}


def _load(tmp_path: Path, connections: int) -> tuple[SyncHarness, dict[str, str], dict[str, str], int]:
    sb = start_sandbox()
    sb.knobs["wegive"].latency_ms = 10.0
    h = SyncHarness(sb, tmp_path / f"data-{connections}")
    h.mappings_dir = demo_mappings_with(tmp_path, "wegive", "read_connections", connections)
    listed = list(sb.stores["wegive"].donors)
    report = h.sync()
    assert report.status == "succeeded", report.message
    details = dict(h.frame("SELECT source_id, detail FROM wegive_donor_details").itertuples(index=False))
    staged = dict(h.frame("SELECT source_id, payload_hash FROM stg_constituents WHERE source = 'wegive'")
                  .itertuples(index=False))
    reads = sum(_detail_reads(h).values())
    assert reads <= len(listed), "each donor's detail is read at most once"
    return h, details, staged, reads


def test_pooled_detail_reads_keep_and_stage_what_one_at_a_time_does(tmp_path: Path) -> None:
    one, details_one, staged_one, reads_one = _load(tmp_path, 1)
    four, details_four, staged_four, reads_four = _load(tmp_path, 4)
    try:
        assert reads_one == reads_four > 0
        assert staged_four == staged_one and len(staged_one) >= 20
        assert set(details_four) == set(details_one)
    finally:
        one.sb.stop()
        four.sb.stop()
