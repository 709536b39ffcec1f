"""``--messy``: plant the hostile records a real organization's APIs hold into already-built sandbox stores.

Why: the generated world is messy only within what each API's own validation lets through (odd phones,
invalid e-mails). The records our issues list are worse — a WeGive row with ``"id": null``, two rows under
one id, dates of ``31/02/2025``, an amount of 2^63 cents or of JSON ``true``, a modification time of year 9999
or ``"soon"``, a Handbid payment listed under two events — and the pipeline must be proven end to end
against them: each bad record quarantined with its reason, each bad optional value left out while its
record lands, the cursors unmoved by a time in the future, the row accounts exact.

``plant(api, store, world, seed)`` does that for one store and returns its part of the manifest, one entry
per hostile thing: ``{"api", "entity", "id", "key", "what", "expected", "field", "value"}`` — ``id`` the
id the API serves (None for a missing one), ``key`` the store key of the record (None when it lives only in
``served_as_is``), ``what`` a short name ("invalid date 31/02/2025"), ``expected`` what the pipeline does
with it (``"quarantined"``: the record is not staged, its quarantine row names the problem; ``"field
dropped"``: the value ``field`` is left out and the record lands in Bloomerang; ``"lands"``), and for a
dropped value the staged ``field`` and the served ``value``. For a duplicate id the entry stands for every
record served under that id: all of them are quarantined.

Deterministic: the records picked to be spoiled come from ``random.Random(f"messy-{api}-{seed}")`` over
sorted candidates, and every timestamp planted is relative to ``world.anchor``, so one seed gives one
manifest and byte-identical stores. Nothing is planted in Bloomerang.

Few on purpose: at most 9 record-level rejects per staged entity (``constituents``: 4, ``transactions``:
9), so the demo org's reject gate (``thresholds.min_rejects: 10``) never halts a load whatever the world's
size. That is why two WeGive transactions carry two problems each (``created_at`` ``2026-13-45`` *and* amount
``true``; ``31/02/2025`` *and* a fraction of a cent; the pipeline names both, so each is its own manifest
entry).

How the records are served, and our reading of what the real APIs would do with them:

* A record a dict keyed by id cannot hold (a null id, a second row under a taken id) goes into the store's
  ``served_as_is`` as the exact list row: the list endpoints serve those rows after every row of the table,
  in the order planted, whatever the sort (so paging the table's rows is unchanged). Their detail is what
  the database's single row per id gives: the table's record, or 404 for a null id (``GET …/null``).
* WeGive's range filters compare the stored text with the bound normalised to the stored form, as a
  database comparing the column as text would: ``"soon"`` and ``"9999-12-31T…"`` are after every
  ``updated_at[start]`` (every incremental read serves them again), ``"31/02/2025"`` sorts by its characters.
* Handbid's ``updatedSince`` compares epoch seconds as numbers, and a ``dateUpdated`` that is no number the
  way PHP 8 compares a number with a non-numeric string — as text against the number's digits — so the zero
  date ``"0000-00-00 00:00:00"`` is before every cursor (served on a full read only) and the epoch of year
  9999 after every one.
"""

from __future__ import annotations

import copy
import random
from datetime import timedelta
from typing import Any

from bloom_pipeline.sandbox.data.wegive import laravel_ts, wegive_donor
from bloom_pipeline.sandbox.wegive import resources

GIFT_STATUSES = ("Success", "Refunded", "Disputed")  # the WeGive statuses the pipeline syncs as gifts
YEAR_9999 = "9999-12-31T00:00:00.000000Z"
YEAR_9999_EPOCH = 253402214400  # 9999-12-31T00:00:00Z
ZERO_DATE = "0000-00-00 00:00:00"  # MySQL's zero date, as a PHP API serializes it
EXPECTED = ("quarantined", "field dropped", "lands")
# people of the records planted anew (a fixed list: nothing to do with the generated pools' draws)
NAMES = (("Dana", "Okafor"), ("Mirela", "Haddad"), ("Tomasz", "Lindqvist"), ("Ines", "Abernathy"),
         ("Kofi", "Marchetti"), ("Yuki", "Brannigan"))


