"""Simulator of Bloomerang's REST API v2 (the CRM the pipeline writes to), served under ``/v2``.

Follows Bloomerang's official OpenAPI document, ``contracts/bloomerang-v2-openapi.json`` (paths,
parameters, bodies; the contract tests validate every answer against it), and the fact sheet
``contracts/bloomerang-v2.md`` for what the document leaves open (live observations and our
**decided** defaults). The duplicate rule comes from the v1 reference, ``contracts/reference/``.

Modules: ``app`` (Starlette routes and HTTP shapes), ``store`` (the in-memory database, thread-safe),
``people`` (constituents and their emails / phones / addresses), ``gifts`` (transactions,
designations, refunds), ``validation`` (field rules and ``BloomerangError``), ``queries`` (list
parameters, filters, paging) and ``duplicates`` (the duplicate-constituent rule).
"""
