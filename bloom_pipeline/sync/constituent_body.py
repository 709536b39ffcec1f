"""The one builder of a Bloomerang ``PUT /constituent/{id}`` body from canonical field changes.

Shared by the push plan (a staged donor's diff onto a matched constituent) and the merge (a linked
donor's changes): both send only the changed fields, each contact object whole (Bloomerang requires a
``Type`` on every contact object it stores), and an address as one object in which the parts that do
not change keep Bloomerang's current value, never a blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bloom_pipeline.sync.fields import is_blank

NAME_KEYS = {"first_name": "FirstName", "middle_name": "MiddleName", "last_name": "LastName"}
CONTACT_KEYS = {"email": ("PrimaryEmail", "Value"), "phone": ("PrimaryPhone", "Number")}
CONTACT_TYPE = "Home"
ADDRESS_KEYS = {"street": "Street", "city": "City", "state": "State", "postal_code": "PostalCode",
                "country": "Country"}


def _clean(value: Any) -> Any:
    return None if is_blank(value) else (value.item() if hasattr(value, "item") else value)


def constituent_body(changes: Mapping[str, Any], current: Mapping[str, Any], constituent_type: str | None = None,
                     staged_payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The PUT body for ``changes`` (canonical field → new value) onto a constituent holding ``current``.

    ``staged_payload`` (the mapped write shape, when there is one) lends its contact objects' other keys
    (e.g. the mapping's phone ``Type``). An individual's FullName is Bloomerang's to derive, and an
    organization has no person names: neither is ever sent. A blank contact value clears the object.
    """
    staged = staged_payload or {}
    body: dict[str, Any] = {}
    if constituent_type != "Organization":
        body.update({key: changes[name] for name, key in NAME_KEYS.items() if name in changes})
    if "full_name" in changes and constituent_type != "Individual":
        body["FullName"] = changes["full_name"]
    for name, (obj, key) in CONTACT_KEYS.items():
        if name in changes:
            value = changes[name]
            body[obj] = {"Type": CONTACT_TYPE, **dict(staged.get(obj) or {}), key: value} if value else None
            if name == "phone" and value:  # the text sent holds its extension, if any: an extension Bloomerang
                body[obj]["Extension"] = None  # kept in its own field is cleared, never appended to a new number
    if ADDRESS_KEYS.keys() & changes.keys():
        staged_address = dict(staged.get("PrimaryAddress") or {})
        address = {"Type": CONTACT_TYPE, **staged_address}
        for name, key in ADDRESS_KEYS.items():
            kept = _clean(current.get(name))
            # a part that does not change keeps Bloomerang's value; where Bloomerang has none, the mapping's
            # (e.g. the default country a Bloomerang address requires) fills it — a default only fills
            address[key] = _clean(changes[name]) if name in changes else (
                kept if kept is not None else _clean(staged_address.get(key)))
        body["PrimaryAddress"] = {k: v for k, v in address.items() if v not in (None, "")}
    return body
