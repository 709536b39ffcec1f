"""Identity resolution: which Bloomerang constituent each staged donor/contact is, that it is new, or
that a person must say.

Matching runs locally against the staged Bloomerang snapshot (never one search call per record), in
the order of the reference mapping and Bloomerang's duplicate rule; the first rule that matches wins:

1. ``linked``         -- ``sync_state`` already links the record (our own bookkeeping, always trusted).
2. ``review``         -- a reviewer's identity decision (``bloom-pipeline review resolve``): link to the
                         constituent they chose, or create a new one (the rules below are then skipped).
3. ``correlation_id`` -- the source's stored Bloomerang id (WeGive ``bloomerang_id``), if that id is in
                         the snapshot (an id Bloomerang does not have is noted and ignored).
4. ``custom_field``   -- the Bloomerang correlation custom field (org YAML) holds the source id.
   ``gift_account``   -- the one constituent the record's gifts already in Bloomerang (found by their own
                         correlation values) are on: after a merge in Bloomerang whose survivor kept only its
                         own correlation value, with the data folder lost, the gifts still say who it is.
5. ``email``          -- individuals: same e-mail (trimmed, case-insensitive) **and compatible names**
                         (``names.names_compatible``: same last name, first names equal, nicknames or one
                         unknown). E-mail is unique per individual in the reference mapping, but a couple
                         shares one and a typo'd address belongs to someone else: a shared e-mail under
                         another name is never merged -- unless a later rule finds the record, it waits
                         for a person (``email_name_mismatch``).
6. ``org_name``       -- organisations: the same normalised name (``names.org_name_key``), with or without
                         an address ("organization name uniqueness" in the reference mapping).
7. ``duplicate_rule`` -- Bloomerang's rule for individuals: same last name, first name equal up to
                         nicknames, suffixes equal when both have one **and** one of e-mail, standardized
                         street or last seven phone digits.
8. ``new``            -- create.

Several Bloomerang records matching one rule is *ambiguous* and is never settled silently (picking the
lowest id merged gifts into whichever duplicate happened to be older): the record waits for a person,
with every candidate (``review`` column, raised as an identity item by ``identity.reviews``).

Staged records are also matched with each other (same keys: e-mail with compatible names, organisation
name, the duplicate rule), so one person who gives on WeGive and bids on Handbid becomes one
constituent: when one of them matched Bloomerang the others inherit that id; when none did, they share a
``create_key`` -- the ``source:source_id`` of a deterministic leader (WeGive before Handbid, then lowest
id) -- so the load creates the constituent once and links the others to it. A group in which one record
waits for a person waits whole (``waiting_for``): they are one person, so one answer settles them all.

Exact-key steps are pandas merges; the duplicate rule joins on (last name, contact point) first, so
the nickname check only sees pairs that already share a last name and a contact point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bloom_pipeline.staging.review import identity_reason_text
from bloom_pipeline.sync.identity import names as nm

RULES = ("linked", "review", "correlation_id", "custom_field", "gift_account", "email", "org_name", "duplicate_rule",
         "new")
SOURCE_RANK = {"wegive": 0, "handbid": 1}
CORRELATION_COLUMNS = {"wegive": "corr_wegive", "handbid": "corr_handbid"}
CONTACT_POINTS = ("email", "street", "phone")
OUTPUT_COLUMNS = ("source", "source_id", "bloomerang_id", "rule", "create_key", "ambiguous", "note",
                  "review", "waiting_for", "decision_id")


@dataclass(frozen=True)
class IdentityDecision:
    """A reviewer's answer to an identity item: link to ``bloomerang_id``, or (None) create a new one."""

    review_id: int
    bloomerang_id: int | None = None


def record_key(source: str, source_id: str) -> str:
    """``"wegive:1012"`` -- how a staged record is named in notes and create keys."""
    return f"{source}:{source_id}"


def _id_order(source: str, source_id: str) -> tuple[int, int, int, str]:
    text = str(source_id)
    return (SOURCE_RANK.get(source, 9), 0 if text.isdigit() else 1, int(text) if text.isdigit() else 0, text)


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)


