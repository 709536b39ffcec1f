"""Field-level validation of Bloomerang v2 write bodies, shared by the simulator's store.

Why a module of its own: the simulator must reject exactly what the real API rejects (so a client bug
shows up in tests, not in production), and the rules are many. Each helper either returns a normalized
value or raises ``BloomerangError`` carrying the HTTP status, the ``Message`` and an ``ErrorCode``.

ErrorCodes (**decided**, the real code list is unpublished): 202 = unknown record (the one value
observed live, on a 404), 100 = validation failure, 101 = bad query parameter, 401 = authentication.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

ERR_NOT_FOUND = 202
ERR_VALIDATION = 100
ERR_QUERY = 101

CONSTITUENT_TYPES = ("Individual", "Organization")
STATUSES = ("Active", "Inactive", "Deceased")
GENDERS = ("Male", "Female", "Other")
PICTURE_TYPES = ("None", "Custom", "Twitter")
CHANNELS = ("Email", "Phone", "TextMessage", "Mail")
RESTRICTIONS = ("DoNotCall", "DoNotMail", "DoNotSolicit")
INTEREST_TYPES = ("All", "Custom", "OptedOut")
EMAIL_TYPES = ("Home", "Work")
PHONE_TYPES = ("Home", "Work", "Mobile", "Fax")
ADDRESS_TYPES = ("Home", "Vacation", "Work")
METHODS = ("None", "Cash", "Check", "CreditCard", "Eft", "InKind", "ApplePay", "GooglePay", "PayPal", "Venmo")
DESIGNATION_TYPES = ("Donation", "Pledge", "PledgePayment", "RecurringDonation", "RecurringDonationPayment")
ACK_STATUSES = ("Yes", "No", "DoNotAcknowledge")
CARD_TYPES = ("Visa", "MasterCard", "Discover", "AmericanExpress", "DinersClub", "JCB")
EFT_TYPES = ("Checking", "Savings")
IN_KIND_TYPES = ("Goods", "Services")
PLEDGE_FREQUENCIES = (
    "Weekly", "EveryOtherWeekly", "TwiceMonthly", "Monthly", "EveryOtherMonthly", "Quarterly", "Yearly", "Custom",
)
RECURRING_FREQUENCIES = PLEDGE_FREQUENCIES[:-1]
CUSTOM_FIELD_TYPES = ("Constituent", "Transaction", "Interaction", "Note", "Benevon")


class BloomerangError(Exception):
    """A request the simulated API refuses: becomes ``{"Message", "ErrorCode"}`` with ``status``."""

    def __init__(self, status: int, message: str, error_code: int = ERR_VALIDATION) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code

    def body(self) -> dict[str, Any]:
        return {"Message": self.message, "ErrorCode": self.error_code}


def bad(message: str) -> BloomerangError:
    return BloomerangError(400, message, ERR_VALIDATION)


def not_found(kind: str, record_id: Any) -> BloomerangError:
    return BloomerangError(404, f"No {kind} with id {record_id} found", ERR_NOT_FOUND)


def require_object(body: Any, what: str = "request body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad(f"The {what} must be a JSON object")
    return body


def enum(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise bad(f"Invalid {name} '{value}'. Valid values: {', '.join(allowed)}")
    return str(value)


def text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise bad(f"{name} must be a string")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise bad(f"{name} must be true or false")
    return value


def integer_id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise bad(f"{name} must be an integer id")
    return value


def money(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"{name} must be a number")
    if value < 0:
        raise bad(f"{name} cannot be negative")
    return round(float(value), 2)


_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def business_date(value: Any, name: str) -> str:
    """``YYYY-MM-DD`` (also ``MM/dd/yyyy``, which production clients post and the backend accepts)."""
    if isinstance(value, str):
        match = _US_DATE.match(value)
        try:
            if match:
                return date(int(match[3]), int(match[1]), int(match[2])).isoformat()
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            pass
    raise bad(f"{name} must be a date (YYYY-MM-DD)")


def email_address(value: Any, name: str = "Value") -> str:
    raw = text(value, name).strip()
    try:
        validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise bad(f"'{raw}' is not a valid email address") from None
    return raw


def parse_timestamp(value: str, name: str) -> datetime:
    """A query timestamp: ISO-8601 with ``Z``/offset, a naive one (UTC, **decided**), or a plain date."""
    raw = value.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BloomerangError(400, f"{name} must be an ISO-8601 date-time", ERR_QUERY) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def drop_nulls(value: Any) -> Any:
    """Responses omit null properties (as the live API does)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# -- contact records ---------------------------------------------------------------------------
