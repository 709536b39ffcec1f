"""The JSON text of a list page's record, kept from its first render while its render's inputs are unchanged.

Why beside ``answer_text.TextCache``: that cache keeps a record only from its second render (a scan that sends
each record once pays no snapshot), so a record sent two or three times — the usual case once a list is paged
through more than once, by a sync's nightly scans or by the throughput benchmark's random pages — was rendered
and encoded two or three times. At 100,000 donors (``benchmarks/sandbox_throughput.py``) those repeated renders
were most of the servers' CPU: a Bloomerang constituent's render and encode are well over a hundred
microseconds of CPU, and a WeGive donor row's tens. ``KeptTexts`` keeps the text and a snapshot of the inputs
from the first render, so each record is rendered once while it is unchanged; the snapshot of the inputs costs
less than the render it saves on the next read. Memory: one text and one snapshot per record ever listed (about
1 KB a WeGive donor row).

The check is the same as ``TextCache``'s — the live inputs compared with the snapshot, no version counter for
a write path to forget — so a write through the store and a test writing a table directly are both seen on the
next page, with the same blind spot (``True == 1 == 1.0``; dict key order) where the inputs are compared as values
(``bytes`` inputs, as ``wegive/listing.py`` gives for a donor row, have none). This module decides only how an
answer is computed from the stored records, never what a store holds: it is serving-only (``state._SERVING_ONLY``),
and ``answer_text`` (part of the state's fingerprint) is left as it is.

``compact_encoder`` is ``answer_text.compact`` without ``json.dumps``'s set-up of a new ``JSONEncoder`` on every
call: the same C encoder, made directly. A record's text is encoded once per render, tens of thousands of times
a minute at 100,000 donors, and the set-up was about a fifth of each encode of a list row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from functools import partial
from json import encoder as json_encoder
from typing import Any

from bloom_pipeline.sandbox.answer_text import compact
from bloom_pipeline.sandbox.tree import copy_tree


def compact_encoder(*, ensure_ascii: bool = True) -> Callable[[Any], str]:
    """A function giving ``compact(payload, ensure_ascii=ensure_ascii)`` — the same text, the same errors (a
    non-finite number, an object JSON cannot hold, a circular reference) — from json's C encoder made for each
    call as ``JSONEncoder.iterencode`` makes it. Where the C encoder is missing, ``compact`` itself."""
    make = json_encoder.c_make_encoder
    if make is None:  # pragma: no cover - CPython always has it
        return partial(compact, ensure_ascii=ensure_ascii)
    strings = json_encoder.encode_basestring_ascii if ensure_ascii else json_encoder.encode_basestring
    default = json.JSONEncoder().default  # raises the TypeError json.dumps raises

    def encode(payload: Any) -> str:
        if isinstance(payload, str):
            return strings(payload)
        # markers {}: circular references refused as json.dumps refuses them; indent None, ":" and ",",
        # sort_keys and skipkeys off, allow_nan off — compact's arguments
        return "".join(make({}, default, strings, None, ":", ",", False, False, False)(payload, 0))

    return encode


class KeptTexts:
    """key → (snapshot of the render's inputs, JSON text), kept from the first render. Callers hold the store's
    lock (the snapshot and the live inputs must be read at one moment)."""

    def __init__(self, encode: Callable[[Any], str]) -> None:
        self.encode = encode
        self._entries: dict[Hashable, tuple[Any, str]] = {}

    def __len__(self) -> int:
        """Records whose text is kept."""
        return len(self._entries)

    def text(self, key: Hashable, inputs: Any, render: Callable[[], Any]) -> str:
        """The JSON text of ``render()``, rendered again only when ``inputs`` differ from the last render's.
        ``inputs`` must hold everything ``render`` reads: live values (copied as the snapshot), or ``bytes`` that
        serialise them (kept as they are: immutable, and not tracked by the garbage collector)."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] == inputs:
            return hit[1]
        text = self.encode(render())
        self._entries[key] = (inputs if type(inputs) is bytes else copy_tree(inputs), text)
        return text

    def discard(self, key: Hashable) -> None:
        self._entries.pop(key, None)