def match_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The comparison keys of constituents (staged rows or the Bloomerang snapshot), same index."""
    kind = nm.series_key(_col(frame, "constituent_type"), nm.text_key)
    last_suffix = [nm.split_suffix(last, suffix) for last, suffix in zip(
        _col(frame, "last_name").astype(object), _col(frame, "suffix").astype(object), strict=True)]
    return pd.DataFrame({
        "kind": kind.map({"individual": "Individual", "organization": "Organization"}),
        "email": nm.series_key(_col(frame, "email"), nm.email_key),
        "first": nm.series_key(_col(frame, "first_name"), nm.person_name_key),
        "last": [pair[0] for pair in last_suffix],
        "suffix": [pair[1] for pair in last_suffix],
        "org": nm.series_key(_col(frame, "full_name"), nm.org_name_key),
        "street": nm.series_key(_col(frame, "street"), nm.street_key),
        "city": nm.series_key(_col(frame, "city"), nm.text_key),
        "phone": nm.series_key(_col(frame, "phone"), nm.phone_key),
    }, index=frame.index)


class Resolution:
    """Per staged row: the chosen id, rule, ambiguity, notes and what waits for a person (rule by rule)."""

    def __init__(self, n: int) -> None:
        self.bloomerang_id: list[int | None] = [None] * n
        self.rule: list[str] = ["new"] * n
        self.ambiguous: list[bool] = [False] * n
        self.notes: list[list[str]] = [[] for _ in range(n)]
        self.review: list[dict[str, Any] | None] = [None] * n  # {"reason", "candidates"}: needs an item
        self.decided: list[int | None] = [None] * n  # review item id of the decision this row follows
        self.forced_new: set[int] = set()  # a reviewer chose "create a new constituent"
        self.mismatch: dict[int, list[int]] = {}  # rows whose e-mail only matched other names (so far)

    def open_rows(self) -> set[int]:
        return {i for i, bid in enumerate(self.bloomerang_id)
                if bid is None and self.review[i] is None and i not in self.forced_new}

    def hold(self, row: int, reason: str, candidates: Iterable[int]) -> None:
        found = sorted({int(c) for c in candidates})
        self.review[row] = {"reason": reason, "candidates": found}
        self.ambiguous[row] = reason.startswith("ambiguous")
        self.notes[row].append(f"awaiting identity review: {identity_reason_text(reason)} ({_shown(found)})")

    def assign(self, candidates: pd.DataFrame, rule: str) -> None:
        """``candidates[_row, bloomerang_id(, why)]``: a still-open row with exactly one candidate takes
        it; a row with several waits for a person (``ambiguous_<rule>``), never the lowest id."""
        if candidates.empty:
            return
        candidates = candidates[candidates["_row"].isin(self.open_rows())]
        candidates = candidates.astype({"_row": "int64", "bloomerang_id": "int64"})
        ids = candidates[["_row", "bloomerang_id"]].drop_duplicates().sort_values(["_row", "bloomerang_id"])
        found = ids.groupby("_row", sort=False)["bloomerang_id"].agg(list)
        for row, group in found.items():
            if len(group) > 1:
                self.hold(int(row), f"ambiguous_{rule}", group)
                continue
            self.bloomerang_id[row], self.rule[row] = int(group[0]), rule
            self.mismatch.pop(int(row), None)
        if "why" in candidates:
            single = found[found.map(len) == 1].map(lambda group: group[0]).rename("bloomerang_id").reset_index()
            hits = candidates.merge(single, on=["_row", "bloomerang_id"])
            hits = hits[["_row", "why"]].drop_duplicates().sort_values(["_row", "why"])
            for row, why in hits.groupby("_row", sort=False)["why"].agg(" + ".join).items():
                self.notes[row].append(f"matched on {why}")


def _shown(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:10])) + (f" (+{len(ids) - 10} more)" if len(ids) > 10 else "")


def _typed(keys: pd.DataFrame, kind: str) -> pd.Series:
    return keys["kind"].isna() | (keys["kind"] == kind)


def _duplicate_pairs(left: pd.DataFrame, right: pd.DataFrame, right_id: str) -> pd.DataFrame:
    """Pairs (``_row``, ``right_id``, why) of individuals Bloomerang's duplicate rule calls the same person
    (organisations already match by name alone: ``org_name``)."""
    frames = []
    lhs = left[left["kind"] == "Individual"]
    rhs = right[_typed(right, "Individual")]
    for contact in CONTACT_POINTS:
        on = ["last", contact]
        a = lhs.dropna(subset=on)[["_row", "first", "suffix", *on]]
        b = rhs.dropna(subset=on)[[right_id, "first", "suffix", *on]]
        if a.empty or b.empty:
            continue
        pairs = a.merge(b, on=on, suffixes=("", "_b"))
        if not pairs.empty:
            ok = [nm.first_names_compatible(f, g) and nm.suffixes_compatible(s, t) for f, g, s, t in zip(
                pairs["first"], pairs["first_b"], pairs["suffix"], pairs["suffix_b"], strict=True)]
            pairs = pairs[ok]
        frames.append(pairs[["_row", right_id]].assign(why=contact))
    if not frames:
        return pd.DataFrame(columns=["_row", right_id, "why"])
    return pd.concat(frames, ignore_index=True)


def _email_pairs(staged_keys: pd.DataFrame, snap: pd.DataFrame) -> pd.DataFrame:
    """Individuals sharing an e-mail with a Bloomerang record: ``_row, bloomerang_id, compatible``."""
    a = staged_keys[staged_keys["kind"] == "Individual"].dropna(subset=["email"])
    b = snap[_typed(snap, "Individual")].dropna(subset=["email"])
    pairs = a[["_row", "email", "first", "last", "suffix"]].merge(
        b[["bloomerang_id", "email", "first", "last", "suffix"]], on="email", suffixes=("", "_b"))
    pairs["compatible"] = pd.Series([nm.names_compatible(f, last, g, last_b, s, t) for f, last, g, last_b, s, t in zip(
        pairs["first"], pairs["last"], pairs["first_b"], pairs["last_b"], pairs["suffix"], pairs["suffix_b"],
        strict=True)], index=pairs.index, dtype=bool)
    return pairs[["_row", "bloomerang_id", "compatible"]]


def _org_pairs(staged_keys: pd.DataFrame, snap: pd.DataFrame) -> pd.DataFrame:
    a = staged_keys[staged_keys["kind"] == "Organization"].dropna(subset=["org"])
    b = snap[_typed(snap, "Organization")].dropna(subset=["org"])
    return a[["_row", "org"]].merge(b[["bloomerang_id", "org"]], on="org")[["_row", "bloomerang_id"]]


def _union_find(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]


def _email_edges(keys: pd.DataFrame) -> list[tuple[int, int, str]]:
    """Staged individuals sharing an e-mail who may be one person (``names.names_compatible``).

    Compatibility is not transitive through a name one record lacks ("Smith" without a first name fits
    both "John Smith" and "Jane Smith"), so the records of one e-mail are grouped greedily: the distinct
    names, the best-known first, each join the one group whose every name they are compatible with --
    one that fits several groups, or none, starts its own.
    """
    rows = keys[keys["kind"] == "Individual"].dropna(subset=["email"])
    rows = rows[rows.duplicated("email", keep=False)]
    edges: list[tuple[int, int, str]] = []
    for _, group in rows.groupby("email", sort=False):
        named: dict[tuple[Any, Any, Any], list[int]] = {}
        for row, first, last, suffix in zip(group["_row"], group["first"], group["last"], group["suffix"],
                                            strict=True):
            named.setdefault((nm.known_name(first), nm.known_name(last), suffix), []).append(int(row))
        order = sorted(named, key=lambda name: (sum(part is None for part in name), min(named[name])))
        people: list[list[tuple[Any, Any, Any]]] = []
        for name in order:
            fits = [p for p in people if all(nm.names_compatible(name[0], name[1], o[0], o[1], name[2], o[2])
                                             for o in p)]
            if len(fits) == 1:
                fits[0].append(name)
            else:
                people.append([name])
        for person in people:
            members = sorted(r for name in person for r in named[name])
            edges.extend((members[0], other, "email") for other in members[1:])
    return edges


def _staged_edges(keys: pd.DataFrame) -> list[tuple[int, int, str]]:
    """Pairs of staged rows that are the same constituent, with the rule that says so."""
    edges = _email_edges(keys)
    orgs = keys[keys["kind"] == "Organization"].dropna(subset=["org"])
    for _, group in orgs.groupby("org", sort=False)["_row"]:
        members = group.tolist()
        edges.extend((members[0], other, "org_name") for other in members[1:])
    right = keys.rename(columns={"_row": "_row_b"})
    pairs = _duplicate_pairs(keys, right, "_row_b")
    edges.extend((int(a), int(b), "duplicate_rule")
                 for a, b in zip(pairs["_row"], pairs["_row_b"], strict=True) if a != b)
    return edges


def assign_custom_field_matches(result: Resolution, rows: pd.DataFrame, snapshot: pd.DataFrame) -> None:
    """Rule ``custom_field``: the Bloomerang record whose correlation custom field holds the source id."""
    for source, column in CORRELATION_COLUMNS.items():
        if column not in snapshot:
            continue
        values = pd.DataFrame({"source_id": snapshot[column].astype(object),
                               "bloomerang_id": pd.to_numeric(snapshot["bloomerang_id"])}).dropna()
        values["source_id"] = values["source_id"].astype(str).str.strip()
        result.assign(rows[rows["source"] == source].merge(values, on="source_id")[["_row", "bloomerang_id"]],
                      "custom_field")


def gift_accounts(transactions: pd.DataFrame, bloomerang: pd.DataFrame | None) -> pd.DataFrame:
    """``source, source_id (the donor), bloomerang_id (an account)``: where the staged gifts of each donor are in
    Bloomerang, found by the gifts' correlation values (``transactions``: staged rows with ``donor_source_id``;
    ``bloomerang``: ``snapshot.transaction_frame``)."""
    columns = ["source", "source_id", "bloomerang_id"]
    if bloomerang is None or bloomerang.empty or transactions.empty or "account_id" not in bloomerang:
        return pd.DataFrame(columns=columns)
    frames = []
    for source, column in CORRELATION_COLUMNS.items():
        held = bloomerang[["account_id", column]].dropna()
        gifts = transactions[transactions["source"] == source][["source_id", "donor_source_id"]].dropna()
        if held.empty or gifts.empty:
            continue
        held = held.assign(source_id=held[column].astype(str).str.strip())
        found = gifts.astype({"source_id": str}).merge(held, on="source_id")
        frames.append(pd.DataFrame({"source": source, "source_id": found["donor_source_id"].astype(str),
                                    "bloomerang_id": pd.to_numeric(found["account_id"])}))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).dropna().drop_duplicates()


def assign_gift_account_matches(result: Resolution, rows: pd.DataFrame, accounts: pd.DataFrame,
                                known_ids: set[int]) -> None:
    """Rule ``gift_account``: the record's gifts are on exactly one constituent Bloomerang has (gifts on
    several constituents -- one moved by hand to a spouse -- say nothing, and later rules decide)."""
    accounts = accounts.astype({"source_id": str})
    accounts = accounts[accounts["bloomerang_id"].astype("int64").isin(known_ids)]
    if accounts.empty:
        return
    one = accounts.groupby(["source", "source_id"])["bloomerang_id"].transform("nunique") == 1
    found = rows.merge(accounts[one], on=["source", "source_id"])[["_row", "bloomerang_id"]]
    result.assign(found.assign(why="the gifts it already has in Bloomerang"), "gift_account")


def _apply_decisions(result: Resolution, sources: list[str], source_ids: list[str],
                     decisions: Mapping[tuple[str, str], IdentityDecision], known_ids: set[int]) -> None:
    """Rule ``review``: what reviewers decided for records still open (link to their pick, or create).
    A pick Bloomerang no longer has (merged away since) is ignored: the record is matched again."""
    for row in sorted(result.open_rows()):
        decision = decisions.get((sources[row], source_ids[row]))
        if decision is None:
            continue
        if decision.bloomerang_id is not None and known_ids and int(decision.bloomerang_id) not in known_ids:
            result.notes[row].append(f"identity review #{decision.review_id} chose constituent "
                                     f"{decision.bloomerang_id}, which is no longer in Bloomerang; ignored")
            continue
        result.decided[row] = decision.review_id
        if decision.bloomerang_id is None:
            result.forced_new.add(row)
            result.notes[row].append(f"identity review #{decision.review_id}: create a new constituent")
        else:
            result.bloomerang_id[row], result.rule[row] = int(decision.bloomerang_id), "review"
            result.notes[row].append(f"identity review #{decision.review_id}: linked to "
                                     f"constituent {int(decision.bloomerang_id)}")


def resolve_constituents(
    staged: pd.DataFrame, snapshot: pd.DataFrame, links: pd.DataFrame | None = None,
    decisions: Mapping[tuple[str, str], IdentityDecision] | None = None,
    accounts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per staged constituent: ``source, source_id, bloomerang_id (Int64, <NA> = create or wait),
    rule, create_key (set for records to create; shared by records that become one constituent),
    ambiguous, note, review ({reason, candidates} when the record needs an identity item of its own),
    waiting_for (the record key whose identity item this record waits on), decision_id (the identity
    item whose decision it follows)``. ``decisions``: ``{(source, source_id): IdentityDecision}`` of
    resolved identity items. ``accounts``: ``gift_accounts`` (rule ``gift_account``). Staged rows repeated by
    (source, source_id) count once (the last)."""
    staged = staged.astype({"source_id": str}).drop_duplicates(["source", "source_id"], keep="last")
    staged = staged.reset_index(drop=True)
    n = len(staged)
    result = Resolution(n)
    sources, source_ids = staged["source"].astype(str).tolist(), staged["source_id"].tolist()
    keys = match_keys(staged).assign(_row=range(n))
    snap = match_keys(snapshot).assign(bloomerang_id=pd.to_numeric(_col(snapshot, "bloomerang_id")).astype("Int64"))
    snap = snap[snap["bloomerang_id"].notna()]
    known_ids = set(snap["bloomerang_id"].astype(int))
    rows = pd.DataFrame({"_row": range(n), "source": pd.Series(sources, dtype=object),
                         "source_id": pd.Series(source_ids, dtype=object)})

    if links is not None and len(links):
        linked = links.dropna(subset=["bloomerang_id"]).astype({"source_id": str})
        linked = rows.merge(linked[["source", "source_id", "bloomerang_id"]], on=["source", "source_id"])
        result.assign(linked[["_row", "bloomerang_id"]], "linked")
        for row, bid in zip(linked["_row"], linked["bloomerang_id"], strict=True):
            if known_ids and int(bid) not in known_ids:
                result.notes[row].append(f"linked Bloomerang record {int(bid)} is not in the snapshot")

    _apply_decisions(result, sources, source_ids, decisions or {}, known_ids)

    corr = pd.DataFrame({"_row": range(n), "bloomerang_id": pd.to_numeric(_col(staged, "bloomerang_id"))}).dropna()
    if not corr.empty:
        corr["bloomerang_id"] = corr["bloomerang_id"].astype("int64")
        missing = corr[~corr["bloomerang_id"].isin(known_ids)] if known_ids else corr.iloc[0:0]
        for row, bid in zip(missing["_row"], missing["bloomerang_id"], strict=True):
            if row in result.open_rows():
                result.notes[row].append(f"source's bloomerang_id {bid} is not in Bloomerang; ignored")
        result.assign(corr[~corr.index.isin(missing.index)], "correlation_id")

    assign_custom_field_matches(result, rows, snapshot)
    if accounts is not None and len(accounts):
        assign_gift_account_matches(result, rows, accounts, known_ids)

    open_keys = keys[keys["_row"].isin(result.open_rows())]
    emails = _email_pairs(open_keys, snap)
    result.assign(emails[emails["compatible"]], "email")
    for row, group in emails[~emails["compatible"]].groupby("_row")["bloomerang_id"]:
        if int(row) in result.open_rows():
            result.mismatch[int(row)] = sorted(group.astype(int).unique().tolist())

    result.assign(_org_pairs(keys[keys["_row"].isin(result.open_rows())], snap), "org_name")
    result.assign(_duplicate_pairs(keys[keys["_row"].isin(result.open_rows())], snap, "bloomerang_id"),
                  "duplicate_rule")
    for row, candidates in sorted(result.mismatch.items()):
        if row in result.open_rows():
            result.hold(row, "email_name_mismatch", candidates)

    create_key, waiting = _cluster(keys, result, sources, source_ids)
    return pd.DataFrame({
        "source": sources,
        "source_id": source_ids,
        "bloomerang_id": pd.array(result.bloomerang_id, dtype="Int64"),
        "rule": result.rule,
        "create_key": create_key,
        "ambiguous": result.ambiguous,
        "note": ["; ".join(notes) or None for notes in result.notes],
        "review": result.review,
        "waiting_for": waiting,
        "decision_id": pd.array(result.decided, dtype="Int64"),
    }, columns=list(OUTPUT_COLUMNS))


