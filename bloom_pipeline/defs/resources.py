"""Dagster resources: where mappings and data live, and where each org's API credentials come from.

Two resources, passed to the assets and checks as typed parameters: ``sync_settings`` (``SyncSettings``)
and ``credentials`` (``OrgCredentials``, one for every org, looked up per org).

Credentials stay in the environment variables the org YAML names. ``credentials`` carries only those
*names*, per org (what the UI's resources page shows); the values are read by ``credentials.endpoints(org)``
inside a run of that org — never at load time, never into resource config. Why not ``EnvVar`` fields:
Dagster resolves an ``EnvVar`` field when it initializes the resource, and every run initializes the one
resource holding every org's keys, so one org with an unset variable would fail the runs of every other
org. Here an unset variable fails only its own org's run, with a message that names the variable (not its
value). Definitions load without any secret set (STACK.md trap 14). An org with ``sandbox_fallback`` (the
demo) uses the sandbox's public keys when its variables are unset.
"""

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


class OrgKeyVariables(dg.Config):
    """The environment variables holding one org's keys, by name only (the org YAML's ``*_env`` keys)."""

    bloomerang_api_key_env: str | None = None
    wegive_token_env: str | None = None
    handbid_token_env: str | None = None
    sandbox_fallback: bool = False


class OrgCredentials(dg.ConfigurableResource):
    """Every org's credentials, by environment variable name; values are read only when an org runs.

    Base URLs come from ``BLOOMERANG_API_URL`` / ``WEGIVE_API_URL`` / ``HANDBID_API_URL`` or the org YAML.
    """

    orgs: dict[str, OrgKeyVariables] = {}

    def endpoints(self, org: OrgConfig) -> Endpoints:
        """The org's endpoints, keys read from the environment now (the variables the org YAML names);
        ``ConfigurationError`` naming the variable when one is unset and the org has no sandbox fallback."""
        return resolve_endpoints(org)


def key_variables(org: OrgConfig) -> OrgKeyVariables:
    return OrgKeyVariables(
        bloomerang_api_key_env=org.bloomerang.api_key_env,
        wegive_token_env=org.wegive.token_env,
        handbid_token_env=org.handbid.token_env,
        sandbox_fallback=org.sandbox_fallback,
    )


def build_resources(mappings_dir: str, orgs: list[OrgConfig], names: list[str] | None = None,
                    data_dir: str | None = None) -> dict[str, object]:
    """``sync_settings`` and ``credentials``; ``names`` without a loaded config get no variables (their runs
    fail with a configuration error, the code location still loads)."""
    variables = {name: OrgKeyVariables() for name in names or []}
    variables.update({org.name: key_variables(org) for org in orgs})
    return {
        "sync_settings": SyncSettings(mappings_dir=str(mappings_dir), data_dir=data_dir),
        "credentials": OrgCredentials(orgs=variables),
    }
