"""Field rules compiled to DuckDB SQL: for each rule, the expression of its value and the conditions under which
that expression is exactly what the Python engine (engine.py, transforms.py) gives.

Why conditions: the SQL is a fast path, not a second semantics. Each rule is compiled for the value shapes SQL
reproduces exactly — text that is valid UTF-8, whole numbers, ISO timestamps in a strict format, plain-ASCII
keys, addresses of the plain shape email-validator accepts — and a row outside them, or a row on which any rule
would raise an error or leave a value out, is not mapped here: it goes to the Python engine (sqlpath.py), which
writes its error texts and dropped values. So the SQL never writes an error text; it only has to be right for
the rows it claims. A transform SQL cannot express (card expiries, routing numbers, phonenumbers formatting …)
is compiled for rows where its input is empty (its outcome then does not depend on the row: it is computed
once by the Python engine) and leaves every other row to Python. A rule feature not listed here raises
`Unsupported` and the whole chunk stays in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from bloom_pipeline.mapping import validators
from bloom_pipeline.mapping.arrowtext import WHITESPACE
from bloom_pipeline.mapping.jsonbuild import split_dotted
from bloom_pipeline.mapping.limits import text_limit
from bloom_pipeline.mapping.spec import FieldRule
from bloom_pipeline.mapping.transforms import MAX_CENTS, REGISTRY, Context

TRIMMING = {"strip", "lower", "email", "phone", "phone_formatted"}  # as engine.TRIMMING
WS = "'" + WHITESPACE + "'"  # str.strip()'s characters, as a SQL literal (none is a quote)
CONTROL_RE2 = r"[\x{00}-\x{08}\x{0b}\x{0c}\x{0e}-\x{1f}\x{7f}-\x{9f}]"  # limits.CONTROL
TIDY = r"[!-~]([ -~]*[!-~])?"  # printable ASCII, no space at either end: str.strip().lower() is SQL's lower()
ASCII = r"[\x{00}-\x{7f}]*"
# An ISO-8601 time pandas reads as SQL does (format="ISO8601", UTC when naive), in years whose zone rules
# both tz databases (Python's and ICU's) agree on: other shapes go to the Python engine.
ISO_TIME = r"(19[7-9][0-9]|20[0-9][0-9])-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z)?"


class Unsupported(Exception):  # noqa: N818 - control flow: "this rule set stays in Python", not an error
    """A rule feature the SQL path does not compile."""


def text_literal(text: str) -> str:
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        raise Unsupported("control character in a literal")
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Expr:
    """A SQL expression and what it holds: kind 'text' (VARCHAR), 'int' (BIGINT), 'bool', 'cents' (BIGINT
    cents standing for the dollars float the engine holds) or 'null' (always NULL). `clean`: text that can hold
    no character JSON escapes or `limits.CONTROL` removes; `longest`: a bound of its length in code points."""

    sql: str
    kind: str
    clean: bool = True
    longest: int | None = None
    stripped: str | None = None  # text: SQL of the value `str.strip()`ped, blank as NULL (Arrow made it)
    trimmed: bool = False  # text: never blank, no white space at either end (stripping changes nothing)


NULL = Expr("NULL", "null")


def literal(value: Any) -> Expr:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return Expr("TRUE" if value else "FALSE", "bool")
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise Unsupported("integer beyond BIGINT")
        return Expr(f"CAST({value} AS BIGINT)", "int")
    if isinstance(value, str):
        return Expr(text_literal(value), "text", clean=not any(c in value for c in '"\\'), longest=len(value),
                    trimmed=bool(value) and value.strip() == value)
    raise Unsupported(f"literal of type {type(value).__name__}")


@dataclass(frozen=True)
class Column:
    """A source column as the SQL reads it (sqlpath.arrow_columns): its identifier, kind, and whether every
    text in it is clean; `odd` names the flag column of rows whose value SQL cannot read (None: no such row)."""

    name: str
    kind: str
    clean: bool = True
    longest: int | None = None
    odd: str | None = None
    stripped: str | None = None  # text: the column of its values stripped (blank → NULL)

    def expr(self) -> Expr:
        if self.kind == "null":
            return NULL
        return Expr(self.name, self.kind, self.clean, self.longest, self.stripped)


def present(e: Expr) -> str:
    """transforms.present: non-null and, for text, not blank."""
    if e.kind == "null":
        return "FALSE"
    if e.kind == "text" and e.stripped is not None:
        return f"({e.stripped} IS NOT NULL)"
    if e.kind == "text" and not e.trimmed:
        return f"({e.sql} IS NOT NULL AND trim({e.sql}, {WS}) <> '')"
    return f"({e.sql} IS NOT NULL)"


def as_text(e: Expr) -> Expr:
    """A value's text where the engine would take `str(value)` (ints only)."""
    if e.kind == "int":
        return Expr(f"CAST({e.sql} AS VARCHAR)", "text", longest=20, trimmed=True)
    if e.kind in ("text", "null"):
        return e
    raise Unsupported(f"{e.kind} as text")


