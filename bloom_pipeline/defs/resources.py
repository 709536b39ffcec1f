"""Dagster resources: where mappings and data live, and where each org's API credentials come from.

Credentials stay in the environment variables the org YAML names. Each org's resource carries only
those *names* (what the UI's resources page shows); the values are read inside a run of that org —
never at load time, never into resource config. Why not ``EnvVar`` fields: every
org-partitioned asset requires every org's resource, and Dagster resolves an ``EnvVar`` field when it
initializes the resource, so one org with an unset variable would fail the runs of every other org. Here
an unset variable fails only its own org's run, with a message that names the variable (not its value).
Definitions load without any secret set (STACK.md trap 14). An org with ``sandbox_fallback`` (the demo)
uses the sandbox's public keys when its variables are unset.
"""

import re

import dagster as dg

from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.endpoints import Endpoints, resolve_endpoints


class SyncSettings(dg.ConfigurableResource):
    """Paths shared by every org: the mappings directory and the data directory (``BLOOM_DATA_DIR``)."""

    mappings_dir: str = "mappings"
    data_dir: str | None = None

    def org(self, name: str) -> OrgConfig:
        return load_org(name, mappings_dir=self.mappings_dir)

    def store(self, org: str) -> StagingStore:
        return StagingStore.for_org(org, data_dir=self.data_dir)


class OrgApiKeys(dg.ConfigurableResource):
    """One org's credentials, by environment variable name; values are read only when the org runs.

    Base URLs come from ``BLOOMERANG_API_URL`` / ``WEGIVE_API_URL`` / ``HANDBID_API_URL`` or the org YAML.
    """

    bloomerang_api_key_env: str | None = None
    wegive_token_env: str | None = None
    handbid_token_env: str | None = None
    sandbox_fallback: bool = False

    def endpoints(self, org: OrgConfig) -> Endpoints:
        """The org's endpoints, keys read from the environment now (the variables the org YAML names);
        ``ConfigurationError`` naming the variable when one is unset and the org has no sandbox fallback."""
        return resolve_endpoints(org)


def api_resource_key(org: str) -> str:
    """Resource key of one org's keys: ``api_<org>`` with non-identifier characters folded to ``_``."""
    return "api_" + re.sub(r"[^0-9a-zA-Z_]", "_", org)


def org_api_keys(org: OrgConfig) -> OrgApiKeys:
    return OrgApiKeys(
        bloomerang_api_key_env=org.bloomerang.api_key_env,
        wegive_token_env=org.wegive.token_env,
        handbid_token_env=org.handbid.token_env,
        sandbox_fallback=org.sandbox_fallback,
    )


def build_resources(mappings_dir: str, orgs: list[OrgConfig], names: list[str] | None = None,
                    data_dir: str | None = None) -> dict[str, object]:
    """``sync_settings`` plus one ``api_<org>`` per org; ``names`` without a loaded config get an empty one
    (their runs fail with a configuration error, the code location still loads)."""
    resources: dict[str, object] = {"sync_settings": SyncSettings(mappings_dir=str(mappings_dir), data_dir=data_dir)}
    for name in names or []:
        resources[api_resource_key(name)] = OrgApiKeys()
    for org in orgs:
        resources[api_resource_key(org.name)] = org_api_keys(org)
    return resources
