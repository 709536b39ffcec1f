"""Reconciliation across WeGive / Handbid, the staging database and Bloomerang, per day and fund.

Plain Python (no Dagster): ``lines`` reads each system into gift lines, ``totals`` sums them per day and fund,
``explain`` attributes every difference to records, ``run`` reads the inputs and ties them together,
``table`` keeps the result in the org's DuckDB, ``render`` words it, ``cli`` is ``bloom-pipeline reconcile``.
The Dagster asset check lives in ``bloom_pipeline/defs/reconciliation_check.py``.
"""