def norm_key(e: Expr, ok: list[str]) -> Expr:
    """engine.norm for the SQL path: tidy ASCII text lower-cased, whole numbers as digits; other values are
    left to Python (the condition goes into `ok`)."""
    if e.kind == "text":
        ok.append(f"({e.sql} IS NULL OR regexp_full_match({e.sql}, '{TIDY}'))")
        return Expr(f"lower({e.sql})", "text")
    if e.kind in ("int", "null"):
        return as_text(e)
    raise Unsupported(f"key of kind {e.kind}")


def norm_literal(value: Any) -> str | None:
    """engine.norm of a YAML key."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def _strip(e: Expr, ok: list[str]) -> Expr:
    e = as_text(e)
    if e.kind == "null" or e.trimmed:
        return e
    if e.stripped is not None:
        return Expr(e.stripped, "text", e.clean, e.longest, trimmed=True)
    return Expr(f"nullif(trim({e.sql}, {WS}), '')", "text", e.clean, e.longest, trimmed=True)


def _ascii(e: Expr, ok: list[str]) -> None:
    if e.kind == "text":
        ok.append(f"({e.sql} IS NULL OR regexp_full_match({e.sql}, '{ASCII}'))")


def _lower(e: Expr, ok: list[str]) -> Expr:
    e = _strip(e, ok)
    _ascii(e, ok)
    return e if e.kind == "null" else Expr(f"lower({e.sql})", "text", e.clean, e.longest, trimmed=True)


_EMAIL_SHAPE = validators._SIMPLE_EMAIL.replace("(?P<local>", "(").replace("(?P<tld>", "(")  # noqa: SLF001


def _email(e: Expr, ok: list[str]) -> Expr:
    e = _strip(e, ok)
    if e.kind == "null":
        return e
    special = ", ".join(text_literal(n) for n in sorted(SPECIAL_USE_DOMAIN_NAMES))
    v = e.sql
    ok.append(f"({v} IS NULL OR (regexp_full_match({v}, {text_literal(_EMAIL_SHAPE.strip('^$'))}) "
              f"AND length({v}) <= 254 AND length(split_part({v}, '@', 1)) <= 64 "
              f"AND lower(regexp_extract({v}, '([A-Za-z]+)$', 1)) NOT IN ({special})))")
    return e


def _cents(e: Expr, ok: list[str]) -> Expr:
    if e.kind == "null":
        return e
    if e.kind != "int":  # text amounts, floats: value by value in Python
        ok.append(f"({e.sql} IS NULL)")
        return NULL
    ok.append(f"({e.sql} IS NULL OR {e.sql} BETWEEN {-MAX_CENTS} AND {MAX_CENTS})")  # abs() of -2**63 overflows
    return Expr(e.sql, "cents")


def _positive(e: Expr, ok: list[str]) -> Expr:
    if e.kind == "null":
        return e
    if e.kind not in ("cents", "int"):
        raise Unsupported(f"positive of {e.kind}")
    ok.append(f"({e.sql} IS NULL OR {e.sql} > 0)")
    return e


def _to_date(tz: str) -> Callable[[Expr, list[str]], Expr]:
    def compile_(e: Expr, ok: list[str]) -> Expr:
        if e.kind == "null":
            return e
        if e.kind != "text":
            ok.append(f"({e.sql} IS NULL)")
            return NULL
        # only a text of the strict shape reaches the cast (CASE evaluates per row): no other text is converted
        moment = f"(CASE WHEN regexp_full_match({e.sql}, '{ISO_TIME}') THEN TRY_CAST({e.sql} AS TIMESTAMPTZ) END)"
        ok.append(f"({e.sql} IS NULL OR {moment} IS NOT NULL)")
        return Expr(f"strftime(timezone({text_literal(tz)}, {moment}), '%Y-%m-%d')", "text", longest=10,
                    trimmed=True)
    return compile_


def _ref(prefix: str, after: Callable[[Expr, list[str]], Expr]) -> Callable[[Expr, list[str]], Expr]:
    def compile_(e: Expr, ok: list[str]) -> Expr:
        e = after(e, ok)
        if e.kind == "null":
            return e
        return Expr(f"({text_literal(prefix)} || {e.sql})", "text", e.clean and '"' not in prefix,
                    None if e.longest is None else e.longest + len(prefix), trimmed=e.trimmed)
    return compile_


def _table(mapping: dict[str, str]) -> Callable[[Expr, list[str]], Expr]:
    def compile_(e: Expr, ok: list[str]) -> Expr:
        e = _lower(e, ok)
        if e.kind == "null":
            return e
        cases = " ".join(f"WHEN {text_literal(k)} THEN {text_literal(v)}" for k, v in mapping.items())
        return Expr(f"(CASE {e.sql} {cases} END)", "text", longest=max(len(v) for v in mapping.values()),
                    trimmed=True)
    return compile_


def _last_four(e: Expr, ok: list[str]) -> Expr:
    e = as_text(e)
    if e.kind == "null":
        return e
    _ascii(e, ok)
    digits = f"regexp_replace({e.sql}, '[^0-9]', '', 'g')"
    return Expr(f"(CASE WHEN length({digits}) >= 4 THEN right({digits}, 4) END)", "text", longest=4, trimmed=True)


def _transform(name: str, arg: Any, ctx: Context) -> Callable[[Expr, list[str]], Expr] | None:
    """The SQL of one (non-combining) transform; None when it has none."""
    from bloom_pipeline.mapping import transforms as t

    simple: dict[str, Callable[[Expr, list[str]], Expr]] = {
        "strip": _strip, "phone": _strip, "to_string": _strip, "lower": _lower, "email": _email,
        "cents_to_dollars": _cents, "positive": _positive, "to_date": _to_date(ctx.timezone),
        "last_four": _last_four, "card_type": _table(t._CARD_TYPES),  # noqa: SLF001
        "account_type": _table({"checking": "Checking", "savings": "Savings"}),
    }
    if name in simple:
        return simple[name]
    if name == "ref":
        return _ref(f"ref:{arg}:", _strip)
    if name == "named_ref":
        return _ref(f"ref:bloomerang.{arg}:name=", _strip)
    return None


def _split_ref(ref: Any) -> tuple[str, Any]:
    return (ref, None) if isinstance(ref, str) else next(iter(ref.items()))


@dataclass
class Compiled:
    """One rule compiled: its value, its canonical value (None: the value), the conditions of exactness."""

    value: Expr
    canonical: Expr | None
    ok: list[str] = field(default_factory=list)
    required: bool = False  # the value must be present (checked on the materialised value: no second pass)


def _null_outcome(target: str, rule: FieldRule, ctx: Context) -> Compiled:
    """A rule whose transform SQL cannot express, for rows whose every source value is empty: the Python
    engine's outcome on one such row (any error: never in SQL)."""
    from bloom_pipeline.mapping.engine import evaluate_rule

    frame = pd.DataFrame({p: pd.Series([None], dtype=object) for p in rule.sources()})
    values, canonical, errors, _ = evaluate_rule(target, rule, frame, ctx)
    if errors:
        return Compiled(NULL, None, ["FALSE"])
    value = literal(_plain(values.iloc[0]))
    return Compiled(value, None if canonical is None else literal(_plain(canonical.iloc[0])))


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        raise Unsupported("a float outcome")
    return value


