"""The JSON text of one record of a list page, reused while everything its render reads is unchanged.

Why: under the benchmark's mix (``benchmarks/sandbox_throughput.py``) pages of 50 Bloomerang constituents were
most of the Bloomerang server's CPU, about half rendering each record and half ``json.dumps`` of it; the same
records are served page after page while few of them change. ``TextCache`` keeps, per record, the encoded text
and a *snapshot* of the render's inputs (the record, its contact records, the names it shows), and serves the
text again only while the live inputs compare equal to the snapshot. There is no version counter for a write
path to forget: a write through the store's methods and a change a test makes to a table directly are both
seen on the next page. A page's text is then the envelope encoded around the records' texts (``page_text``): byte for
byte what ``json.dumps`` of the whole envelope gives.

What equality cannot see: Python's ``True == 1 == 1.0`` and dict equality ignoring key order. A value replaced
by an equal one of another type, or keys re-ordered, keep the old text (the same JSON value but for the type;
only possible by writing a table directly: every write method validates and normalises types).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any

from bloom_pipeline.sandbox.tree import copy_tree


class JsonText(str):
    """Text that already is the JSON answer (the app's encoder sends it as it is)."""




class TextCache:
    """key → (snapshot of the render's inputs, JSON text). Callers hold the store's lock.

    A record is kept from the second time it is rendered on: the snapshot costs about as much as encoding, and
    a scan of a large table sends most records once (a record sent once is only marked as seen)."""

    def __init__(self, encode: Callable[[Any], str]) -> None:
        self.encode = encode
        self._entries: dict[Hashable, tuple[Any, str] | None] = {}

    def __len__(self) -> int:
        """Records whose text is kept."""
        return sum(entry is not None for entry in self._entries.values())

    def text(self, key: Hashable, inputs: Any, render: Callable[[], Any]) -> str:
        """The JSON text of ``render()``, re-rendered only when ``inputs`` differ from the last render's."""
        hit = self._entries.get(key, False)
        if hit and hit[0] == inputs:
            return hit[1]
        text = self.encode(render())
        self._entries[key] = None if hit is False else (copy_tree(inputs), text)
        return text

    def discard(self, key: Hashable) -> None:
        self._entries.pop(key, None)


_RECORDS = "\x00records\x00"  # stands for the records' list while the envelope is encoded (never in an envelope)


def page_text(envelope: dict[str, Any], key: str, texts: list[str], encode: Callable[[Any], str]) -> JsonText:
    """``encode(envelope)`` with ``envelope[key]`` the list whose items' texts are ``texts``, assembled from those
    texts: the envelope is encoded with a marker in ``key``'s place, which is then replaced by the list.
    ``encode`` must be compact (no spaces after separators) for the two to be the same bytes."""
    marker = encode(_RECORDS)
    opening = encode({**envelope, key: _RECORDS})
    at = opening.index(marker)
    return JsonText(f"{opening[:at]}[{','.join(texts)}]{opening[at + len(marker):]}")


def compact(payload: Any, *, ensure_ascii: bool = True) -> str:
    """``json.dumps`` as the simulators send it: compact separators, non-finite numbers refused."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=ensure_ascii)
