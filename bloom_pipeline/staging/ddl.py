"""Every table of an org's staging database, as DDL, in one place.

Why one module: the data dictionary (docs/DATA_DICTIONARY.md), the store and the analyst snapshot all
describe the same tables, and an auditor reading this file sees the whole schema at once. All
statements are idempotent (``IF NOT EXISTS``) so opening a store is also its migration.

Table and column identifiers that are built from names (``raw_<source>_<entity>``) are checked against
an allow-list / identifier regex before they reach SQL; values always travel as parameters.
"""

import re
from typing import Any

# Sources whose raw extracts are stored; the staged (stg_*) tables carry only the first two.
RAW_SOURCES: tuple[str, ...] = ("wegive", "handbid", "bloomerang")
STAGED_SOURCES: tuple[str, ...] = ("wegive", "handbid")
STAGED_ENTITIES: tuple[str, ...] = ("constituents", "transactions", "funds")

# Which source extracts feed which staged entity (row accounting uses this to count "extracted").
FEEDS: dict[tuple[str, str], str] = {
    ("wegive", "donors"): "constituents",
    ("handbid", "contacts"): "constituents",
    ("wegive", "transactions"): "transactions",
    ("handbid", "payments"): "transactions",
    ("wegive", "funds"): "funds",
}

LOG_ACTIONS: tuple[str, ...] = ("created", "updated", "unchanged", "skipped", "failed", "quarantined")
RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "halted")
DIRECTIONS: tuple[str, ...] = ("push", "pull", "both")

# Partition column of raw / staged / quarantine rows. ``window`` is an SQL keyword, hence the suffix.
WINDOW_COLUMN = "window_date"

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def check_identifier(name: str) -> str:
    """Return ``name`` if it is a plain lower-case SQL identifier, else raise ValueError."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def raw_table(source: str, entity: str) -> str:
    """Name of the raw extract table of one source entity, e.g. ``raw_wegive_donors``."""
    if source not in RAW_SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(RAW_SOURCES)}")
    return check_identifier(f"raw_{source}_{check_identifier(entity)}")


def staged_table(entity: str) -> str:
    """Name of the staged table of one canonical entity, e.g. ``stg_constituents``."""
    if entity not in STAGED_ENTITIES:
        raise ValueError(f"unknown staged entity {entity!r}; expected one of {', '.join(STAGED_ENTITIES)}")
    return f"stg_{entity}"


# sha256 of ``record`` (``writes.record_digest``): how an extract tells an unchanged record without rewriting it.
# NULL in a row an older version wrote (added to such a table on its next write, ``store.write_raw``).
RAW_HASH_COLUMN = "record_hash"


def raw_table_ddl(table: str) -> str:
    """CREATE statement for a raw table: the record as JSON, whatever shape the API returned."""
    check_identifier(table)
    return f"""
