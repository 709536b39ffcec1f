"""The Bloomerang writes of each entity, with correlation ids and lookups for lost answers.

Every record we create in Bloomerang carries the source id in a custom field named by the org YAML
(constituents on the record, transactions on each designation — where Bloomerang keeps transaction
custom values). That is what makes a lost answer resolvable: ``find_existing`` asks Bloomerang for the
record holding that correlation value instead of guessing.
"""

from __future__ import annotations

import logging
from typing import Any

from bloom_pipeline.clients.http import OutcomeUnknownError
from bloom_pipeline.sync.apply.tributes import without_tribute

log = logging.getLogger(__name__)

Record = dict[str, Any]


def with_custom_value(values: list[Record] | None, field_id: int, value: str) -> list[Record]:
    """A write-shape CustomValues list with ``field_id`` set to ``value`` (replacing an older value)."""
    kept = [v for v in (values or []) if v.get("FieldId") != field_id]
    return [*kept, {"FieldId": field_id, "Value": value}]


class ConstituentWriter:
    entity = "constituents"

    def __init__(self, client: Any, field_ids: dict[str, int]) -> None:
        self.client = client
        self.field_ids = field_ids  # source -> Constituent custom field id holding that source's id

    def _correlated(self, source: str, source_id: str, payload: Record) -> Record:
        body = dict(payload)  # only the top level changes (a new CustomValues list): the rest is shared, unchanged
        field_id = self.field_ids.get(source)
        if field_id is not None:
            body["CustomValues"] = with_custom_value(body.get("CustomValues"), field_id, source_id)
        return body

    def create(self, source: str, source_id: str, payload: Record) -> Record:
        return self.client.create_constituent(self._correlated(source, source_id, payload))

    def update(self, bloomerang_id: int, payload: Record) -> Record:
        return self.client.update_constituent(bloomerang_id, payload)

    def link(self, bloomerang_id: int, source: str, source_id: str, payload: Record) -> Record:
        """Attach a second source's id (and its planned field changes) to an existing constituent."""
        return self.client.update_constituent(bloomerang_id, self._correlated(source, source_id, payload))

    def find_existing(self, source: str, source_id: str, payload: Record) -> Record | None:
        field_id = self.field_ids.get(source)
        if field_id is None:
            return None
        found = self.client.find_constituents_by_custom_field(field_id, source_id)
        return found[0] if found else None


def refund_body(transaction_id: Any, date: Any, source: str = "", source_id: str = "") -> Record:
    """The POST /refund body of a gift: ``RunProcessorRefund`` false (the gift was processed outside Bloomerang)
    and ``Date`` the refund's own date (the planned payload's ``Refund.Date``: WeGive ``refunded_at``) — the
    gift's date only when the source has none (Handbid), since Bloomerang requires one. Shared with
    ``mapping preview``, so what the preview shows is what is posted."""
    return {
        "TransactionId": transaction_id,
        "RunProcessorRefund": False,
        "Date": date,
        "Note": f"Refunded in {source or 'source'} {source_id}".strip(),
    }


def _refund_date(refund: Any) -> Any:
    return refund.get("Date") if isinstance(refund, dict) else None


class TransactionWriter:
    """Transactions with designation-level correlation ids; refunds follow the create."""

    entity = "transactions"

    def __init__(self, client: Any, field_ids: dict[str, int]) -> None:
        self.client = client
        self.field_ids = field_ids  # source -> Transaction custom field id

    def _body(self, source: str, source_id: str, payload: Record) -> tuple[Record, bool, Any]:
        body = without_tribute(payload)
        refunded = bool(body.pop("IsRefunded", False))
        refund_date = _refund_date(body.pop("Refund", None))  # the refund's body, never the transaction's
        field_id = self.field_ids.get(source)
        if field_id is not None:
            for designation in body.get("Designations", []):
                designation["CustomValues"] = with_custom_value(designation.get("CustomValues"), field_id, source_id)
        return body, refunded, refund_date

    def create(self, source: str, source_id: str, payload: Record) -> Record:
        body, refunded, refund_date = self._body(source, source_id, payload)
        created = self.client.create_transaction(body)
        if refunded:
            created = self.refund(created, source, source_id, date=refund_date)
        return created

    def update(self, bloomerang_id: int, payload: Record) -> Record:
        refunded = bool(payload.get("IsRefunded", False))
        body = without_tribute({k: v for k, v in payload.items() if k not in ("IsRefunded", "Refund")})
        current = self.client.update_transaction(bloomerang_id, body) if body else self.client.get_transaction(
            bloomerang_id
        )
        if refunded and current.get("IsRefunded") not in ("Yes", True):
            current = self.refund(current, "", "", date=_refund_date(payload.get("Refund")))
        return current

    def refund(self, transaction: Record, source: str, source_id: str, date: Any = None) -> Record:
        """POST /refund with RunProcessorRefund false, dated ``date`` (the source's refund date) when known."""
        body = refund_body(transaction["Id"], date or transaction.get("Date"), source, source_id)
        try:
            refund = self.client.create_refund(body)
        except OutcomeUnknownError:
            fresh = self.client.get_transaction(transaction["Id"])
            if fresh.get("IsRefunded") not in ("Yes", True):
                self.client.create_refund(body)
            return self.client.get_transaction(transaction["Id"])
        # the answer names the refund: no need to read the transaction back (one request per refund, not two)
        return {**transaction, "IsRefunded": "Yes", "RefundIds": [*transaction.get("RefundIds", []), refund.get("Id")]}

    def find_existing(self, source: str, source_id: str, payload: Record) -> Record | None:
        field_id = self.field_ids.get(source)
        if field_id is None:
            return None
        found = self.client.find_transactions_by_custom_field(field_id, source_id)
        return found[0] if found else None


class FundWriter:
    """Funds have no custom fields: they are matched by name, which Bloomerang keeps unique per org."""

    entity = "funds"

    def __init__(self, client: Any) -> None:
        self.client = client

    def create(self, source: str, source_id: str, payload: Record) -> Record:
        return self.client.create_fund(payload)

    def update(self, bloomerang_id: int, payload: Record) -> Record:
        return self.client.update_fund(bloomerang_id, payload)

    def find_existing(self, source: str, source_id: str, payload: Record) -> Record | None:
        name = str(payload.get("Name", "")).strip().casefold()
        if not name:
            return None
        for fund in self.client.iter_funds(search=payload.get("Name")):
            if str(fund.get("Name", "")).strip().casefold() == name:
                return fund
        return None
