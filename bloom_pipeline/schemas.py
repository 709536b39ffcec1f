"""pandera models of the staged tables and the audit ledgers, and the validation that gates the load.

Why: nothing reaches Bloomerang that did not pass these models. ``validate_staged`` runs a model lazily
(every failure, not the first), turns pandera's failure cases into one human reason per failed check
per row, and says which rows to quarantine. A failure that is not about a row (a missing column, a
wrong dtype) rejects the whole batch. The Field descriptions double as the data dictionary.

The Dagster shell wraps these in blocking asset checks; ``check_reject_threshold`` is the per-org
"halt when more than N% of a batch is rejected" rule, with the threshold passed in by the caller.
"""

import json
import re
from datetime import date
from typing import Any, Optional

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from bloom_pipeline.staging.validation import (
    ThresholdResult,
    ValidationReport,
    check_reject_threshold,
    validate_frame,
)

BLOOMERANG_METHODS = [
    "None",
    "Cash",
    "Check",
    "CreditCard",
    "Eft",
    "InKind",
    "ApplePay",
    "GooglePay",
    "PayPal",
    "Venmo",
]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The largest amount staged, in dollars: 10**15 - 1 cents (mapping/transforms.py MAX_CENTS says why).
MAX_AMOUNT = 9_999_999_999_999.99
_SHA256 = r"^[0-9a-f]{64}$"
_UTC = {"unit": "ns", "tz": "UTC"}


def _is_json(value: Any, kind: type) -> bool:
    try:
        return isinstance(json.loads(value), kind)
    except (TypeError, ValueError):
        return False


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype("string").str.strip() == "")


class _Staged(pa.DataFrameModel):
    """Columns every staged row carries."""

    source: Series[str] = pa.Field(isin=["wegive", "handbid"], description="Source system of the record.")
    source_id: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Record id in the source system."
    )
    payload: Series[str] = pa.Field(
        description="JSON object: the Bloomerang v2 write body mapped from the record."
    )
    payload_hash: Series[str] = pa.Field(
        str_matches=_SHA256, description="sha256 hex of the payload serialised with sorted keys."
    )
    source_updated_at: Series[pd.DatetimeTZDtype] = pa.Field(
        nullable=True, coerce=True, dtype_kwargs=_UTC, description="Last modification in the source (UTC)."
    )

    @pa.check("payload", name="payload_is_json_object", element_wise=True)
    def payload_is_json_object(cls, value: Any) -> bool:
        return _is_json(value, dict)

    class Config:
        unique = ["source", "source_id"]


class StgConstituents(_Staged):
    """stg_constituents: donors / contacts mapped to Bloomerang constituents."""

    constituent_type: Series[str] = pa.Field(
        isin=["Individual", "Organization"], description="Bloomerang constituent type."
    )
    first_name: Series[str] = pa.Field(nullable=True, description="First name (individuals; default 'FNU').")
    middle_name: Series[str] = pa.Field(nullable=True, description="Middle name.")
    last_name: Series[str] = pa.Field(nullable=True, description="Last name (individuals; default 'LNU').")
    full_name: Series[str] = pa.Field(
        nullable=True, description="Organization name, or the person's full name."
    )
    email: Series[str] = pa.Field(nullable=True, description="Primary email, validated and lower-cased.")
    phone: Series[str] = pa.Field(nullable=True, description="Primary phone, formatted.")
    street: Series[str] = pa.Field(nullable=True, description="Primary address street.")
    city: Series[str] = pa.Field(nullable=True, description="Primary address city.")
    state: Series[str] = pa.Field(nullable=True, description="Primary address state / region.")
    postal_code: Series[str] = pa.Field(nullable=True, description="Primary address postal code.")
    country: Series[str] = pa.Field(nullable=True, description="Primary address country.")
    bloomerang_id: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, coerce=True, gt=0, description="Bloomerang constituent id stored on the source side."
    )

    @pa.check("email", name="email_is_valid", element_wise=True)
    def email_is_valid(cls, value: Any) -> bool:
        return (
            value is None or (isinstance(value, float) and pd.isna(value)) or bool(_EMAIL.match(str(value)))
        )

    @pa.dataframe_check(name="individual_has_first_and_last_name")
    def individual_has_first_and_last_name(cls, df: pd.DataFrame) -> pd.Series:
        individual = df["constituent_type"] == "Individual"
        return ~individual | (~_blank(df["first_name"]) & ~_blank(df["last_name"]))

    @pa.dataframe_check(name="organization_has_full_name")
    def organization_has_full_name(cls, df: pd.DataFrame) -> pd.Series:
        return (df["constituent_type"] != "Organization") | ~_blank(df["full_name"])


