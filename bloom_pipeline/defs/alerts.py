"""What happens when a run fails: the failure is recorded in the org's ``sync_runs`` and, when the org
YAML names a webhook (``alerts.webhook_url`` or ``alerts.webhook_url_env``), a small JSON alert is posted.

Plain Python (no ``dagster`` import) so the behaviour is testable on its own; ``sensors.py`` wraps
it in the run-failure sensor. :func:`alert_failure` never raises: an alert that crashed the sensor would
silence every later failure too. Nothing secret leaves this module: API keys named by the org YAML are
redacted from the error text, and the webhook URL itself is treated as a secret (Slack / Teams URLs embed
a token) — logs show its scheme and host only.
"""

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from bloom_pipeline import settings
from bloom_pipeline.clients.http import Redactor
from bloom_pipeline.mapping.spec import OrgConfig
from bloom_pipeline.staging import ledgers
from bloom_pipeline.staging.store import StagingStore

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 10.0
WEBHOOK_ATTEMPTS = 2  # one retry
ERROR_LIMIT = 2000  # characters of error text kept in sync_runs and the alert
_FINAL_FAILURES = ("failed", "halted")


@dataclass
class AlertOutcome:
    """What :func:`alert_failure` did, for the sensor's log line and for tests."""

    recorded: str | None = None  # "created" | "finished" | "kept" | None (could not record)
    posted: bool | None = None  # None: no webhook configured
    problems: list[str] = field(default_factory=list)


def webhook_url(org: OrgConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The org's alert webhook: ``alerts.webhook_url``, else the variable ``alerts.webhook_url_env`` names."""
    env = settings.environ(environ)
    if org.alerts.webhook_url:
        return org.alerts.webhook_url
    if org.alerts.webhook_url_env:
        return env.get(org.alerts.webhook_url_env) or None
    return None


def org_secrets(org: OrgConfig | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every credential the org's runs could have seen (its key variables, the sandbox keys, the webhook)."""
    from bloom_pipeline.settings import BLOOMERANG_SANDBOX_KEY, HANDBID_SANDBOX_TOKEN, WEGIVE_SANDBOX_TOKEN

    env = settings.environ(environ)
    secrets = [BLOOMERANG_SANDBOX_KEY, HANDBID_SANDBOX_TOKEN, WEGIVE_SANDBOX_TOKEN]
    if org is not None:
        names = (org.bloomerang.api_key_env, org.wegive.token_env, org.handbid.token_env, org.alerts.webhook_url_env)
        secrets += [env.get(name, "") for name in names if name]
        secrets.append(webhook_url(org, env) or "")
    return [s for s in secrets if s]


def describe_url(url: str) -> str:
    """``scheme://host`` of a URL — what may be logged of a webhook."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def clip(text: str, limit: int = ERROR_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_payload(org: str, job: str, run_id: str, error: str, dagster_url: str | None = None) -> dict[str, Any]:
    """The alert body. ``text`` is a one-line summary so chat webhooks (Slack, Teams) show something."""
    payload: dict[str, Any] = {"org": org, "job": job, "run_id": run_id, "error": error}
    if dagster_url:
        payload["dagster_url"] = dagster_url
    first_line = error.splitlines()[0] if error else "no error message"
    payload["text"] = f"bloom_pipeline: {job} failed for org {org} (run {run_id}): {first_line}"
    return payload


def record_failure(
    org: str, run_id: str, *, direction: str, message: str, data_dir: str | None = None, lock_timeout: float = 20.0
) -> str:
    """Mark the run failed in ``sync_runs`` (creating the row when the run died before writing one).

    Returns ``"created"``, ``"finished"`` (a running or succeeded row turned failed) or ``"kept"`` (the run
    already recorded its own failure or halt, whose message is more precise than Dagster's).
    """
    store = StagingStore.for_org(org, data_dir=data_dir, lock_timeout=lock_timeout)
    with store.write() as con:
        existing = ledgers.get_run(con, run_id)
        if existing is not None and existing["status"] in _FINAL_FAILURES:
            return "kept"
        if existing is None:
            ledgers.start_run(con, run_id, org=org, direction=direction)
        ledgers.finish_run(con, run_id, status="failed", message=message)
        return "created" if existing is None else "finished"


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = WEBHOOK_TIMEOUT,
    attempts: int = WEBHOOK_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """POST ``payload`` as JSON; retry once on a connection error, 429 or 5xx. True when answered 2xx."""
    where = describe_url(url)
    for attempt in range(1, attempts + 1):
        problem = ""
        try:
            response = requests.post(url, json=dict(payload), timeout=timeout)
        except requests.RequestException as exc:
            problem = type(exc).__name__  # never str(exc): it quotes the URL
        else:
            if response.status_code < 300:
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                logger.warning("alert webhook %s refused the alert: %s", where, problem)
                return False
        if attempt < attempts:
            logger.warning("alert webhook %s: %s; retrying", where, problem)
            sleep(1.0)
        else:
            logger.warning("alert webhook %s: %s; giving up after %d attempts", where, problem, attempts)
    return False


def alert_failure(
    org_name: str,
    org: OrgConfig | None,
    *,
    job: str,
    run_id: str,
    error: str,
    direction: str,
    dagster_url: str | None = None,
    data_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> AlertOutcome:
    """Record the failure, then post the alert when the org has a webhook. Never raises.

    ``org`` is the org's configuration (None when it cannot be loaded: the failure is still recorded).
    """
    outcome = AlertOutcome()
    redact = Redactor(org_secrets(org, environ))
    error = clip(redact(error or "run failed (no error message)"))
    try:
        outcome.recorded = record_failure(org_name, run_id, direction=direction, message=error, data_dir=data_dir)
    except Exception as exc:  # noqa: BLE001 - a failed record must not stop the alert
        outcome.problems.append(f"could not record the failure in sync_runs: {type(exc).__name__}: "
                                f"{clip(redact(str(exc)), 300)}")
    url = webhook_url(org, environ) if org is not None else None
    if url:
        try:
            outcome.posted = post_webhook(url, failure_payload(org_name, job, run_id, error, dagster_url))
        except Exception as exc:  # noqa: BLE001 - never raise out of the sensor
            outcome.posted = False
            outcome.problems.append(f"alert webhook failed: {type(exc).__name__}")
        if not outcome.posted:
            outcome.problems.append(f"alert webhook {describe_url(url)} did not accept the alert")
    return outcome