def _sendable(target: str, e: Expr, ok: list[str]) -> Expr:
    """engine._sendable_text: control characters removed, the length bound (errors: never in SQL)."""
    if e.kind != "text":
        return e
    if not e.clean:
        e = Expr(f"regexp_replace({e.sql}, '{CONTROL_RE2}', '', 'g')", "text", False, e.longest)  # may bare a space
    limit = text_limit(target)
    if e.longest is None or e.longest > limit:
        ok.append(f"({e.sql} IS NULL OR length({e.sql}) <= {limit})")
    return e


def _coalesce(columns: list[Expr]) -> Expr:
    """engine.evaluate_rule's `from` list without a combining transform: the first present value, else the
    last column's own value (present or not)."""
    if len(columns) == 1:
        c = columns[0]
        return c if c.kind != "text" else Expr(f"(CASE WHEN {present(c)} THEN {c.sql} END)", c.kind, c.clean,
                                               c.longest, c.stripped)
    kinds = {c.kind for c in columns} - {"null"}
    if kinds == {"text", "int"}:  # the engine holds both in one object column; every use of it reads str(int)
        columns = [as_text(c) if c.kind == "int" else c for c in columns]
        columns = [Expr(c.sql, c.kind, c.clean, c.longest, c.stripped or (c.sql if c.trimmed else None), c.trimmed)
                   for c in columns]
    elif len(kinds) > 1:
        raise Unsupported("a `from` list of several kinds")
    live = [c for c in columns if c.kind != "null"]
    if not live:
        return NULL
    last = columns[-1]
    branches = " ".join(f"WHEN {present(c)} THEN {c.sql}" for c in columns[:-1] if c.kind != "null")
    longest = None if any(c.longest is None for c in live) else max(c.longest or 0 for c in live)
    stripped = None
    if live[0].kind == "text" and all(c.stripped for c in live):  # the stripped value: the first present one
        stripped = "coalesce(" + ", ".join(c.stripped or "" for c in live) + ")"
        if last.kind == "null":  # ... else the last column's, here empty
            stripped = "coalesce(" + ", ".join(c.stripped or "" for c in live) + ", NULL)"
    return Expr(f"(CASE {branches} ELSE {last.sql} END)" if branches else last.sql, live[0].kind,
                all(c.clean for c in live), longest, stripped)


