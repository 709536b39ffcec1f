"""Simulator of Bloomerang's REST API v2 (the CRM the pipeline writes to), served under ``/v2``.

Follows Bloomerang's official OpenAPI document, ``contracts/bloomerang-v2-openapi.json`` (paths,
parameters, bodies; the contract tests validate every answer against it), and the fact sheet
``contracts/bloomerang-v2.md`` for what the document leaves open (live observations and our
**decided** defaults). The duplicate rule comes from the v1 reference, ``contracts/reference/``.

Modules: ``app`` (Starlette routes and HTTP shapes), ``store`` (the in-memory database, thread-safe),
``people`` (constituents, their emails / phones / addresses and communication settings), ``gifts``
(transactions, designations, refunds), ``activities`` (interactions and notes), ``strict`` (how a
request body is decoded: media type, nesting depth, finite numbers, int64, string lengths),
``validation`` (field rules and ``BloomerangError``), ``queries`` (list parameters, filters, paging)
and ``duplicates`` (the duplicate-constituent rule). The simulator is as strict as the real service:
what it refuses, and why, is in the fact sheet's §10.
"""
