"""Typed client for the Bloomerang REST API v2 (``X-API-KEY``; contract: contracts/bloomerang-v2.md).

Conventions encoded here so callers need not know them: singular paths for one record, plural for
lists; create = POST, update = PUT; lists page with ``skip``/``take`` (take ≤ 50) inside
``{Total, TotalFiltered, Start, ResultCount, Results}``; id filters are pipe-joined; ``lastModified``
is sent as ISO UTC with ``Z``. Custom-field definitions/values are plain arrays, not pages.

Every request goes through :class:`~bloom_pipeline.clients.http.ApiSession` (retries, Retry-After,
outcome-unknown POSTs) and the per-key :class:`~bloom_pipeline.clients.ratelimit.SharedRateBudget`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from bloom_pipeline.clients.http import ApiClient, build_session, utc_iso

Record = dict[str, Any]
Timestamp = datetime | date | str
CUSTOM_FIELD_TYPES = ("Constituent", "Transaction", "Interaction", "Note", "Benevon")


def _pipe(values: Iterable[Any] | None) -> str | None:
    """``[1, 2, 3]`` → ``"1|2|3"`` (Bloomerang's array filters); None stays None."""
    if values is None:
        return None
    if isinstance(values, str | int):
        return str(values)
    joined = "|".join(str(v) for v in values)
    return joined or None


def _ts(value: Timestamp | None) -> str | None:
    return None if value is None else utc_iso(value)


class BloomerangClient(ApiClient):
    """Bloomerang v2 for one API key. ``rate_budget`` requests per ``rate_period`` s, shared per key."""

    PAGE_SIZE = 50

    def __init__(
        self,
        base_url: str,
        api_key: str,
        rate_budget: int | None = 1000,
        rate_period: float = 3600.0,
        budget_dir: str | os.PathLike[str] | None = None,
        *,
        key_env: str | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        max_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        read_connections: int = 1,
    ) -> None:
        # most list pages in flight at once after a list's first page (the org's ``bloomerang.read_connections``)
        self.read_connections = max(1, int(read_connections))
        self.http = build_session(
            "bloomerang", "Bloomerang API key", base_url, {"X-API-KEY": api_key}, api_key, rate_budget=rate_budget,
            rate_period=rate_period, budget_dir=budget_dir, env_hint=key_env, timeout=timeout,
            max_attempts=max_attempts, max_wait=max_wait, sleep=sleep,
        )

    # -- paging --------------------------------------------------------------------------------
    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Record]:
        """Every result of a paged list, fetched ``take=50`` at a time; each ``Id`` yielded once.

        Stops when ``Start + ResultCount >= TotalFiltered`` or on a short/empty page. Offset paging
        is not snapshot-stable, so a record that moves pages mid-scan is not yielded twice.

        With ``read_connections`` > 1 the pages the first page's ``TotalFiltered`` announces are read up to that
        many at a time, and judged in order exactly as one after another (the same requests in a list that does
        not change meanwhile): a long read — the first rerun after a load, a new machine paging everything —
        waits for one page per connection, not for every page in turn. A list that shrinks meanwhile may cost
        up to ``read_connections - 1`` pages read past its new end; one that grows is read on one page at a time.
        """
        query = dict(params or {})
        seen: set[Any] = set()

        def fetch(skip: int) -> dict[str, Any]:
            return self.http.get(path, {**query, "skip": skip, "take": self.PAGE_SIZE}) or {}

        def judged(page: dict[str, Any], skip: int) -> tuple[list[Record], int | None]:
            """The page's records not yielded before, and the next skip (None: the list ends here)."""
            results = page.get("Results") or []
            fresh = []
            for record in results:
                rid = record.get("Id")
                if rid is not None and rid in seen:
                    continue
                seen.add(rid)
                fresh.append(record)
            count = int(page.get("ResultCount", len(results)))
            start = int(page.get("Start", skip))
            total = page.get("TotalFiltered", page.get("Total"))
            if count == 0 or count < self.PAGE_SIZE or (total is not None and start + count >= int(total)):
                return fresh, None
            return fresh, start + count

        first = fetch(0)
        records, skip = judged(first, 0)
        yield from records
        total = first.get("TotalFiltered", first.get("Total"))
        if skip is not None and self.read_connections > 1 and total is not None:
            skip = yield from self._pages_in_flight(fetch, judged, skip, int(total))
        while skip is not None:
            records, skip = judged(fetch(skip), skip)
            yield from records

    def _pages_in_flight(self, fetch: Callable[[int], dict[str, Any]],
                         judged: Callable[[dict[str, Any], int], tuple[list[Record], int | None]],
                         skip: int, total: int) -> Iterator[Record]:
        """The pages from ``skip`` to ``total``, ``read_connections`` at a time, judged in order; returns where one
        at a time would go on (None: the list ended). An error is raised at its page, as one at a time."""
        from concurrent.futures import ThreadPoolExecutor

        planned = list(range(skip, total, self.PAGE_SIZE))
        with ThreadPoolExecutor(max_workers=self.read_connections, thread_name_prefix="bloomerang-page") as pool:
            ahead = {n: pool.submit(fetch, planned[n]) for n in range(min(self.read_connections, len(planned)))}
            try:
                for n, planned_skip in enumerate(planned):
                    if n + self.read_connections < len(planned):
                        ahead[n + self.read_connections] = pool.submit(fetch, planned[n + self.read_connections])
                    records, following = judged(ahead.pop(n).result(), planned_skip)
                    yield from records
                    if following is None or n + 1 == len(planned) or following != planned[n + 1]:
                        return following  # ended, read to the planned end, or the pages moved: on one at a time
                return skip  # nothing planned
            finally:
                for future in ahead.values():
                    future.cancel()

    # -- constituents --------------------------------------------------------------------------
    def iter_constituents(self, last_modified: Timestamp | None = None, type: str | None = None,
                          ids: Iterable[int] | None = None, custom_field: tuple[int, str] | None = None,
                          order_by: str | None = None, order_direction: str | None = None,
                          is_favorite: bool | None = None) -> Iterator[Record]:
        """Constituents, optionally modified strictly after ``last_modified`` (UTC) or by a custom value."""
        field_id, field_value = custom_field if custom_field else (None, None)
        return self.iter_pages("constituents", {
            "lastModified": _ts(last_modified), "type": type, "id": _pipe(ids), "orderBy": order_by,
            "orderDirection": order_direction, "customFieldId": field_id, "customFieldValue": field_value,
            "isFavorite": None if is_favorite is None else str(is_favorite).lower(),
        })

    def get_constituent(self, constituent_id: int) -> Record:
        return self.http.get(f"constituent/{int(constituent_id)}")

    def create_constituent(self, body: Mapping[str, Any]) -> Record:
        """POST /constituent. Not retried once sent: a lost answer raises OutcomeUnknownError."""
        return self.http.post("constituent", dict(body))

    def update_constituent(self, constituent_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"constituent/{int(constituent_id)}", dict(body))

    def update_communication_settings(self, constituent_id: int, body: Mapping[str, Any]) -> Record:
        """PUT /constituent/{id}/updateCommunicationSettings: restrictions / preferred channel / email interests.

        ``PUT /constituent`` cannot record why a donor was opted out; this endpoint requires an ``UpdateReason``
        for restrictions and email interests, which is what an auditor asks for. Sections left out are kept;
        ``CommunicationRestrictions`` replaces the whole list (send the current ones too)."""
        return self.http.put(f"constituent/{int(constituent_id)}/updateCommunicationSettings", dict(body))

    def delete_constituent(self, constituent_id: int) -> Record:
        """DELETE /constituent/{id} (Bloomerang refuses while the constituent has transactions)."""
        return self.http.request("DELETE", f"constituent/{int(constituent_id)}")

    def find_constituents_by_custom_field(self, field_id: int, value: str) -> list[Record]:
        """The constituents whose custom field ``field_id`` holds ``value`` (a correlation id lookup)."""
        return list(self.iter_constituents(custom_field=(field_id, value)))

    def find_duplicates(self, *, first_name: str | None = None, last_name: str | None = None,
                        organization_name: str | None = None, street: str | None = None,
                        phone_number: str | None = None, email_address: str | None = None,
                        type: str | None = None) -> list[Record]:
        """GET /constituent/duplicates: Bloomerang's duplicate rule (name + street|phone|email)."""
        page = self.http.get("constituent/duplicates", {
            "firstName": first_name, "lastName": last_name, "organizationName": organization_name,
            "street": street, "phoneNumber": phone_number, "emailAddress": email_address, "type": type,
        }) or {}
        return list(page.get("Results") or [])

    def post_duplicates(self, body: Mapping[str, Any]) -> list[Record]:
        """POST /constituent/duplicates (same search, JSON body; a read, so safe to retry)."""
        page = self.http.post("constituent/duplicates", dict(body), idempotent=True) or {}
        return list(page.get("Results") or [])

    def search_constituents(self, search: str, type: str | None = None) -> Iterator[Record]:
        """GET /constituents/search: fuzzy, may include households — verify matches locally."""
        return self.iter_pages("constituents/search", {"search": search, "type": type})

    # -- contact sub-resources -------------------------------------------------------------------
    def iter_emails(self, constituent_ids: Iterable[int] | None = None, ids: Iterable[int] | None = None,
                    last_modified: Timestamp | None = None) -> Iterator[Record]:
        return self.iter_pages("emails", {"constituent": _pipe(constituent_ids), "id": _pipe(ids),
                                          "lastModified": _ts(last_modified)})

    def get_email(self, email_id: int) -> Record:
        return self.http.get(f"email/{int(email_id)}")

    def create_email(self, body: Mapping[str, Any]) -> Record:
        return self.http.post("email", dict(body))

    def update_email(self, email_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"email/{int(email_id)}", dict(body))

    def delete_email(self, email_id: int) -> Record:
        return self.http.request("DELETE", f"email/{int(email_id)}")

    def iter_phones(self, constituent_ids: Iterable[int] | None = None,
                    ids: Iterable[int] | None = None) -> Iterator[Record]:
        """Phones have no lastModified filter in v2."""
        return self.iter_pages("phones", {"constituent": _pipe(constituent_ids), "id": _pipe(ids)})

    def get_phone(self, phone_id: int) -> Record:
        return self.http.get(f"phone/{int(phone_id)}")

    def create_phone(self, body: Mapping[str, Any]) -> Record:
        return self.http.post("phone", dict(body))

    def update_phone(self, phone_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"phone/{int(phone_id)}", dict(body))

    def delete_phone(self, phone_id: int) -> Record:
        return self.http.request("DELETE", f"phone/{int(phone_id)}")

    def iter_addresses(self, constituent_ids: Iterable[int] | None = None, ids: Iterable[int] | None = None,
                       last_modified: Timestamp | None = None) -> Iterator[Record]:
        return self.iter_pages("addresses", {"constituent": _pipe(constituent_ids), "id": _pipe(ids),
                                             "lastModified": _ts(last_modified)})

    def get_address(self, address_id: int) -> Record:
        return self.http.get(f"address/{int(address_id)}")

    def create_address(self, body: Mapping[str, Any]) -> Record:
        return self.http.post("address", dict(body))

    def update_address(self, address_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"address/{int(address_id)}", dict(body))

    def delete_address(self, address_id: int) -> Record:
        return self.http.request("DELETE", f"address/{int(address_id)}")

    # -- transactions, designations, refunds ---------------------------------------------------------
    def iter_transactions(self, last_modified: Timestamp | None = None, account_ids: Iterable[int] | None = None,
                          ids: Iterable[int] | None = None, types: Iterable[str] | None = None,
                          min_amount: float | None = None, max_amount: float | None = None,
                          order_by: str | None = None, order_direction: str | None = None,
                          custom_field: tuple[int, str] | None = None) -> Iterator[Record]:
        """Transactions (default order ``Date`` desc server-side; pass ``order_by`` for stable scans)."""
        field_id, field_value = custom_field if custom_field else (None, None)
        return self.iter_pages("transactions", {
            "lastModified": _ts(last_modified), "accountId": _pipe(account_ids), "id": _pipe(ids),
            "type": _pipe(types), "minAmount": min_amount, "maxAmount": max_amount, "orderBy": order_by,
            "orderDirection": order_direction, "customFieldId": field_id, "customFieldValue": field_value,
        })

    def find_transactions_by_custom_field(self, field_id: int, value: str) -> list[Record]:
        """Transactions whose designation custom field ``field_id`` holds ``value``."""
        return list(self.iter_transactions(custom_field=(field_id, value)))

    def get_transaction(self, transaction_id: int) -> Record:
        return self.http.get(f"transaction/{int(transaction_id)}")

    def create_transaction(self, body: Mapping[str, Any]) -> Record:
        """POST /transaction. Not retried once sent: a lost answer raises OutcomeUnknownError."""
        return self.http.post("transaction", dict(body))

    def update_transaction(self, transaction_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"transaction/{int(transaction_id)}", dict(body))

    def delete_transaction(self, transaction_id: int) -> Record:
        return self.http.request("DELETE", f"transaction/{int(transaction_id)}")

    def iter_designations(self, transaction_ids: Iterable[int] | None = None,
                          ids: Iterable[int] | None = None) -> Iterator[Record]:
        return self.iter_pages("transactions/designations", {"transactionIds": _pipe(transaction_ids),
                                                             "id": _pipe(ids)})

    def get_designation(self, designation_id: int) -> Record:
        return self.http.get(f"transactions/designation/{int(designation_id)}")

    def iter_pledge_installments(self, pledge_id: int) -> Iterator[Record]:
        """A pledge's installment plan; ``pledge_id`` is the Pledge *designation* id."""
        return self.iter_pages(f"pledge/{int(pledge_id)}/installments", {})

    def create_refund(self, body: Mapping[str, Any]) -> Record:
        """POST /refund. ``RunProcessorRefund`` defaults to true server-side: gifts processed outside
        Bloomerang should send ``false`` (this client leaves the body as given)."""
        return self.http.post("refund", dict(body))

    def iter_refunds(self, transaction_ids: Iterable[int] | None = None, ids: Iterable[int] | None = None,
                     last_modified: Timestamp | None = None) -> Iterator[Record]:
        return self.iter_pages("refunds", {"transactionId": _pipe(transaction_ids), "id": _pipe(ids),
                                           "lastModified": _ts(last_modified)})

    def get_refund(self, refund_id: int) -> Record:
        return self.http.get(f"refund/{int(refund_id)}")

    # -- funds, campaigns, appeals ----------------------------------------------------------------
    # -- interactions ----------------------------------------------------------------------------
    def iter_interactions(self, constituent_ids: Iterable[int] | None = None, purposes: Iterable[str] | None = None,
                          channels: Iterable[str] | None = None, ids: Iterable[int] | None = None) -> Iterator[Record]:
        """Interactions, filtered by constituent, purpose and channel (pipe lists); no ``lastModified`` filter."""
        return self.iter_pages("interactions", {"constituent": _pipe(constituent_ids), "purpose": _pipe(purposes),
                                                "channel": _pipe(channels), "id": _pipe(ids)})

    def get_interaction(self, interaction_id: int) -> Record:
        return self.http.get(f"interaction/{int(interaction_id)}")

    def create_interaction(self, body: Mapping[str, Any]) -> Record:
        """POST /interaction (``Date, Channel, Purpose, Subject`` required). Not retried once sent."""
        return self.http.post("interaction", dict(body))

    def update_interaction(self, interaction_id: int, body: Mapping[str, Any]) -> Record:
        """PUT /interaction/{id}: patch-like; an interaction cannot move to another constituent."""
        return self.http.put(f"interaction/{int(interaction_id)}", dict(body))

    def _reference_list(self, plural: str, ids: Iterable[int] | None, is_active: bool | None,
                        search: str | None, last_modified: Timestamp | None = None) -> Iterator[Record]:
        return self.iter_pages(plural, {"id": _pipe(ids), "search": search, "lastModified": _ts(last_modified),
                                        "isActive": None if is_active is None else str(is_active).lower()})

    def iter_funds(self, ids: Iterable[int] | None = None, is_active: bool | None = None,
                   search: str | None = None) -> Iterator[Record]:
        """Funds (no lastModified filter exists for funds)."""
        return self._reference_list("funds", ids, is_active, search)

    def get_fund(self, fund_id: int) -> Record:
        return self.http.get(f"fund/{int(fund_id)}")

    def create_fund(self, body: Mapping[str, Any]) -> Record:
        return self.http.post("fund", dict(body))

    def update_fund(self, fund_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"fund/{int(fund_id)}", dict(body))

    def iter_campaigns(self, ids: Iterable[int] | None = None, is_active: bool | None = None,
                       search: str | None = None, last_modified: Timestamp | None = None) -> Iterator[Record]:
        return self._reference_list("campaigns", ids, is_active, search, last_modified)

    def get_campaign(self, campaign_id: int) -> Record:
        return self.http.get(f"campaign/{int(campaign_id)}")

    def create_campaign(self, body: Mapping[str, Any]) -> Record:
        return self.http.post("campaign", dict(body))

    def update_campaign(self, campaign_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"campaign/{int(campaign_id)}", dict(body))

    def iter_appeals(self, ids: Iterable[int] | None = None, is_active: bool | None = None,
                     search: str | None = None, last_modified: Timestamp | None = None) -> Iterator[Record]:
        return self._reference_list("appeals", ids, is_active, search, last_modified)

    def get_appeal(self, appeal_id: int) -> Record:
        return self.http.get(f"appeal/{int(appeal_id)}")

    def create_appeal(self, body: Mapping[str, Any]) -> Record:
        return self.http.post("appeal", dict(body))

    def update_appeal(self, appeal_id: int, body: Mapping[str, Any]) -> Record:
        return self.http.put(f"appeal/{int(appeal_id)}", dict(body))

    def iter_tributes(self, ids: Iterable[int] | None = None, is_active: bool | None = None) -> Iterator[Record]:
        """Tributes (``GET /tributes``: skip, take, id, isActive — no search, no lastModified)."""
        return self.iter_pages("tributes", {"id": _pipe(ids),
                                            "isActive": None if is_active is None else str(is_active).lower()})

    def create_tribute(self, body: Mapping[str, Any]) -> Record:
        """``POST /tribute``: ``Name`` and ``TributeType`` (InHonorOf | InMemoryOf) are required."""
        return self.http.post("tribute", dict(body))

    # -- custom fields (plain arrays) ----------------------------------------------------------------
    def custom_fields(self, type: str = "Constituent", is_active: bool | None = None) -> list[Record]:
        return list(self.http.get(f"customFields/{type}/", {
            "isActive": None if is_active is None else str(is_active).lower()}) or [])

    def custom_field_categories(self, type: str = "Constituent") -> list[Record]:
        return list(self.http.get(f"customFieldCategories/{type}/") or [])

    def custom_values(self, type: str = "Constituent", field_id: int | None = None) -> list[Record]:
        path = f"customValues/{type}" if field_id is None else f"customValues/{type}/{int(field_id)}"
        return list(self.http.get(path) or [])

    # -- account ---------------------------------------------------------------------------------
    def current_user(self) -> Record:
        """GET /user/current: the key's owner — a cheap credential check."""
        return self.http.get("user/current")

    def database(self) -> Record:
        """GET /database: the organization behind the key."""
        return self.http.get("database")