def compile_rule(target: str, rule: FieldRule, columns: Callable[[str], Column], ctx: Context) -> Compiled:
    """The rule's value for the rows where the SQL is exact (see the module docstring)."""
    ok: list[str] = []
    sources = [columns(p) for p in rule.sources()]
    ok += [f"NOT {c.odd}" for c in sources if c.odd]
    transforms = list(rule.transform)
    names = [_split_ref(t)[0] for t in transforms]
    canonical: Expr | None = None
    if rule.const is not None:
        if transforms or rule.lookup is not None or rule.default is not None or rule.required:
            raise Unsupported("a constant with transforms, a lookup, a default or required")
        return Compiled(literal(rule.const), None, ok)
    if rule.cases:
        value = NULL
        for case in reversed(rule.cases):  # np.select: the first condition that holds
            chosen = literal(case.value)
            if value.kind not in ("null", chosen.kind) and chosen.kind != "null":
                raise Unsupported("cases of several kinds")
            value = Expr(f"(CASE WHEN {present(columns(case.if_present).expr())} THEN {chosen.sql} "
                         f"ELSE {value.sql} END)", chosen.kind if chosen.kind != "null" else value.kind,
                         chosen.clean and value.clean, max(chosen.longest or 0, value.longest or 0))
    elif rule.from_ is not None:
        inputs = [c.expr() for c in ([columns(rule.from_)] if isinstance(rule.from_, str)
                                     else [columns(p) for p in rule.from_])]
        first = REGISTRY[names[0]] if names else None
        if first is not None and first.combines:
            name, arg = _split_ref(transforms.pop(0))
            names.pop(0)
            value = _combined(name, arg, inputs, ok)
        elif not all(_transform(n, _split_ref(t)[1], ctx) for n, t in zip(names, transforms, strict=True)):
            compiled = _null_outcome(target, rule, ctx)
            compiled.ok = ok + [f"({c.sql} IS NULL)" for c in inputs if c.kind != "null"] + compiled.ok
            return compiled
        elif len(inputs) == 1 and names and names[0] in TRIMMING:
            value = inputs[0]
        else:
            value = _coalesce(inputs)
    else:
        value = NULL
    for ref in transforms:
        name, arg = _split_ref(ref)
        step = _transform(name, arg, ctx)
        if step is None:
            raise Unsupported(f"transform {name} after a combining one")
        if name == "ref":
            canonical = _strip(value, ok)
        value = step(value, ok)
    if rule.lookup is not None:
        value = _lookup(rule.lookup, value, ok)
    value = _sendable(target, value, ok)
    if rule.default is not None:
        default = literal(rule.default)
        if value.kind not in ("null", default.kind):
            raise Unsupported("a default of another kind")
        value = default if value.kind == "null" else Expr(
            f"(CASE WHEN {present(value)} THEN {value.sql} ELSE {default.sql} END)", default.kind,
            value.clean and default.clean,
            None if value.longest is None else max(value.longest, len(str(rule.default))),
            trimmed=value.trimmed and default.trimmed)
    return Compiled(value, canonical, ok, rule.required)


