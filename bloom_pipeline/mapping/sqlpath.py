"""The mapping's compiled path: a chunk's rules run as one DuckDB query over the chunk's columns (as Arrow), for
the rows the SQL maps exactly; the others are left to the Python engine (compile.py maps them and merges).

Why: at a million records the Python engine's per-column pandas work (object columns converted, masks, joins
of Series) cost several times the hand-written SQL; here each record's payload, hash and canonical columns are
one projection. What the SQL reproduces, and what it leaves to Python, is sqlrules.py's business; this module
turns the chunk's columns into Arrow (flagging values SQL cannot read: mixed types, lone surrogates, floats,
true/false), builds the query (branches, exclusions, designations) and returns the rows it mapped.
The result for a row is the Python engine's, byte for byte (tests/unit/mapping/test_sql_path_differential.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bloom_pipeline.mapping import arrowtext, catalog, jsonbuild
from bloom_pipeline.mapping.frames import extract, fallback_path
from bloom_pipeline.mapping.spec import EntitySpec, OrgConfig
from bloom_pipeline.mapping.sqlrules import (
    NULL,
    Column,
    Expr,
    RuleSet,
    Unsupported,
    compile_rules,
    json_text,
    norm_key,
    norm_literal,
    object_sql,
    text_literal,
)
from bloom_pipeline.mapping.transforms import Context

MIN_ROWS = 1_000  # below this a query's planning costs more than the pandas path (every sync batch is small)
INT64_MAX = 2**63 - 1
_SUSPECT = np.zeros(256, dtype=bool)  # bytes of a character JSON escapes or limits.CONTROL removes
_SUSPECT[[*range(0x20), 0x22, 0x5C, 0x7F, 0xC2]] = True


@dataclass
class FastRows:
    """The rows the SQL mapped: their positions in the chunk (ascending) and their columns (payload,
    payload_hash, canonical columns, as the Python engine's frame holds them)."""

    positions: np.ndarray
    columns: dict[str, Any]


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (type(value) is float and value != value)


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def arrow_column(values: pd.Series) -> tuple[Any, str, np.ndarray | None]:
    """(Arrow array, kind 'text' / 'int' / 'null', per row whether the value is one SQL cannot read).

    Whole numbers (int64) and valid text are read; a column mixing them, floats, true/false, objects and
    lists are flagged row by row (the Python engine maps those rows)."""
    pa = arrowtext.pa
    n = len(values)
    if values.dtype.kind in "iu":
        if values.dtype.kind == "u" and n and int(values.max()) > INT64_MAX:
            return pa.nulls(n, pa.int64()), "null", np.ones(n, dtype=bool)
        return pa.array(values.to_numpy().astype(np.int64)), "int", None
    if values.dtype == object:
        kind = pd.api.types.infer_dtype(values, skipna=True) if n else "empty"
        if kind == "empty":
            return pa.nulls(n, pa.string()), "null", None
        if kind == "string":
            try:
                return pa.array(values.to_numpy(), type=pa.string(), from_pandas=True), "text", None
            except (UnicodeEncodeError, pa.ArrowException):
                pass
        if kind == "integer":
            try:
                ints = values.astype("Int64")
            except (OverflowError, TypeError, ValueError):
                pass
            else:
                mask = ints.isna().to_numpy()
                return pa.array(ints.to_numpy(dtype="int64", na_value=0), mask=mask), "int", None
        items = values.to_numpy()
        ints = sum(type(v) is int or isinstance(v, np.integer) for v in items)
        if ints * 2 > n - int(values.isna().sum()):  # mostly whole numbers: read those, flag the rest
            kept = [int(v) if (type(v) is int or isinstance(v, np.integer)) and abs(int(v)) <= INT64_MAX else None
                    for v in items]
            odd = np.fromiter((k is None and not _is_null(v) for k, v in zip(kept, items, strict=True)), dtype=bool,
                              count=n)
            return pa.array(kept, type=pa.int64()), "int", odd if odd.any() else None
        texts = [v if type(v) is str and _utf8(v) else None for v in items]
        odd = np.fromiter((t is None and not _is_null(v) for t, v in zip(texts, items, strict=True)), dtype=bool,
                          count=n)
        return pa.array(texts, type=pa.string()), "text", odd if odd.any() else None
    odd = values.notna().to_numpy()
    return pa.nulls(n, pa.string()), "null", odd if odd.any() else None


def _clean(array: Any) -> bool:
    data = arrowtext._text_bytes(array)  # noqa: SLF001
    return data is not None and not _SUSPECT[data].any()


_BOUNDS = (255, 2048, 4000)  # limits.text_limit's bounds: a longest length rounded up to one keeps the same checks


def _longest(array: Any) -> int:
    """The longest text's length rounded up to a text bound (so that chunks share compiled queries)."""
    top = int(arrowtext.pc.max(arrowtext.pc.utf8_length(array)).as_py() or 0)
    return next((b for b in _BOUNDS if top <= b), top)


class Inputs:
    """The chunk's columns as one Arrow table (c0, c1, … and o0, o1, … for the odd flags), by source path."""

    def __init__(self, frame: dict[str, pd.Series], letter: str) -> None:
        self.arrays: dict[str, Any] = {}
        self.by_path: dict[str, Column] = {}
        for i, (path, values) in enumerate(frame.items()):
            array, kind, odd = arrow_column(values)
            name = f"{letter}{i}"
            self.arrays[name] = array
            flag = None
            if odd is not None:
                flag = f"{letter}o{i}"
                self.arrays[flag] = arrowtext.pa.array(odd)
            clean = _clean(array) if kind == "text" else True
            longest = _longest(array) if kind == "text" else None
            stripped = None
            if kind == "text":  # str.strip() in Arrow (exact, arrowtext.trim): SQL's trim of 25 characters is slow
                stripped = f"{letter}t{i}"
                self.arrays[stripped] = arrowtext.trim(array)
            self.by_path[path] = Column(name, kind, clean, longest, flag, stripped)

    def column(self, path: str) -> Column:
        if path not in self.by_path:
            raise Unsupported(f"no column {path}")
        return self.by_path[path]

    def table(self, extra: dict[str, Any]) -> Any:
        return arrowtext.pa.table({**self.arrays, **extra})

    def signature(self) -> tuple[Any, ...]:
        """What the compiled SQL depends on: the same signature, the same query."""
        return tuple((p, c.kind, c.clean, c.longest, c.odd is not None) for p, c in self.by_path.items())


_SET_APART = {"status", "is_refunded", "bloomerang_id", "fund_source_ids"}  # compile.py sets these itself
_SQL_TYPE = {"text": "VARCHAR", "int": "BIGINT", "null": "VARCHAR"}


def _layers(base: str, rules: RuleSet, name: str) -> tuple[list[str], str]:
    """CTEs adding the rule set's columns to `base`, and the name of the last."""
    ctes, last = [], base
    for i, layer in enumerate(rules.layers):
        if not layer:
            continue
        cols = ", ".join(f"{sql} AS {col}" for col, sql in layer.items())
        ctes.append(f"{name}{i} AS (SELECT *, {cols} FROM {last})")
        last = f"{name}{i}"
    return ctes, last


@dataclass
class _Designations:
    ctes: list[str]
    array: str  # SQL of the JSON array, over `last` (LEFT JOIN des where there is a list)
    funds: str
    ok: str
    last: str


_local = threading.local()


def _duckdb() -> Any:
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = duckdb.connect(config={"threads": 1})
        _local.con = con
    return con


def map_rows(org: OrgConfig, entity: str, spec: EntitySpec, src: dict[str, pd.Series], ids: pd.Series,
             ctx: Context) -> FastRows | None:
    """The rows of `src` (the chunk's extracted columns; `ids`: their id texts) the SQL maps; None when the
    entity's rules use something the SQL path does not compile (the whole chunk stays in Python)."""
    if not arrowtext.ENABLED or not len(ids):
        return None
    try:
        return _map_rows(org, entity, spec, src, ids, ctx)
    except Unsupported:
        return None


def _map_rows(org: OrgConfig, entity: str, spec: EntitySpec, src: dict[str, pd.Series], ids: pd.Series,
              ctx: Context) -> FastRows:
    table = catalog.ENTITY_TARGET[entity]
    des = spec.designations if table == "transactions" else None
    frame = {p: values for p, values in src.items() if des is None or p != des.list}
    root = Inputs(frame, "c")
    id_col = Inputs({"_id": ids}, "i").by_path["_id"]
    if id_col.kind != "text" or id_col.odd:
        raise Unsupported("ids that are not text")
    ok_root: list[str] = []
    for rule in spec.exclude_when:
        column = root.column(rule.field)
        if column.odd:
            ok_root.append(f"NOT {column.odd}")
        key = norm_key(column.expr(), ok_root)
        listed = ", ".join(text_literal(norm_literal(v)) for v in rule.in_)
        if key.kind != "null":
            ok_root.append(f"({key.sql} IS NULL OR {key.sql} NOT IN ({listed}))")
    branches: list[tuple[str | None, list[str]]] = [(None, [])]
    if spec.branch_on:
        column = root.column(spec.branch_on)
        cond: list[str] = [f"NOT {column.odd}"] if column.odd else []
        key = norm_key(column.expr(), cond)
        if key.kind == "null":
            raise Unsupported("no branch key")
        branches = [(b, [*cond, f"{key.sql} = {text_literal(norm_literal(b))}"]) for b in spec.branches]
    con = _duckdb()
    parts: list[Any] = []
    extra = {"_pos": arrowtext.pa.array(np.arange(len(ids), dtype=np.int64)), "_id": id_col_array(ids)}
    listed_table = None
    elements = None
    if des is not None:
        elements, has, listed_table = _elements(des, src, len(ids))
        root.arrays["_has"] = arrowtext.pa.array(has)
    key = (entity, spec.model_dump_json(), org.bloomerang.custom_fields.model_dump_json(), ctx.timezone,
           ctx.phone_region, root.signature(), id_col.clean, None if elements is None else elements.signature(),
           listed_table is not None)  # everything the query text depends on (never an object's id: ids are reused)
    queries = _QUERIES.get(key)
    if queries is None:
        queries = [_query(org, entity, spec, branch, where, ok_root, root, id_col, elements, listed_table is not None,
                          ctx) for branch, where in branches]
        if len(_QUERIES) >= 64:
            _QUERIES.clear()
        _QUERIES[key] = queries
    for sql in queries:
        con.register("src", root.table(extra))
        if listed_table is not None:
            con.register("listed", listed_table)
        try:
            parts.append(con.sql(sql).to_arrow_table())
        finally:
            con.unregister("src")
            if listed_table is not None:
                con.unregister("listed")
            clear_float_flags()
    return _collect(parts)


def _float_flag_clearer() -> Any:
    try:
        import ctypes
        import ctypes.util

        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        return libm.feclearexcept
    except (OSError, AttributeError):  # not glibc: nothing to clear with
        return None


_FECLEAR = _float_flag_clearer()
FE_ALL_EXCEPT = 0x3D  # x86 (<fenv.h>)


def clear_float_flags() -> None:
    """Clear the thread's floating-point exception flags a C kernel left raised (DuckDB's, or pandas' own
    parsing of an out-of-range date): numpy does not clear them before every operation, and pandas converts
    epoch seconds under `errstate(over="raise")`, so a stale flag raises there (FloatingPointError in
    `to_datetime`, seen on hostile inputs now and then)."""
    if _FECLEAR is not None:
        _FECLEAR(FE_ALL_EXCEPT)


_QUERIES: dict[tuple[Any, ...], list[str]] = {}  # compiled queries by what they depend on (a chunk's signature)


def _query(org: OrgConfig, entity: str, spec: EntitySpec, branch: str | None, where: list[str], ok_root: list[str],
           root: Inputs, id_col: Column, elements: Inputs | None, listed: bool, ctx: Context) -> str:
    """The SQL of one branch's rows (their payloads, canonical columns and the condition of exactness)."""
    table = catalog.ENTITY_TARGET[entity]
    source = entity.split(".")[0]
    des = spec.designations if table == "transactions" else None
    rules = compile_rules(spec.branch_rules(branch), root.column, ctx, "r_", catalog.STAGED_ONLY_TARGETS)
    ctes, last = _layers("src", rules, "root")
    members = dict(rules.json)
    conditions = [rules.ok, *ok_root, *where]
    if table == "constituents" and spec.correlation:
        members["CustomValues"] = (_custom_values(org.custom_field("constituent", source), id_col), None)
    joined = last
    funds = None
    if des is not None and elements is not None:
        d = _designations(org, entity, des, root, elements, listed, rules, last, id_col, ctx)
        ctes += d.ctes
        members["Designations"] = (d.array, None)
        conditions.append(d.ok)
        joined = d.last if not listed else f"{d.last} LEFT JOIN des ON des._row = {d.last}._pos"
        funds = d.funds
    outputs = [f"{object_sql(members)} AS payload"]
    for column in catalog.CANONICAL_COLUMNS[table]:
        if column == "fund_source_ids" and column in rules.canonical:
            raise Unsupported("fund ids from a root rule")
        if column not in _SET_APART:
            outputs.append(f"{_canonical_sql(rules.canonical.get(column, NULL), column)} AS k_{column}")
    if table == "transactions":
        refunded = rules.values.get("IsRefunded", NULL)
        outputs.append(f"{_refunded_sql(refunded)} AS k_is_refunded")
        outputs.append(f"{funds} AS k_fund_source_ids")
    return (f"WITH {', '.join(ctes)} " if ctes else "") + (
        f"SELECT _pos, {', '.join(outputs)} FROM {joined} WHERE {' AND '.join(f'({c})' for c in conditions)}")


def id_col_array(ids: pd.Series) -> Any:
    return arrow_column(ids)[0]


def _custom_values(field_id: Any, id_col: Column) -> str:
    if field_id is None:
        return "NULL"
    fid = jsonbuild.dumps(field_id if isinstance(field_id, int) else f"ref:bloomerang.custom_fields:name={field_id}")
    head = text_literal('[{"FieldId":' + fid + ',"Value":')
    return f"({head} || {json_text(Expr('_id', 'text', id_col.clean))} || '}}]')"


def _canonical_sql(e: Expr, column: str) -> str:
    """A canonical column as the Python frame holds it: text as text, amounts as dollars (a float)."""
    if column == "amount":
        if e.kind == "cents":
            return f"CAST({e.sql} AS DOUBLE) / 100"
        if e.kind not in ("int", "null"):
            raise Unsupported("an amount that is not a number")
        return f"CAST({e.sql} AS DOUBLE)"
    if e.kind not in ("text", "null"):
        raise Unsupported("a canonical value that is not text")
    return e.sql if e.kind != "null" else "CAST(NULL AS VARCHAR)"


def _refunded_sql(e: Expr) -> str:
    if e.kind == "bool":
        return f"coalesce({e.sql}, FALSE)"
    if e.kind == "int":
        return f"coalesce({e.sql} = 1, FALSE)"
    return "FALSE"


def _elements(des: Any, src: dict[str, pd.Series], n: int) -> tuple[Inputs, np.ndarray, Any]:
    """The list elements of the chunk's records, in order (their columns, per record whether it has a list, and
    the Arrow table of the elements with `_row` and `_ord`, None when no record has one)."""
    pa = arrowtext.pa
    relative = sorted({s for rule in des.fields.values() for s in rule.sources() if not s.startswith("parent.")})
    lists = src[des.list].to_numpy() if des.list is not None else None
    if lists is not None:
        has = np.fromiter((isinstance(v, list) and len(v) > 0 for v in lists), dtype=bool, count=len(lists))
    else:
        has = np.zeros(n, dtype=bool)
    items: list[Any] = []
    owners: list[int] = []
    order: list[int] = []
    for r in np.flatnonzero(has):
        for k, item in enumerate(lists[r]):
            items.append(item)
            owners.append(int(r))
            order.append(k)
    elements = Inputs({p: pd.Series(extract(items, p), dtype=object) for p in relative}, "e")
    table = None
    if items:
        arrays = dict(elements.arrays)
        arrays["_row"] = pa.array(np.asarray(owners, dtype=np.int64))
        arrays["_ord"] = pa.array(np.asarray(order, dtype=np.int64))
        table = pa.table(arrays)
    return elements, has, table


def _designations(org: OrgConfig, entity: str, des: Any, root: Inputs, elements: Inputs, listed: bool,
                  rules: RuleSet, root_last: str, id_col: Column, ctx: Context) -> _Designations:
    """The designation arrays in SQL. A record without a list has one designation built from its own fields
    (`fallback`): its rules are evaluated on the record's row itself, no join, no aggregate. The elements of
    the lists (extracted here, in order) are evaluated joined to their record and aggregated per record in
    list order. Per record: the JSON array, the fund ids, whether every element mapped exactly and whether
    their amounts add up to the gift's (as the Python check finds them)."""
    def parent_or(own: Any) -> Any:
        def column(path: str) -> Column:
            if path.startswith("parent."):
                return root.column(path.removeprefix("parent."))
            return own(path)
        return column

    def fallback_column(path: str) -> Column:
        origin = fallback_path(des, path) if des.list is not None else path
        return root.column(origin) if origin is not None else Column("NULL", "null")

    field_id = org.custom_field("transaction", entity.split(".")[0])
    custom = _custom_values(field_id, id_col)
    root_amount = rules.values.get("Amount")
    checked = "Amount" in des.fields and root_amount is not None
    comparable = checked and root_amount.kind == "cents"  # else (no amount SQL reads) no row is exact

    def element(ev: RuleSet) -> tuple[str, str, str, str]:
        """(JSON object, quoted fund id, exact, cents) of one element's rules."""
        members = dict(ev.json)
        own = ev.values.get("Note", NULL)
        if rules.notes.kind != "null":  # the gift's notes (method fallbacks) on each designation's Note
            merged = rules.notes if own.kind == "null" else Expr(
                f"coalesce({own.sql} || ' | ' || {rules.notes.sql}, {own.sql}, {rules.notes.sql})", "text",
                own.clean and rules.notes.clean)
            members["Note"] = (json_text(merged), None)
        members["CustomValues"] = (custom, None)
        fund = ev.canonical.get("fund_source_ids", NULL)
        fund_sql, fund_ok = "NULL", "TRUE"
        if fund.kind != "null":
            if fund.kind != "text":
                raise Unsupported("fund ids that are not text")
            fund_sql = f"('\"' || {fund.sql} || '\"')"  # json.dumps of ASCII without quotes or backslashes
            fund_ok = f"({fund.sql} IS NULL OR regexp_full_match({fund.sql}, '[ !#-\\[\\]-~]*'))"
        amount = ev.values.get("Amount", NULL)
        exact = f"({ev.ok} AND {fund_ok})" if not checked or (comparable and amount.kind == "cents") else "FALSE"
        return object_sql(members), fund_sql, exact, amount.sql if amount.kind == "cents" else "NULL"

    fb = compile_rules(des.fields, parent_or(fallback_column), ctx, "f_", set())
    ctes, last = _layers(root_last, fb, "fb")
    obj, fund, ok, cents = element(fb)
    ctes.append(f"fbx AS (SELECT *, {obj} AS f_obj, {fund} AS f_fund, {ok} AS f_exact, {cents} AS f_cents "
                f"FROM {last})")
    same = f"f_cents = {root_amount.sql}" if comparable else ("FALSE" if checked else "TRUE")
    array = "'[' || f_obj || ']'"
    funds = "'[' || coalesce(f_fund, '') || ']'"
    exact = f"(f_exact AND {same})"
    if listed:
        ls = compile_rules(des.fields, parent_or(elements.column), ctx, "l_", set())
        ctes.append(f"lj AS (SELECT listed.*, p.* FROM listed JOIN {root_last} p ON p._pos = listed._row)")
        layer_ctes, last_ls = _layers("lj", ls, "ls")
        ctes += layer_ctes
        obj, fund, ok, cents = element(ls)
        ctes.append(f"des AS (SELECT _row, '[' || string_agg(obj, ',' ORDER BY _ord) || ']' AS arr, "
                    f"'[' || coalesce(string_agg(fund, ', ' ORDER BY _ord), '') || ']' AS funds, "
                    f"bool_and(exact) AS exact, sum(cents) AS cents, max(cents) AS top, count(*) AS n "
                    f"FROM (SELECT _row, _ord, {obj} AS obj, {fund} AS fund, {ok} AS exact, {cents} AS cents "
                    f"FROM {last_ls}) GROUP BY _row)")
        # the Python check adds the dollars as floats: exact for a few elements of at most $1B each
        listed_same = (f"des.n <= 16 AND des.top < 100000000000 AND des.cents = {root_amount.sql}" if comparable
                       else ("FALSE" if checked else "TRUE"))
        array = f"(CASE WHEN _has THEN des.arr ELSE {array} END)"
        funds = f"(CASE WHEN _has THEN des.funds ELSE {funds} END)"
        exact = f"(CASE WHEN _has THEN coalesce(des.exact AND {listed_same}, FALSE) ELSE {exact} END)"
    return _Designations(ctes, array, funds, exact, "fbx")


def _collect(parts: list[Any]) -> FastRows:
    pa = arrowtext.pa
    found = [p for p in parts if p.num_rows]
    if not found:
        return FastRows(np.zeros(0, dtype=np.int64), {})
    names = found[0].column_names
    table = pa.concat_tables([p.select(names) for p in found]) if len(found) > 1 else found[0]
    positions = table.column("_pos").to_numpy()
    order = np.argsort(positions, kind="stable")
    columns = {}
    for name in names:
        if name == "_pos":
            continue
        values = table.column(name).to_numpy()
        columns[name] = values[order] if len(found) > 1 else values
    return FastRows(positions[order], columns)


__all__ = ["MIN_ROWS", "FastRows", "arrow_column", "map_rows"]
