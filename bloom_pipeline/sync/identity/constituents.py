"""Identity resolution: which Bloomerang constituent each staged donor/contact is, or that it is new.

Matching runs locally against the staged Bloomerang snapshot (never one search call per record), in
the order of the reference mapping and Bloomerang's duplicate rule; the first rule that matches wins:

1. ``linked``         -- ``sync_state`` already links the record (our own bookkeeping, always trusted).
2. ``correlation_id`` -- the source's stored Bloomerang id (WeGive ``bloomerang_id``), if that id is in
                         the snapshot (an id Bloomerang does not have is noted and ignored).
3. ``custom_field``   -- the Bloomerang correlation custom field (org YAML) holds the source id.
4. ``email``          -- individuals: same e-mail, trimmed and case-insensitive (e-mail is unique per
                         individual, per the reference mapping's duplicate prevention).
5. ``name_address``   -- organisations: identical full name (case/whitespace only) + standardized
                         street + city.
6. ``duplicate_rule`` -- Bloomerang's rule: same last name, first name equal up to nicknames, suffixes
                         equal when both have one (organisations: identical full name) **and** one of
                         e-mail, standardized street or last seven phone digits.
7. ``new``            -- create.

Several Bloomerang records matching one rule is *ambiguous*: the lowest Bloomerang id is chosen (the
oldest record, usually the one with history; stable across runs whatever gets modified) and the row is
flagged with a note listing every candidate, for an admin to merge in Bloomerang.

Staged records are also matched with each other (same keys, e-mail / organisation name + address /
duplicate rule), so one person who gives on WeGive and bids on Handbid becomes one constituent: when
one of them matched Bloomerang the others inherit that id; when none did, they share a ``create_key``
-- the ``source:source_id`` of a deterministic leader (WeGive before Handbid, then lowest id) -- so
the load creates the constituent once and links the others to it.

Exact-key steps are pandas merges; the duplicate rule joins on (last name, contact point) first, so
the nickname check only sees pairs that already share a last name and a contact point.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from bloom_pipeline.sync.identity import names as nm

RULES = ("linked", "correlation_id", "custom_field", "email", "name_address", "duplicate_rule", "new")
SOURCE_RANK = {"wegive": 0, "handbid": 1}
CORRELATION_COLUMNS = {"wegive": "corr_wegive", "handbid": "corr_handbid"}
CONTACT_POINTS = ("email", "street", "phone")
OUTPUT_COLUMNS = ("source", "source_id", "bloomerang_id", "rule", "create_key", "ambiguous", "note")


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
    """Per staged row: the chosen id, rule, ambiguity and note (filled rule by rule)."""

    def __init__(self, n: int) -> None:
        self.bloomerang_id: list[int | None] = [None] * n
        self.rule: list[str] = ["new"] * n
        self.ambiguous: list[bool] = [False] * n
        self.notes: list[list[str]] = [[] for _ in range(n)]

    def open_rows(self) -> set[int]:
        return {i for i, bid in enumerate(self.bloomerang_id) if bid is None}

    def assign(self, candidates: pd.DataFrame, rule: str) -> None:
        """``candidates[_row, bloomerang_id(, why)]``: choose the lowest id per still-open row."""
        if candidates.empty:
            return
        candidates = candidates[candidates["_row"].isin(self.open_rows())]
        candidates = candidates.astype({"_row": "int64", "bloomerang_id": "int64"})
        ids = candidates[["_row", "bloomerang_id"]].drop_duplicates().sort_values(["_row", "bloomerang_id"])
        chosen = ids.groupby("_row", sort=False)["bloomerang_id"].first()
        for row, bid in chosen.items():
            self.bloomerang_id[row], self.rule[row] = int(bid), rule
        if "why" in candidates:
            hits = candidates.merge(chosen.reset_index(), on=["_row", "bloomerang_id"])
            hits = hits[["_row", "why"]].drop_duplicates().sort_values(["_row", "why"])
            for row, why in hits.groupby("_row", sort=False)["why"].agg(" + ".join).items():
                self.notes[row].append(f"matched on {why}")
        sizes = ids.groupby("_row", sort=False).size()
        for row, group in ids[ids["_row"].isin(sizes[sizes > 1].index)].groupby("_row", sort=False):
            found = group["bloomerang_id"].tolist()
            shown = ", ".join(map(str, found[:10])) + (f" (+{len(found) - 10} more)" if len(found) > 10 else "")
            self.ambiguous[row] = True
            self.notes[row].append(f"ambiguous: {len(found)} Bloomerang records match by {rule} ({shown}); "
                                   f"chose {found[0]} (lowest id)")


def _typed(keys: pd.DataFrame, kind: str) -> pd.Series:
    return keys["kind"].isna() | (keys["kind"] == kind)


def _duplicate_pairs(left: pd.DataFrame, right: pd.DataFrame, right_id: str) -> pd.DataFrame:
    """Pairs (``_row``, ``right_id``, why) that Bloomerang's duplicate rule calls the same record."""
    frames = []
    for kind, name_cols in (("Individual", ["last"]), ("Organization", ["org"])):
        lhs = left[left["kind"] == kind]
        rhs = right[_typed(right, kind)]
        for contact in CONTACT_POINTS:
            on = [*name_cols, contact]
            a = lhs.dropna(subset=on)[["_row", "first", "suffix", *on]]
            b = rhs.dropna(subset=on)[[right_id, "first", "suffix", *on]]
            if a.empty or b.empty:
                continue
            pairs = a.merge(b, on=on, suffixes=("", "_b"))
            if kind == "Individual" and not pairs.empty:
                ok = [nm.first_names_compatible(f, g) and nm.suffixes_compatible(s, t) for f, g, s, t in zip(
                    pairs["first"], pairs["first_b"], pairs["suffix"], pairs["suffix_b"], strict=True)]
                pairs = pairs[ok]
            frames.append(pairs[["_row", right_id]].assign(why=contact))
    if not frames:
        return pd.DataFrame(columns=["_row", right_id, "why"])
    return pd.concat(frames, ignore_index=True)


