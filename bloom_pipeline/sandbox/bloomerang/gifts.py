"""Transactions, designations and refunds for the Bloomerang simulator store.

Decisions taken from SPEC26's method-specific transaction bodies (``TransactionMethod*`` models):

* Required on every transaction: ``AccountId`` (an existing constituent), ``Date``, ``Amount``, ``Method``
  (enum ``None|Cash|Check|CreditCard|Eft|InKind|ApplePay|GooglePay|PayPal|Venmo``), 1–20 ``Designations``.
* ``Amount`` must equal the sum of the designation amounts (to the cent).
* ``Check`` requires ``CheckNumber``; ``InKind`` requires ``InKindDescription``; ``PayPal``/``Venmo``
  require ``WalletItemId``; ``CreditCard``/``ApplePay``/``GooglePay`` need ``WalletItemId`` or the full
  manual set ``CreditCardType, CreditCardLastFourDigits, CreditCardExpMonth, CreditCardExpYear``;
  ``Eft`` needs ``WalletItemId`` or ``EftAccountType, EftLastFourDigits, EftRoutingNumber``. A
  ``WalletItemId`` must name a stored wallet item (``store.wallet_items``, empty by default): with a
  wallet item the real API *charges* the donor, so an importer of already-processed gifts must not send
  one — the sandbox makes that mistake loud. Method fields of other methods are dropped.
* Designations: ``Donation`` needs ``FundId``; ``Pledge`` needs ``FundId, PledgeFrequency,
  PledgeInstallments`` (installments summing to the amount); ``PledgePayment`` needs ``PledgeId``;
  ``RecurringDonation`` needs ``FundId, RecurringDonationStartDate, RecurringDonationFrequency``;
  ``RecurringDonationPayment`` needs ``RecurringDonationId, IsExtraPayment``. Pledge / recurring ids are
  *designation* ids of an existing schedule of that type; payments inherit fund/campaign/appeal from it.
  A Pledge or RecurringDonation transaction has exactly one designation. Fund, Campaign, Appeal and
  Tribute ids must exist (400 otherwise). ``AcknowledgementStatus`` defaults to ``No``. A
  ``NonDeductibleAmount`` is at most the designation's ``Amount`` (knob ``non_deductible_within_amount``).
* PUT is patch-like on the transaction; a ``Designations`` list replaces the set — items carrying the
  ``Id`` of one of the transaction's designations update it in place, others are created.
* Refund (POST /refund): ``TransactionId`` and ``Date`` required (both spec copies list Date as
  required); a full refund; the transaction becomes ``IsRefunded: "Yes"`` with ``RefundIds``. A second
  refund of the same transaction → 400. ``RunProcessorRefund`` (default true) is recorded on the refund
  record (``_run_processor_refund``) so tests can assert what a client asked for. PUT /refund/{id} changes
  ``Date`` / ``Note`` (``Id`` required, a refund never moves to another transaction); DELETE /refund/{id}
  makes the transaction unrefunded again.
"""

from __future__ import annotations

from typing import Any

from bloom_pipeline.sandbox.bloomerang.validation import (
    ACK_STATUSES,
    CARD_TYPES,
    DESIGNATION_TYPES,
    EFT_TYPES,
    IN_KIND_TYPES,
    METHODS,
    PLEDGE_FREQUENCIES,
    RECURRING_FREQUENCIES,
    bad,
    boolean,
    business_date,
    custom_value_writes,
    drop_nulls,
    enum,
    int32,
    integer_id,
    money,
    not_found,
    require_object,
    text,
)

_METHOD_FIELDS = {
    "Check": ("CheckNumber", "CheckDate"),
    "InKind": ("InKindDescription", "InKindType", "InKindMarketValue"),
    "CreditCard": ("WalletItemId", "CreditCardType", "CreditCardLastFourDigits", "CreditCardExpMonth",
                   "CreditCardExpYear"),
    "Eft": ("WalletItemId", "EftAccountType", "EftLastFourDigits", "EftRoutingNumber"),
    "PayPal": ("WalletItemId",),
}
for _wallet in ("ApplePay", "GooglePay"):
    _METHOD_FIELDS[_wallet] = _METHOD_FIELDS["CreditCard"]
