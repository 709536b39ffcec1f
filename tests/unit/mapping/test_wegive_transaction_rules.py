"""The reference's transaction, payment-method and fund tables: WeGive records → Bloomerang write bodies."""

import pytest

from bloom_pipeline.mapping.compile import map_frame

from .conftest import TRANSACTION, errors, payloads, record

CARD = {"type": "card", "issuer": "visa", "last_four": "4242", "expiration": "12/30", "expires_at": "2030-12-31"}

# (case, transaction, expected subset of the payload)
CASES = [
    ("amount cents → dollars", record(TRANSACTION, amount=12345, fund_allocations=[]), {"Amount": 123.45}),
    ("created_at → Date in org time zone", record(TRANSACTION, created_at="2025-03-02T05:30:00Z"),
     {"Date": "2025-03-01"}),  # 22:30 the day before in America/Denver
    ("owner → AccountId reference", record(TRANSACTION), {"AccountId": "ref:wegive.donors:1012"}),
    ("card → CreditCard with card fields", record(TRANSACTION, source=CARD),
     {"Method": "CreditCard", "CreditCardType": "Visa", "CreditCardLastFourDigits": "4242",
      "CreditCardExpMonth": 12, "CreditCardExpYear": 2030}),
    ("bank → Eft with account fields", record(TRANSACTION, source_type="bank",
                                              source={"type": "bank", "bank_account_type": "checking",
                                                      "last_four": "6789", "transit_number": "110000000"}),
     {"Method": "Eft", "EftAccountType": "Checking", "EftLastFourDigits": "6789", "EftRoutingNumber": "110000000"}),
    ("check → None (WeGive sends no check number)", record(TRANSACTION, source_type="check",
                                                           source={"type": "check"}),
     {"Method": "None", "CheckNumber": None, "CreditCardType": None}),
    ("cash → Cash", record(TRANSACTION, source_type="cash", source=None), {"Method": "Cash"}),
    ("other → None", record(TRANSACTION, source_type="other", source=None), {"Method": "None"}),
    ("in_kind → InKind with description", record(TRANSACTION, source_type="in_kind", source={"type": "in_kind"},
                                                 description="Two laptops"),
     {"Method": "InKind", "InKindDescription": "Two laptops", "InKindType": "Goods"}),
    ("stock → InKind with description", record(TRANSACTION, source_type="stock", source={"type": "stock"},
                                               description="10 ACME shares"),
     {"Method": "InKind", "InKindDescription": "10 ACME shares"}),
    ("paypal → None (needs a WalletItemId)", record(TRANSACTION, source_type="paypal", source=None),
     {"Method": "None"}),
    ("venmo → None", record(TRANSACTION, source_type="venmo", source=None), {"Method": "None"}),
    ("crypto → None", record(TRANSACTION, source_type="crypto", source=None), {"Method": "None"}),
    ("card without card details falls back to None", record(TRANSACTION, source={"issuer": "visa"}),
     {"Method": "None", "CreditCardType": None}),
    ("check without number falls back to None", record(TRANSACTION, source_type="check", source={}),
     {"Method": "None", "CheckNumber": None}),
]


@pytest.mark.parametrize(("case", "tx", "expected"), CASES, ids=[c[0] for c in CASES])
def test_transaction_rule(org, case, tx, expected):
    payload = payloads(map_frame(org, "wegive.transactions", [tx]))["88001"]
    assert {k: payload.get(k) for k in expected} == expected


NOTES = [
    ("paypal", None, "Paid with PayPal (WeGive)"),
    ("venmo", None, "Paid with Venmo (WeGive)"),
    ("crypto", None, "Paid in cryptocurrency (WeGive)"),
    ("check", {}, "Paid by check (WeGive; the API has no check number)"),
]


@pytest.mark.parametrize(("source_type", "source", "note"), NOTES, ids=[n[0] for n in NOTES])
def test_method_fallbacks_leave_a_note_on_the_designation(org, source_type, source, note):
    tx = record(TRANSACTION, source_type=source_type, source=source)
    designation = payloads(map_frame(org, "wegive.transactions", [tx]))["88001"]["Designations"][0]
    assert designation["Note"] == note


def test_single_fund_becomes_one_designation(org):
    tx = record(TRANSACTION, fund_allocations=[])
    assert payloads(map_frame(org, "wegive.transactions", [tx]))["88001"]["Designations"] == [
        {"Type": "Donation", "Amount": 50.0, "FundId": "ref:wegive.funds:3",
         "CampaignId": "ref:bloomerang.campaigns:name=Annual Fund 2026",  # the demo org's default campaign
         "CustomValues": [{"FieldId": 911, "Value": "88001"}]}]


