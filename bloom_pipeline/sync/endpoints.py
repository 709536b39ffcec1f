"""Where an org's three APIs live and which keys open them — resolved at run time, never at import.

Precedence for base URLs: ``BLOOMERANG_API_URL`` / ``WEGIVE_API_URL`` / ``HANDBID_API_URL`` (every
org), then the org YAML's ``base_url``. Keys come only from the environment variables the org YAML
names, trimmed of surrounding whitespace (a CRLF ``.env`` leaves a ``\r``); a key that still cannot be
an HTTP header value is a configuration error naming the variable, never the value. An org with
``sandbox_fallback: true`` (the demo) uses the sandbox's public keys when its variables are unset, so
the demo runs on a fresh machine with no credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bloom_pipeline import settings
from bloom_pipeline.errors import ConfigurationError
from bloom_pipeline.mapping.spec import OrgConfig

if TYPE_CHECKING:
    from bloom_pipeline.clients.bloomerang import BloomerangClient
    from bloom_pipeline.clients.handbid import HandbidClient
    from bloom_pipeline.clients.wegive import WeGiveClient

URL_ENV = settings.URL_ENV
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what an HTTP header value may carry unquoted



@dataclass(frozen=True)
class Endpoint:
    api: str
    base_url: str
    key: str = field(repr=False)
    key_env: str | None = None
    from_sandbox_fallback: bool = False


@dataclass(frozen=True)
class Endpoints:
    bloomerang: Endpoint
    wegive: Endpoint
    handbid: Endpoint
    handbid_org_id: int | None

    @property
    def secrets(self) -> list[str]:
        return [self.bloomerang.key, self.wegive.key, self.handbid.key]


def _key(key_env: str | None, env: Mapping[str, str]) -> str | None:
    """The key in ``key_env``, trimmed; refused (naming the variable only) when it cannot be a header."""
    value = settings.secret(key_env, env)
    if value is None:
        return None
    value = value.strip()
    if value and not _HEADER_SAFE.fullmatch(value):
        raise ConfigurationError(f"environment variable {key_env} holds a key with characters an HTTP header "
                                 "cannot carry (spaces, control characters or non-ASCII); fix the value")
    return value or None


def resolve_endpoints(
    org: OrgConfig, environ: Mapping[str, str] | None = None, urls: Mapping[str, str] | None = None,
    handbid_org_id: int | None = None,
) -> Endpoints:
    """The endpoints of ``org``; ``urls`` and ``handbid_org_id`` (e.g. a sandbox started in-process) win."""
    env = settings.environ(environ)
    configured = {"bloomerang": org.bloomerang, "wegive": org.wegive, "handbid": org.handbid}
    key_envs = {"bloomerang": org.bloomerang.api_key_env, "wegive": org.wegive.token_env,
                "handbid": org.handbid.token_env}
    resolved: dict[str, Endpoint] = {}
    problems: list[str] = []
    for api, setting in configured.items():
        url = (urls or {}).get(api) or settings.api_url_override(api, env) or setting.base_url
        key_env = key_envs[api]
        key = _key(key_env, env)
        fallback = False
        if not key and org.sandbox_fallback:
            key, fallback = settings.SANDBOX_KEYS[api], True
        if not url:
            problems.append(f"{api}: no base URL (set {URL_ENV[api]} or {api}.base_url in the org YAML)")
        if not key:
            where = f"environment variable {key_env}" if key_env else f"{api} key env var in the org YAML"
            problems.append(f"{api}: no credentials (set the {where})")
        resolved[api] = Endpoint(api, (url or "").rstrip("/"), key or "", key_env, fallback)
    if problems:
        raise ConfigurationError(f"org {org.name!r}: " + "; ".join(problems))
    org_id = handbid_org_id if handbid_org_id is not None else org.handbid.organization_id
    if org_id is None:
        raise ConfigurationError(f"org {org.name!r}: handbid.organization_id is not set in the org YAML")
    return Endpoints(resolved["bloomerang"], resolved["wegive"], resolved["handbid"], org_id)


@dataclass
class Clients:
    """The three API clients of one org, sharing its rate budget directory."""

    bloomerang: BloomerangClient
    wegive: WeGiveClient
    handbid: HandbidClient

    def close(self) -> None:
        for client in (self.bloomerang, self.wegive, self.handbid):
            client.close()


def build_clients(org: OrgConfig, endpoints: Endpoints, budget_dir: Path | None = None) -> Clients:
    from bloom_pipeline.clients.bloomerang import BloomerangClient
    from bloom_pipeline.clients.handbid import HandbidClient
    from bloom_pipeline.clients.wegive import WeGiveClient

    return Clients(
        bloomerang=BloomerangClient(
            endpoints.bloomerang.base_url,
            endpoints.bloomerang.key,
            rate_budget=org.bloomerang.requests_per_hour,
            rate_period=3600.0,
            budget_dir=budget_dir,
            key_env=endpoints.bloomerang.key_env,
            read_connections=org.bloomerang.read_connections,
        ),
        wegive=WeGiveClient(endpoints.wegive.base_url, endpoints.wegive.key, token_env=endpoints.wegive.key_env),
        handbid=HandbidClient(
            endpoints.handbid.base_url,
            endpoints.handbid.key,
            endpoints.handbid_org_id or 0,
            token_env=endpoints.handbid.key_env,
        ),
    )