def _lookup(table: dict[Any, Any], value: Expr, ok: list[str]) -> Expr:
    if value.kind == "null":
        return NULL
    keys = norm_key(value, ok)
    known = {norm_literal(k): literal(v) for k, v in table.items()}
    kinds = {e.kind for e in known.values()} - {"null"}
    if len(kinds) > 1:
        raise Unsupported("lookup values of several kinds")
    kind = kinds.pop() if kinds else "null"
    listed = ", ".join(text_literal(k) for k in known if k is not None)
    ok.append(f"({value.sql} IS NULL OR {keys.sql} IN ({listed}))" if listed else f"({value.sql} IS NULL)")
    if kind == "null":
        return NULL
    cases = " ".join(f"WHEN {text_literal(k)} THEN {e.sql}" for k, e in known.items() if k is not None)
    return Expr(f"(CASE {keys.sql} {cases} END)", kind, all(e.clean for e in known.values()),
                max((e.longest or 0) for e in known.values()),
                trimmed=kind == "text" and all(e.trimmed or e.kind == "null" for e in known.values()))


def _combined(name: str, arg: Any, inputs: list[Expr], ok: list[str]) -> Expr:
    if name == "join_lines":
        parts = [_strip(c, ok) for c in inputs]
        live = [p for p in parts if p.kind != "null"]
        if not live:
            return NULL
        longest = None if any(p.longest is None for p in live) else sum(p.longest or 0 for p in live) + len(live)
        joined = "concat_ws(chr(10), " + ", ".join(p.sql for p in live) + ")"
        return Expr(f"nullif({joined}, '')", "text", all(p.clean for p in live) and len(live) == 1, longest,
                    trimmed=True)
    if name == "non_deductible":
        flags = (inputs + [NULL] * 4)[1:3]
        ok.extend(f"({c.sql} IS NULL)" for c in flags if c.kind != "null")
        return NULL  # no deductibility flag, no fair-market-value flag: nothing non-deductible
    raise Unsupported(f"combining transform {name}")


def json_text(e: Expr) -> str:
    """The JSON text of a value (jsonbuild.encoded: json.dumps, ensure_ascii=False); NULL stays NULL."""
    if e.kind == "null":
        return "NULL"
    if e.kind == "text":
        if e.clean:
            return f"('\"' || {e.sql} || '\"')"
        escaped = e.sql
        for raw, code in (("\\", "chr(92) || chr(92)"), ('"', "chr(92) || '\"'"), ("\n", "chr(92) || 'n'"),
                          ("\r", "chr(92) || 'r'"), ("\t", "chr(92) || 't'")):
            escaped = f"replace({escaped}, chr({ord(raw)}), {code})"
        return f"('\"' || {escaped} || '\"')"
    if e.kind == "int":
        return f"CAST({e.sql} AS VARCHAR)"
    if e.kind == "bool":
        return f"(CASE WHEN {e.sql} THEN 'true' WHEN NOT {e.sql} THEN 'false' END)"
    if e.kind == "cents":
        return dollars_text(e.sql)
    raise Unsupported(f"JSON of {e.kind}")