_METHOD_FIELDS["Venmo"] = _METHOD_FIELDS["PayPal"]
_MANUAL = {"CreditCard": _METHOD_FIELDS["CreditCard"][1:], "Eft": _METHOD_FIELDS["Eft"][1:]}
_TOP_FIELDS = ("AccountId", "Date", "Amount", "FeeAmount", "Method", "IntegrationUrl", "Designations") + tuple(
    {f for fields in _METHOD_FIELDS.values() for f in fields}
)
_DESIGNATION_FIELDS = (
    "Type", "Amount", "Note", "FundId", "CampaignId", "AppealId", "TributeId", "AcknowledgementStatus",
    "NonDeductibleAmount", "QuickbooksAccountId", "PledgeId", "PledgeFrequency", "PledgeInstallments",
    "RecurringDonationId", "IsExtraPayment", "RecurringDonationStartDate", "RecurringDonationEndDate",
    "RecurringDonationFrequency", "RecurringDonationDay1", "RecurringDonationDay2",
)


class GiftsMixin:
    """Transaction / designation / refund operations; mixed into ``BloomerangStore``."""

    # Knob (unknown: the document types NonDeductibleAmount as plain currency): True, the less convenient
    # reading and the default, refuses a designation whose NonDeductibleAmount is more than its Amount.
    non_deductible_within_amount = True

    # -- writes ---------------------------------------------------------------------------------
    def create_transaction(self, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            fields, designations = self._check_transaction(body, {}, [])
            record = fields | {"Id": self.next_id(), "TransactionNumber": self._take("transaction"),
                               "_refund_ids": [], "_audit": self.new_audit(self.api_actor)}
            self.transactions[record["Id"]] = record
            self.index_modified("transaction", record)
            self.transactions_by_date.add(record["Date"], record["Id"])
            self._store_designations(record, designations)
            return self.render_transaction(record["Id"])

    def update_transaction(self, record_id: int, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            record = self.get_record("transaction", record_id)
            current = self.designations_of(record_id)
            fields, designations = self._check_transaction(body, self.public(record), current)
            self.transactions_by_date.move(record["Date"], fields["Date"], record_id)
            for key in _TOP_FIELDS:
                record.pop(key, None)
            record.update(fields)
            self._store_designations(record, designations)
            self.bump(record)
            return self.render_transaction(record_id)

    def _check_transaction(self, body: dict, current: dict, designations: list[dict]) -> tuple[dict, list]:
        merged = dict(current) | {k: body[k] for k in _TOP_FIELDS if k in body and k != "Designations"}
        for key in ("AccountId", "Date", "Amount", "Method"):
            if merged.get(key) is None:
                raise bad(f"{key} is required")
        account_id = integer_id(merged["AccountId"], "AccountId")
        if account_id not in self.constituents:
            raise bad(f"No constituent with id {account_id} found")
        method = enum(merged["Method"], "Method", METHODS)
        fields: dict[str, Any] = {"AccountId": account_id, "Date": business_date(merged["Date"], "Date"),
                                  "Amount": money(merged["Amount"], "Amount"), "Method": method}
        if merged.get("FeeAmount") is not None:
            fields["FeeAmount"] = money(merged["FeeAmount"], "FeeAmount")
        if merged.get("IntegrationUrl") is not None:
            fields["IntegrationUrl"] = text(merged["IntegrationUrl"], "IntegrationUrl")
        fields |= self._method_fields(method, merged)
        if "Designations" in body:
            items = body["Designations"]
            if not isinstance(items, list) or not 1 <= len(items) <= 20:
                raise bad("Designations must be a list of 1 to 20 designations")
            by_id = {d["Id"]: d for d in designations}
            checked = [self._check_designation(require_object(i, "designation"), by_id) for i in items]
        elif designations:
            checked = [(d, self._designation_write(d), []) for d in designations]
        else:
            raise bad("Designations is required")
        total = round(sum(fields_["Amount"] for _, fields_, _ in checked), 2)
        if abs(total - fields["Amount"]) > 0.004:
            raise bad(f"Amount {fields['Amount']:.2f} must equal the sum of the designation amounts {total:.2f}")
        kinds = {fields_["Type"] for _, fields_, _ in checked}
        if kinds & {"Pledge", "RecurringDonation"} and len(checked) > 1:
            raise bad("A Pledge or RecurringDonation transaction can only have one designation")
        return fields, checked

    def _method_fields(self, method: str, merged: dict[str, Any]) -> dict[str, Any]:
        names = _METHOD_FIELDS.get(method, ())
        out = {k: merged[k] for k in names if merged.get(k) is not None}
        if method == "Check" and not out.get("CheckNumber"):
            raise bad("CheckNumber is required for Check transactions")
        if method == "InKind" and not out.get("InKindDescription"):
            raise bad("InKindDescription is required for InKind transactions")
        if "WalletItemId" in out:
            wallet_id = integer_id(out["WalletItemId"], "WalletItemId")
            if wallet_id not in self.wallet_items:
                raise bad(f"No wallet item with id {wallet_id} found")
            out["WalletItemId"] = wallet_id
        elif method in ("PayPal", "Venmo"):
            raise bad(f"WalletItemId is required for {method} transactions")
        elif method in ("CreditCard", "ApplePay", "GooglePay", "Eft"):
            manual = _MANUAL["Eft" if method == "Eft" else "CreditCard"]
            missing = [k for k in manual if out.get(k) is None]
            if missing:
                raise bad(f"{method} transactions need a WalletItemId or all of {', '.join(manual)}")
        for key, allowed in (("CreditCardType", CARD_TYPES), ("EftAccountType", EFT_TYPES),
                             ("InKindType", IN_KIND_TYPES)):
            if key in out:
                enum(out[key], key, allowed)
        if "CheckDate" in out:
            out["CheckDate"] = business_date(out["CheckDate"], "CheckDate")
        for key, low, high in (("CreditCardExpMonth", 1, 12), ("CreditCardExpYear", 1900, 9999)):
            if key in out:
                out[key] = int32(out[key], key, low, high)
        if "InKindMarketValue" in out:
            out["InKindMarketValue"] = money(out["InKindMarketValue"], "InKindMarketValue")
        for key in ("CheckNumber", "CreditCardLastFourDigits", "EftLastFourDigits", "EftRoutingNumber",
                    "InKindDescription"):
            if key in out:
                out[key] = text(out[key], key)
        return out

    def _check_designation(self, item: dict, existing: dict[int, dict]) -> tuple[dict | None, dict, list]:
        target = None
        if item.get("Id") is not None:
            target = existing.get(integer_id(item["Id"], "Id"))
            if target is None:
                raise bad(f"No designation with id {item['Id']} on this transaction")
        source = (self._designation_write(target) if target else {}) | {
            k: item[k] for k in _DESIGNATION_FIELDS if k in item
        }
        if source.get("Type") is None:
            raise bad("Designation Type is required")
        kind = enum(source["Type"], "designation Type", DESIGNATION_TYPES)
        if source.get("Amount") is None:
            raise bad("Designation Amount is required")
        out: dict[str, Any] = {"Type": kind, "Amount": money(source["Amount"], "Designation Amount")}
        schedule = None
        if kind in ("PledgePayment", "RecurringDonationPayment"):
            key, parent = ("PledgeId", "Pledge") if kind == "PledgePayment" else ("RecurringDonationId",
                                                                                  "RecurringDonation")
            if source.get(key) is None:
                raise bad(f"{key} is required for {kind} designations")
            schedule = self.designations.get(integer_id(source[key], key))
            if schedule is None or schedule["Type"] != parent:
                raise bad(f"No {parent} designation with id {source[key]} found")
            out[key] = schedule["Id"]
            if kind == "RecurringDonationPayment":
                if source.get("IsExtraPayment") is None:
                    raise bad("IsExtraPayment is required for RecurringDonationPayment designations")
                out["IsExtraPayment"] = boolean(source["IsExtraPayment"], "IsExtraPayment")
        for key, kind_ in (("FundId", "fund"), ("CampaignId", "campaign"), ("AppealId", "appeal"),
                           ("TributeId", "tribute")):
            value = source.get(key, schedule.get(key) if schedule and key != "TributeId" else None)
            if value is not None:
                value = integer_id(value, key)
                if value not in self.table(kind_):
                    raise bad(f"No {kind_} with id {value} found")
                out[key] = value
        if "FundId" not in out:
            raise bad(f"FundId is required for {kind} designations")
        out["AcknowledgementStatus"] = enum(source.get("AcknowledgementStatus") or "No", "AcknowledgementStatus",
                                            ACK_STATUSES)
        for key in ("Note",):
            if source.get(key) is not None:
                out[key] = text(source[key], key)
        for key in ("NonDeductibleAmount",):
            if source.get(key) is not None:
                out[key] = money(source[key], key)
                if self.non_deductible_within_amount and out[key] > out["Amount"]:
                    raise bad("NonDeductibleAmount cannot be more than the designation Amount")
        out |= self._schedule_fields(kind, source, out["Amount"])
        writes = custom_value_writes(item.get("CustomValues"), "Transaction", self.custom_fields, self.pick_values)
        return target, out, writes

    @staticmethod
    def _schedule_fields(kind: str, source: dict, amount: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if kind == "Pledge":
            out["PledgeFrequency"] = enum(source.get("PledgeFrequency"), "PledgeFrequency", PLEDGE_FREQUENCIES)
            installments = source.get("PledgeInstallments")
            if not isinstance(installments, list) or not installments:
                raise bad("PledgeInstallments is required for Pledge designations")
            out["PledgeInstallments"] = [
                {"Date": business_date(require_object(i, "installment").get("Date"), "Installment Date"),
                 "Amount": money(i.get("Amount"), "Installment Amount")} for i in installments
            ]
            if abs(sum(i["Amount"] for i in out["PledgeInstallments"]) - amount) > 0.004:
                raise bad("PledgeInstallments must add up to the pledge Amount")
        elif kind == "RecurringDonation":
            if source.get("RecurringDonationStartDate") is None:
                raise bad("RecurringDonationStartDate is required for RecurringDonation designations")
            out["RecurringDonationStartDate"] = business_date(source["RecurringDonationStartDate"],
                                                              "RecurringDonationStartDate")
            out["RecurringDonationFrequency"] = enum(source.get("RecurringDonationFrequency"),
                                                     "RecurringDonationFrequency", RECURRING_FREQUENCIES)
            for key in ("RecurringDonationDay1", "RecurringDonationDay2"):
                if source.get(key) is not None:
                    int32(source[key], key, 1, 31)  # checked as documented (1-31), not stored
            if source.get("RecurringDonationEndDate") is not None:
                out["RecurringDonationEndDate"] = business_date(source["RecurringDonationEndDate"],
                                                                "RecurringDonationEndDate")
        return out

    def _designation_write(self, designation: dict) -> dict[str, Any]:
        return {k: v for k, v in designation.items() if k in _DESIGNATION_FIELDS}

    def _store_designations(self, transaction: dict, checked: list[tuple[dict | None, dict, list]]) -> None:
        keep = {target["Id"] for target, _, _ in checked if target is not None}
        for designation_id in self.designation_ids(transaction["Id"]):
            if designation_id not in keep:
                del self.designations[designation_id]
                self.designations_by_transaction.discard(transaction["Id"], designation_id)
        for target, fields, writes in checked:
            if target is None:
                target = {"Id": self.next_id(), "DesignationNumber": self._take("designation"),
                          "TransactionId": transaction["Id"], "_custom": {}, "_audit": self.new_audit()}
                self.designations[target["Id"]] = target
                self.designations_by_transaction.add(transaction["Id"], target["Id"])
            else:
                for key in _DESIGNATION_FIELDS:
                    target.pop(key, None)
                self.bump(target)
            target.update(fields)
            self.apply_custom_values(target["_custom"], writes)
            self.index_custom_values("designation", target)
            for key in ("PledgeId", "RecurringDonationId"):
                if target.get(key) is not None:
                    self.payments_by_schedule.add(target[key], target["Id"])

    # -- refunds --------------------------------------------------------------------------------
    def create_refund(self, body: Any) -> dict[str, Any]:
        body = require_object(body)
        with self.lock:
            if body.get("TransactionId") is None:
                raise bad("TransactionId is required")
            transaction_id = integer_id(body["TransactionId"], "TransactionId")
            transaction = self.transactions.get(transaction_id)
            if transaction is None:
                raise bad(f"No transaction with id {transaction_id} found")
            if transaction["_refund_ids"]:
                raise bad(f"Transaction {transaction_id} has already been refunded")
            if body.get("Date") is None:
                raise bad("Date is required")
            record = {"Id": self.next_id(), "TransactionId": transaction_id,
                      "Date": business_date(body["Date"], "Date"), "Amount": transaction["Amount"],
                      "_run_processor_refund": boolean(body.get("RunProcessorRefund", True), "RunProcessorRefund"),
                      "_audit": self.new_audit()}
            if body.get("Note") is not None:
                record["Note"] = text(body["Note"], "Note")
            self.refunds[record["Id"]] = record
            transaction["_refund_ids"].append(record["Id"])
            self.bump(transaction)
            return self.render_refund(record["Id"])

    def update_refund(self, record_id: int, body: Any) -> dict[str, Any]:
        """PUT /refund/{id}: ``Id`` required (document) and equal to the path's; ``Date`` and ``Note`` can
        change; a refund cannot move to another transaction (**decided**)."""
        body = require_object(body)
        with self.lock:
            record = self.get_record("refund", record_id)
            if body.get("Id") is None:
                raise bad("Id is required")
            if integer_id(body["Id"], "Id") != record_id:
                raise bad(f"Id {body['Id']} does not match refund {record_id} of the path")
            if body.get("TransactionId") is not None and integer_id(body["TransactionId"], "TransactionId") != \
                    record["TransactionId"]:
                raise bad("Cannot move a refund to another transaction")
            if "Date" in body:
                if body["Date"] is None:
                    raise bad("Date cannot be empty")
                record["Date"] = business_date(body["Date"], "Date")
            if "Note" in body:
                if body["Note"] is None:
                    record.pop("Note", None)
                else:
                    record["Note"] = text(body["Note"], "Note")
            self.bump(record)
            return self.render_refund(record_id)

    def delete_refund(self, record_id: int) -> dict[str, Any]:
        """DELETE /refund/{id}: the transaction is no longer refunded (``IsRefunded: "No"``)."""
        with self.lock:
            record = self.get_record("refund", record_id)
            del self.refunds[record_id]
            transaction = self.transactions.get(record["TransactionId"])
            if transaction is not None:
                transaction["_refund_ids"].remove(record_id)
                self.bump(transaction)
            return {"Id": record_id, "Type": "Refund", "Deleted": True}

    def render_refund(self, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.get_record("refund", record_id)
            return drop_nulls(self.public(record) | {"AuditTrail": self.audit_trail(record)})

    # -- reads ----------------------------------------------------------------------------------
    def render_designation(self, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.designations.get(record_id)
            if record is None:
                raise not_found("designation", record_id)
            out = {k: v for k, v in self.public(record).items()
                   if k not in ("FundId", "CampaignId", "AppealId", "TributeId", "QuickbooksAccountId")}
            out["Fund"] = self.named_ref("fund", record.get("FundId"))
            out["Campaign"] = self.named_ref("campaign", record.get("CampaignId"))
            out["Appeal"] = self.named_ref("appeal", record.get("AppealId"))
            tribute = self.tributes.get(record.get("TributeId"))
            if tribute is not None:  # the read model's Tribute {Id, Name} and the tribute's TributeType
                out["Tribute"] = {"Id": tribute["Id"], "Name": tribute["Name"]}
                out["TributeType"] = tribute["TributeType"]
            out["CustomValues"] = self.read_custom_values(record["_custom"])
            out["AuditTrail"] = self.audit_trail(record)
            out.pop("IsExtraPayment", None)
            if record["Type"] == "Pledge":
                out.pop("PledgeFrequency", None)  # write-only: the read model declares no PledgeFrequency
                payments = [d for d in self._payments_of(record_id) if d.get("PledgeId") == record_id]
                out["PledgePaymentIds"] = [d["Id"] for d in payments]
                out["PledgeInstallments"] = [i | {"Id": n + 1, "PledgeId": record_id}
                                             for n, i in enumerate(record["PledgeInstallments"])]
                out["PledgeBalance"] = round(record["Amount"] - sum(d["Amount"] for d in payments), 2)
            elif record["Type"] == "RecurringDonation":
                out["RecurringDonationPaymentIds"] = [
                    d["Id"] for d in self._payments_of(record_id) if d.get("RecurringDonationId") == record_id
                ]
                out["RecurringDonationStatus"] = "Active"
            return drop_nulls(out)

    def pledge_installments(self, pledge_id: int) -> list[dict[str, Any]]:
        """``GET /pledge/{id}/installments``: the installment plan of a Pledge designation (by its id, as
        ``PledgePayment.PledgeId`` names it), as the pledge's read model lists it."""
        with self.lock:
            record = self.designations.get(pledge_id)
            if record is None or record["Type"] != "Pledge":
                raise not_found("pledge", pledge_id)
            return [i | {"Id": n + 1, "PledgeId": pledge_id} for n, i in enumerate(record["PledgeInstallments"])]

    def render_transaction(self, record_id: int) -> dict[str, Any]:
        with self.lock:
            record = self.get_record("transaction", record_id)
            out = {k: v for k, v in self.public(record).items() if k != "WalletItemId"}
            out["Designations"] = [self.render_designation(d) for d in self.designation_ids(record_id)]
            out["IsRefunded"] = "Yes" if record["_refund_ids"] else "No"
            out["RefundIds"] = list(record["_refund_ids"])
            out["AttachmentIds"] = []
            out["AuditTrail"] = self.audit_trail(record)
            return drop_nulls(out)

    def designation_ids(self, transaction_id: int) -> list[int]:
        return [d["Id"] for d in self.designations_of(transaction_id)]

    def designations_of(self, transaction_id: int) -> list[dict[str, Any]]:
        """The transaction's designations by Id (from the index, each checked)."""
        found = (self.designations.get(i) for i in self.designations_by_transaction.ids(transaction_id))
        return [d for d in found if d is not None and d["TransactionId"] == transaction_id]

    def _payments_of(self, schedule_id: int) -> list[dict[str, Any]]:
        found = (self.designations.get(i) for i in self.payments_by_schedule.ids(schedule_id))
        return [d for d in found if d is not None]

    def delete_transaction(self, record_id: int) -> dict[str, Any]:
        with self.lock:
            self.get_record("transaction", record_id)
            for designation_id in self.designation_ids(record_id):
                del self.designations[designation_id]
            self.designations_by_transaction.drop(record_id)
            record = self.transactions.pop(record_id)
            self.modified_order["transaction"].remove(record["_audit"]["modified"], record_id)
            self.transactions_by_date.remove(record["Date"], record_id)
            return {"Id": record_id, "Type": "Transaction", "Deleted": True}

    def campaign_raised(self, campaign_id: int) -> float:
        return round(sum(d["Amount"] for d in self.designations.values() if d.get("CampaignId") == campaign_id
                         and not self.transactions[d["TransactionId"]]["_refund_ids"]), 2)
