"""Field-level validation of Bloomerang v2 write bodies, shared by the simulator's store.

Why a module of its own: the simulator must reject exactly what the real API rejects (so a client bug
shows up in tests, not in production), and the rules are many. Each helper either returns a normalized
value or raises ``BloomerangError`` carrying the HTTP status, the ``Message`` and an ``ErrorCode``.

ErrorCodes (**decided**, the real code list is unpublished): 202 = unknown record (the one value
observed live, on a 404), 100 = validation failure, 101 = bad query parameter, 401 = authentication;
refusals of the HTTP layer carry their status (404 no such route, 405 method, 415 media type).
Integers are int64 unless the document says int32; the decoding rules of a body (media type, depth,
finite numbers, string lengths) live in ``strict``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email

ERR_NOT_FOUND = 202
ERR_VALIDATION = 100
ERR_QUERY = 101
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
DECIMAL_MAX = 79228162514264337593543950335.0  # System.Decimal.MaxValue

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


_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)


def integer_id(value: Any, name: str) -> int:
    """An int64 (a JSON integer, or a string of ASCII digits as the .NET binder also reads)."""
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{name} must be an integer id")
    if not INT64_MIN <= value <= INT64_MAX:
        raise bad(f"{name} is outside the int64 range")
    return value


def int32(value: Any, name: str, low: int = INT32_MIN, high: int = INT32_MAX) -> int:
    """An int32 property of the document (``SortIndex``, ``RecurringDonationDay1/2``), within its bounds."""
    number = integer_id(value, name)
    if not low <= number <= high:
        raise bad(f"{name} must be between {low} and {high}")
    return number


def money(value: Any, name: str) -> float:
    """A currency amount: a finite, non-negative number within the range of .NET ``decimal``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(f"{name} must be a number")
    if abs(value) > DECIMAL_MAX:
        raise bad(f"{name} is outside the range of a decimal number")
    if value < 0:
        raise bad(f"{name} cannot be negative")
    return round(float(value), 2)


_US_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", re.ASCII)
_ISO_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,7})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?",
    re.ASCII,
)


def business_date(value: Any, name: str) -> str:
    """``YYYY-MM-DD``; also a full ISO date-time (its time dropped, as a .NET ``DateTime`` binder reads it)
    and ``MM/dd/yyyy`` (which production clients post and the backend accepts). The whole string must be
    the date: ``2025-01-01garbage`` or a padded value is refused (**decided**, strict like the binder)."""
    if isinstance(value, str):
        us, iso = _US_DATE.fullmatch(value), _ISO_DATE.fullmatch(value)
        try:
            if us:
                return date(int(us[3]), int(us[1]), int(us[2])).isoformat()
            if iso:
                hour, minute, second = (int(part or 0) for part in iso.group(4, 5, 6))
                if hour < 24 and minute < 60 and second < 60:
                    return date(int(iso[1]), int(iso[2]), int(iso[3])).isoformat()
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
        # an offset at the ends of the calendar (9999-12-31T23:59:59-01:00) overflows in UTC: a 400, not a 500
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BloomerangError(400, f"{name} must be an ISO-8601 date-time", ERR_QUERY) from None


@lru_cache(maxsize=8192)
def format_timestamp(moment: datetime) -> str:
    """Memoised: a page renders two stamps per record and per contact, and most records share a few stamps
    (the store's seed time, the second of a write). Equal datetimes are the same instant, so one key is one
    answer whatever the tzinfo."""
    utc = moment.astimezone(UTC).replace(microsecond=0)
    if utc.year < 1000:  # strftime's %Y does not pad; isoformat (a fifth of the cost) does
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return utc.isoformat()[:-6] + "Z"


_FLAT = frozenset({str, int, float, bool})  # exact types: a subclass still goes through the isinstance checks


def drop_nulls(value: Any) -> Any:
    """Responses omit null properties (as the live API does). Scalars are not recursed into: every rendered
    record passes through here, and a call per scalar was a third of a constituent page's cost; the exact-type
    set lookup is cheaper than ``isinstance`` per value, and anything not flat still goes through here."""
    if isinstance(value, dict):
        return {k: v if type(v) in _FLAT else drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [v if type(v) in _FLAT else drop_nulls(v) for v in value]
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
            value = None if value is None else freeform_value(str(value), field)
            writes.append((field_id, pick, value))
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


_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def freeform_value(value: str, field: dict[str, Any]) -> str:
    """A Freeform custom value checked against its field's ``DataType`` (**decided**: the document types every
    value as text; a .NET backend binds a Date / Currency / Decimal / Year field's text to that type, so text that
    is not one is refused): a date as ``business_date`` reads it (stored ``YYYY-MM-DD``), a plain decimal number,
    a year of four digits. Text fields keep the value as sent."""
    kind, name = field.get("DataType", "Text"), f"Custom value for field {field['Id']}"
    if kind == "Date":
        return business_date(value, name)
    if kind in ("Currency", "Decimal"):
        number = value.strip()
        if not _DECIMAL_TEXT.fullmatch(number) or abs(float(number)) > DECIMAL_MAX:
            raise bad(f"{name} must be a number ({kind})")
        return number
    if kind == "Year":
        if not (re.fullmatch(r"[0-9]{4}", value.strip(), re.ASCII) and int(value) >= 1):
            raise bad(f"{name} must be a year (YYYY)")
        return value.strip()
    return value