def _snapshot_candidates(staged_keys: pd.DataFrame, snap: pd.DataFrame, rule: str) -> pd.DataFrame:
    if rule == "email":
        a = staged_keys[staged_keys["kind"] == "Individual"].dropna(subset=["email"])
        b = snap[_typed(snap, "Individual")].dropna(subset=["email"])
        return a[["_row", "email"]].merge(b[["bloomerang_id", "email"]], on="email")
    if rule == "name_address":
        on = ["org", "street", "city"]
        a = staged_keys[staged_keys["kind"] == "Organization"].dropna(subset=on)
        b = snap[_typed(snap, "Organization")].dropna(subset=on)
        return a[["_row", *on]].merge(b[["bloomerang_id", *on]], on=on)
    return _duplicate_pairs(staged_keys, snap, "bloomerang_id")


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


def _staged_edges(keys: pd.DataFrame) -> list[tuple[int, int, str]]:
    """Pairs of staged rows that are the same constituent, with the rule that says so."""
    edges: list[tuple[int, int, str]] = []
    exact = (("email", "Individual", ["email"]), ("name_address", "Organization", ["org", "street", "city"]))
    for rule, kind, on in exact:
        rows = keys[keys["kind"] == kind].dropna(subset=on)
        for _, group in rows.groupby(on, sort=False)["_row"]:
            members = group.tolist()
            edges.extend((members[0], other, rule) for other in members[1:])
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