CREATE TABLE IF NOT EXISTS {table} (
    source_id    VARCHAR NOT NULL,
    record       JSON NOT NULL,
    run_id       VARCHAR NOT NULL,
    extracted_at TIMESTAMPTZ NOT NULL,
    {WINDOW_COLUMN}  DATE,
    {RAW_HASH_COLUMN}  VARCHAR
)"""


_STAGED_COMMON = """
    source            VARCHAR NOT NULL,
    source_id         VARCHAR NOT NULL,
    payload           JSON NOT NULL,
    payload_hash      VARCHAR NOT NULL,
    source_updated_at TIMESTAMPTZ,"""

_STAGED_TAIL = f"""
    run_id            VARCHAR NOT NULL,
    extracted_at      TIMESTAMPTZ NOT NULL,
    {WINDOW_COLUMN}       DATE"""

# The canonical person fields of ``stg_constituents``: what identity, the plan and the merge compare.
CANONICAL_FIELDS: tuple[str, ...] = ("first_name", "middle_name", "last_name", "full_name", "email", "phone",
                                     "street", "city", "state", "postal_code", "country")

STAGED_COLUMNS: dict[str, tuple[str, ...]] = {
    "constituents": ("constituent_type", *CANONICAL_FIELDS, "bloomerang_id"),
    "transactions": (
        "donor_source_id",
        "date",
        "amount",
        "method",
        "is_refunded",
        "status",
        "fund_source_ids",
        "bloomerang_id",
    ),
    "funds": ("name", "bloomerang_id"),
}
COMMON_COLUMNS: tuple[str, ...] = ("source", "source_id", "payload", "payload_hash", "source_updated_at")

_STAGED_TYPES = {
    "bloomerang_id": "BIGINT",
    "date": "DATE",
    "amount": "DECIMAL(18, 2)",
    "is_refunded": "BOOLEAN",
    "fund_source_ids": "JSON",
}


def _staged_ddl(entity: str) -> str:
    cols = ",\n".join(f"    {c:<17} {_STAGED_TYPES.get(c, 'VARCHAR')}" for c in STAGED_COLUMNS[entity])
    return f"CREATE TABLE IF NOT EXISTS stg_{entity} ({_STAGED_COMMON}\n{cols},{_STAGED_TAIL}\n)"


# Quarantine kinds. Record level (the record is not staged): 'invalid' (broke a rule: a mapping or validation
# rule, a missing or duplicate id, a value out of range) and 'excluded' (out of scope by an `exclude_when` rule).
# Field level: 'field' — one optional value left out of a staged record's payload (`on_invalid: drop_field`);
# the record itself is staged and loaded, so row accounting does not count these rows.
QUARANTINE_KINDS: tuple[str, ...] = ("invalid", "excluded", "field")
RECORD_QUARANTINE_KINDS: tuple[str, ...] = ("invalid", "excluded")

LEDGER_DDL: tuple[str, ...] = (
    "CREATE SEQUENCE IF NOT EXISTS seq_quarantine",
    "CREATE SEQUENCE IF NOT EXISTS seq_sync_log",
    "CREATE SEQUENCE IF NOT EXISTS seq_conflicts",
    "CREATE SEQUENCE IF NOT EXISTS seq_review_queue",
    f"""
CREATE TABLE IF NOT EXISTS quarantine (
    id             BIGINT PRIMARY KEY DEFAULT nextval('seq_quarantine'),
    source         VARCHAR NOT NULL,
    entity         VARCHAR NOT NULL,
    source_id      VARCHAR,
    run_id         VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL CHECK (kind IN {QUARANTINE_KINDS!r}),
    reasons        VARCHAR[] NOT NULL,
    raw            JSON,
    quarantined_at TIMESTAMPTZ NOT NULL,
    {WINDOW_COLUMN}    DATE,
    field          VARCHAR,
    value          VARCHAR
)""",
    """
CREATE TABLE IF NOT EXISTS sync_state (
    entity                 VARCHAR NOT NULL,
    source                 VARCHAR NOT NULL,
    source_id              VARCHAR NOT NULL,
    bloomerang_id          BIGINT,
    source_snapshot        JSON,
    source_hash            VARCHAR,
    bloomerang_snapshot    JSON,
    bloomerang_hash        VARCHAR,
    source_modified_at     TIMESTAMPTZ,
    bloomerang_modified_at TIMESTAMPTZ,
    synced_at              TIMESTAMPTZ,
    last_run_id            VARCHAR,
    pending                VARCHAR,
    pending_run_id         VARCHAR,
    pending_since          TIMESTAMPTZ,
    PRIMARY KEY (entity, source, source_id)
)""",
    """
CREATE TABLE IF NOT EXISTS sync_log (
    seq           BIGINT PRIMARY KEY DEFAULT nextval('seq_sync_log'),
    run_id        VARCHAR NOT NULL,
    entity        VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    source_id     VARCHAR,
    bloomerang_id BIGINT,
    direction     VARCHAR NOT NULL DEFAULT 'push' CHECK (direction IN ('push', 'pull')),
    action        VARCHAR NOT NULL
                  CHECK (action IN ('created', 'updated', 'unchanged', 'skipped', 'failed', 'quarantined')),
    field_diff    JSON,
    error         VARCHAR,
    logged_at     TIMESTAMPTZ NOT NULL
)""",
    """
