"""Read one mapping file's YAML text strictly: no aliases, no duplicate keys, bounded nesting, no traceback.

Why a loader of our own: PyYAML's safe loader constructs nothing dangerous, but it follows aliases (a 2 KB
"billion laughs" file took `mapping validate` to 3.7 GB), keeps the last of two equal keys without a word,
and lets a bad scalar (`2025-02-30`, a 5000-digit integer) escape as a bare ValueError. Here aliases and
deep nesting are refused while the node tree is composed and duplicate keys right after, before anything is
expanded or constructed; a scalar that cannot be constructed is refused at its node. Each refusal is a
:class:`Refusal` (line, key path, message) the loader turns into a FILE:LINE: KEY problem. Mapping files
have no use for anchors and aliases: a value is written out where it is used, and sharing between files is
what `extends` is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

MAX_DEPTH = 64  # the deepest real rule (mappings.S.E.branches.B.FIELD.transform[i].ARG) is under 10 levels
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Refusal:
    line: int
    path: KeyPath  # empty when the problem is the file's YAML as a whole
    message: str


class Refused(Exception):
    """The text was refused; ``refusals`` says where and why (at least one)."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = refusals
        super().__init__("; ".join(f"line {r.line}: {r.message}" for r in refusals))


def _part(index: Any) -> str | int:
    if isinstance(index, yaml.ScalarNode):
        return str(index.value)
    if isinstance(index, yaml.Node):
        return "?"  # a complex key ({a: 1}: x); construction refuses it later as unhashable
    return int(index)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting while composing, and reports bad scalars."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: KeyPath = ()
        self.node_paths: dict[int, KeyPath] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # index: None for the document and for a mapping's key, the key node for its value, an int in a list
        here = self._path if parent is None or index is None else (*self._path, _part(index))
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise Refused([Refusal(event.start_mark.line + 1, here,
                                   f"YAML alias '*{event.anchor}' is not allowed in mapping files (aliases can "
                                   "expand without bound); write the value out, or share it with 'extends'")])
        if len(here) > MAX_DEPTH:
            event = self.peek_event()
            raise Refused([Refusal(event.start_mark.line + 1, here[:4],  # the key it starts under is enough
                                   f"nested more than {MAX_DEPTH} levels deep")])
        outer, self._path = self._path, here
        try:
            node = super().compose_node(parent, index)
        finally:
            self._path = outer
        self.node_paths[id(node)] = here
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:  # 2025-02-30, a 5000-digit int, !!int 'abc'
            raise Refused([Refusal(node.start_mark.line + 1, self.node_paths.get(id(node), ()),
                                   f"invalid value: {str(exc).split('; use ')[0]}")]) from None


def _duplicates(loader: StrictLoader, node: yaml.Node, path: KeyPath, found: list[Refusal]) -> None:
    """Every key that repeats an earlier key of its mapping (equal as Python keys: `1` and `true` too)."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(loader, item, (*path, i), found)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[Any, int] = {}
    for key_node, value_node in node.value:
        label = _part(key_node)
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                if first is None:
                    seen[key] = line
            except TypeError:  # unhashable: construction refuses it with its own message
                first = None
            if first is not None:
                found.append(Refusal(line, (*path, label), f"duplicate key '{key_node.value}' (first at line "
                                     f"{first}); a key may appear only once in a mapping, the later value "
                                     "would silently win"))
        _duplicates(loader, value_node, (*path, label), found)


def _reader_line(text: str, position: int) -> int:
    return text.count("\n", 0, max(position, 0)) + 1


def load(text: str) -> tuple[yaml.Node | None, Any]:
    """The composed node tree (for key lines) and the constructed data of one YAML document.

    Raises :class:`Refused` for invalid YAML, an alias, nesting deeper than MAX_DEPTH, a duplicate key or a
    scalar that cannot be constructed; never anything else for any text.
    """
    try:
        loader = StrictLoader(text)  # the reader refuses control characters here, before any parsing
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise Refused([Refusal(_reader_line(text, exc.position), (),
                               f"invalid YAML: unacceptable character #x{char:04x}: {exc.reason}")]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        found: list[Refusal] = []
        _duplicates(loader, node, (), found)
        if found:
            raise Refused(found)
        return node, loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        what = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
        raise Refused([Refusal(line, (), f"invalid YAML: {' '.join(str(what).split())}")]) from None
    finally:
        loader.dispose()