def plant(api: str, store: Any, world: Any, seed: int) -> list[dict[str, Any]]:
    """Plant ``api``'s hostile records into its store (WeGive and Handbid; nothing for Bloomerang) and return
    their manifest entries (see the module docstring)."""
    rng = random.Random(f"messy-{api}-{seed}")
    if api == "wegive":
        return _plant_wegive(store, world, rng)
    if api == "handbid":
        return _plant_handbid(store, world, rng)
    return []


def summary(manifest: list[dict[str, Any]]) -> str:
    """One line for the ``sandbox --messy`` banner: what was planted where."""
    groups: dict[str, list[str]] = {}
    for entry in manifest:
        groups.setdefault(f"{entry['api']} {entry['entity']}", []).append(entry["what"])
    parts = "; ".join(f"{name}: {', '.join(whats)}" for name, whats in groups.items())
    return f"Messy mode planted {len(manifest)} hostile records ({parts}); see docs/sandbox.md"


def _entry(api: str, entity: str, served_id: Any, key: Any, what: str, expected: str,
           field: str | None = None, value: Any = None) -> dict[str, Any]:
    assert expected in EXPECTED
    return {"api": api, "entity": entity, "id": served_id, "key": key, "what": what, "expected": expected,
            "field": field, "value": value}


class _Picker:
    """Draws distinct records from sorted candidates, preferring the ``preferred`` ones; never the same twice
    (one hostile thing per record unless planted on purpose)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[Any] = set()

    def take(self, candidates: list[Any], preferred: list[Any] | None = None) -> Any:
        for pool in (preferred or [], candidates):
            free = [c for c in pool if c not in self.used]
            if free:
                choice = self.rng.choice(free)
                self.used.add(choice)
                return choice
        raise ValueError("the world is too small for --messy: no record left to spoil")


# -- WeGive ----------------------------------------------------------------------------------------------

def _person(rng: random.Random, donor_id: int, suffix: str) -> dict[str, Any]:
    first, last = rng.choice(NAMES)
    return {"is_company": False, "company": None, "first_name": first, "middle_name": None, "last_name": last,
            "email": f"{first}.{last}.{suffix}{donor_id}@example.org".lower(), "mobile_phone": None,
            "home_phone": None, "address": None}


def _plain_gift(txn: dict[str, Any]) -> bool:
    """A one-off gift in one fund: a copy of it stands alone (no pledge or schedule to refer to)."""
    return (txn.get("status") == "Success" and len(txn.get("fund_allocations") or []) == 1
            and txn.get("pledge_id") is None and txn.get("scheduled_donation_id") is None)


def _plant_wegive(store: Any, world: Any, rng: random.Random) -> list[dict[str, Any]]:
    api, out = "wegive", []
    anchor = world.anchor
    linked = {sid for path in world.links.values() for source, sid, _i in path if source == "wegive"}
    both = sorted(sid for source, sid, _i in world.links.get("both", []) if source == "wegive")
    twins = {str(c.get("email") or "").lower() for c in world.handbid.get("contacts", [])}
    pick = _Picker(rng)
    with store.lock:
        gifts: dict[int, list[int]] = {}
        for key in sorted(store.transactions):
            if _plain_gift(store.transactions[key]):
                gifts.setdefault(int(store.transactions[key]["donor_id"]), []).append(key)
        givers = sorted(gifts)
        # a donor Bloomerang has no twin of to hand an e-mail back from: its own e-mail stays invalid
        alone = [d for d in givers if d not in linked and store.donors[d].get("type") == "individual"
                 and str(store.donors[d].get("email_1") or "").lower() not in twins
                 and str(store.donors[d].get("email_1") or "").count("@") == 1]

        # donors -------------------------------------------------------------------------------
        bad_email = pick.take(alone, None)
        donor = store.donors[bad_email]
        local = str(donor.get("email_1") or f"donor{bad_email}").split("@")[0] or "x"
        donor["email_1"] = donor["email"] = f"{local}@@example.org"
        out.append(_entry(api, "donors", bad_email, bad_email, "invalid email", "field dropped",
                          "PrimaryEmail.Value", donor["email_1"]))

        # linked both ways already: no link is written back, which would stamp a fresh updated_at
        stale = pick.take(givers, [d for d in both if d in store.donors])
        store.donors[stale]["updated_at"] = ZERO_DATE
        out.append(_entry(api, "donors", stale, stale, f"unparseable updated_at {ZERO_DATE}", "field dropped",
                          "source_updated_at", ZERO_DATE))

        created = anchor - timedelta(days=40)
        new_id = max(store.donors) + 1
        store.donors[new_id] = wegive_donor(new_id, _person(rng, new_id, ""), created, created)
        other = wegive_donor(new_id, _person(rng, new_id, "second."), created, created + timedelta(days=3))
        store.served_as_is["donors"].append(resources.donor_row(other))
        out.append(_entry(api, "donors", new_id, new_id, "duplicate id", "quarantined"))

        # what exports carry in names: a NUL and an escape code (removed on the way), a right-to-left mark (kept)
        marked = pick.take(alone)
        name = str(store.donors[marked].get("first_name") or "Ana")
        store.donors[marked]["first_name"] = f"\u200f{name}\x00\x1b"
        out.append(_entry(api, "donors", marked, marked, "control characters in a name", "lands"))

        huge = new_id + 2
        store.donors[huge] = wegive_donor(huge, _person(rng, huge, "long."), created, created)
        store.donors[huge]["last_name"] = "L" * 10_000
        out.append(_entry(api, "donors", huge, huge, "10 KB last name", "quarantined"))

        ghost = resources.donor_row(wegive_donor(new_id + 1, _person(rng, new_id + 1, "noid."), created, created))
        ghost["id"] = None
        store.served_as_is["donors"].append(ghost)
        out.append(_entry(api, "donors", None, None, "missing id", "quarantined"))

        # transactions -------------------------------------------------------------------------
        base = store.transactions[rng.choice(gifts[pick.take(givers)])]
        next_txn = max(store.transactions) + 1
        next_alloc = max(store.fund_allocations, default=0) + 1
        when = anchor - timedelta(days=2)

        def new_gift(cents: Any, minutes: int, **changes: Any) -> int:
            nonlocal next_txn, next_alloc
            txn_id, alloc_id = next_txn, next_alloc
            next_txn, next_alloc = next_txn + 1, next_alloc + 1
            stamp = laravel_ts(when + timedelta(minutes=minutes))
            gift = copy.deepcopy(base)
            alloc = copy.deepcopy(base["fund_allocations"][0])
            alloc.update(id=alloc_id, amount=cents, transaction_id=txn_id)
            gift.update({"id": txn_id, "amount": cents, "fund_allocations": [alloc], "bloomerang_id": None,
                         "receipt_id": f"R-{txn_id}", "correlation_id": f"ch_messy{txn_id}", "date": stamp,
                         "created_at": stamp, "succeeded_at": stamp, "updated_at": stamp, **changes})
            store.transactions[txn_id] = gift
            store.fund_allocations[alloc_id] = copy.deepcopy(alloc)
            return txn_id

        tid = new_gift(4200.5, 1, created_at="31/02/2025")
        out.append(_entry(api, "transactions", tid, tid, "invalid date 31/02/2025", "quarantined"))
        out.append(_entry(api, "transactions", tid, tid, "a fraction of a cent", "quarantined"))
        tid = new_gift("5000", 4)  # a number written as text, as WeGive's untyped amount may be: accepted
        out.append(_entry(api, "transactions", tid, tid, "amount as a string", "lands"))
        tid = new_gift(True, 2, created_at="2026-13-45")
        out.append(_entry(api, "transactions", tid, tid, "invalid date 2026-13-45", "quarantined"))
        out.append(_entry(api, "transactions", tid, tid, "amount true", "quarantined"))
        tid = new_gift(2**63, 3)
        out.append(_entry(api, "transactions", tid, tid, "amount 2^63 cents", "quarantined"))

        ghost_txn = copy.deepcopy(base)
        ghost_txn.update(id=None, amount=4217, receipt_id="R-messy-noid", correlation_id="ch_messynoid",
                         bloomerang_id=None, date=laravel_ts(when), created_at=laravel_ts(when),
                         succeeded_at=laravel_ts(when), updated_at=laravel_ts(when))
        # the allocation is a row of its own table: it keeps an id (the one its transaction lost is the gift's)
        ghost_txn["fund_allocations"][0].update(id=next_alloc, amount=4217, transaction_id=None)
        next_alloc += 1
        store.served_as_is["transactions"].append(resources.transaction_row(store.render_transaction_record(ghost_txn)))
        out.append(_entry(api, "transactions", None, None, "missing id", "quarantined"))

        twin_key = rng.choice(gifts[pick.take(givers)])
        twin = copy.deepcopy(store.transactions[twin_key])
        twin["amount"] = int(twin["amount"]) + 1000
        twin["fund_allocations"][0]["amount"] = twin["amount"]
        store.served_as_is["transactions"].append(resources.transaction_row(store.render_transaction_record(twin)))
        out.append(_entry(api, "transactions", twin_key, twin_key, "duplicate id (other amount)", "quarantined"))

        for stamp, what in ((YEAR_9999, "updated_at year 9999"), ("soon", "unparseable updated_at soon")):
            key = rng.choice(gifts[pick.take(givers)])
            store.transactions[key]["updated_at"] = stamp
            out.append(_entry(api, "transactions", key, key, what, "field dropped", "source_updated_at", stamp))
    return out


# -- Handbid ---------------------------------------------------------------------------------------------

def _plant_handbid(store: Any, world: Any, rng: random.Random) -> list[dict[str, Any]]:
    api, out = "handbid", []
    pick = _Picker(rng)
    donor_emails = {str(d.get("email_1") or "").lower() for d in world.wegive.get("donors", [])}
    linked = {sid for source, sid, _i in world.links.get("handbid", []) if source == "handbid"}
    with store.lock:
        contacts = sorted(store.contacts)
        # a contact no other record is the same person as: nothing is written back to it over the planted value
        alone = [c for c in contacts if c not in linked
                 and str(store.contacts[c].get("email") or "").lower() not in donor_emails]
        for value, what in ((YEAR_9999_EPOCH, "dateUpdated year 9999"),
                            (ZERO_DATE, f"unparseable dateUpdated {ZERO_DATE}")):
            key = pick.take(contacts, alone)
            store.contacts[key]["dateUpdated"] = value
            out.append(_entry(api, "contacts", key, key, what, "field dropped", "source_updated_at", value))

        reconciled = sorted(a for a, auction in store.auctions.items() if auction.get("status") == "reconciled")
        events = reconciled[:2] if len(reconciled) >= 2 else (reconciled + sorted(store.auctions))[:2]
        paid = sorted(p for p, payment in store.payments.items()
                      if payment.get("status") == "succeeded" and payment.get("auctionId") in events)
        listed_twice = pick.take(paid, [p for p in paid if store.payments[p]["auctionId"] == events[0]])
        copy_row = copy.deepcopy(store.payments[listed_twice])
        copy_row["auctionId"] = events[1] if copy_row["auctionId"] == events[0] else events[0]
        store.served_as_is["payments"].append(copy_row)
        out.append(_entry(api, "payments", listed_twice, listed_twice, "duplicate id in two auctions",
                          "quarantined"))

        new_id = max(store.payments) + 1
        store.payments[new_id] = dict(copy.deepcopy(store.payments[pick.take(paid)]), id=new_id, amount=True,
                                      reference=f"ch_messy{new_id}")
        out.append(_entry(api, "payments", new_id, new_id, "amount true", "quarantined"))
    return out