CREATE TABLE IF NOT EXISTS sync_runs (
    run_id     VARCHAR PRIMARY KEY,
    org        VARCHAR NOT NULL,
    direction  VARCHAR NOT NULL CHECK (direction IN ('push', 'pull', 'both')),
    dry_run    BOOLEAN NOT NULL DEFAULT false,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ,
    status     VARCHAR NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'halted')),
    counts     JSON,
    message    VARCHAR
)""",
    """
CREATE TABLE IF NOT EXISTS cursors (
    name       VARCHAR PRIMARY KEY,
    value      VARCHAR,
    updated_at TIMESTAMPTZ NOT NULL,
    run_id     VARCHAR
)""",
    """
CREATE TABLE IF NOT EXISTS conflicts (
    id                     BIGINT PRIMARY KEY DEFAULT nextval('seq_conflicts'),
    run_id                 VARCHAR NOT NULL,
    entity                 VARCHAR NOT NULL,
    source                 VARCHAR NOT NULL,
    source_id              VARCHAR NOT NULL,
    bloomerang_id          BIGINT,
    field                  VARCHAR NOT NULL,
    source_value           JSON,
    bloomerang_value       JSON,
    source_modified_at     TIMESTAMPTZ,
    bloomerang_modified_at TIMESTAMPTZ,
    rule                   VARCHAR NOT NULL,
    winner                 VARCHAR NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL
)""",
    """
CREATE TABLE IF NOT EXISTS review_queue (
    id                     BIGINT PRIMARY KEY DEFAULT nextval('seq_review_queue'),
    entity                 VARCHAR NOT NULL,
    source                 VARCHAR NOT NULL,
    source_id              VARCHAR NOT NULL,
    bloomerang_id          BIGINT,
    field                  VARCHAR NOT NULL,
    source_value           JSON,
    bloomerang_value       JSON,
    source_modified_at     TIMESTAMPTZ,
    bloomerang_modified_at TIMESTAMPTZ,
    reason                 VARCHAR NOT NULL,
    status                 VARCHAR NOT NULL CHECK (status IN ('open', 'resolved', 'applied')),
    decision               VARCHAR CHECK (decision IN ('source', 'bloomerang', 'value')),
    decided_value          JSON,
    decided_at             TIMESTAMPTZ,
    created_run_id         VARCHAR,
    created_at             TIMESTAMPTZ NOT NULL,
    applied_run_id         VARCHAR,
    applied_at             TIMESTAMPTZ
)""",
)


# What the staging step last made of each record wholly staged (``staging/stage_inputs.py``): a record whose
# content hash and mapping hash are unchanged, and whose staged row still has this payload hash, is not mapped again.
STAGE_INPUTS_DDL = """
CREATE TABLE IF NOT EXISTS stage_inputs (
    source       VARCHAR NOT NULL,
    entity       VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL,
    record_hash  VARCHAR NOT NULL,
    mapping_hash VARCHAR NOT NULL,
    payload_hash VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL,
    PRIMARY KEY (source, entity, source_id)
)"""

# The quarantine rows the staging step gave a record (``staging/stage_inputs.py``): a record quarantined whole, or
# staged with a value left out, whose content hash and mapping hash are unchanged is not mapped again either — the
# rows are written into the run as that mapping gave them. ``staged``: the record also gave a staged row.
STAGE_VERDICTS_DDL = """
CREATE TABLE IF NOT EXISTS stage_verdicts (
    source       VARCHAR NOT NULL,
    entity       VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL,
    record_hash  VARCHAR NOT NULL,
    mapping_hash VARCHAR NOT NULL,
    staged       BOOLEAN NOT NULL,
    verdict      JSON NOT NULL,
    run_id       VARCHAR NOT NULL,
    PRIMARY KEY (source, entity, source_id)
)"""


# A whole-list scan as it was last written (``StagingStore.write_raw`` with ``scan_digest``): the digest of the
# list as received and of the raw table as that write left it. While both are what they are now, a scan that
# received the same list again only stamps the table's rows as the run's (no record hashed or compared).
SCAN_DIGESTS_DDL = """
CREATE TABLE IF NOT EXISTS scan_digests (
    table_name   VARCHAR NOT NULL PRIMARY KEY,
    scan_digest  VARCHAR NOT NULL,
    table_digest VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL
)"""


def all_ddl() -> list[str]:
    """Every statement needed to create an empty staging database (raw tables come on demand)."""
    return ([_staged_ddl(e) for e in STAGED_ENTITIES] + list(LEDGER_DDL) + list(RECONCILIATION_DDL)
            + [STAGE_INPUTS_DDL, STAGE_VERDICTS_DDL, SCAN_DIGESTS_DDL])


def _quarantine_ddl(table: str) -> str:
    statement = next(s for s in LEDGER_DDL if "CREATE TABLE IF NOT EXISTS quarantine (" in s)
    return statement.replace("quarantine (", f"{check_identifier(table)} (", 1)


def upgrade(con: Any) -> None:
    """Bring a staging file written by an older version to this schema; run after ``all_ddl()``.

    The quarantine table of older files allows only the kinds 'invalid' and 'excluded' and has no ``field`` /
    ``value`` columns. DuckDB cannot alter a CHECK constraint, so such a table is rebuilt in one transaction:
    every row (and its id) is kept, and ``seq_quarantine`` goes on numbering. A current table is left alone.
    """
    row = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'quarantine' AND constraint_type = 'CHECK' "
        "AND database_name = current_database() AND schema_name = 'main' AND constraint_text LIKE '%''field''%'"
    ).fetchone()
    if row and row[0]:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_quarantine_ddl("quarantine_upgrade"))
        con.execute("INSERT INTO quarantine_upgrade BY NAME SELECT * FROM quarantine")
        con.execute("DROP TABLE quarantine")
        con.execute("ALTER TABLE quarantine_upgrade RENAME TO quarantine")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# Reconciliation (``bloom_pipeline/reconcile``): the latest reconciliation of each day and fund, and the records
# explaining its differences. Created when ``bloom-pipeline reconcile`` (or the Dagster check) first writes, not
# by ``all_ddl``: an org that never reconciled has no such tables. A rerun over a window replaces its days.
RECONCILIATION_STATUSES: tuple[str, ...] = ("match", "differs")
RECONCILIATION_REASONS: tuple[str, ...] = (
    "not_synced", "quarantined", "failed", "deleted_in_bloomerang", "amount_differs", "fund_differs",
    "date_differs", "refund_differs", "duplicate_in_bloomerang", "bloomerang_only",
)
RECONCILIATION_DDL: tuple[str, ...] = (
    f"""