def _cluster(keys: pd.DataFrame, result: Resolution, sources: list[str], source_ids: list[str]
             ) -> tuple[list[str | None], list[str | None]]:
    """Join staged records that are one person: inherit a sibling's Bloomerang id, share a create key, or
    wait together for the identity review of one of them. Returns ``(create_key, waiting_for)``."""
    n = len(sources)
    edges = _staged_edges(keys)
    roots = _union_find(n, ((a, b) for a, b, _ in edges))
    edge_rule: dict[tuple[int, int], str] = {}
    for a, b, rule in edges:
        edge_rule.setdefault((min(a, b), max(a, b)), rule)
    members: dict[int, list[int]] = {}
    for row, root in enumerate(roots):
        members.setdefault(root, []).append(row)
    create_key: list[str | None] = [None] * n
    waiting: list[str | None] = [None] * n

    def name(row: int) -> str:
        return record_key(sources[row], source_ids[row])

    def settled(row: int, how: str) -> None:
        if result.review[row] is not None:  # the sibling's answer is this record's too
            result.review[row], result.ambiguous[row] = None, False
            result.notes[row] = [n for n in result.notes[row] if not n.startswith("awaiting identity review")]
            result.notes[row].append(f"no identity review needed: {how}")

    def create_together(group: list[int], followers: Iterable[int] = ()) -> None:
        leader = min(group, key=lambda r: _id_order(sources[r], source_ids[r]))
        for row in [*group, *followers]:
            create_key[row] = name(leader)
            if row != leader:
                settled(row, f"same person as {name(leader)}, created with it")
                result.notes[row].append(f"same person as {name(leader)}: created once, with it")

    for group in members.values():
        matched = [r for r in group if result.bloomerang_id[r] is not None]
        forced = [r for r in group if r in result.forced_new]
        pending = [r for r in group if result.review[r] is not None]
        if matched:
            anchor = min(matched, key=lambda r: (RULES.index(result.rule[r]), result.bloomerang_id[r]))
            ids = sorted({result.bloomerang_id[r] for r in matched})
            for row in group:
                if result.bloomerang_id[row] is not None:
                    if len(ids) > 1:
                        result.notes[row].append(f"same person as records matched to other Bloomerang ids {ids}")
                    continue
                if row in result.forced_new:  # a reviewer said: none of the candidates, a new constituent
                    continue
                result.bloomerang_id[row] = result.bloomerang_id[anchor]
                result.rule[row] = edge_rule.get((min(row, anchor), max(row, anchor)), "duplicate_rule")
                settled(row, f"same person as {name(anchor)}")
                result.notes[row].append(f"same person as {name(anchor)} (matched by {result.rule[anchor]})")
            if forced:
                create_together(forced)
            continue
        if pending and not forced:
            first = min(pending, key=lambda r: _id_order(sources[r], source_ids[r]))
            for row in group:
                waiting[row] = name(row) if row in pending else name(first)
                if row not in pending:
                    result.notes[row].append(f"same person as {name(first)}, which awaits identity review")
            continue
        create_together([r for r in group if result.review[r] is None], followers=pending)
    return create_key, waiting