def dollars_text(cents: str) -> str:
    """repr(cents / 100) from whole cents, exactly: every amount of at most 15 digits reads back as the same
    float, so the shortest text of the float is the decimal itself ('12.3', '12.0', '0.05')."""
    a = f"(CASE WHEN {cents} BETWEEN {-MAX_CENTS} AND {MAX_CENTS} THEN abs({cents}) END)"
    frac = f"({a} % 100)"
    return (f"(CASE WHEN {cents} IS NOT NULL THEN (CASE WHEN {cents} < 0 THEN '-' ELSE '' END) || "
            f"CAST({a} // 100 AS VARCHAR) || '.' || (CASE WHEN {frac} = 0 THEN '0' WHEN {frac} % 10 = 0 "
            f"THEN CAST({frac} // 10 AS VARCHAR) ELSE lpad(CAST({frac} AS VARCHAR), 2, '0') END) END)")


def object_sql(members: dict[str, tuple[str, str | None]]) -> str:
    """jsonbuild.assemble in SQL over {dotted key: (JSON text SQL, anchor)}: keys sorted, nested objects only
    where an anchoring member is present (`anchor`: the SQL saying so; None for a member that anchors
    nothing), members whose value is NULL left out."""
    sql, _ = _object(members)
    return sql


def _object(members: dict[str, tuple[str, str | None]]) -> tuple[str, list[str]]:
    leaves, groups = split_dotted(members)
    parts: list[str] = []
    anchors: list[str] = []
    for key in sorted(set(leaves) | set(groups)):
        if key in leaves:
            value, anchor = leaves[key]
            if anchor:
                anchors.append(anchor)
        else:
            inner, inner_anchors = _object(groups[key])
            value = f"(CASE WHEN {' OR '.join(inner_anchors)} THEN {inner} END)" if inner_anchors else "NULL"
            anchors += inner_anchors
        name = text_literal(',"' + key + '":')
        parts.append(f"{name} || {value}")
    if not parts:
        return "'{}'", anchors
    return "('{' || substr(concat(" + ", ".join(parts) + "), 2) || '}')", anchors


@dataclass
class RuleSet:
    """A set of rules compiled (engine.evaluate in SQL): successive projections, each a {column: SQL} that may
    read the columns of the ones before it; the final value, canonical value and JSON text of every target
    (as columns of the last projection), the notes, and the column that says the row is exact."""

    layers: list[dict[str, str]]
    values: dict[str, Expr]
    canonical: dict[str, Expr]
    notes: Expr
    json: dict[str, tuple[str, str | None]]
    ok: str


def _same_kind(a: Expr, b: Expr) -> str:
    kinds = {a.kind, b.kind} - {"null"}
    if len(kinds) > 1:
        raise Unsupported("values of several kinds")
    return kinds.pop() if kinds else "null"


def _named(e: Expr, name: str) -> Expr:
    return Expr(name, e.kind, e.clean, e.longest, e.stripped, e.trimmed) if e.kind != "null" else NULL


def _in(e: Expr, allowed: list[Any]) -> str:
    """pandas `isin` of a value in a YAML list (a null value is in no list)."""
    if e.kind == "null":
        return "FALSE"
    same = []
    for item in allowed:
        if e.kind == "bool" and isinstance(item, int) and not isinstance(item, bool):
            raise Unsupported("true/false against a number")
        if e.kind == "int" and isinstance(item, bool):
            raise Unsupported("a number against true/false")
        if item is None:
            continue
        lit = literal(item)
        if e.kind == "cents":
            raise Unsupported("an amount in a `when` list")
        if lit.kind == e.kind:
            same.append(lit.sql)
    return f"coalesce({e.sql} IN ({', '.join(same)}), FALSE)" if same else "FALSE"


def _anchor(e: Expr) -> str | None:
    """An anchoring member is there when its value is (its JSON text is NULL exactly when the value is)."""
    return None if e.kind == "null" else f"({e.sql} IS NOT NULL)"