CREATE TABLE IF NOT EXISTS reconciliation (
    day                DATE NOT NULL,
    fund_key           VARCHAR NOT NULL,
    fund_id            BIGINT,
    fund               VARCHAR NOT NULL,
    source_amount      DECIMAL(18, 2) NOT NULL,
    source_refunds     DECIMAL(18, 2) NOT NULL,
    staged_amount      DECIMAL(18, 2) NOT NULL,
    staged_refunds     DECIMAL(18, 2) NOT NULL,
    bloomerang_amount  DECIMAL(18, 2) NOT NULL,
    bloomerang_refunds DECIMAL(18, 2) NOT NULL,
    difference         DECIMAL(18, 2) NOT NULL,
    refund_difference  DECIMAL(18, 2) NOT NULL,
    records            INTEGER NOT NULL,
    status             VARCHAR NOT NULL CHECK (status IN {RECONCILIATION_STATUSES!r}),
    reconcile_id       VARCHAR NOT NULL,
    reconciled_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (day, fund_key)
)""",
    f"""
CREATE TABLE IF NOT EXISTS reconciliation_records (
    day               DATE NOT NULL,
    fund_key          VARCHAR NOT NULL,
    fund_id           BIGINT,
    fund              VARCHAR NOT NULL,
    source            VARCHAR NOT NULL,
    source_id         VARCHAR NOT NULL,
    bloomerang_id     BIGINT,
    reason            VARCHAR NOT NULL CHECK (reason IN {RECONCILIATION_REASONS!r}),
    detail            VARCHAR NOT NULL,
    source_amount     DECIMAL(18, 2),
    staged_amount     DECIMAL(18, 2),
    bloomerang_amount DECIMAL(18, 2),
    reconcile_id      VARCHAR NOT NULL,
    reconciled_at     TIMESTAMPTZ NOT NULL
)""",
)
