"""The deterministic world the three simulators start from: one seed, one byte-identical world.

* ``people`` — fake people, companies and addresses, messy on purpose, shared by every API.
* ``wegive``, ``handbid``, ``bloomerang`` — each API's records built from those people (WeGive and
  Handbid in read shape, Bloomerang in write shape, as its store seeds through its own create path);
  the WeGive generators also stream, for benchmarks of a million donors.
* ``world`` — ``generate_world(donors, seed)`` and ``World``: which records exist and which records of
  different APIs are the same person (the identity paths the sync must find).

The per-API generators live here rather than in the API packages because they share the people pools
and the anchor date, and the world must build all three together to link them.
"""
