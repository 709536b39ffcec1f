"""Semantic checks of a merged mapping document: what pydantic's shape checks cannot see.

Why separate from the loader: these rules are the mapping's meaning (known transforms, known source
and target fields, complete lookup tables, required Bloomerang fields, time zones, credentials named by
environment variable only). Each check yields (key path, message); the loader turns the path into
FILE:LINE. Messages never repeat a value that might be a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bloom_pipeline.mapping import catalog
from bloom_pipeline.mapping.spec import ENV_NAME, IDENTIFIER, NAMED_TARGETS, EntitySpec, FieldRule, MappingDocument
from bloom_pipeline.mapping.transforms import REGISTRY

Found = Iterator[tuple[tuple[Any, ...], str]]

CREDENTIAL_KEYS = {"api_key", "apikey", "key", "token", "access_token", "password", "secret", "webhook_secret"}
ENV_KEYS = {"api_key_env", "token_env", "webhook_url_env"}


def inline_credentials(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Keys that would hold a secret inline (never allowed) — checked before the shape checks."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*path, str(key))
            if str(key).lower() in CREDENTIAL_KEYS:
                found.append((here, "credential value written inline; put it in an environment variable and "
                              f"name that variable with '{key}_env'" if key != "key" else
                              "credential value written inline; name an environment variable with api_key_env"))
            elif str(key) in ENV_KEYS and isinstance(value, str) and not ENV_NAME.match(value):
                found.append((here, "expects the NAME of an environment variable (e.g. DEMO_BLOOMERANG_API_KEY), "
                              "not a credential value written inline"))
            else:
                found.extend(inline_credentials(value, here))
    return found


def _timezone(name: str | None, path: tuple[Any, ...]) -> Found:
    if name is None:
        return
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        yield path, f"'{name}' is not a valid IANA time zone (e.g. America/Denver)"


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def _rule(entity: str, rule: FieldRule, path: tuple[Any, ...], targets: set[str], element_of: str | None) -> Found:
    for src in rule.sources():
        if not catalog.source_field_known(entity, src, element_of):
            yield (*path, "from"), f"unknown source field '{src}' for {entity}"
    for i, ref in enumerate(rule.transform):
        name, arg = (ref, None) if isinstance(ref, str) else next(iter(ref.items()), (None, None))
        here = (*path, "transform", i)
        if not isinstance(ref, str) and len(ref) != 1:
            yield here, "a transform with an argument is written {name: argument}"
            continue
        spec = REGISTRY.get(str(name))
        if spec is None:
            yield here, f"unknown transform '{name}' (known: {', '.join(sorted(REGISTRY))})"
        elif spec.arg is None and arg is not None:
            yield here, f"transform '{name}' takes no argument"
        elif spec.arg is not None and (arg is None or (spec.arg and arg not in spec.arg)):
            choices = ", ".join(spec.arg) or "a text"
            yield here, f"transform '{name}' needs an argument ({choices})"
        elif name == "ref" and arg is not None and not _valid_ref(str(arg)):
            yield here, f"'{arg}' is not SOURCE.ENTITY (e.g. wegive.donors)"
    single = rule.from_ if isinstance(rule.from_, str) else None
    if rule.lookup is not None and single is not None:
        field = single.removeprefix("parent.")
        enum = catalog.SOURCE_ENUMS.get((entity, field if element_of is None or single != field else single))
        keys = {_norm(k) for k in rule.lookup}
        for value in enum or ():
            if _norm(value) not in keys:
                yield (*path, "lookup"), f"lookup has no entry for source value '{value}' of {field}"
    for key in rule.when or {}:
        if key not in targets:
            yield (*path, "when", key), f"'when' names '{key}', which is not a target of this record"
    for method, needed in (rule.requires or {}).items():
        for target in needed:
            if target not in targets:
                yield (*path, "requires", method), f"'{target}' is not a target of this record"
    if rule.canonical is not None and not IDENTIFIER.match(rule.canonical):
        yield (*path, "canonical"), f"'{rule.canonical}' is not a valid column name"
    if rule.from_ is None and rule.const is None and rule.cases is None and rule.default is None:
        yield path, "a rule needs 'from', 'const', 'cases' or 'default'"


def _valid_ref(arg: str) -> bool:
    source, _, entity = arg.partition(".")
    return bool(IDENTIFIER.match(source) and IDENTIFIER.match(entity))


def _rules(entity: str, rules: dict[str, FieldRule], path: tuple[Any, ...], allowed: set[str],
           element_of: str | None, scope: set[str]) -> Found:
    for target, rule in rules.items():
        here = (*path, target)
        if target not in allowed:
            yield here, f"unknown Bloomerang target field '{target}'"
        yield from _rule(entity, rule, here, scope, element_of)


def check_entity(entity: str, spec: EntitySpec, path: tuple[Any, ...]) -> Found:
    if entity not in catalog.SOURCE_FIELDS:
        yield path, f"unknown entity '{entity}' (known: {', '.join(sorted(catalog.SOURCE_FIELDS))})"
        return
    table = catalog.ENTITY_TARGET[entity]
    allowed = catalog.TARGETS[table]
    for key in ("id", "updated_at", "bloomerang_id", "status", "branch_on"):
        value = getattr(spec, key)
        if value is not None and not catalog.source_field_known(entity, value):
            yield (*path, key), f"unknown source field '{value}' for {entity}"
    for i, rule in enumerate(spec.exclude_when):
        if not catalog.source_field_known(entity, rule.field):
            yield (*path, "exclude_when", i, "field"), f"unknown source field '{rule.field}' for {entity}"
        enum = catalog.SOURCE_ENUMS.get((entity, rule.field))
        for value in rule.in_ if enum else ():
            if _norm(value) not in {_norm(v) for v in enum}:
                yield (*path, "exclude_when", i, "in"), (f"'{value}' is not a value of {rule.field} "
                                                         f"(known: {', '.join(enum)})")
    branches: list[str | None] = list(spec.branches) or [None]
    enum = catalog.SOURCE_ENUMS.get((entity, spec.branch_on or ""))
    for value in enum or ():
        if spec.branches and _norm(value) not in {_norm(b) for b in spec.branches}:
            yield (*path, "branches"), f"no branch for source value '{value}' of {spec.branch_on}"
    if spec.branches and spec.branch_on is None:
        yield (*path, "branch_on"), "branches need 'branch_on' (the source field that picks the branch)"
    for branch in branches:
        rules = spec.branch_rules(branch)
        bpath = (*path, "branches", branch) if branch is not None else (*path, "fields")
        scope = set(rules)
        if branch is not None:
            yield from _rules(entity, spec.branches[branch], bpath, allowed, None, scope)
        yield from _required(table, rules, bpath)
    yield from _rules(entity, spec.fields, (*path, "fields"), allowed, None, set(spec.branch_rules(None)) | {
        t for b in spec.branches.values() for t in b})
    if table == "transactions":
        yield from _designations(entity, spec, path)
    yield from _custom_fields(entity, spec, path)


def _custom_fields(entity: str, spec: EntitySpec, path: tuple[Any, ...]) -> Found:
    """Org custom fields are synced for WeGive donors only (a transaction custom question is not yet), and
    each Bloomerang field and each WeGive field is named once (two entries would overwrite each other)."""
    if spec.custom_fields and entity != "wegive.donors":
        yield (*path, "custom_fields"), f"custom fields are synced for wegive.donors only, not {entity}"
        return
    seen: dict[str, set[str]] = {"bloomerang": set(), "wegive": set()}
    for i, entry in enumerate(spec.custom_fields):
        for side, name in (("bloomerang", str(entry.bloomerang)), ("wegive", entry.wegive)):
            if name.casefold() in seen[side]:
                yield (*path, "custom_fields", i, side), f"{side} custom field '{name}' is mapped twice"
            seen[side].add(name.casefold())


def _required(table: str, rules: dict[str, FieldRule], path: tuple[Any, ...]) -> Found:
    if table == "constituents":
        kind = rules.get("Type").const if rules.get("Type") else None
        needed = catalog.REQUIRED_BY_TYPE.get(kind, ("Type",))
    else:
        needed = catalog.REQUIRED.get(table, ())
    for target in needed:
        if target not in rules:
            yield path, f"required Bloomerang field '{target}' has no rule"


def _designations(entity: str, spec: EntitySpec, path: tuple[Any, ...]) -> Found:
    des = spec.designations
    dpath = (*path, "designations")
    if des is None:
        yield path, "transactions need 'designations' (Bloomerang requires at least one, with a FundId)"
        return
    if des.list is not None and not catalog.source_field_known(entity, des.list):
        yield (*dpath, "list"), f"unknown source field '{des.list}' for {entity}"
    for key, src in des.fallback.items():
        if not catalog.source_field_known(entity, src):
            yield (*dpath, "fallback", key), f"unknown source field '{src}' for {entity}"
    yield from _rules(entity, des.fields, (*dpath, "fields"), catalog.DESIGNATION_TARGETS, des.list,
                      set(des.fields))
    for target, plural in NAMED_TARGETS.items():
        rule = des.fields.get(target)
        if rule is not None:
            yield from _named_values(rule, plural, (*dpath, "fields", target))
    for target in catalog.REQUIRED_DESIGNATION:
        if target not in des.fields:
            yield (*dpath, "fields"), f"required Bloomerang field '{target}' has no rule"


def _named_values(rule: FieldRule, plural: str, path: tuple[Any, ...]) -> Found:
    """A fund / campaign / appeal a rule names by `lookup`, `default` or `const` is a Bloomerang name (text)
    or id (a whole number above 0): anything else could only fail at apply time, gift by gift."""
    def bad(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | str):
            return value is not None
        return isinstance(value, int) and value <= 0 or isinstance(value, str) and not value.strip()

    kind = plural[:-1]
    for key, value in (rule.lookup or {}).items():
        if bad(value):
            yield (*path, "lookup", key), f"'{value}' is not a Bloomerang {kind} name or id"
    for key in ("default", "const"):
        if bad(getattr(rule, key)):
            yield (*path, key), f"'{getattr(rule, key)}' is not a Bloomerang {kind} name or id"


def check_document(doc: MappingDocument, org_file: bool) -> Found:
    yield from _timezone(doc.timezone, ("timezone",))
    if doc.schedule is not None:
        yield from _timezone(doc.schedule.timezone, ("schedule", "timezone"))
    for source, entities in doc.mappings.items():
        for name, spec in entities.items():
            yield from check_entity(f"{source}.{name}", spec, ("mappings", source, name))
    for table, fields in doc.policies.items():
        if table not in catalog.CANONICAL_COLUMNS:
            yield ("policies", table), f"unknown staged table '{table}' (known: constituents, transactions, funds)"
            continue
        for column in fields:
            if column != "*" and column not in catalog.CANONICAL_COLUMNS[table]:
                yield ("policies", table, column), f"unknown canonical field '{column}' of {table}"
    if not org_file:
        return
    if doc.name is not None and not IDENTIFIER.match(doc.name):
        yield ("name",), f"'{doc.name}' is not a valid org name (lower-case letters, digits, underscores)"
    for key in ("name", "timezone"):
        if getattr(doc, key) is None:
            yield (), f"'{key}' is required in an org file"
    sources = set(doc.mappings)
    if doc.bloomerang is None or doc.bloomerang.api_key_env is None:
        yield ("bloomerang",), "'bloomerang.api_key_env' is required (the env var holding the API key)"
    for source in sources:
        settings = getattr(doc, source)
        if settings is None or settings.token_env is None:
            yield (source,), f"'{source}.token_env' is required (the env var holding the token)"