class StgTransactions(_Staged):
    """stg_transactions: donations / auction payments mapped to Bloomerang transactions."""

    donor_source_id: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Source id of the donor / contact who gave."
    )
    date: Series[str] = pa.Field(
        str_matches=r"^\d{4}-\d{2}-\d{2}$", description="Gift date, YYYY-MM-DD in the org's time zone."
    )
    amount: Series[float] = pa.Field(gt=0, coerce=True, description="Amount in dollars, 2 decimal places.")
    method: Series[str] = pa.Field(
        nullable=True, isin=BLOOMERANG_METHODS, description="Bloomerang payment method."
    )
    is_refunded: Series[bool] = pa.Field(description="True when the source reports the gift refunded.")
    status: Series[str] = pa.Field(nullable=True, description="Status as the source reports it.")
    fund_source_ids: Series[str] = pa.Field(
        description="JSON list of the source fund ids the gift is designated to."
    )
    bloomerang_id: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, coerce=True, gt=0, description="Bloomerang transaction id, when known."
    )

    @pa.check("date", name="date_is_a_calendar_day", element_wise=True)
    def date_is_a_calendar_day(cls, value: Any) -> bool:
        try:
            date.fromisoformat(str(value))
        except ValueError:
            return False
        return True

    @pa.check("amount", name="amount_has_at_most_2_decimals")
    def amount_has_at_most_2_decimals(cls, series: pd.Series) -> pd.Series:
        # Exact for every amount the mapping accepts (whole cents up to 10**15 - 1, read back as floats): the
        # float nearest c/100 rounds back to itself. A tolerance on series*100 instead fails large amounts
        # (at $10^13 one cent is below the float's resolution times 100) and would stop the whole table.
        values = series.astype(float)
        return np.isfinite(values) & ((values * 100).round() / 100 == values)

    @pa.check("amount", name="amount_is_in_range")
    def amount_is_in_range(cls, series: pd.Series) -> pd.Series:
        return series.astype(float).abs() <= MAX_AMOUNT

    @pa.check("fund_source_ids", name="fund_source_ids_is_json_list", element_wise=True)
    def fund_source_ids_is_json_list(cls, value: Any) -> bool:
        return _is_json(value, list)


class StgFunds(_Staged):
    """stg_funds: source funds mapped to Bloomerang funds."""

    name: Series[str] = pa.Field(str_length={"min_value": 1}, description="Fund name.")
    bloomerang_id: Series[pd.Int64Dtype] = pa.Field(
        nullable=True, coerce=True, gt=0, description="Bloomerang fund id, when known."
    )


class Quarantine(pa.DataFrameModel):
    """quarantine: records kept out of the load, with why and the record as received."""

    source: Series[str] = pa.Field(description="Source system.")
    entity: Series[str] = pa.Field(
        description="Source entity (donors, contacts, transactions, payments, funds)."
    )
    source_id: Series[str] = pa.Field(
        nullable=True, description="Record id in the source; the raw `missing-id:` key for a record without one."
    )
    run_id: Series[str] = pa.Field(description="Run that quarantined it.")
    kind: Series[str] = pa.Field(
        isin=["invalid", "excluded", "field"],
        description="'invalid' (failed a rule), 'excluded' (out of scope by rule) or 'field' (one optional "
                    "value left out of a record that was staged).",
    )
    reasons: Series[object] = pa.Field(description="Non-empty list of human-readable reasons.")
    raw: Series[str] = pa.Field(nullable=True, description="The record as received (JSON).")
    field: Optional[Series[str]] = pa.Field(  # noqa: UP045 - pandera reads Optional[...] as "column may be absent"
        nullable=True, description="'field' rows: the target left out (e.g. PrimaryEmail.Value); else null."
    )
    value: Optional[Series[str]] = pa.Field(  # noqa: UP045
        nullable=True, description="'field' rows: the value left out, shown safely (escaped, at most 80 "
                                   "characters); else null."
    )

    @pa.dataframe_check(name="field_rows_name_their_field")
    def field_rows_name_their_field(cls, df: pd.DataFrame) -> pd.Series:
        named = ~_blank(df["field"]) if "field" in df else pd.Series(False, index=df.index)
        return (df["kind"] != "field") | named

    @pa.check("reasons", name="has_at_least_one_reason", element_wise=True)
    def has_at_least_one_reason(cls, value: Any) -> bool:
        return hasattr(value, "__len__") and not isinstance(value, str) and len(value) > 0


class SyncLog(pa.DataFrameModel):
    """sync_log: one row per record per run, the outcome of loading it."""

    run_id: Series[str] = pa.Field(description="Run id.")
    entity: Series[str] = pa.Field(description="Staged entity (constituents, transactions, funds).")
    source: Series[str] = pa.Field(description="Source system of the record.")
    source_id: Series[str] = pa.Field(nullable=True, description="Record id in the source.")
    bloomerang_id: Series[pd.Int64Dtype] = pa.Field(nullable=True, coerce=True, description="Bloomerang id.")
    direction: Series[str] = pa.Field(
        isin=["push", "pull"], description="push: to Bloomerang; pull: back to source."
    )
    action: Series[str] = pa.Field(
        isin=["created", "updated", "unchanged", "skipped", "failed", "quarantined"],
        description="What happened to the record.",
    )
    field_diff: Series[str] = pa.Field(nullable=True, description="JSON {field: [old, new]} of what changed.")
    error: Series[str] = pa.Field(nullable=True, description="Why it failed (API message), if it did.")

    @pa.dataframe_check(name="failed_rows_carry_an_error")
    def failed_rows_carry_an_error(cls, df: pd.DataFrame) -> pd.Series:
        return (df["action"] != "failed") | ~_blank(df["error"])


STAGED_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "constituents": StgConstituents,
    "transactions": StgTransactions,
    "funds": StgFunds,
}


def validate_staged(entity: str, df: pd.DataFrame) -> ValidationReport:
    """Validate a staged batch lazily against its entity's model; never raises for bad data."""
    model = STAGED_MODELS.get(entity)
    if model is None:
        raise ValueError(f"no staged model for entity {entity!r}")
    return validate_frame(model, df)


__all__ = [
    "STAGED_MODELS",
    "Quarantine",
    "StgConstituents",
    "StgFunds",
    "StgTransactions",
    "SyncLog",
    "ThresholdResult",
    "ValidationReport",
    "check_reject_threshold",
    "validate_frame",
    "validate_staged",
]
