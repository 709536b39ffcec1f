"""What a Bloomerang text field can hold, so a value it would refuse is caught while mapping, not by a 400 on
every night's write.

The official v2 document sets no ``maxLength``; the bounds are the decision recorded in the strict sandbox
(``sandbox/bloomerang/strict.py``): 255 characters for a text property, more for the long-text ones. A
value over its bound is an invalid value like any other: left out of an optional field, rejecting the record
for a required one (`on_invalid`).

Control characters (C0 and C1, DEL) other than tab, line feed and carriage return never reach Bloomerang: a
NUL or an escape code in a name is an export artefact, not something a person typed, so it is removed from
the text sent. Format characters such as the right-to-left mark stay: they are part of how a name is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_TEXT = 255
LONG_TEXT: Mapping[str, int] = {"Note": 4000, "Website": 2048, "IntegrationUrl": 2048, "Url": 2048}
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text_limit(target: str) -> int:
    """The bound of a payload path's text (``PrimaryAddress.Street`` → 255, ``Note`` → 4,000)."""
    return LONG_TEXT.get(target.rsplit(".", 1)[-1], MAX_TEXT)
