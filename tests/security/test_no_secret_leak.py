"""A failing run of all three clients leaves no key or token in any log line, exception text,
traceback, repr or rate-budget file."""

from __future__ import annotations

import logging
import traceback

import pytest

from bloom_pipeline.clients.bloomerang import BloomerangClient
from bloom_pipeline.clients.handbid import HandbidClient
from bloom_pipeline.clients.wegive import WeGiveClient
from bloom_pipeline.errors import ApiError
from bloom_pipeline.sandbox.faults import Knobs
from bloom_pipeline.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # starts sandbox servers or a Dagster instance

WRONG_KEY = "wrong-but-still-secret-7c1d9a"


def secret_forms(sb) -> list[str]:
    forms = [*sb.keys.values(), WRONG_KEY]
    forms += [k.split("|", 1)[1] for k in sb.keys.values() if "|" in k]  # a Sanctum token's secret part
    return forms


def test_failing_run_leaks_no_secret(caplog, capfd, tmp_path):
    caplog.set_level(logging.DEBUG)  # everything: our logger, urllib3, the sandbox
    errors: list[BaseException] = []

    def attempt(call) -> None:
        try:
            call()
        except ApiError as exc:
            errors.append(exc)

    with Sandbox(donors=20, seed=3, knobs=Knobs(rate_limit=None)) as sb:
        bc = BloomerangClient(sb.urls["bloomerang"], sb.keys["bloomerang"], rate_budget=2, rate_period=3600,
                              budget_dir=tmp_path, max_attempts=2, max_wait=0, sleep=lambda s: None,
                              key_env="DEMO_BLOOMERANG_API_KEY")
        wg = WeGiveClient(sb.urls["wegive"], sb.keys["wegive"], max_attempts=2, sleep=lambda s: None)
        hb = HandbidClient(sb.urls["handbid"], sb.keys["handbid"], sb.handbid_org_id, max_attempts=2,
                           sleep=lambda s: None)
        sb.knobs["bloomerang"].script.extend(["503", "drop"])
        attempt(lambda: bc.create_constituent({"Type": "Individual", "FirstName": "A", "LastName": "B"}))
        attempt(lambda: bc.current_user())  # budget of 2 is now spent → RateLimitedError
        sb.knobs["wegive"].script.extend(["500", "502"])
        attempt(lambda: list(wg.iter_donors()))  # retries exhausted
        attempt(lambda: wg.get_donor(10**9))  # 404
        sb.knobs["handbid"].script.extend(["drop", "drop"])
        attempt(lambda: hb.update_contact(1, {"firstName": "X"}))  # PUT dropped twice
        attempt(lambda: list(HandbidClient(sb.urls["handbid"], WRONG_KEY, sb.handbid_org_id).iter_auctions()))
        attempt(lambda: WeGiveClient(sb.urls["wegive"], WRONG_KEY, token_env="DEMO_WEGIVE_TOKEN").get_donor(1))
        reprs = [repr(c) for c in (bc, wg, hb)]
        reprs += [repr(bc.http), repr(bc.http.rate_budget), repr(bc.http._transport)]
        forms = secret_forms(sb)

    assert len(errors) == 7, [type(e).__name__ for e in errors]
    assert {type(e).__name__ for e in errors} >= {"OutcomeUnknownError", "RateLimitedError", "ApiUnavailableError",
                                                  "AuthError", "ApiError"}
    out, err = capfd.readouterr()
    texts = [caplog.text, out, err, *reprs]
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(vars(exc))]
    texts += [f.read_bytes().decode("latin-1") for f in tmp_path.iterdir()]
    assert any("retry" in record.getMessage() for record in caplog.records)  # the run did log
    for form in forms:
        for text in texts:
            assert form not in text


@pytest.mark.parametrize("make", [
    lambda: BloomerangClient("http://127.0.0.1:9/v2", "", rate_budget=None, key_env="DEMO_BLOOMERANG_API_KEY"),
    lambda: WeGiveClient("http://127.0.0.1:9/api", "", token_env="DEMO_WEGIVE_TOKEN"),
    lambda: HandbidClient("http://127.0.0.1:9", "", 1, token_env="DEMO_HANDBID_TOKEN"),
])
def test_an_empty_credential_is_refused_naming_the_env_var(make):
    with pytest.raises(ValueError, match=r"\$DEMO_"):
        make()
