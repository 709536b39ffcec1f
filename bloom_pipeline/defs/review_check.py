"""The ``review_age`` asset check on ``review_queue``: do review items wait longer than the org allows?

A conflict no rule could settle (or a record whose Bloomerang match is ambiguous) waits in the review queue
until a person decides; until then the field is not synced (or the donor not linked). Items that wait too long
are a process problem, not a data error, so the check **warns** (it never fails the run): the org's YAML says
how long is too long (``review: {max_age_days: 7}``, default 7), and the warning lists the overdue items and
the command that resolves them. The rule itself is ``staging/conflict_views.py``'s, tested without Dagster.

Partitioned like the asset it checks (one org per partition), for the reason ``checks.py`` gives; the preview
warning of partitioned checks is silenced where the check is declared, on purpose.
"""

import warnings

import dagster as dg

from bloom_pipeline.defs.assets.review import REVIEW_QUEUE, limited_table, review_command
from bloom_pipeline.defs.resources import SyncSettings
from bloom_pipeline.staging import conflict_views as views

REVIEW_AGE = "review_age"


def build(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The ``review_age`` check, for the org partitions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitions_def on a check: deliberate (docstring)

        @dg.asset_check(asset=REVIEW_QUEUE, name=REVIEW_AGE, partitions_def=partitions_def,
                        description="no open review item waits longer than the org's review.max_age_days "
                                    "(default 7); warns, never blocks")
        def review_age(context: dg.AssetCheckExecutionContext, sync_settings: SyncSettings) -> dg.AssetCheckResult:
            org = sync_settings.org(context.partition_key)
            with sync_settings.store(org.name).connect() as con:
                verdict = views.age_verdict(views.waiting_items(con), org.review.max_age_days)
            oldest = verdict.oldest
            description = verdict.summary()
            if not verdict.passed:
                description += f": decide with {review_command(org.name)}"
            return dg.AssetCheckResult(
                passed=verdict.passed,
                severity=dg.AssetCheckSeverity.WARN,
                description=description,
                metadata={
                    "max age (days)": dg.MetadataValue.int(verdict.max_age_days),
                    "open items": dg.MetadataValue.int(len(verdict.waiting)),
                    "overdue items": dg.MetadataValue.int(len(verdict.overdue)),
                    "oldest wait": dg.MetadataValue.text(views.format_age(oldest) if oldest is not None else "none"),
                    "overdue": dg.MetadataValue.md(
                        limited_table(views.REVIEW_HEADER, views.review_rows(verdict.overdue), "review_queue")
                        if verdict.overdue else "none"),
                },
            )

    return [review_age]
