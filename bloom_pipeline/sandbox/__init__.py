"""The sandbox: local simulators of the three vendor APIs (Bloomerang v2, WeGive, Handbid) on loopback.

The clients and the sync are tested, benchmarked and demonstrated against these simulators instead of
the real services: each is a Starlette app over an in-memory store, served by uvicorn on loopback
only, seeded from one deterministic generated world and as hostile as the real APIs (rate limits, 5xx,
latency, drop-after-commit). Their shapes and rules follow the vendor documents in ``contracts/``.
Outside this package only the ``bloom-pipeline`` command group (which registers ``cli``) and the demo
(which runs ``process.SandboxProcess``) refer to it; the pipeline itself never imports it.

Layout:

* ``server`` — ``Sandbox``: the three simulators in background threads, their knobs, stores and URLs.
* ``process`` — ``SandboxProcess``: the same, as a ``bloom-pipeline sandbox`` child process (the demo).
* ``state`` — the three stores' whole state saved to one file and served again (a loaded world reused).
* ``cli`` — the ``bloom-pipeline sandbox`` command.
* ``faults`` — ``Knobs``, the fault middleware shared by the three apps, and the ``RequestLog``.
* ``data`` — the generated world: shared fake people and the seed records of each API.
* ``bloomerang``, ``wegive``, ``handbid`` — one package per simulated API, each with an ``app`` module
  (``create_app``: routes, auth, HTTP shapes) and a ``store`` module (the in-memory database and its
  rules); Bloomerang's store rules are split further because they are many.
"""
