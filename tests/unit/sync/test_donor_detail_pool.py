"""``extract/wegive._read_details``: the donor-detail reads of a first load, one at a time or on a pool — each
row's answer or error under its source id, in list order; one at a time, nothing is read past an error that is
not a 404 (the caller raises it at that row)."""

from __future__ import annotations

import threading

import pytest

from bloom_pipeline.errors import ApiError
from bloom_pipeline.sync.extract.wegive import _read_details


class _Details:
    """WeGive's donor detail as a plain object: 404 for ``gone``, 500 for ``broken``, the threads it ran on."""

    def __init__(self, gone=(), broken=()):
        self.gone, self.broken, self.read, self.threads = set(gone), set(broken), [], set()
        self.lock = threading.Lock()

    def get_donor(self, donor_id):
        with self.lock:
            self.read.append(donor_id)
            self.threads.add(threading.current_thread().name)
        if donor_id in self.gone:
            raise ApiError(404, "not found", "GET", f"dashboard/donors/{donor_id}", "wegive")
        if donor_id in self.broken:
            raise ApiError(500, "server error", "GET", f"dashboard/donors/{donor_id}", "wegive")
        return {"id": donor_id}


ROWS = [{"id": n} for n in range(1, 9)]


@pytest.mark.parametrize("connections", [1, 4])
def test_each_row_gets_its_answer_or_its_error(connections):
    client = _Details(gone={3})
    answers = _read_details(client, ROWS, connections)
    assert list(answers) == [str(r["id"]) for r in ROWS]
    assert [answers[str(n)].result() for n in (1, 2, 4, 8)] == [{"id": 1}, {"id": 2}, {"id": 4}, {"id": 8}]
    with pytest.raises(ApiError) as caught:
        answers["3"].result()
    assert caught.value.status == 404
    assert sorted(client.read) == list(range(1, 9))
    assert any(name.startswith("wegive-read") for name in client.threads) == (connections > 1)


def test_one_at_a_time_reads_nothing_past_an_error_that_is_not_a_404():
    client = _Details(broken={5})
    answers = _read_details(client, ROWS, 1)
    assert client.read == [1, 2, 3, 4, 5] and list(answers) == ["1", "2", "3", "4", "5"]
    with pytest.raises(ApiError):
        answers["5"].result()
