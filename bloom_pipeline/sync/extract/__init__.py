"""Step 1 — extract: the three APIs into ``raw_*`` tables, incrementally where the API allows it.

Takes the org's clients and the stored cursors; gives ``records.Extracted`` (what the run read, keyed
``source.entity``) and the raw tables, each record as the API returned it.

* ``wegive`` — donors (a full scan: WeGive has no modification filter; the hash of each mapped record
  against ``sync_state`` decides what changed), funds, fund allocations, transactions by cursor or window.
* ``handbid`` — contacts by cursor; payments, receipts and items of *reconciled* auctions only.
* ``bloomerang`` — constituents by ``lastModified`` cursor, upserted into the stored snapshot; the small
  reference lists in full.
* ``cursors`` — parsing, reading and proposing cursors (committed by the runner only on success).
* ``records`` — ``Extracted`` and the raw tables read back.
"""
