"""Typed client for the WeGive dashboard API (Bearer token; contract: contracts/wegive-handbid.md §1, §4.1).

Org resources live under ``/api/dashboard/…``. Lists page with ``page`` + ``count`` (≤ 200) inside
``{"data": [...], "meta": {current_page, last_page, ...}}``; the generator loops until
``current_page >= last_page``. Range filters use bracket style (``updated_at[start]=…``).

Donors have **no** updated-at filter: callers full-scan ``iter_donors()`` and diff against the
last-synced snapshot. A list row is a ``DonorTableResource`` — ``first_name`` and ``name`` but no
``last_name`` / ``middle_name``, the address as ``mailing_address_object`` plus a ``mailingAddress``
string (contracts/wegive-handbid.md §1.4) — so whoever needs the person reads ``get_donor(id)``, the
``DonorViewResource``. Transactions filter on ``updated_at`` and ``created`` ranges. Write-back is
``PUT /dashboard/donors/{id}`` (a sandbox decision; the public spec lacks it) and the real
``POST /dashboard/donors/find-or-create`` — safe to retry, because it finds before it creates.

Both writes answer with the donor's detail. ``on_donor_detail`` (None, or a callable) is handed each such
answer: it is the freshest detail WeGive will give, and the extract step keeps it so that the next run
need not fetch the donor again (``sync/extract/donor_details.py``). A failing callback is logged and
never fails the write.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from bloom_pipeline.clients.http import ApiClient, PageRepeats, build_session, utc_iso

log = logging.getLogger(__name__)

Record = dict[str, Any]
Timestamp = datetime | date | str
Range = tuple[Timestamp | None, Timestamp | None]


def _range(name: str, bounds: Range | None) -> dict[str, str]:
    """``("created", (a, b))`` → ``{"created[start]": a, "created[end]": b}`` (either side optional)."""
    if not bounds:
        return {}
    start, end = bounds
    out = {}
    if start is not None:
        out[f"{name}[start]"] = utc_iso(start)
    if end is not None:
        out[f"{name}[end]"] = utc_iso(end)
    return out


def _unwrap(answer: Any) -> Record:
    """Single-record answers come as ``{"data": {...}}``."""
    if isinstance(answer, dict) and isinstance(answer.get("data"), dict):
        return answer["data"]
    return answer


class WeGiveClient(ApiClient):
    """WeGive for one organization token. No rate budget unless ``rate_budget`` is given."""

    PAGE_SIZE = 200

    def __init__(
        self,
        base_url: str,
        token: str,
        rate_budget: int | None = None,
        rate_period: float = 3600.0,
        budget_dir: str | os.PathLike[str] | None = None,
        *,
        token_env: str | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = build_session(
            "wegive", "WeGive token", base_url, {"Authorization": f"Bearer {token}"}, token, rate_budget=rate_budget,
            rate_period=rate_period, budget_dir=budget_dir, env_hint=token_env, timeout=timeout,
            max_attempts=max_attempts, max_wait=max_wait, sleep=sleep,
        )
        self.on_donor_detail: Callable[[Record], None] | None = None

    # -- paging --------------------------------------------------------------------------------
    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Record]:
        """Every row of a list, ``count=200`` per page, until ``current_page >= last_page``."""
        query = dict(params or {})
        page_no, seen = 1, PageRepeats()
        while True:
            page = self.http.get(path, {**query, "page": page_no, "count": self.PAGE_SIZE}) or {}
            rows = page.get("data") or []
            for row in rows:
                if not seen.is_repeat(row):
                    yield row
            meta = page.get("meta") or {}
            current = int(meta.get("current_page", page_no))
            last = int(meta.get("last_page", current))
            if not rows or current >= last:
                return
            page_no = current + 1

    # -- donors ----------------------------------------------------------------------------------
    def iter_donors(self, view: str | None = None, type: str | None = None,
                    created_range: Range | None = None, **filters: Any) -> Iterator[Record]:
        """All donors as list rows (``DonorTableResource``; full scan: no updated-since filter for donors)."""
        return self.iter_pages("dashboard/donors", {"view": view, "type": type,
                                                    **_range("created_at", created_range), **filters})

    def get_donor(self, donor_id: int) -> Record:
        """One donor's detail (``DonorViewResource``: names, middle name, addresses, phones)."""
        return _unwrap(self.http.get(f"dashboard/donors/{int(donor_id)}"))

    def update_donor(self, donor_id: int, body: Mapping[str, Any]) -> Record:
        """PUT contact fields and ``bloomerang_id`` back onto a donor; the answer is its detail."""
        return self._written(_unwrap(self.http.put(f"dashboard/donors/{int(donor_id)}", dict(body))))

    def find_or_create_donor(self, body: Mapping[str, Any]) -> Record:
        """``{type, email, first_name?, last_name?, phone?, address?}`` → the matching or new donor."""
        return self._written(_unwrap(self.http.post("dashboard/donors/find-or-create", dict(body),
                                                    idempotent=True)))

    def _written(self, detail: Record) -> Record:
        if self.on_donor_detail is not None and isinstance(detail, dict) and detail.get("id") is not None:
            try:
                self.on_donor_detail(detail)
            except Exception:  # a cache of the answer must never fail the write itself
                log.warning("could not keep the detail WeGive answered for donor %s", detail.get("id"),
                            exc_info=True)
        return detail

    # -- transactions ------------------------------------------------------------------------------
    def iter_transactions(self, updated_since: Timestamp | None = None, created_range: Range | None = None,
                          status: str | None = None, updated_until: Timestamp | None = None,
                          source_type: str | None = None, donor_id: int | None = None,
                          sort: Mapping[str, str] | None = None, **filters: Any) -> Iterator[Record]:
        """Transactions updated at/after ``updated_since`` and/or created within ``created_range``."""
        params: dict[str, Any] = {"status": status, "source_type": source_type, "donor_id": donor_id}
        params.update(_range("updated_at", (updated_since, updated_until)))
        params.update(_range("created", created_range))
        params.update({f"sort[{key}]": direction for key, direction in (sort or {}).items()})
        params.update(filters)
        return self.iter_pages("dashboard/transactions", params)

    def get_transaction(self, transaction_id: int) -> Record:
        return _unwrap(self.http.get(f"dashboard/transactions/{int(transaction_id)}"))

    # -- funds, allocations, campaigns ---------------------------------------------------------------
    def iter_funds(self, view: str | None = None, **filters: Any) -> Iterator[Record]:
        return self.iter_pages("dashboard/funds", {"view": view, **filters})

    def get_fund(self, fund_id: int) -> Record:
        return _unwrap(self.http.get(f"dashboard/funds/{int(fund_id)}"))

    def update_fund(self, fund_id: int, body: Mapping[str, Any]) -> Record:
        """PUT fund fields (e.g. ``bloomerang_id``) back onto a WeGive fund."""
        return _unwrap(self.http.put(f"dashboard/funds/{int(fund_id)}", dict(body)))

    def iter_fund_allocations(self, **filters: Any) -> Iterator[Record]:
        return self.iter_pages("dashboard/fund-allocations", filters)

    def iter_campaigns(self, view: str | None = None, **filters: Any) -> Iterator[Record]:
        return self.iter_pages("dashboard/campaigns", {"view": view, **filters})

    def get_campaign(self, campaign_id: int) -> Record:
        return _unwrap(self.http.get(f"dashboard/campaigns/{int(campaign_id)}"))

    # -- schedules: pledges and scheduled (recurring) donations ------------------------------------------
    def iter_pledges(self, view: str | None = None, **filters: Any) -> Iterator[Record]:
        """Every pledge (``PledgeViewResource``): its total, installment size and what was paid so far."""
        return self.iter_pages("dashboard/pledges", {"view": view, **filters})

    def get_pledge(self, pledge_id: int) -> Record:
        return _unwrap(self.http.get(f"dashboard/pledges/{int(pledge_id)}"))

    def iter_scheduled_donations(self, view: str | None = None, **filters: Any) -> Iterator[Record]:
        """Every recurring schedule (``ScheduledDonationResource``: amount, frequency, start date)."""
        return self.iter_pages("dashboard/scheduled-donations", {"view": view, **filters})

    def get_scheduled_donation(self, schedule_id: int) -> Record:
        return _unwrap(self.http.get(f"dashboard/scheduled-donations/{int(schedule_id)}"))
