"""Map extracted records with the org's YAML, stage them, quarantine rejects, validate the tables.

Every extracted record ends in exactly one place: a staged row (``stg_*``) or a quarantine row with
its reasons and the raw record, whatever it holds (record isolation — one bad record never stops the
others). In order, per source entity:

1. ids — a record without a usable id (quarantined under its raw key ``missing-id:<hash>``) and every copy
   of an id that occurs twice in the extract (which copy is current cannot be known; none is staged, and a
   donor's gifts wait for it) are set aside before any rule runs;
2. mapping — ``map_frame``; should it raise on some record, the batch is halved until the record is found
   and quarantined with the error (``_map_isolated``), unless so many fail that the fault is not the data's;
3. the pandera model of the staged table, row by row: a row it refuses is quarantined with the reason, the
   others are written (a failure that is not about a row still stops the table in ``validate_gates``);
4. optional values the mapping left out (``on_invalid: drop_field``) are quarantine rows of kind 'field'.

Then ``validate_gates`` checks each staged table as a whole, and the org's reject threshold decides whether
the load may run at all (a gate, not a warning). A rejected record an earlier run quarantined already,
unchanged (the same record for the same reasons, ``_repeated``), does not count toward the share again, and
the share halts a load only once at least ``thresholds.min_rejects`` records of the entity were counted as
rejected in the run, so a few bad records the source keeps sending cannot wedge every incremental run.

A quiet night costs what changed (``_stage_changed``): a record staged whole by an earlier run, with the same
content under the same mapping and code (``staging/stage_inputs.py``), is not mapped or validated again — its
staged row is carried into the run — so steps 2–4 see only the changed records. A record quarantined whole or
staged with a value left out is carried the same way on its remembered verdict (``stage_verdicts``): its
quarantine rows, as the mapping gave them, are written again by the run (so it is still quarantined, logged and
counted every run, and mapped again as soon as it or the mapping changes); one the mapping code crashed on is
mapped again every run. Step 1 still screens every record received.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bloom_pipeline import jsontext
from bloom_pipeline.mapping.compile import MapResult, id_problems, ids_are_clean, map_frame
from bloom_pipeline.mapping.engine import safe_text
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import ddl, ledgers, stage_inputs
from bloom_pipeline.staging.ddl import WINDOW_COLUMN
from bloom_pipeline.staging.store import StagingStore, Window
from bloom_pipeline.staging.validation import ValidationReport
from bloom_pipeline.staging.writes import missing_id_key, record_json, window_day
from bloom_pipeline.sync.extract.records import Extracted

log = logging.getLogger(__name__)

# source.entity extracted -> staged entity, in load order
STAGED_FROM: tuple[tuple[str, str], ...] = (
    ("wegive.funds", "funds"),
    ("wegive.donors", "constituents"),
    ("handbid.contacts", "constituents"),
    ("wegive.transactions", "transactions"),
    ("handbid.payments", "transactions"),
)
FULL_SCANS = frozenset({"wegive.donors", "wegive.funds"})
# Records of one batch that may fail inside the mapping before the fault is taken for the code's, not the data's
MAX_MAPPING_FAILURES = 20


@dataclass
class EntityGate:
    """The validation verdict of one staged entity in one run.

    ``rejected`` counts every record quarantined as invalid in the run; ``repeated`` those of them an earlier
    run quarantined already, unchanged, which the reject share leaves out (``counted_rejects``).
    """

    entity: str
    staged: int = 0
    rejected: int = 0
    excluded: int = 0
    extracted: int = 0
    repeated: int = 0
    fields_dropped: int = 0
    schema_ok: bool = True
    failure_cases: pd.DataFrame | None = None
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    top_field_reasons: list[tuple[str, int]] = field(default_factory=list)  # why values were left out
    blocked_reason: str | None = None

    @property
    def counted_rejects(self) -> int:
        return self.rejected - self.repeated

    @property
    def considered(self) -> int:
        return self.extracted - self.excluded - self.repeated

    @property
    def reject_share(self) -> float:
        return self.counted_rejects / self.considered if self.considered > 0 else 0.0

    @property
    def passed(self) -> bool:
        return self.blocked_reason is None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _item_names(receipt: dict[str, Any]) -> list[str]:
    items = receipt.get("lineItems")
    names = []
    for item in items if isinstance(items, list) else []:
        item = _dict(item)
        name = item.get("name") or _dict(item.get("item")).get("name")
        if isinstance(name, str | int | float) and not isinstance(name, bool) and str(name).strip():
            names.append(str(name))
    return names


def enrich_payments(payments: list[dict[str, Any]], receipts: list[dict[str, Any]],
                    auctions: list[dict[str, Any]], org: OrgConfig | None = None) -> list[dict[str, Any]]:
    """Add what a Handbid payment's Bloomerang transaction needs from its receipt and its event:
    the event name, the receipt's item names, and whether the receipt was emailed. A receipt or event that
    is missing or malformed adds nothing (the mapping then judges the payment as it is); a payment that is
    not an object is passed on untouched, to be quarantined.

    With ``org``, also ``crmSelection`` — the org YAML's "Send to CRM" choice for the payment
    (``OrgConfig.handbid_selection``: send / event_held / payment_held), which the mapping's ``exclude_when``
    turns into an 'excluded' quarantine row with its reason: a held payment is accounted for, not dropped."""
    def key(value: Any) -> Any:
        return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None

    by_receipt = {key(r.get("id")): r for r in receipts if isinstance(r, dict) and key(r.get("id")) is not None}
    by_auction = {key(a.get("id")): a for a in auctions if isinstance(a, dict) and key(a.get("id")) is not None}
    enriched: list[Any] = []
    for payment in payments:
        if not isinstance(payment, dict):
            enriched.append(payment)
            continue
        receipt = _dict(by_receipt.get(key(payment.get("receiptId"))))
        auction = _dict(by_auction.get(key(payment.get("auctionId"))))
        enriched.append({
            **payment,
            "auctionName": auction.get("name"),
            "auctionStatus": auction.get("status"),
            "itemNames": _item_names(receipt),
            "receiptEmailed": bool(receipt.get("emailed") or receipt.get("emailedAt")),
            **({"crmSelection": org.handbid_selection(key(payment.get("auctionId")), auction.get("name"),
                                                      key(payment.get("id")))} if org is not None else {}),
        })
    return enriched


def _created_at(record: Any) -> Any:
    return record.get("created_at") if isinstance(record, dict) else None


def _staging_scope(key: str, mapped: pd.DataFrame, records: list[Any],
                   window: Window | None) -> tuple[Any, pd.DataFrame]:
    """Which staged rows this extract replaces, and the frame to write.

    A backfill window covers WeGive transactions by *created day (UTC)* — the extract's filter — which is
    not the staged ``date`` (the gift's day in the org time zone), so each row carries its created day as
    the window date (read as the raw write reads it: ``writes.window_day``). Handbid payments are not read by
    window: they are upserted as in any run.
    """
    if key in FULL_SCANS:
        return "all", mapped
    if window is None or key != "wegive.transactions":
        return None, mapped
    ids, _ = id_problems(records)
    created = {sid: window_day(r, _created_at, window) for sid, r in zip(ids, records, strict=True) if sid}
    return window, mapped.assign(**{WINDOW_COLUMN: mapped["source_id"].astype(str).map(created)})


def _rejected_rows(rejected: pd.DataFrame, source: str, entity: str) -> pd.DataFrame:
    rows = rejected.copy()
    rows["source"] = source
    rows["entity"] = entity
    if "kind" not in rows:
        rows["kind"] = "invalid"
    return rows


@dataclass
class Staged:
    """One source entity's verdicts: the rows to stage, the records quarantined, the values dropped."""

    mapped: pd.DataFrame
    rejected: pd.DataFrame  # record level, kinds 'invalid' / 'excluded' (map_frame's columns)
    fields: pd.DataFrame  # kind 'field'
    crashed: set[str] = field(default_factory=set)  # source ids the mapping code raised on (``_map_isolated``)


def _screen_ids(key: str, records: list[Any], id_path: str) -> tuple[list[int], pd.DataFrame]:
    """(positions of the records with a usable, unique id; the quarantine rows of the others, each under the
    key the raw write stored it with)."""
    source = key.split(".")[0]
    if ids_are_clean(records, id_path):
        return list(range(len(records))), pd.DataFrame()
    ids, why = id_problems(records, id_path)
    bad = why.notna().to_numpy()
    good = [i for i, b in enumerate(bad) if not b]
    if not bad.any():
        return good, pd.DataFrame()
    positions = [i for i, b in enumerate(bad) if b]
    rows = pd.DataFrame({
        "source": source, "entity": key,
        "source_id": [ids.iloc[i] if ids.iloc[i] is not None else missing_id_key(records[i]) for i in positions],
        "errors": [[why.iloc[i]] for i in positions],
        "raw": [record_json(records[i]) for i in positions],
        "kind": "invalid",
    })
    return good, rows


def _map_isolated(org: OrgConfig, key: str, records: list[Any]) -> tuple[MapResult | None, pd.DataFrame]:
    """``map_frame`` over the records; when it raises, the batch is halved until each record that makes it
    raise is found: those are quarantined with the error, the others mapped. More than
    ``MAX_MAPPING_FAILURES`` such records means the fault is not in the data: the first error is raised."""
    results: list[MapResult] = []
    failed: list[tuple[int, str]] = []

    def run(lo: int, hi: int) -> None:
        try:
            results.append(map_frame(org, key, records[lo:hi]))
        except Exception as exc:  # noqa: BLE001 - isolation: a record the code cannot map is quarantined
            if hi - lo > 1:
                mid = (lo + hi) // 2
                run(lo, mid)
                run(mid, hi)
                return
            failed.append((lo, f"{type(exc).__name__}: {exc}"))
            log.warning("%s record %d could not be mapped; quarantined", key, lo, exc_info=True)
            if len(failed) > MAX_MAPPING_FAILURES:
                raise

    if records:
        run(0, len(records))
    crashed = pd.DataFrame()
    if failed:
        ids, _ = id_problems([records[i] for i, _ in failed])
        crashed = pd.DataFrame({
            "source": key.split(".")[0], "entity": key,
            "source_id": [sid if sid is not None else missing_id_key(records[i])
                          for sid, (i, _) in zip(ids, failed, strict=True)],
            "errors": [[safe_text(f"could not be mapped ({why})")] for _, why in failed],
            "raw": [record_json(records[i]) for i, _ in failed],
            "kind": "invalid",
        })
    if not results:
        return None, crashed
    if len(results) == 1:
        return results[0], crashed

    def stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
        kept = [f for f in frames if len(f)] or frames[:1]
        return pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]

    return MapResult(mapped=stacked([r.mapped for r in results]), rejected=stacked([r.rejected for r in results]),
                     fields=stacked([r.fields for r in results])), crashed


