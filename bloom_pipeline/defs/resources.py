"""Dagster resources: where mappings and data live, and each org's API credentials.

Credentials are ``EnvVar``s named by the org YAML, so Definitions load without them and the values
resolve only inside a run (STACK.md trap 14). An org with ``sandbox_fallback`` whose variables are
unset at load time gets the sandbox's public keys, so the demo runs in ``dagster dev`` with none set.
"""

import os
import re
from pathlib import Path

import dagster as dg

from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.endpoints import Endpoint, Endpoints, resolve_endpoints


class SyncSettings(dg.ConfigurableResource):
    """Paths shared by every org: the mappings directory and the data directory (``BLOOM_DATA_DIR``)."""

    mappings_dir: str = "mappings"
    data_dir: str | None = None

    def org(self, name: str) -> OrgConfig:
        return load_org(name, mappings_dir=self.mappings_dir)

    def store(self, org: str) -> StagingStore:
        return StagingStore.for_org(org, data_dir=self.data_dir)


class OrgApiKeys(dg.ConfigurableResource):
    """One org's keys (from EnvVar) — the base URLs come from the org YAML or the *_API_URL variables."""

    bloomerang_api_key: str
    wegive_token: str
    handbid_token: str

    def endpoints(self, org: OrgConfig) -> Endpoints:
        base = resolve_endpoints(org, environ={**os.environ, **self._as_env(org)})
        return Endpoints(
            Endpoint("bloomerang", base.bloomerang.base_url, self.bloomerang_api_key, base.bloomerang.key_env),
            Endpoint("wegive", base.wegive.base_url, self.wegive_token, base.wegive.key_env),
            Endpoint("handbid", base.handbid.base_url, self.handbid_token, base.handbid.key_env),
            base.handbid_org_id,
        )

    def _as_env(self, org: OrgConfig) -> dict[str, str]:
        names = (org.bloomerang.api_key_env, org.wegive.token_env, org.handbid.token_env)
        values = (self.bloomerang_api_key, self.wegive_token, self.handbid_token)
        return {name: value for name, value in zip(names, values, strict=True) if name}


def api_resource_key(org: str) -> str:
    """Resource key of one org's keys: ``api_<org>`` with non-identifier characters folded to ``_``."""
    return "api_" + re.sub(r"[^0-9a-zA-Z_]", "_", org)


def _secret(env_name: str | None, fallback: str | None) -> str | dg.EnvVar:
    if env_name and (os.environ.get(env_name) or fallback is None):
        return dg.EnvVar(env_name)
    if fallback is not None:
        return fallback
    raise ValueError("an org must name the environment variable of each key")


def org_api_keys(org: OrgConfig) -> OrgApiKeys:
    from bloom_pipeline.sandbox.server import BLOOMERANG_SANDBOX_KEY, HANDBID_SANDBOX_TOKEN, WEGIVE_SANDBOX_TOKEN

    fallback = org.sandbox_fallback
    return OrgApiKeys(
        bloomerang_api_key=_secret(org.bloomerang.api_key_env, BLOOMERANG_SANDBOX_KEY if fallback else None),
        wegive_token=_secret(org.wegive.token_env, WEGIVE_SANDBOX_TOKEN if fallback else None),
        handbid_token=_secret(org.handbid.token_env, HANDBID_SANDBOX_TOKEN if fallback else None),
    )


def build_resources(mappings_dir: str | Path, orgs: list[str], data_dir: str | None = None) -> dict[str, object]:
    resources: dict[str, object] = {"sync_settings": SyncSettings(mappings_dir=str(mappings_dir), data_dir=data_dir)}
    for name in orgs:
        resources[api_resource_key(name)] = org_api_keys(load_org(name, mappings_dir=mappings_dir))
    return resources