def resolve_constituents(
    staged: pd.DataFrame, snapshot: pd.DataFrame, links: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per staged constituent: ``source, source_id, bloomerang_id (Int64, <NA> = create), rule,
    create_key (set for records to create; shared by records that become one constituent),
    ambiguous, note``. Staged rows repeated by (source, source_id) count once (the last)."""
    staged = staged.astype({"source_id": str}).drop_duplicates(["source", "source_id"], keep="last")
    staged = staged.reset_index(drop=True)
    n = len(staged)
    result = Resolution(n)
    sources, source_ids = staged["source"].astype(str).tolist(), staged["source_id"].tolist()
    keys = match_keys(staged).assign(_row=range(n))
    snap = match_keys(snapshot).assign(bloomerang_id=pd.to_numeric(_col(snapshot, "bloomerang_id")).astype("Int64"))
    snap = snap[snap["bloomerang_id"].notna()]
    known_ids = set(snap["bloomerang_id"].astype(int))
    rows = pd.DataFrame({"_row": range(n), "source": sources, "source_id": source_ids})

    if links is not None and len(links):
        linked = links.dropna(subset=["bloomerang_id"]).astype({"source_id": str})
        linked = rows.merge(linked[["source", "source_id", "bloomerang_id"]], on=["source", "source_id"])
        result.assign(linked[["_row", "bloomerang_id"]], "linked")
        for row, bid in zip(linked["_row"], linked["bloomerang_id"], strict=True):
            if known_ids and int(bid) not in known_ids:
                result.notes[row].append(f"linked Bloomerang record {int(bid)} is not in the snapshot")

    corr = pd.DataFrame({"_row": range(n), "bloomerang_id": pd.to_numeric(_col(staged, "bloomerang_id"))}).dropna()
    if not corr.empty:
        corr["bloomerang_id"] = corr["bloomerang_id"].astype("int64")
        missing = corr[~corr["bloomerang_id"].isin(known_ids)] if known_ids else corr.iloc[0:0]
        for row, bid in zip(missing["_row"], missing["bloomerang_id"], strict=True):
            if result.bloomerang_id[row] is None:
                result.notes[row].append(f"source's bloomerang_id {bid} is not in Bloomerang; ignored")
        result.assign(corr[~corr.index.isin(missing.index)], "correlation_id")

    assign_custom_field_matches(result, rows, snapshot)

    for rule in ("email", "name_address", "duplicate_rule"):
        open_keys = keys[keys["_row"].isin(result.open_rows())]
        result.assign(_snapshot_candidates(open_keys, snap, rule), rule)

    create_key = _cluster(keys, result, sources, source_ids)
    return pd.DataFrame({
        "source": sources,
        "source_id": source_ids,
        "bloomerang_id": pd.array(result.bloomerang_id, dtype="Int64"),
        "rule": result.rule,
        "create_key": create_key,
        "ambiguous": result.ambiguous,
        "note": ["; ".join(notes) or None for notes in result.notes],
    }, columns=list(OUTPUT_COLUMNS))


def _cluster(keys: pd.DataFrame, result: Resolution, sources: list[str], source_ids: list[str]) -> list[str | None]:
    """Join staged records that are one person: inherit a sibling's Bloomerang id or share a create key."""
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
    for group in members.values():
        matched = [r for r in group if result.bloomerang_id[r] is not None]
        if matched:
            anchor = min(matched, key=lambda r: (RULES.index(result.rule[r]), result.bloomerang_id[r]))
            ids = sorted({result.bloomerang_id[r] for r in matched})
            for row in group:
                if result.bloomerang_id[row] is not None:
                    if len(ids) > 1:
                        result.notes[row].append(f"same person as records matched to other Bloomerang ids {ids}")
                    continue
                result.bloomerang_id[row] = result.bloomerang_id[anchor]
                result.rule[row] = edge_rule.get((min(row, anchor), max(row, anchor)), "duplicate_rule")
                result.notes[row].append(f"same person as {record_key(sources[anchor], source_ids[anchor])} "
                                         f"(matched by {result.rule[anchor]})")
            continue
        leader = min(group, key=lambda r: _id_order(sources[r], source_ids[r]))
        key = record_key(sources[leader], source_ids[leader])
        for row in group:
            create_key[row] = key
            if row != leader:
                result.notes[row].append(f"same person as {key}: created once, with it")
    return create_key
