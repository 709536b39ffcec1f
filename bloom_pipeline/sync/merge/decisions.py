"""The vocabulary of the merge and the review loop: field rules and reviewers' decisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bloom_pipeline.sync.fields import BLOOMERANG, SOURCE

Policy = Literal["overwrite", "fill_empty", "review"]
Direction = Literal["push", "pull", "both"]


@dataclass(frozen=True)
class FieldRule:
    """How one field merges: ``policy`` on the receiving side, where it may flow, may a blank erase."""

    policy: Policy = "overwrite"
    direction: Direction = "both"
    allow_blank: bool = False

    def __post_init__(self) -> None:
        if self.policy not in ("overwrite", "fill_empty", "review"):
            raise ValueError(f"unknown merge policy {self.policy!r}")
        if self.direction not in ("push", "pull", "both"):
            raise ValueError(f"unknown direction {self.direction!r}")


DEFAULT_RULE = FieldRule()


@dataclass(frozen=True)
class Decision:
    """A reviewer's choice for one field: take the source's value, Bloomerang's, or a typed value."""

    take: Literal["source", "bloomerang", "value"]
    value: str | None = None

    def __post_init__(self) -> None:
        if self.take not in (SOURCE, BLOOMERANG, "value"):
            raise ValueError(f"take must be source, bloomerang or value:TEXT, not {self.take!r}")
        if (self.take == "value") != (self.value is not None):
            raise ValueError("a value is given exactly when take is 'value'")


DecisionLike = Decision | str | tuple[str, str]


def parse_take(text: str) -> Decision:
    """Parse the CLI's ``--take source|bloomerang|value:TEXT`` (``value:`` alone means clear it)."""
    if text in (SOURCE, BLOOMERANG):
        return Decision(text)  # type: ignore[arg-type]
    if text.startswith("value:"):
        return Decision("value", text[len("value:") :])
    raise ValueError(f"--take must be source, bloomerang or value:TEXT, not {text!r}")


def as_decision(decision: DecisionLike) -> Decision:
    if isinstance(decision, Decision):
        return decision
    if isinstance(decision, str):
        return parse_take(decision)
    take, value = decision
    return Decision(take, value)  # type: ignore[arg-type]


def apply_decision(value_source: Any, value_bloomerang: Any, decision: DecisionLike) -> Any:
    """The value a decision settles on, given both sides' current values."""
    chosen = as_decision(decision)
    if chosen.take == SOURCE:
        return value_source
    if chosen.take == BLOOMERANG:
        return value_bloomerang
    return chosen.value
