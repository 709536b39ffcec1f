"""``copy_tree``: a deep copy of JSON-shaped data (dicts, lists, scalars), several times faster than
``copy.deepcopy``.

The simulators copy every record they seed from the world and every answer they render, so a test can mutate
what it got without touching the store. ``copy.deepcopy`` keeps a memo and dispatches per object; at 100,000
donors it was most of the cost of a page of the WeGive donor list and of seeding the stores. Records are plain
JSON trees, so a recursive copy of plain dicts, lists and tuples does the same job; immutable leaves (texts,
numbers, datetimes) are shared, and anything else (a dict subclass a test planted) still goes through
``copy.deepcopy``, so its type and behaviour are kept. The sandbox's answer cache (``answer_text.py``) keeps
its copies of a render's inputs with it too.

``copy_bulk`` is for seeding a store from a whole world: a ``marshal`` round trip, ``copy.deepcopy``'s exact result
for plain data — marshal (format 4) writes a reference for every object held more than once, so shared
sub-objects stay shared — and about a fifth cheaper than the pickle round trip it replaces (which was about half
of ``copy.deepcopy``); whatever marshal refuses (a subclass a test planted, a datetime) falls back to pickle,
which keeps subclasses and their behaviour.
"""

from __future__ import annotations

import copy
import marshal
import pickle
from datetime import date, datetime
from typing import Any

_ATOMS = (str, int, float, bool, type(None), datetime, date)  # immutable: a copy may share them


def copy_tree(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _ATOMS else copy_tree(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _ATOMS else copy_tree(v) for v in value]
    if kind is tuple:
        return tuple(copy_tree(v) for v in value)
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def copy_bulk(value: Any) -> Any:
    try:
        return marshal.loads(marshal.dumps(value, 4))  # noqa: S302 - bytes we just made
    except ValueError:  # an unmarshallable object somewhere in the tree
        return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301 - bytes we just made
