"""Every environment variable the product reads, read here and only here — at call time, never at import.

| variable | meaning | default |
|---|---|---|
| ``BLOOM_DATA_DIR`` | the org DuckDB files, journals and the shared rate budgets | ``./data`` |
| ``BLOOM_MAPPINGS_DIR`` | the mapping YAML root (``defaults/``, ``orgs/``) | ``./mappings``, else the packaged copy |
| ``BLOOMERANG_API_URL`` / ``WEGIVE_API_URL`` / ``HANDBID_API_URL`` | base URL override for every org | the org YAML |
| the variables an org YAML names | API keys and tokens, alert webhooks | unset |

The public sandbox credentials live here too: they open only the simulators, and the demo org
(``sandbox_fallback: true``) falls back to them, so production code never imports ``sandbox/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_DATA_DIR = "./data"
DEFAULT_MAPPINGS_DIR = "mappings"
# The default mappings and the demo org, shipped inside the package (package data) so ``bloom-pipeline demo``
# works from any folder. In the repository it is a symlink to the top-level ``mappings/`` (one source, no copy
# to drift); a built wheel holds the files themselves.
PACKAGED_MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings_default"
URL_ENV = {"bloomerang": "BLOOMERANG_API_URL", "wegive": "WEGIVE_API_URL", "handbid": "HANDBID_API_URL"}

BLOOMERANG_SANDBOX_KEY = "sbx-bloomerang-6d1f0c9e2b7a4c55"  # noqa: S105 - public sandbox constant
WEGIVE_SANDBOX_TOKEN = "7|sbx-wegive-3a8e51f0c2d94b7e"  # noqa: S105 - public sandbox constant
HANDBID_SANDBOX_TOKEN = "sbx-handbid-9c2e7d41a05b"  # noqa: S105 - public sandbox constant
SANDBOX_KEYS = {"bloomerang": BLOOMERANG_SANDBOX_KEY, "wegive": WEGIVE_SANDBOX_TOKEN,
                "handbid": HANDBID_SANDBOX_TOKEN}


def environ(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The environment to read: ``env`` when a caller (a test, a resource) passes one, else the process's."""
    return os.environ if env is None else env


def data_dir(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """``--data-dir``, else ``$BLOOM_DATA_DIR``, else ``./data``."""
    if explicit is not None:
        return Path(explicit)
    return Path(environ(env).get("BLOOM_DATA_DIR") or DEFAULT_DATA_DIR)


def mappings_dir(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """``--mappings-dir``, else ``$BLOOM_MAPPINGS_DIR``, else ``./mappings`` when the current folder has one, else
    the packaged copy.

    Why the fallback: a fresh install run from any folder (``bloom-pipeline demo`` in a home directory) must find
    the demo org; an explicit folder is never replaced by the packaged one, so a typo still fails loudly.
    """
    chosen = explicit or environ(env).get("BLOOM_MAPPINGS_DIR")
    if chosen:
        return Path(chosen)
    local = Path(DEFAULT_MAPPINGS_DIR)
    if local.is_dir() or not PACKAGED_MAPPINGS_DIR.is_dir():
        return local
    return PACKAGED_MAPPINGS_DIR


def api_url_override(api: str, env: Mapping[str, str] | None = None) -> str | None:
    """The base URL override of ``api`` for every org, if set."""
    return environ(env).get(URL_ENV[api]) or None


def secret(name: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The value of the variable ``name`` holding a key, token or webhook, or None when unset or blank."""
    if not name:
        return None
    return environ(env).get(name) or None