def _validated(entity: str, source_entity: str, result: MapResult, batch: list[Any], id_path: str
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows the pandera model accepts, quarantine rows of those it refuses row by row, with the records as
    received). A failure that is not about a row (a missing column, a wrong dtype) quarantines nothing here:
    ``validate_gates`` stops the table."""
    mapped = result.mapped
    if mapped.empty:
        return mapped, pd.DataFrame()
    report = _validate(entity, mapped.reset_index(drop=True))
    if report.ok or report.schema_errors or not report.row_reasons:
        return mapped, pd.DataFrame()
    ids, _ = id_problems(batch, id_path)
    raw_by_id = {sid: record_json(r) for sid, r in zip(ids, batch, strict=True) if sid is not None}
    good, bad = report.split(mapped.reset_index(drop=True), entity=source_entity, raw_by_id=raw_by_id)
    return good.reset_index(drop=True), bad.rename(columns={"reasons": "errors"})


def _map_entity(org: OrgConfig, key: str, entity: str, records: list[Any], originals: list[Any]) -> Staged:
    """Steps 1–4 of the module docstring for one source entity."""
    source, source_entity = key.split(".")
    spec = org.entity(key)
    good, screened = _screen_ids(key, originals, spec.id)
    batch = [records[i] for i in good]
    result, crashed = _map_isolated(org, key, batch)
    parts = [p for p in (screened, crashed) if len(p)]
    crashed_ids = {str(sid) for sid in crashed["source_id"]} if len(crashed) else set()
    if result is None:
        empty = map_frame(org, key, [])
        return Staged(empty.mapped, _stack_rows(parts), empty.fields, crashed_ids)
    mapped, refused = _validated(entity, source_entity, result, batch, spec.id)
    fields = result.fields
    if len(refused):
        refused["source"], refused["entity"] = source, key
        lost = set(refused["source_id"].astype(str))
        if len(fields):  # a refused record lists its dropped values among its reasons, as map_frame does
            more: dict[str, list[str]] = {}
            for sid, errs in zip(fields["source_id"].astype(str), fields["errors"], strict=True):
                if sid in lost:
                    more.setdefault(sid, []).extend(_as_list(errs))
            refused["errors"] = [[*_as_list(r), *more.get(str(sid), [])] for r, sid in
                                 zip(refused["errors"], refused["source_id"], strict=True)]
            fields = fields[~fields["source_id"].astype(str).isin(lost)]
    rejected = _stack_rows([*parts, result.rejected, refused])
    return Staged(mapped, rejected, fields, crashed_ids)


def _stack_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    kept = [f for f in frames if len(f)]
    if not kept:
        return pd.DataFrame(columns=["source", "entity", "source_id", "errors", "raw", "kind"])
    return pd.concat(kept, ignore_index=True)


def _repeated(store: StagingStore, run_id: str, source: str, entity: str, rows: pd.DataFrame) -> int:
    """How many of the rejected rows an earlier run quarantined already, unchanged: the same record (source
    id) for exactly the same reasons. The reasons name each offending field and its value, so a record that
    still holds the same bad values is the same rejection, even when parts the verdict does not read changed
    (the fund object WeGive embeds in every transaction gains its ``bloomerang_id`` once the fund is synced);
    a record that now fails otherwise, or a new one, counts."""
    if rows.empty:
        return 0
    ids = [str(s) for s in rows["source_id"]]
    with store.connect() as con:
        seen = {
            (str(sid), tuple(reasons)) for sid, reasons in con.execute(
                "SELECT DISTINCT source_id, reasons FROM quarantine WHERE source = ? AND entity = ? "
                "AND kind = 'invalid' AND run_id <> ? AND list_contains(?, source_id)",
                [source, entity, run_id, sorted(set(ids))],
            ).fetchall()
        }
    return sum((sid, tuple(_as_list(errs))) in seen for sid, errs in zip(ids, rows["errors"], strict=True))


def stage_all(org: OrgConfig, store: StagingStore, run_id: str, extracted: Extracted,
              window: Window | None = None) -> dict[str, EntityGate]:
    """Map every extracted source entity, write ``stg_*`` and ``quarantine``; returns per-entity gates.

    The step's many connections share one open database (``StagingStore.kept_open``; a no-op when the run
    already keeps it open): opening the file costs ~30 ms each time nothing holds it."""
    with store.kept_open():
        return _stage_all(org, store, run_id, extracted, window)


def _stage_all(org: OrgConfig, store: StagingStore, run_id: str, extracted: Extracted,
               window: Window | None) -> dict[str, EntityGate]:
    gates = {entity: EntityGate(entity) for _, entity in STAGED_FROM}
    originals = dict(extracted.records)
    records = dict(extracted.records)
    if "handbid.payments" in records:
        records["handbid.payments"] = enrich_payments(
            records["handbid.payments"], records.get("handbid.receipts", []), records.get("handbid.auctions", []),
            org,
        )
    mapping = stage_inputs.mapping_hash(org)
    for key, entity in STAGED_FROM:
        if key not in records:
            continue
        source, source_entity = key.split(".")
        gate = gates[entity]
        gate.extracted += len(records[key])
        if _by_window(key, window):
            staged = _map_entity(org, key, entity, list(records[key]), list(originals[key]))
            scope, mapped = _staging_scope(key, staged.mapped, list(records[key]), window)
            store.write_staged(entity, mapped, source=source, run_id=run_id, window=scope)
            gate.staged += len(mapped)
        else:
            digests = extracted.digests_of(key) if records[key] is originals[key] else None  # not enriched
            staged, staged_count = _stage_changed(org, store, run_id, key, entity, list(records[key]),
                                                  list(originals[key]), mapping, digests)
            gate.staged += staged_count
        rows = _rejected_rows(staged.rejected, source, source_entity) if len(staged.rejected) else staged.rejected
        fields = _rejected_rows(staged.fields, source, source_entity) if len(staged.fields) else staged.fields
        kinds = rows["kind"].fillna("invalid") if len(rows) else pd.Series(dtype=object)
        invalid = rows[kinds != "excluded"] if len(rows) else rows
        gate.repeated += _repeated(store, run_id, source, source_entity, invalid)
        if len(rows) or len(fields):
            store.write_quarantine(_stack_rows([rows, fields]), run_id=run_id)
        gate.fields_dropped += len(fields)
        if len(fields):
            dropped = Counter(str(e) for errs in fields["errors"] for e in _as_list(errs))
            gate.top_field_reasons = (Counter(dict(gate.top_field_reasons)) + dropped).most_common(5)
        if len(rows):
            gate.excluded += int((kinds == "excluded").sum())
            gate.rejected += len(invalid)
            reasons = Counter(str(e) for errs in invalid["errors"] for e in _as_list(errs))
            gate.top_reasons = (Counter(dict(gate.top_reasons)) + reasons).most_common(5)
            with store.write() as con:
                ledgers.append_log(con, run_id, [
                    ledgers.LogEntry(entity=entity, source=source, source_id=str(r["source_id"]), action="quarantined",
                                     error="; ".join(_as_list(r["errors"])))
                    for r in rows.to_dict("records")
                ])
    return gates


def _by_window(key: str, window: Window | None) -> bool:
    """A backfill window of WeGive transactions replaces the window's staged rows whole (``_staging_scope``);
    every other write stages only what changed (``_stage_changed``)."""
    return window is not None and key == "wegive.transactions"


def _stage_changed(org: OrgConfig, store: StagingStore, run_id: str, key: str, entity: str, records: list[Any],
                   originals: list[Any], mapping: str, digests: list[str] | None = None) -> tuple[Staged, int]:
    """Steps 1–4 for the records whose content (or the mapping) changed since they were last staged whole;
    the others' staged rows are carried into this run as they are (``staging/stage_inputs.py``). A record
    without a usable, unique id is never carried: the screen sees every such record. Returns the verdicts of
    the records mapped and the number of rows staged in the run. ``digests``: the records' content hashes as the
    extract computed them for the raw write (``Extracted.digests_of``), so no record is serialised twice."""
    source, source_entity = key.split(".")
    spec = org.entity(key)
    good, _ = _screen_ids(key, originals, spec.id)
    ids, _ = id_problems([originals[i] for i in good], spec.id)
    if digests is None or len(digests) != len(records):
        digests_of_good = stage_inputs.record_hashes(records[i] for i in good)
    else:
        digests_of_good = [digests[i] for i in good]
    hashes = dict(zip((str(sid) for sid in ids), digests_of_good, strict=True))
    unchanged = stage_inputs.unchanged_ids(store, entity, source, source_entity, mapping, hashes)
    remembered = stage_inputs.verdicts(store, source, source_entity, mapping, hashes)
    carried: set[int] = set()
    kept: dict[str, stage_inputs.Verdict] = {}  # carried with the quarantine rows their verdict holds
    for i, sid in zip(good, ids, strict=True):
        sid = str(sid)
        verdict = remembered.get(sid)
        if verdict is None:
            if sid in unchanged:
                carried.add(i)
        elif verdict.holds and verdict.staged == (sid in unchanged):
            carried.add(i)
            kept[sid] = verdict
    redo = [i for i in range(len(records)) if i not in carried]
    if redo:
        staged = _map_entity(org, key, entity, [records[i] for i in redo], [originals[i] for i in redo])
    else:  # a quiet night: nothing to map (``map_frame`` of no records still costs its set-up)
        staged = Staged(pd.DataFrame({"source_id": pd.Series(dtype=object), "payload_hash": pd.Series(dtype=object)}),
                        _stack_rows([]), _stack_rows([]))
    judged = stage_inputs.verdict_rows([staged.rejected, staged.fields])
    carried_staged = {sid for sid in unchanged if sid not in remembered or sid in kept}
    count = stage_inputs.write_changes(
        store, entity, staged.mapped, source=source, source_entity=source_entity, run_id=run_id,
        unchanged=carried_staged, full_scan=key in FULL_SCANS, mapping=mapping, record_hash=hashes,
        uncached=staged.crashed, judged=judged, kept=set(kept))
    if kept:
        staged = _with_kept_verdicts(staged, kept, source, key)
    return staged, count


def _with_kept_verdicts(staged: Staged, kept: dict[str, stage_inputs.Verdict], source: str, key: str) -> Staged:
    """``staged`` with the quarantine rows of the records carried on their remembered verdict, as the mapping
    gave them: record-level rows among the rejected, 'field' rows among the fields."""
    rows = [{"source": source, "entity": key, "source_id": sid, **row} for sid, verdict in kept.items()
            for row in verdict.rows]
    whole = [row for row in rows if row.get("kind") != "field"]
    values = [row for row in rows if row.get("kind") == "field"]
    rejected = _stack_rows([staged.rejected, pd.DataFrame(whole)]) if whole else staged.rejected
    fields = _stack_rows([staged.fields, pd.DataFrame(values)]) if values else staged.fields
    return Staged(staged.mapped, rejected, fields, staged.crashed)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            parsed = jsontext.loads(value)
        except ValueError:
            return [value]
        return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
    return [str(v) for v in (value if value is not None else [])]


def staged_frame(store: StagingStore, entity: str, run_id: str | None = None) -> pd.DataFrame:
    """This run's staged rows of an entity (all rows when ``run_id`` is None)."""
    table = {"constituents": "stg_constituents", "transactions": "stg_transactions", "funds": "stg_funds"}[entity]
    if run_id is None:
        frame = store.read_frame(f"SELECT * FROM {table}")  # table from a fixed map
    else:
        frame = store.read_frame(f"SELECT * FROM {table} WHERE run_id = ?", [run_id])
    if entity == "transactions" and len(frame):
        # DuckDB hands DATE / DECIMAL back as timestamps / Decimals; the canonical frame has ISO text / floats
        frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
        frame["amount"] = frame["amount"].astype(float)
    return frame


