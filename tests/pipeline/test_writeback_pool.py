"""The correlation write-back to WeGive, several requests at a time (``wegive.write_connections``).

Sending the write-backs on a pool must change nothing but the time they take: every linked donor ends up
holding its Bloomerang id in WeGive, each donor's answer is still kept as its stored detail (the write-back's
answers are handed to ``on_donor_detail`` in the thread that holds the staging file), so the next run neither
writes back nor fetches those donors again. WeGive answers with a little latency so the requests overlap.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # starts sandbox servers


def _donor_requests(h, method: str) -> int:
    return sum(n for (_, m, path), n in h.sb.request_log.counts("wegive").items()
               if m == method and path.rstrip("/").endswith("dashboard/donors/{id}"))


def test_pooled_write_back_links_every_donor_and_keeps_its_answer(harness) -> None:
    h = harness
    h.sb.knobs["wegive"].latency_ms = 15.0
    report = h.sync()
    assert report.status == "succeeded", report.message

    links = h.frame("SELECT source_id, bloomerang_id FROM sync_state WHERE entity = 'constituents' "
                    "AND source = 'wegive' AND bloomerang_id IS NOT NULL")
    assert len(links) >= 20
    held = {str(i): d.get("bloomerang_id") for i, d in h.sb.stores["wegive"].donors.items()}
    assert {sid: held.get(sid) for sid, bid in links.itertuples(index=False)
            if str(held.get(sid)) != str(int(bid))} == {}
    written_back = _donor_requests(h, "PUT")
    assert written_back >= len(links) // 2  # a first load: most links are new, each written back once

    kept = h.frame("SELECT d.source_id, d.detail, s.bloomerang_id FROM wegive_donor_details d "
                   "JOIN sync_state s ON s.entity = 'constituents' AND s.source = 'wegive' "
                   "AND s.source_id = d.source_id WHERE d.via = 'write'")
    assert len(kept) >= written_back
    for source_id, detail, bloomerang_id in kept.itertuples(index=False):
        answer = json.loads(detail)
        assert str(answer["id"]) == str(source_id) and str(answer["bloomerang_id"]) == str(int(bloomerang_id))

    h.sb.request_log.clear()
    report = h.sync()
    assert report.status == "succeeded", report.message
    assert (_donor_requests(h, "PUT"), _donor_requests(h, "GET")) == (0, 0), h.sb.request_log.counts("wegive")