def compile_rules(rules: dict[str, FieldRule], columns: Callable[[str], Column], ctx: Context, prefix: str,
                  staged_only: set[str]) -> RuleSet:
    """engine.evaluate for the rows where the SQL is exact (conditions ANDed into the column `ok`)."""
    first: dict[str, str] = {}
    values: dict[str, Expr] = {}
    canonical: dict[str, Expr] = {}
    ok: list[str] = []  # on the source columns (the first projection)
    later: list[str] = []  # on the rules' values (the second)
    for i, (target, rule) in enumerate(rules.items()):
        compiled = compile_rule(target, rule, columns, ctx)
        name = f"{prefix}v{i}"
        first[name] = compiled.value.sql
        values[target] = _named(compiled.value, name)
        ok += compiled.ok
        if compiled.required:
            later.append(present(values[target]))
        if rule.canonical:
            if compiled.canonical is not None:
                first[f"{prefix}c{i}"] = compiled.canonical.sql
                canonical[rule.canonical] = _named(compiled.canonical, f"{prefix}c{i}")
            else:
                canonical[rule.canonical] = values[target]
    notes = NULL
    for target, rule in rules.items():  # notes, then `requires` + `fallback`, rule by rule (engine.evaluate)
        if rule.note and isinstance(rule.from_, str):
            source = columns(rule.from_)
            if source.odd:
                ok.append(f"NOT {source.odd}")
            key = norm_key(source.expr(), ok)
            table = {norm_literal(k): v for k, v in rule.note.items()}
            if key.kind != "null" and table:
                cases = " ".join(f"WHEN {text_literal(k)} THEN {text_literal(v)}" for k, v in table.items())
                clean = notes.clean and all(literal(v).clean for v in table.values())
                notes = Expr(f"coalesce({notes.sql}, (CASE {key.sql} {cases} END))", "text", clean)
        for method, needed in (rule.requires or {}).items():
            current = values[target]
            if current.kind == "null":
                continue
            if current.kind != "text":
                raise Unsupported("requires on a value that is not text")
            lacking = " OR ".join(f"NOT {present(values[n])}" for n in needed) or "FALSE"
            fall = f"({current.sql} = {text_literal(method)} AND ({lacking}))"
            fallback = literal(rule.fallback)
            kind = _same_kind(current, fallback)
            values[target] = Expr(f"(CASE WHEN {fall} THEN {fallback.sql} ELSE {current.sql} END)", kind,
                                  current.clean and fallback.clean)
            if rule.fallback_note:
                note = literal(rule.fallback_note.format(method=method, missing=", ".join(needed)))
                notes = Expr(f"(CASE WHEN {fall} THEN {note.sql} ELSE {notes.sql} END)", "text",
                             note.clean and notes.clean)
        if rule.canonical and rule.requires:
            canonical[rule.canonical] = values[target]
    second: dict[str, str] = {}
    for i, target in enumerate(rules):
        if values[target].sql != f"{prefix}v{i}" and values[target].kind != "null":
            second[f"{prefix}r{i}"] = values[target].sql
            values[target] = _named(values[target], f"{prefix}r{i}")
    for name, rule in rules.items():
        if rule.canonical and rule.requires:
            canonical[rule.canonical] = values[name]
    second[f"{prefix}notes"] = notes.sql
    notes = Expr(f"{prefix}notes", "text", notes.clean) if notes.kind != "null" else NULL
    for target, rule in rules.items():
        if not rule.when:
            continue
        applies = " AND ".join(_in(values[key], allowed) for key, allowed in rule.when.items())
        values[target] = Expr(f"(CASE WHEN {applies} THEN {values[target].sql} END)", values[target].kind,
                              values[target].clean, values[target].longest) if values[target].kind != "null" else NULL
        if rule.canonical and canonical[rule.canonical].kind != "null":
            c = canonical[rule.canonical]
            canonical[rule.canonical] = Expr(f"(CASE WHEN {applies} THEN {c.sql} END)", c.kind, c.clean, c.longest)
    third: dict[str, str] = {}
    for i, target in enumerate(rules):
        if rules[target].when and values[target].kind != "null":
            third[f"{prefix}w{i}"] = values[target].sql
            values[target] = _named(values[target], f"{prefix}w{i}")
    for j, (key, c) in enumerate(list(canonical.items())):
        if c.kind != "null" and not c.sql.startswith(prefix):
            third[f"{prefix}k{j}"] = c.sql
            canonical[key] = _named(c, f"{prefix}k{j}")
    first[f"{prefix}ok0"] = " AND ".join(ok) or "TRUE"
    second[f"{prefix}ok"] = " AND ".join([f"{prefix}ok0", *later])
    encoded = {t: (json_text(values[t]), _anchor(values[t]) if rules[t].const is None and rules[t].default is None
                   else None) for t in rules if t not in staged_only}
    return RuleSet([first, second, third], values, canonical, notes, encoded, f"{prefix}ok")