SOURCE_ENTITIES = {"wegive": "wegive.donors", "handbid": "handbid.contacts"}


def sourced_values(org: OrgConfig, people: pd.DataFrame) -> pd.DataFrame:
    """Staged donors with every placeholder (a rule default standing in for a missing value: FNU, LNU, the
    default country) blanked: what the source really has. Creates still send the placeholders (they are
    in the payload); identity, update diffs and the merge see only real values, so a default never
    overwrites what a person typed in Bloomerang and never counts as a change."""
    if people.empty:
        return people
    people = people.copy()
    for source, name in SOURCE_ENTITIES.items():
        rows = people["source"] == source
        for column, placeholder in org.placeholders(name).items():
            if column in people and rows.any():
                filled = rows & (people[column].astype(object) == placeholder)
                people.loc[filled, column] = None
    return people


def _mapped_in_run(store: StagingStore, entity: str, run_id: str, mapping: str) -> pd.DataFrame:
    """The run's staged rows of an entity but those carried unchanged from an earlier stage (``stage_inputs``:
    mapped and validated then, by the same mapping and code); an empty frame still has the table's columns."""
    table = ddl.staged_table(entity)
    frame = store.read_frame(
        f"SELECT s.* FROM {table} s WHERE s.run_id = ? AND NOT EXISTS (SELECT 1 FROM stage_inputs i "  # fixed map
        "WHERE i.source = s.source AND i.source_id = s.source_id AND list_contains(?, i.source || '.' || i.entity) "
        "AND i.run_id <> ? AND i.payload_hash = s.payload_hash AND i.mapping_hash = ?)",
        [run_id, [key for key, staged in STAGED_FROM if staged == entity], run_id, mapping])
    if entity == "transactions":  # as staged_frame reads them; an empty frame too (its dtypes are validated)
        frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d").astype(object)
        frame["amount"] = frame["amount"].astype(float)
    return frame


