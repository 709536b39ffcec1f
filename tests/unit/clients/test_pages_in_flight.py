"""``BloomerangClient.iter_pages`` with ``read_connections`` > 1: the pages announced by the first page are read
several at a time and judged in order, as one after another — also when the list grows, shrinks, moves or fails
meanwhile. A paged list stands in for the HTTP session (the wire itself is tested against the sandbox)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bloom_pipeline.clients.bloomerang import BloomerangClient
from bloom_pipeline.errors import ApiError


class PagedList:
    """Answers ``get(path, params)`` as Bloomerang pages a list of ids; ``on_request(n)`` may change it."""

    def __init__(self, ids: list[int], on_request=None, fail_at_skip: int | None = None,
                 start_shift: dict[int, int] | None = None) -> None:
        self.ids, self.on_request, self.fail_at_skip = ids, on_request, fail_at_skip
        self.start_shift = start_shift or {}
        self.skips: list[int] = []
        self.lock = threading.Lock()

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            skip, take = int(params["skip"]), int(params["take"])
            self.skips.append(skip)
            if self.on_request:
                self.on_request(len(self.skips), self.ids)
            if skip == self.fail_at_skip:
                raise ApiError(503, "try later", "GET", "/v2/transactions", "bloomerang")
            start = skip + self.start_shift.get(skip, 0)
            page = self.ids[start:start + take]
            return {"Total": len(self.ids), "TotalFiltered": len(self.ids), "Start": start,
                    "ResultCount": len(page), "Results": [{"Id": i} for i in page]}


def read(paged: PagedList, connections: int) -> list[int]:
    client = BloomerangClient.__new__(BloomerangClient)  # no session: the paged list answers
    client.http, client.read_connections = paged, connections
    return [r["Id"] for r in client.iter_pages("/v2/transactions")]


@pytest.mark.parametrize("size", [0, 1, 49, 50, 51, 100, 437])
def test_the_same_pages_and_records_as_one_at_a_time(size):
    ids = list(range(1, size + 1))
    one, several = PagedList(list(ids)), PagedList(list(ids))
    assert read(several, 4) == read(one, 1) == ids
    assert sorted(several.skips) == one.skips


def test_a_list_that_grows_meanwhile_is_read_on_to_its_new_end():
    grow = lambda n, ids: ids.extend(range(1000 + 10 * n, 1010 + 10 * n)) if n <= 3 else None  # noqa: E731
    one, several = PagedList(list(range(1, 121)), grow), PagedList(list(range(1, 121)), grow)
    assert read(several, 4) == read(one, 1)
    assert len(set(read(PagedList(list(range(1, 121)), grow), 4))) == 150


def test_a_list_that_shrinks_meanwhile_ends_where_one_at_a_time_ends():
    def shrink(n, ids):
        if n == 2:
            del ids[100:]
    one, several = PagedList(list(range(1, 301)), shrink), PagedList(list(range(1, 301)), shrink)
    assert read(one, 1) == read(several, 4) == list(range(1, 101))
    assert len(several.skips) <= len(one.skips) + 3  # at most read_connections - 1 pages past the new end


def test_an_error_is_raised_at_its_page_after_the_records_before_it():
    for connections in (1, 4):
        client = BloomerangClient.__new__(BloomerangClient)
        client.http, client.read_connections = PagedList(list(range(1, 301)), fail_at_skip=150), connections
        got = []
        with pytest.raises(ApiError, match="503"):
            for record in client.iter_pages("/v2/transactions"):
                got.append(record["Id"])
        assert got == list(range(1, 151))


def test_pages_that_moved_are_read_on_from_where_the_server_says():
    shifted = {100: 10}  # the page asked at 100 answers from 110: one at a time goes on at 160
    one, several = PagedList(list(range(1, 301)), start_shift=shifted), PagedList(list(range(1, 301)),
                                                                                start_shift=shifted)
    assert read(several, 4) == read(one, 1)
