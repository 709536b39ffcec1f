"""Resolve the ``ref:`` placeholders a staged payload carries for other records.

The mapping cannot know Bloomerang ids (it runs with no network), so a transaction's staged
payload says ``"AccountId": "ref:wegive.donors:1012"`` and ``"FundId": "ref:wegive.funds:3"``, and a
Handbid payment names its org-configured fund as ``"ref:bloomerang.funds:name=Spring Gala"``. At apply
time, after funds and constituents are written, this resolver swaps each placeholder for the
Bloomerang id it now has. A placeholder that cannot be resolved fails that one record (with the
reference in the error), never the run.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from bloom_pipeline.errors import DataError

_SHARED = frozenset({int, float, bool, type(None)})  # immutable: ``resolve`` shares them instead of copying
REF_PATTERN = re.compile(r"^ref:(?P<source>[a-z_]+)\.(?P<entity>[a-z_]+):(?P<key>.+)$")


class UnresolvedRefError(DataError):
    """A payload names a record that has no Bloomerang id (yet)."""

    def __init__(self, ref: str, why: str = "no Bloomerang id is known for it") -> None:
        super().__init__(f"unresolved reference {ref}: {why}")
        self.ref = ref


def parse_ref(value: Any) -> tuple[str, str, str] | None:
    """``"ref:wegive.funds:3"`` → ("wegive", "funds", "3"); anything else → None."""
    if not isinstance(value, str) or not value.startswith("ref:"):  # most strings of a payload: no regex run
        return None
    match = REF_PATTERN.match(value)
    if match is None:
        return None
    return match.group("source"), match.group("entity"), match.group("key")


def refs_in(payload: Any) -> set[str]:
    """Every placeholder string anywhere inside a payload."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif parse_ref(node) is not None:
            found.add(node)

    walk(payload)
    return found


class RefResolver:
    """Maps source records and named Bloomerang objects to Bloomerang ids.

    ``on_missing_name(entity, name) -> id | None`` lets the caller create a Bloomerang fund, campaign
    or appeal that the org YAML names but Bloomerang lacks (None: leave it unresolved).
    """

    def __init__(self, on_missing_name: Callable[[str, str], int | None] | None = None) -> None:
        self._ids: dict[tuple[str, str, str], int] = {}
        self._names: dict[str, dict[str, int]] = {}
        self._on_missing_name = on_missing_name

    def add(self, source: str, entity: str, key: Any, bloomerang_id: int) -> None:
        self._ids[(source, entity, str(key))] = int(bloomerang_id)

    def add_names(self, entity: str, names: dict[str, int]) -> None:
        table = self._names.setdefault(entity, {})
        for name, bloomerang_id in names.items():
            table[name.strip().casefold()] = int(bloomerang_id)

    def lookup(self, ref: str) -> int:
        parsed = parse_ref(ref)
        if parsed is None:
            raise UnresolvedRefError(ref, "not a reference")
        source, entity, key = parsed
        if source == "bloomerang":
            return self._lookup_bloomerang(ref, entity, key)
        try:
            return self._ids[(source, entity, key)]
        except KeyError:
            raise UnresolvedRefError(ref) from None

    def _lookup_bloomerang(self, ref: str, entity: str, key: str) -> int:
        if key.isdigit():
            return int(key)
        if not key.startswith("name="):
            raise UnresolvedRefError(ref, "expected name=<name> or an id")
        name = key[len("name="):]
        table = self._names.setdefault(entity, {})
        found = table.get(name.strip().casefold())
        if found is None and self._on_missing_name is not None:
            created = self._on_missing_name(entity, name)
            if created is not None:
                table[name.strip().casefold()] = int(created)
                found = int(created)
        if found is None:
            raise UnresolvedRefError(ref, f"Bloomerang has no {entity[:-1]} named {name!r}")
        return found

    def resolve(self, payload: Any) -> Any:
        """A deep copy of ``payload`` with every placeholder replaced by its Bloomerang id.

        The walk itself makes the copy (new dicts and lists all the way down; text, numbers, booleans and None
        are immutable and shared): a ``copy.deepcopy`` first, then a walk copying again, cost twice the walk —
        a tenth of the apply loop's own time on a first load."""

        def walk(node: Any) -> Any:
            kind = type(node)
            if kind is str:
                return self.lookup(node) if parse_ref(node) is not None else node
            if kind in _SHARED:
                return node
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            if parse_ref(node) is not None:  # a str subclass
                return self.lookup(node)
            return copy.deepcopy(node)  # anything else a caller put in a payload stays a copy, as before

        return walk(payload)

    def resolve_owned(self, payload: Any) -> Any:
        """``resolve`` for a payload no one else holds (just parsed from its JSON text): the placeholders are
        replaced where they are, in the order ``resolve`` meets them, and no copy is made.

        Why: the apply loop parses every planned payload from its text, so ``resolve``'s copy was a second
        tree per write, and its walk a call per leaf (~22 per gift); this is a call per dict or list."""
        if type(payload) is str:
            return self.lookup(payload) if parse_ref(payload) is not None else payload
        if type(payload) is dict or type(payload) is list:
            self._fill(payload)
        return payload

    def _fill(self, node: dict[str, Any] | list[Any]) -> None:
        for key, value in node.items() if type(node) is dict else enumerate(node):
            kind = type(value)
            if kind is str:
                if value.startswith("ref:") and parse_ref(value) is not None:
                    node[key] = self.lookup(value)
            elif kind is dict or kind is list:
                self._fill(value)