def _validate(entity: str, frame: pd.DataFrame) -> ValidationReport:
    """``schemas.validate_staged``, imported when a run first validates: the pandera models cost a third of a
    second to import, and a quiet night maps (so validates) nothing."""
    from bloom_pipeline.schemas import validate_staged

    return validate_staged(entity, frame)


def validate_gates(org: OrgConfig, store: StagingStore, run_id: str, gates: dict[str, EntityGate]) -> None:
    """pandera over each staged table of the run, then the org's reject threshold; fills the gates.

    The rows a run carried unchanged (``stage_inputs``) passed the same models, row by row, when they were
    mapped; they are not validated again. What spans rows — one row per source and source id — is checked over
    the whole run in SQL (``stage_inputs.duplicate_keys``).

    The share (``EntityGate.reject_share``: new rejects among the records judged anew) halts a load only when
    it is over ``thresholds.max_reject_share`` *and* at least ``thresholds.min_rejects`` records were counted
    as rejected."""
    limit, floor = org.thresholds.max_reject_share, org.thresholds.min_rejects
    for entity, gate in gates.items():
        mapped = _mapped_in_run(store, entity, run_id, stage_inputs.mapping_hash(org))
        # a quiet night maps nothing: an empty frame of the table's own columns has nothing pandera could
        # reject (tests/unit/staging/test_reject_gate.py validates one per entity), so it is not run for it
        report = _validate(entity, mapped) if len(mapped) else ValidationReport(True, 0, pd.DataFrame())
        gate.schema_ok = bool(report.ok)
        gate.failure_cases = getattr(report, "failure_cases", None)
        doubled = stage_inputs.duplicate_keys(store, entity, run_id)
        if not report.ok:
            gate.blocked_reason = f"stg_{entity} failed schema validation ({_describe(report)})"
        elif doubled:
            gate.schema_ok = False
            gate.blocked_reason = (f"stg_{entity} failed schema validation (duplicate record (same source and "
                                   f"source_id in the batch) ×{doubled})")
        elif gate.reject_share > limit and gate.counted_rejects >= floor:
            again = (f"; {gate.repeated} more were quarantined unchanged by an earlier run" if gate.repeated else "")
            gate.blocked_reason = (
                f"{gate.counted_rejects} of {gate.considered} {entity} records were rejected "
                f"({gate.reject_share:.1%}), over the org's limit of {limit:.1%}{again}"
            )


def _describe(report: Any) -> str:
    reasons = getattr(report, "top_reasons", None) or []
    return "; ".join(f"{reason} ×{count}" for reason, count in list(reasons)[:3]) or "see failure cases"
