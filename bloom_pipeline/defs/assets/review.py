"""Layer ``review``: the three-way merge's decisions as assets — ``donor_conflicts`` and ``review_queue``.

The merge runs inside the load step (``source_writebacks``, ``assets/load.py``) and writes its decisions to the
org's staging tables ``conflicts`` and ``review_queue``. These two assets make those tables visible in the
graph, per org, with Markdown tables in the UI: what this run decided field by field (record, field, both
values and times, rule, winner), and what still waits for a person and for how long. They only read
(``staging/conflict_views.py``), so they cost a DuckDB query and never change what the load did. The
``review_age`` check on ``review_queue`` is in ``defs/review_check.py``.
"""

import dagster as dg

from bloom_pipeline.defs.metadata import markdown_table
from bloom_pipeline.defs.resources import SyncSettings
from bloom_pipeline.defs.runs import sync_run_id
from bloom_pipeline.staging import conflict_views as views

GROUP = "review"
CONFLICTS = "donor_conflicts"
REVIEW_QUEUE = "review_queue"
UPSTREAM = "source_writebacks"  # the load asset whose step runs the merge
MAX_ROWS = 50  # Markdown kept readable in the UI; the staging tables hold every row


def limited_table(header: tuple[str, ...], rows: list[tuple], what: str) -> str:
    """A Markdown table of at most ``MAX_ROWS`` rows, saying how many more the staging table holds."""
    shown = markdown_table(header, rows[:MAX_ROWS])
    more = len(rows) - MAX_ROWS
    return shown + (f"\n\n…and {more} more {what} (query the `{what}` table)" if more > 0 else "")


def rules_legend(rules: set[str]) -> str:
    return "\n".join(f"- `{rule}`: {views.RULES.get(rule, rule)}" for rule in sorted(rules))


def review_command(org: str) -> str:
    return f"`bloom-pipeline review list --org {org}`, then `bloom-pipeline review resolve --org {org} --id N`"


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(name=CONFLICTS, group_name=GROUP, deps=[UPSTREAM], partitions_def=partitions_def, kinds={"duckdb"})
    def donor_conflicts(context: dg.AssetExecutionContext, sync_settings: SyncSettings) -> dg.MaterializeResult:
        """This run's field-level decisions of the three-way merge: fields of linked donors changed on both
        sides, with both values and times, the rule that decided (last-modified wins, a field policy, a
        person's decision) and the winner (``review``: queued for a person)."""
        run_id = sync_run_id(context)
        with sync_settings.store(context.partition_key).connect() as con:
            decisions = views.run_conflicts(con, run_id)
        rows = views.conflict_rows(decisions)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(len(decisions)),
            "sync run": dg.MetadataValue.text(run_id),
            "sent to review": dg.MetadataValue.int(views.sent_to_review(decisions)),
            "by rule and winner": dg.MetadataValue.md(
                (markdown_table(views.RULE_HEADER, views.rule_counts(decisions)) + "\n\n"
                 + rules_legend({d.rule for d in decisions})) if decisions
                else "no field changed on both sides in this run"),
            "decisions": dg.MetadataValue.md(limited_table(views.CONFLICT_HEADER, rows, "conflicts") if rows
                                             else "none"),
        })

    @dg.asset(name=REVIEW_QUEUE, group_name=GROUP, deps=[UPSTREAM], partitions_def=partitions_def,
              kinds={"duckdb"})
    def review_queue(context: dg.AssetExecutionContext, sync_settings: SyncSettings) -> dg.MaterializeResult:
        """The open items of the org's review queue after this run — conflicts no rule could settle and
        records whose Bloomerang match a person must choose — with how long each has waited."""
        org = context.partition_key
        with sync_settings.store(org).connect() as con:
            waiting = views.waiting_items(con)
        identity = sum(w.item.is_identity for w in waiting)
        oldest = max((w.age for w in waiting), default=None)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(len(waiting)),
            "field items": dg.MetadataValue.int(len(waiting) - identity),
            "identity items": dg.MetadataValue.int(identity),
            "oldest wait (days)": dg.MetadataValue.float(round(oldest.total_seconds() / 86400, 2) if oldest else 0.0),
            "open items": dg.MetadataValue.md(
                (limited_table(views.REVIEW_HEADER, views.review_rows(waiting), "review_queue")
                 + f"\n\nDecide with {review_command(org)}; the next sync applies the decision.")
                if waiting else "nothing waits for review"),
        })

    return [donor_conflicts, review_queue]
