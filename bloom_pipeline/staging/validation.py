"""Run a pandera model over a batch and turn its failure cases into reasons an admin can act on.

Why: pandera reports failures as a table of (column, check, value, index); the load gate needs one
sentence per failed rule per row (for the quarantine), the rows to keep, the share rejected and the
most common reasons (for the Dagster metadata). A failure that is not about a row — a missing column,
a wrong dtype — rejects the whole batch.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # imported where a frame is validated: a quiet night validates none (a third of a second)
    import pandera.pandas as pa


@dataclass
class ValidationReport:
    """The outcome of validating one staged batch."""

    ok: bool
    rows: int
    failure_cases: pd.DataFrame
    row_reasons: dict[Any, list[str]] = field(default_factory=dict)
    schema_errors: list[str] = field(default_factory=list)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    validated: pd.DataFrame | None = None

    @property
    def rejected_rows(self) -> int:
        return self.rows if self.schema_errors else len(self.row_reasons)

    @property
    def reject_share(self) -> float:
        return self.rejected_rows / self.rows if self.rows else (1.0 if self.schema_errors else 0.0)

    def split(
        self, df: pd.DataFrame, *, entity: str, raw_by_id: Mapping[str, str] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(valid rows, quarantine rows) — the latter in ``quarantine`` shape, kind 'invalid'."""
        if self.schema_errors:
            bad = df.index
            reasons = {i: list(self.schema_errors) for i in bad}
        else:
            bad = df.index[df.index.isin(list(self.row_reasons))]
            reasons = self.row_reasons
        good = df.drop(index=bad)
        rejected = df.loc[bad]
        ids = (
            rejected["source_id"].astype("string") if "source_id" in rejected else pd.Series(None, index=bad)
        )
        quarantine = pd.DataFrame(
            {
                "source": rejected.get("source"),
                "entity": entity,
                "source_id": ids,
                "kind": "invalid",
                "reasons": [reasons[i] for i in bad],
                "raw": [
                    (raw_by_id or {}).get(str(sid))
                    or rejected.loc[i].to_json(date_format="iso", default_handler=str)
                    for i, sid in zip(bad, ids, strict=True)
                ],
            },
            index=bad,
        )
        return good, quarantine.reset_index(drop=True)


_ROW_CHECK_MESSAGES = {
    "individual_has_first_and_last_name": "an Individual needs first_name and last_name",
    "organization_has_full_name": "an Organization needs full_name",
    "failed_rows_carry_an_error": "a failed row needs an error message",
}


def _reason(case: Mapping[str, Any], model_name: str) -> str:
    """One readable sentence for a pandera failure case."""
    column = case.get("column")
    check = str(case.get("check"))
    value = case.get("failure_case")
    if case.get("schema_context") == "DataFrameSchema":
        if check == "column_in_dataframe":
            return f"column {value!r} is missing"
        if check.startswith("multiple_fields_uniqueness") or check.startswith("field_uniqueness"):
            return "duplicate record (same source and source_id in the batch)"
        if column == model_name or not isinstance(column, str):
            return f"{check} (got {value!r})"
        return _ROW_CHECK_MESSAGES.get(check, check)
    where = f"{column}: " if isinstance(column, str) and column else ""
    if check == "not_nullable":
        return f"{where}required value is missing"
    if check.startswith("dtype("):
        return f"{where}expected {check}, got {value}"
    if check.startswith("field_uniqueness"):
        return f"{where}duplicate value"
    return f"{where}{check} (got {value!r})"


def validate_frame(model: type[pa.DataFrameModel], df: pd.DataFrame) -> ValidationReport:
    """Validate a frame lazily (every failure, not the first); never raises for bad data."""
    import pandera.pandas as pa

    try:
        with warnings.catch_warnings():  # pandera's own concat of failure cases warns on pandas 2.3
            warnings.simplefilter("ignore", FutureWarning)
            validated = model.validate(df, lazy=True)
        return ValidationReport(
            True,
            len(df),
            pd.DataFrame(columns=["column", "check", "failure_case", "index"]),
            validated=validated,
        )
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.copy()
    row_reasons: dict[Any, list[str]] = {}
    schema_errors: list[str] = []
    counter: Counter[str] = Counter()
    for case in cases.to_dict("records"):
        reason = _reason(case, model.__name__)
        index = case.get("index")
        short = reason.split(" (got ")[0]
        if index is None or (not isinstance(index, str) and pd.isna(index)):
            if reason not in schema_errors:
                schema_errors.append(reason)
                counter[short] += max(len(df), 1)
            continue
        reasons = row_reasons.setdefault(index, [])
        if reason not in reasons:
            reasons.append(reason)
            counter[short] += 1
    return ValidationReport(False, len(df), cases, row_reasons, schema_errors, counter.most_common(10))


@dataclass(frozen=True)
class ThresholdResult:
    ok: bool
    share: float
    message: str


def check_reject_threshold(extracted: int, rejected: int, max_share: float) -> ThresholdResult:
    """Halt when more than ``max_share`` (e.g. 0.05) of a batch was rejected; exactly at it passes."""
    if not 0 <= max_share <= 1:
        raise ValueError("max_share must be between 0 and 1")
    if rejected < 0 or extracted < 0 or rejected > extracted:
        raise ValueError(f"impossible counts: {rejected} rejected of {extracted} extracted")
    share = rejected / extracted if extracted else 0.0
    verdict = "over" if share > max_share else "within"
    message = (
        f"{rejected} of {extracted} records rejected ({share:.1%}), {verdict} the threshold of "
        f"{max_share:.1%}"
    )
    if share > max_share:
        message += "; the load is stopped"
    return ThresholdResult(share <= max_share, share, message)