def test_fund_allocations_become_designations_summing_to_amount(org):
    tx = record(TRANSACTION, amount=10000, fund_allocations=[
        {"id": 1, "amount": 7525, "fund": {"id": 3}}, {"id": 2, "amount": 2475, "fund": {"id": 4}}])
    result = map_frame(org, "wegive.transactions", [tx])
    payload = payloads(result)["88001"]
    assert [(d["FundId"], d["Amount"]) for d in payload["Designations"]] == [
        ("ref:wegive.funds:3", 75.25), ("ref:wegive.funds:4", 24.75)]
    assert payload["Amount"] == 100.0
    assert result.mapped["fund_source_ids"].tolist() == ['["3", "4"]']


def test_allocations_not_summing_to_amount_are_rejected(org):
    tx = record(TRANSACTION, amount=10000, fund_allocations=[{"id": 1, "amount": 7500, "fund": {"id": 3}}])
    assert errors(map_frame(org, "wegive.transactions", [tx])) == {
        "88001": ["Amount: 100.00 does not equal the sum of its designations (75.00)"]}


def test_designation_without_fund_is_rejected(org):
    tx = record(TRANSACTION, fund=None, fund_allocations=[])
    assert errors(map_frame(org, "wegive.transactions", [tx])) == {
        "88001": ["Designations.FundId: required but empty (from fund.id)"]}


@pytest.mark.parametrize(("amount", "message"), [
    (0, "Amount: 0.0 must be a positive amount (from amount)"),
    (-500, "Amount: -5.0 must be a positive amount (from amount)"),
    ("12.5", "Amount: '12.5' is not an amount in whole cents (from amount)"),
])
def test_amount_must_be_positive_whole_cents(org, amount, message):
    tx = record(TRANSACTION, amount=amount, fund_allocations=[])
    assert message in errors(map_frame(org, "wegive.transactions", [tx]))["88001"]


@pytest.mark.parametrize(("status", "refunded"), [("Success", False), ("Refunded", True), ("Disputed", False)])
def test_status_to_is_refunded(org, status, refunded):
    result = map_frame(org, "wegive.transactions", [record(TRANSACTION, status=status)])
    row = result.mapped.iloc[0]
    assert bool(row["is_refunded"]) is refunded and row["status"] == status
    assert "IsRefunded" not in payloads(result)["88001"]  # read-only in v2: the sync posts a refund


@pytest.mark.parametrize("status", ["Pending", "Processing", "Failed", "Cancelled"])
def test_non_completed_payments_are_excluded_not_dropped(org, status):
    result = map_frame(org, "wegive.transactions", [record(TRANSACTION, status=status)])
    assert result.mapped.empty
    assert result.rejected["kind"].tolist() == ["excluded"]
    assert result.rejected["errors"][0] == [f"status: '{status}' excluded — not a completed gift (only Success, "
                                            "Refunded and Disputed payments are synced)"]


def test_recurring_payment_designation(org):
    tx = record(TRANSACTION, frequency="monthly", scheduled_donation_id=77)
    designation = payloads(map_frame(org, "wegive.transactions", [tx]))["88001"]["Designations"][0]
    assert designation["Type"] == "RecurringDonationPayment"
    assert designation["RecurringDonationId"] == "ref:wegive.scheduled_donations:77"
    assert designation["IsExtraPayment"] is False


def test_pledge_payment_designation(org):
    tx = record(TRANSACTION, pledge={"id": 12}, pledge_id=None)
    designation = payloads(map_frame(org, "wegive.transactions", [tx]))["88001"]["Designations"][0]
    assert designation["Type"] == "PledgePayment" and designation["PledgeId"] == "ref:wegive.pledges:12"
    assert "RecurringDonationId" not in designation and "IsExtraPayment" not in designation


def test_transaction_canonical_columns(org):
    row = map_frame(org, "wegive.transactions", [record(TRANSACTION, bloomerang_id=4)]).mapped.iloc[0]
    assert (row["donor_source_id"], row["date"], row["amount"], row["method"], row["status"]) == (
        "1012", "2025-03-02", 50.0, "CreditCard", "Success")
    assert row["bloomerang_id"] == 4 and row["fund_source_ids"] == '["3"]'


def test_unknown_source_type_is_rejected_naming_the_value(org):
    tx = record(TRANSACTION, source_type="barter")
    assert errors(map_frame(org, "wegive.transactions", [tx])) == {
        "88001": ["Method: no rule for 'barter' (from source_type)"]}


def test_fund_rules(org):
    funds = [{"id": 3, "name": " General Fund ", "active": True, "bloomerang_id": 21},
             {"id": 4, "name": "", "active": True, "bloomerang_id": None}]
    result = map_frame(org, "wegive.funds", funds)
    assert payloads(result) == {"3": {"Name": "General Fund", "IsActive": True}}
    assert result.mapped[["name", "bloomerang_id"]].values.tolist() == [["General Fund", 21]]
    assert errors(result) == {"4": ["Name: required but empty (from name)"]}