def email_fields(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if creating or "Type" in body:
        out["Type"] = enum(body.get("Type"), "email Type", EMAIL_TYPES)
    if creating or "Value" in body:
        if body.get("Value") is None:
            raise bad("Email Value is required")
        out["Value"] = email_address(body["Value"], "Email Value")
    for flag in ("IsPrimary", "IsBad"):
        if body.get(flag) is not None:
            out[flag] = boolean(body[flag], flag)
    return out


def phone_fields(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if creating or "Type" in body:
        out["Type"] = enum(body.get("Type"), "phone Type", PHONE_TYPES)
    if creating or "Number" in body:
        number = body.get("Number")
        if not isinstance(number, str) or not re.search(r"\d", number):
            raise bad("Phone Number is required")
        out["Number"] = number.strip()
    if "Extension" in body:
        out["Extension"] = None if body["Extension"] is None else text(body["Extension"], "Extension")
    if body.get("IsPrimary") is not None:
        out["IsPrimary"] = boolean(body["IsPrimary"], "IsPrimary")
    return out


def address_fields(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if creating or "Type" in body:
        out["Type"] = enum(body.get("Type"), "address Type", ADDRESS_TYPES)
    if creating or "Country" in body:
        if not isinstance(body.get("Country"), str) or not body["Country"].strip():
            raise bad("Address Country is required")
        out["Country"] = body["Country"].strip()
    for key in ("Street", "City", "State", "PostalCode"):
        if key in body:
            out[key] = None if body[key] is None else text(body[key], key)
    for flag in ("IsPrimary", "IsBad"):
        if body.get(flag) is not None:
            out[flag] = boolean(body[flag], flag)
    return out


# -- custom values -----------------------------------------------------------------------------
def custom_value_writes(
    values: Any, area: str, fields: dict[int, dict[str, Any]], pick_values: dict[int, dict[str, Any]]
) -> list[tuple[int, str, Any]]:
    """Check ``CustomValues`` in write shape; return ``(field_id, pick_type, value)`` triples.

    The read shape (``Value: {Id, Value}`` or ``Values: [...]``) written back is refused, as the real
    API does — the classic round-trip bug this simulator exists to catch.
    """
    if values is None:
        return []
    if not isinstance(values, list):
        raise bad("CustomValues must be a list")
    writes: list[tuple[int, str, Any]] = []
    for item in values:
        item = require_object(item, "custom value")
        if "FieldId" not in item:
            raise bad("Every custom value needs a FieldId")
        field_id = integer_id(item["FieldId"], "FieldId")
        if isinstance(item.get("Value"), dict) or "Values" in item:
            raise bad(
                f"Custom value for field {field_id} is in the read format; write "
                "{FieldId, Value}, {FieldId, ValueId} or {FieldId, ValueIds}"
            )
        field = fields.get(field_id)
        if field is None or field["ObjectType"] != area:
            raise bad(f"No {area} custom field with id {field_id} found")
        pick = field["PickType"]
        if pick == "Freeform":
            if "Value" not in item:
                raise bad(f"Custom field {field_id} is Freeform: write {{FieldId, Value}}")
            value = item["Value"]
            if value is not None and not isinstance(value, str | int | float):
                raise bad(f"Custom value for field {field_id} must be text")
            writes.append((field_id, pick, None if value is None else str(value)))
        elif pick == "PickOne":
            if "ValueId" not in item:
                raise bad(f"Custom field {field_id} is PickOne: write {{FieldId, ValueId}}")
            value_id = item["ValueId"]
            if value_id is not None:
                value_id = integer_id(value_id, "ValueId")
                if pick_values.get(value_id, {}).get("FieldId") != field_id:
                    raise bad(f"No value with id {value_id} for custom field {field_id}")
            writes.append((field_id, pick, value_id))
        else:
            ids = item.get("ValueIds")
            if not isinstance(ids, list):
                raise bad(f"Custom field {field_id} is PickMultiple: write {{FieldId, ValueIds}}")
            for value_id in ids:
                if pick_values.get(integer_id(value_id, "ValueIds"), {}).get("FieldId") != field_id:
                    raise bad(f"No value with id {value_id} for custom field {field_id}")
            writes.append((field_id, pick, [int(v) for v in ids]))
    return writes
