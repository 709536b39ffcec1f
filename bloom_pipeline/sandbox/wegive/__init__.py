"""Simulator of WeGive's dashboard API (the donation platform the pipeline reads from), under ``/api``.

Follows the OpenAPI document ``contracts/wegive-openapi.json`` (paths, parameters, resource schemas;
the contract tests validate every answer against it) and section 1 and 4.1 of the fact sheet
``contracts/wegive-handbid.md`` for auth, paging, filters and the **decided** defaults.

Modules: ``app`` (Starlette routes, auth, list envelope and filters), ``store`` (the in-memory
database, thread-safe, with the edits a donor or user would make, and the knobs for facts the documents
leave open) and ``resources`` (each answer rendered as the resource WeGive documents for it, with only the
properties that resource names: a donor list row is not its detail). The stored records are generated
by ``sandbox.data.wegive``.
"""
