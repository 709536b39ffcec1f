"""The data dictionary's example queries run against a real snapshot and answer their question, and every
table and column of the schema is documented."""

import json
import re
from pathlib import Path

import duckdb
import pandas as pd

from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.ledgers import LogEntry
from bloom_pipeline.staging.snapshot import publish_snapshot

DOC = Path(__file__).resolve().parents[3] / "docs" / "DATA_DICTIONARY.md"


def _queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_table_and_column_is_documented(store):
    store.write_raw("wegive", "donors", [{"id": 1}], run_id="r")
    text = DOC.read_text()
    with store.connect() as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
        ).fetchall()
    undocumented = [f"{t}.{c}" for t, c in columns if f"`{c}`" not in text]
    assert undocumented == []
    for table in {t for t, _ in columns if not t.startswith("raw_")}:
        assert f"`{table}`" in text


def test_example_queries_answer_their_questions(store, rows):
    with store.write() as con:
        ledgers.start_run(con, "r1", org="acme", direction="both")
    gift = rows.transaction("T1", "2026-11-01")
    gift["payload"] = json.dumps(
        {
            "Amount": 25.0,
            "Designations": [
                {"Type": "Donation", "Amount": 20.0, "FundId": "ref:wegive.funds:3"},
                {"Type": "Donation", "Amount": 5.0, "FundId": "ref:bloomerang.funds:name=Gala Fund"},
            ],
        }
    )
    store.write_staged("transactions", pd.DataFrame([gift]), source="wegive", run_id="r1")
    store.write_staged(
        "funds",
        pd.DataFrame(
            [
                {
                    "source": "wegive",
                    "source_id": "3",
                    "payload": "{}",
                    "payload_hash": "0" * 64,
                    "name": "General",
                }
            ]
        ),
        source="wegive",
        run_id="r1",
    )
    store.write_quarantine(
        [
            {
                "source": "wegive",
                "entity": "donors",
                "source_id": "1013",
                "reasons": ["email: email_is_valid (got 'x')"],
                "raw": {"id": 1013},
            }
        ],
        run_id="r1",
    )
    with store.write() as con:
        ledgers.append_log(
            con,
            "r1",
            [
                LogEntry("constituents", "wegive", "1012", "created", bloomerang_id=7),
                LogEntry("constituents", "wegive", "1014", "failed", error="400: LastName is required"),
                LogEntry("constituents", "wegive", "1013", "quarantined"),
            ],
        )
        ledgers.finish_run(con, "r1", status="succeeded")
    info = publish_snapshot(store)

    failed_sql, totals_sql, history_sql = _queries()
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        failed = con.execute(failed_sql).fetchall()
        totals = con.execute(totals_sql).fetchall()
        history = con.execute(history_sql).fetchall()
    finally:
        con.close()
    assert [(r[2], r[4], r[5]) for r in failed] == [
        ("1014", "failed", "400: LastName is required"),
        ("1013", "quarantined (invalid)", "email: email_is_valid (got 'x')"),
    ]
    assert [(str(r[0]), r[1], float(r[2])) for r in totals] == [
        ("2026-11-01", "Gala Fund", 5.0),
        ("2026-11-01", "General", 20.0),
    ]
    assert [(r[1], r[4], r[5]) for r in history] == [("r1", "created", 7)]
