"""Load mapping YAML with line numbers, resolve `extends`, and report every problem as FILE:LINE: KEY.

Why line numbers matter: admins edit these files by hand; `mapping validate` must point at the line to
fix. YAML is read strictly (`yamlsafe`: the safe loader's constructors only — no tags, no objects, nothing
executed — with aliases, duplicate keys and deep nesting refused while the node tree is composed, so a
"billion laughs" file costs nothing); the composed node tree gives each key its line. A file that cannot be
read or is not UTF-8 is one problem on its line, never a traceback. `extends` chains are merged
parent-first (mappings recursively, everything else replaced); a problem found in the merged result is
reported in the file that set the offending key. Values Dagster parses later (the schedule's cron) are
checked here too (`dagster_values`), so a file that validates also loads in the code location.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bloom_pipeline import settings
from bloom_pipeline.errors import ConfigurationError
from bloom_pipeline.mapping import checks, dagster_values, yamlsafe
from bloom_pipeline.mapping.spec import IDENTIFIER, MappingDocument, OrgConfig

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return _one_line(f"{self.file}:{self.line}: {self.key}: {self.message}")


def _one_line(text: str) -> str:
    """`text` with control characters escaped (a newline shows as \\n): one problem, one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class MappingError(ConfigurationError):
    """The mapping files are not valid; `problems` lists each one (printable as FILE:LINE: KEY: msg)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Parsed:
    path: Path
    data: dict[str, Any]
    lines: dict[Path_, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.path)


def mappings_root(mappings_dir: str | os.PathLike[str] | None = None) -> Path:
    """`--mappings-dir`, else $BLOOM_MAPPINGS_DIR, else ./mappings (read at call time, never at import)."""
    return settings.mappings_dir(mappings_dir)


def _index(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), lines)


def read_text(path: Path) -> str:
    """The file's text; MappingError (one problem naming the file and line) if unreadable or not UTF-8."""
    label = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MappingError([Problem(label, 1, "file", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise MappingError([Problem(label, line, "file", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                                    f"column {column}); save the file as UTF-8")]) from None


def parse(path: Path) -> Parsed:
    """Read one file: data plus the line of every key. Raises MappingError on an unreadable file, bad YAML,
    an alias, a duplicate key (each reported at its second occurrence) or a value YAML cannot construct."""
    label = str(path)
    text = read_text(path)
    try:
        node, data = yamlsafe.load(text)
    except yamlsafe.Refused as exc:
        raise MappingError([Problem(label, r.line, key_text(r.path) if r.path else "yaml", r.message)
                            for r in exc.refusals]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MappingError([Problem(label, 1, "yaml", "the file must hold a mapping of keys")])
    lines: dict[Path_, int] = {}
    if node is not None:
        _index(node, (), lines)
    return Parsed(path, data, lines)


def _resolve_ref(ref: str, base: Path, root: Path) -> Path | None:
    name = ref if ref.endswith((".yaml", ".yml")) else f"{ref}.yaml"
    for folder in (base.parent, root):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _chain(parsed: Parsed, root: Path, seen: tuple[Path, ...], problems: list[Problem]) -> list[Parsed]:
    """Files to merge, parents first, ending with `parsed`."""
    chain: list[Parsed] = []
    refs = parsed.data.get("extends") or []
    refs = [refs] if isinstance(refs, str) else refs
    for i, ref in enumerate(refs if isinstance(refs, list) else []):
        line = parsed.lines.get(("extends", i), parsed.lines.get(("extends",), 1))
        key = f"extends[{i}]"
        target = _resolve_ref(str(ref), parsed.path, root)
        if target is None:
            problems.append(Problem(parsed.label, line, key, f"no mapping file '{ref}' (looked in "
                                    f"{parsed.path.parent} and {root})"))
            continue
        if target.resolve() in seen:
            cycle = " -> ".join([p.name for p in seen] + [target.name])
            problems.append(Problem(parsed.label, line, key, f"cycle in extends: {cycle}"))
            continue
        try:
            parent = parse(target)
        except MappingError as exc:
            problems.extend(exc.problems)
            continue
        chain.extend(_chain(parent, root, (*seen, target.resolve()), problems))
    chain.append(parsed)
    return chain


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `top` over `base`: nested mappings merge, any other value replaces, and `null` over an
    inherited key removes it (how an org drops a default rule)."""
    out = dict(base)
    for key, value in top.items():
        if value is None and key in base:
            out.pop(key)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class Locator:
    """Finds the file and line that set a key of the merged document (most derived file first)."""

    def __init__(self, chain: list[Parsed]) -> None:
        self.chain = list(reversed(chain))

    def __call__(self, path: Path_) -> tuple[str, int]:
        path = tuple(path)
        for cut in range(len(path), -1, -1):
            for parsed in self.chain:
                if path[:cut] in parsed.lines:
                    return parsed.label, parsed.lines[path[:cut]]
        return self.chain[0].label, 1


def key_text(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


_UNION_TAGS = {"str", "int", "bool", "float", "list", "dict"}


def _pydantic_problems(exc: ValidationError, locate: Locator, skip: set[Path_]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p)))
        if loc in skip:
            continue
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        file, line = locate(loc)
        problems.append(Problem(file, line, key_text(loc), message))
    return problems


def _without_nulls(data: Any) -> Any:
    """A file's own keys minus `key: null` (which removes an inherited key when merged)."""
    if isinstance(data, dict):
        return {k: _without_nulls(v) for k, v in data.items() if v is not None}
    return data


def is_org_file(parsed: Parsed) -> bool:
    return "name" in parsed.data or parsed.path.parent.name == "orgs"


def check_file(path: Path, root: Path) -> tuple[OrgConfig | None, list[Problem]]:
    """Validate one file (with everything it extends). Returns the OrgConfig for org files."""
    try:
        parsed = parse(path)
    except MappingError as exc:
        return None, exc.problems
    problems: list[Problem] = []
    chain = _chain(parsed, root, (path.resolve(),), problems)
    locate = Locator(chain)
    merged: dict[str, Any] = {}
    for item in chain:
        merged = merge(merged, {k: v for k, v in item.data.items() if k != "extends"})
    inline = checks.inline_credentials(merged)
    problems += [Problem(*locate(p), key_text(p), m) for p, m in inline]
    skip = {p for p, _ in inline}
    try:
        MappingDocument.model_validate(_without_nulls(parsed.data))
    except ValidationError as exc:
        return None, problems + _pydantic_problems(exc, Locator([parsed]), skip)
    try:
        doc = MappingDocument.model_validate(merged)
    except ValidationError as exc:
        return None, problems + _pydantic_problems(exc, locate, skip)
    org_file = is_org_file(parsed)
    problems += [Problem(*locate(p), key_text(p), m) for p, m in checks.check_document(doc, org_file)]
    problems += [Problem(*locate(p), key_text(p), m) for p, m in dagster_values.check_document(doc)]
    if not org_file:
        return None, problems
    if doc.name and doc.name != path.stem:
        file, line = locate(("name",))
        problems.append(Problem(file, line, "name", f"'{doc.name}' does not match the file name {path.name}"))
    try:
        org = OrgConfig.model_validate(doc.model_dump(exclude_none=True, exclude={"extends"}, by_alias=True))
    except ValidationError as exc:
        problems += _pydantic_problems(exc, locate, skip)
        return None, problems
    return (org if not problems else None), problems


def validate_paths(paths: list[str | os.PathLike[str]], mappings_dir: str | os.PathLike[str] | None = None
                   ) -> list[Problem]:
    """Every problem in the given files (or, with no paths, in every YAML file under the mappings dir)."""
    root = mappings_root(mappings_dir)
    files = [Path(p) for p in paths] or sorted(root.rglob("*.yaml")) + sorted(root.rglob("*.yml"))
    found: set[Problem] = set()
    orgs: list[tuple[Path, OrgConfig]] = []
    for path in files:
        org, problems = check_file(path, root)
        found.update(problems)
        if org is not None:
            orgs.append((path, org))
    found.update(shared_bloomerang_problems(orgs))
    return sorted(found)


def _correlation_fields(org: OrgConfig) -> dict[tuple[str, str], str]:
    fields = {}
    for area in ("constituent", "transaction"):
        for source in ("wegive", "handbid"):
            wanted = org.custom_field(area, source)
            if wanted is not None:
                fields[(area, source)] = str(wanted).strip().casefold()
    return fields


def shared_bloomerang_problems(orgs: list[tuple[Path, OrgConfig]]) -> list[Problem]:
    """Two orgs on one Bloomerang database (the same ``bloomerang.api_key_env``) must not keep their source
    ids in the same correlation custom field: WeGive donor 1001 of one org and donor 1001 of the other
    would be one constituent. Refused before any API call; each org needs its own correlation fields."""
    problems = []
    seen: dict[str, tuple[Path, OrgConfig]] = {}
    for path, org in orgs:
        key_env = org.bloomerang.api_key_env
        if not key_env:
            continue
        if key_env not in seen:
            seen[key_env] = (path, org)
            continue
        first_path, first = seen[key_env]
        mine, theirs = _correlation_fields(org), _correlation_fields(first)
        for (area, source), name in sorted(mine.items()):
            if theirs.get((area, source)) == name:
                line = parse(path).lines.get(("bloomerang", "custom_fields", area, source), 1)
                problems.append(Problem(str(path), line, f"bloomerang.custom_fields.{area}.{source}", (
                    f"org {org.name!r} and org {first.name!r} ({first_path.name}) use the same Bloomerang "
                    f"({key_env}) and the same correlation custom field {name!r}: their {source} ids would "
                    "collide; give each org its own correlation custom fields")))
    return problems


def load_org(name: str, mappings_dir: str | os.PathLike[str] | None = None) -> OrgConfig:
    """The org's resolved configuration; raises MappingError listing every problem."""
    root = mappings_root(mappings_dir)
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):  # the whole name: "demo\n" is refused
        raise MappingError([Problem(str(root / "orgs"), 1, "org", f"{name!r} is not a valid org name "
                                    "(lower-case letters, digits, underscores)")])
    path = root / "orgs" / f"{name}.yaml"
    if not path.is_file():
        raise MappingError([Problem(str(path), 1, "org", f"no mapping file for org '{name}'")])
    org, problems = check_file(path, root)
    if problems or org is None:
        raise MappingError(problems)
    return org


def default_org(source: str, mappings_dir: str | os.PathLike[str] | None = None) -> OrgConfig:
    """A default mapping (mappings/defaults/<source>.yaml) on its own, as an OrgConfig named 'default' in UTC:
    what `to_source_payload` uses when no org is given."""
    root = mappings_root(mappings_dir)
    path = root / "defaults" / f"{source}.yaml"
    _, problems = check_file(path, root)
    if problems:
        raise MappingError(problems)
    problems = []
    merged: dict[str, Any] = {}
    for item in _chain(parse(path), root, (path.resolve(),), problems):
        merged = merge(merged, {k: v for k, v in item.data.items() if k != "extends"})
    merged.setdefault("name", "default")
    merged.setdefault("timezone", "UTC")
    return OrgConfig.model_validate(merged)
