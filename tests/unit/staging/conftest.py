"""Fixtures for the staging tests: a store in a temporary data dir and canonical staged frames."""

import hashlib
import json

import pandas as pd
import pytest

from bloom_pipeline.staging.store import StagingStore


@pytest.fixture
def store(tmp_path):
    return StagingStore.for_org("acme", data_dir=tmp_path)


def constituent_row(source_id: str, **overrides) -> dict:
    payload = {"Type": "Individual", "FirstName": "Ada", "LastName": "Lovelace"}
    row = {
        "source": "wegive",
        "source_id": source_id,
        "payload": json.dumps(payload),
        "payload_hash": hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(),
        "source_updated_at": pd.Timestamp("2026-11-01T12:00:00Z"),
        "constituent_type": "Individual",
        "first_name": "Ada",
        "middle_name": None,
        "last_name": "Lovelace",
        "full_name": "Ada Lovelace",
        "email": f"ada{source_id}@example.org",
        "phone": None,
        "street": None,
        "city": None,
        "state": None,
        "postal_code": None,
        "country": None,
        "bloomerang_id": None,
    }
    row.update(overrides)
    return row


def constituents_frame(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    frame["bloomerang_id"] = frame["bloomerang_id"].astype("Int64")
    return frame


def transaction_row(source_id: str, day: str, **overrides) -> dict:
    payload = {"AccountId": "ref:wegive.donors:1", "Amount": 25.0, "Date": day}
    row = {
        "source": "wegive",
        "source_id": source_id,
        "payload": json.dumps(payload),
        "payload_hash": hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(),
        "source_updated_at": pd.Timestamp(f"{day}T10:00:00Z"),
        "donor_source_id": "1",
        "date": day,
        "amount": 25.0,
        "method": "CreditCard",
        "is_refunded": False,
        "status": "Success",
        "fund_source_ids": '["3"]',
        "bloomerang_id": None,
    }
    row.update(overrides)
    return row


@pytest.fixture
def rows():
    """Builders of canonical staged rows (a fixture, so test modules need not import conftest)."""

    class Builders:
        constituent = staticmethod(constituent_row)
        constituents = staticmethod(constituents_frame)
        transaction = staticmethod(transaction_row)

    return Builders
