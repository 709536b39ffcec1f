"""Typed client for the Handbid manager API (Bearer token; the **decided** shape of
contracts/wegive-handbid.md §4.2 — Handbid publishes no organization-level API).

Lists page with ``limit`` (≤ 100) + ``offset`` and report ``totalCount``; each list names its rows
after the resource (``{"auctions": [...], "totalCount": n}``). Times are epoch seconds, money integer
cents. The organization id appears in the org-scoped paths; auction-scoped lists (receipts, payments,
items) hang off the auction. Payments are final only once their auction is ``reconciled`` — the
caller decides which auctions to read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from bloom_pipeline.clients.http import ApiClient, PageRepeats, build_session

Record = dict[str, Any]


def epoch_seconds(value: datetime | date | int | float) -> int:
    """A cursor as Handbid's epoch seconds (naive datetimes are UTC; a date is midnight UTC)."""
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def _unwrap(answer: Any, key: str) -> Record:
    """Single-record answers may come bare or wrapped (``{"contact": {...}}``)."""
    if isinstance(answer, dict) and isinstance(answer.get(key), dict):
        return answer[key]
    return answer


class HandbidClient(ApiClient):
    """Handbid for one manager token and organization."""

    PAGE_SIZE = 100

    def __init__(
        self,
        base_url: str,
        token: str,
        organization_id: int,
        rate_budget: int | None = None,
        rate_period: float = 60.0,
        budget_dir: str | os.PathLike[str] | None = None,
        *,
        token_env: str | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = build_session(
            "handbid", "Handbid token", base_url, {"Authorization": f"Bearer {token}"}, token,
            rate_budget=rate_budget, rate_period=rate_period, budget_dir=budget_dir, env_hint=token_env,
            timeout=timeout, max_attempts=max_attempts, max_wait=max_wait, sleep=sleep,
        )
        self.organization_id = int(organization_id)

    def __repr__(self) -> str:
        return f"HandbidClient(base_url={self.http.base_url!r}, organization_id={self.organization_id})"

    # -- paging --------------------------------------------------------------------------------
    def iter_pages(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> Iterator[Record]:
        """Every row under ``key``, ``limit=100`` at a time, until ``offset >= totalCount`` or a short page."""
        query = dict(params or {})
        offset, seen = 0, PageRepeats()
        while True:
            page = self.http.get(path, {**query, "limit": self.PAGE_SIZE, "offset": offset}) or {}
            rows = page.get(key) or []
            for row in rows:
                if not seen.is_repeat(row):
                    yield row
            offset += len(rows)
            total = page.get("totalCount")
            if not rows or len(rows) < self.PAGE_SIZE or (total is not None and offset >= int(total)):
                return

    @property
    def _org(self) -> str:
        return f"v3/manager/organizations/{self.organization_id}"

    # -- organization scope ------------------------------------------------------------------------
    def iter_auctions(self, status: str | Iterable[str] | None = None) -> Iterator[Record]:
        """Auctions (events) of the organization, optionally of some statuses (e.g. ``reconciled``)."""
        if status is not None and not isinstance(status, str):
            status = ",".join(status)
        return self.iter_pages(f"{self._org}/auctions", "auctions", {"status": status or None})

    def iter_contacts(self, updated_since: datetime | date | int | float | None = None) -> Iterator[Record]:
        """Contacts with ``dateUpdated >= updated_since`` (epoch seconds), or all of them.

        The API filter is strictly-greater at one-second resolution, so the client asks from one
        second earlier: a contact changed in the same second as the cursor is not missed.
        """
        since = None if updated_since is None else epoch_seconds(updated_since) - 1
        return self.iter_pages(f"{self._org}/contacts", "contacts", {"updatedSince": since})

    def get_contact(self, contact_id: int) -> Record:
        return _unwrap(self.http.get(f"v3/manager/contacts/{int(contact_id)}"), "contact")

    def update_contact(self, contact_id: int, body: Mapping[str, Any]) -> Record:
        """PUT contact fields back (Bloomerang → Handbid)."""
        return _unwrap(self.http.put(f"v3/manager/contacts/{int(contact_id)}", dict(body)), "contact")

    # -- auction scope ---------------------------------------------------------------------------
    def iter_receipts(self, auction_id: int) -> Iterator[Record]:
        return self.iter_pages(f"v3/manager/auctions/{int(auction_id)}/receipts", "receipts")

    def iter_payments(self, auction_id: int) -> Iterator[Record]:
        return self.iter_pages(f"v3/manager/auctions/{int(auction_id)}/payments", "payments")

    def iter_items(self, auction_id: int) -> Iterator[Record]:
        return self.iter_pages(f"v3/manager/auctions/{int(auction_id)}/items", "items")

    def iter_bidders(self, auction_id: int) -> Iterator[Record]:
        """The auction's registered bidders and guests (auction <-> user relation: ``isBidder``, ``isComing``,
        ``isCheckedIn``, ``currentPaddleNumber``) — the **assumed** shape of contracts/wegive-handbid.md §4.2."""
        return self.iter_pages(f"v3/manager/auctions/{int(auction_id)}/bidders", "bidders")
