"""A saved sandbox state, restored, serves exactly what the sandbox it was saved from serves (``sandbox/state.py``).

A small messy world is changed through the stores' own methods (creates, updates, a merge, a delete, an archive,
new gifts and payments), saved, and restored into a new ``Sandbox``; the same list and read requests through
the real Starlette apps (``TestClient``, in process: the fast tier) answer byte for byte the same on both; a
create after the restore gets the id the original would have given next, never one already used; a file of
another format, code, seed or kind is refused with a message naming what differs.
"""

from __future__ import annotations

import pickle
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

with warnings.catch_warnings():  # starlette's notice about its httpx-based client: not ours to act on
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bloom_pipeline.sandbox import state as saved_state
from bloom_pipeline.sandbox.bloomerang.app import create_app as bloomerang_app
from bloom_pipeline.sandbox.cli import sandbox_command
from bloom_pipeline.sandbox.faults import Knobs, RequestLog
from bloom_pipeline.sandbox.handbid.app import create_app as handbid_app
from bloom_pipeline.sandbox.server import APIS, Sandbox
from bloom_pipeline.sandbox.wegive.app import create_app as wegive_app
from bloom_pipeline.settings import SANDBOX_KEYS

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def _clients(sandbox: Sandbox) -> dict[str, TestClient]:
    apps = {"bloomerang": bloomerang_app, "wegive": wegive_app, "handbid": handbid_app}
    clients = {}
    for api in APIS:
        client = TestClient(apps[api](sandbox.stores[api], Knobs(rate_limit=None), RequestLog(), SANDBOX_KEYS[api]))
        if api == "bloomerang":
            client.headers["X-API-KEY"] = SANDBOX_KEYS[api]
        else:
            client.headers["Authorization"] = f"Bearer {SANDBOX_KEYS[api]}"
        clients[api] = client
    return clients


def _change(sandbox: Sandbox) -> dict[str, Any]:
    """What a loaded world has been through: writes of every kind on every store, at a fixed clock."""
    bloomerang, wegive, handbid = (sandbox.stores[api] for api in APIS)
    for store in (bloomerang, wegive, handbid):
        store.clock = lambda: NOW
    people = sorted(bloomerang.constituents)
    made = bloomerang.create_constituent({"Type": "Individual", "FirstName": "Ada", "LastName": "Saved",
                                          "CustomValues": [{"FieldId": 901, "Value": "w-saved"}]})
    bloomerang.update_constituent(people[0], {"JobTitle": "Treasurer"}, actor="Front Desk")
    fund = next(iter(bloomerang.funds))
    gift = bloomerang.create_transaction({"AccountId": made["Id"], "Date": "2026-11-19", "Amount": 25.0,
                                          "Method": "None",
                                          "Designations": [{"Type": "Donation", "Amount": 25.0, "FundId": fund}]})
    twins = [i for i in people[1:] if bloomerang.constituents[i]["Type"] == "Individual"][:2]
    bloomerang.merge_constituents(twins[0], twins[1])
    bloomerang.delete_constituent(people[-1])
    donors = sorted(wegive.donors)
    wegive.archive_donor(donors[0])
    wegive.update_donor(donors[1], {"first_name": "Renamed"})
    wegive.add_transaction(donors[2], 4200)
    receipt = next(iter(handbid.receipts))
    handbid.add_payment(receipt, 1500)
    contact = next(iter(handbid.contacts))
    handbid.edit_contact(contact, firstName="Edited")
    return {"constituent": made["Id"], "gift": gift["Id"], "survivor": twins[0], "loser": twins[1],
            "deleted": people[-1], "donor": donors[1], "archived": donors[0], "contact": contact}


def _requests(sandbox: Sandbox, facts: dict[str, Any]) -> dict[str, list[str]]:
    org = sandbox.handbid_org_id
    auction = next(iter(sandbox.stores["handbid"].auctions))
    return {
        "bloomerang": [
            "/v2/constituents?take=50", "/v2/constituents?take=7&skip=7&orderBy=LastModifiedDate",
            "/v2/constituents?lastModified=2026-11-20T11:00:00Z",  # strictly after: the writes at NOW
            "/v2/constituents?customFieldId=901&customFieldValue=w-saved",
            f"/v2/constituent/{facts['constituent']}", f"/v2/constituent/{facts['survivor']}",
            f"/v2/constituent/{facts['loser']}", f"/v2/constituent/{facts['deleted']}",
            "/v2/transactions?take=50", f"/v2/transaction/{facts['gift']}", "/v2/emails?take=50",
            "/v2/customFields/Constituent", "/v2/funds",
        ],
        "wegive": [
            "/api/dashboard/donors?page=1&count=50", "/api/dashboard/donors?page=2&count=10&view=both",
            f"/api/dashboard/donors/{facts['donor']}", f"/api/dashboard/donors/{facts['archived']}",
            "/api/dashboard/transactions?page=1&count=50", "/api/dashboard/funds", "/api/dashboard/pledges",
            "/api/dashboard/scheduled-donations",
        ],
        "handbid": [
            f"/v3/manager/organizations/{org}/contacts", f"/v3/manager/organizations/{org}/auctions",
            f"/v3/manager/contacts/{facts['contact']}", f"/v3/manager/auctions/{auction}/receipts",
            f"/v3/manager/auctions/{auction}/payments", f"/v3/manager/auctions/{auction}/bidders",
        ],
    }


def _answers(sandbox: Sandbox, requests: dict[str, list[str]]) -> dict[str, tuple[int, bytes]]:
    clients = _clients(sandbox)
    return {f"{api} {path}": (answer.status_code, answer.content)
            for api, paths in requests.items() for path in paths
            for answer in [clients[api].get(path)]}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    original = Sandbox(donors=40, seed=11, messy=True)
    for api in APIS:
        original.build_store(api)
    facts = _change(original)
    path = tmp_path_factory.mktemp("state") / "world.sandbox"
    header = original.save_state(path)
    return {"original": original, "facts": facts, "path": path, "header": header}


def _restored(saved: dict[str, Any]) -> Sandbox:
    restored = Sandbox(state=saved["path"], donors=40, seed=11)
    for api in APIS:
        restored.build_store(api)
    for store in restored.stores.values():
        store.clock = lambda: NOW  # clocks are not state: the test sets them again, as it did on the original
    return restored


def test_a_restored_sandbox_answers_the_same(saved: dict[str, Any]) -> None:
    original, restored = saved["original"], _restored(saved)
    assert (restored.donors, restored.seed, restored.messy) == (40, 11, True)
    assert restored.messy_manifest == original.messy_manifest and restored.messy_manifest
    requests = _requests(original, saved["facts"])
    before, after = _answers(original, requests), _answers(restored, requests)
    assert [key for key in before if before[key] != after[key]] == []
    statuses = {key: status for key, (status, _body) in before.items()}
    assert statuses[f"bloomerang /v2/constituent/{saved['facts']['deleted']}"] == 404
    assert statuses[f"wegive /api/dashboard/donors/{saved['facts']['archived']}"] == 404  # archived: trashed
    assert sum(status == 200 for status in statuses.values()) == len(statuses) - 3  # loser, deleted, archived
    assert restored.handbid_org_id == original.handbid_org_id
    assert restored.world is not None and restored.world.handbid_org_id == original.handbid_org_id


def test_a_create_after_the_restore_continues_the_id_sequences(saved: dict[str, Any]) -> None:
    restored, fresh = _restored(saved), _restored(saved)  # fresh: what the original would do next
    stores = restored.stores
    used_people = set(stores["bloomerang"].constituents) | {saved["facts"]["deleted"], saved["facts"]["loser"]}
    used_gifts = set(stores["bloomerang"].transactions)
    used_donors, used_payments = set(stores["wegive"].transactions), set(stores["handbid"].payments)

    def creates(sandbox: Sandbox) -> tuple[int, int, int, int]:
        bloomerang, wegive, handbid = (sandbox.stores[api] for api in APIS)
        person = bloomerang.create_constituent({"Type": "Individual", "FirstName": "New", "LastName": "After"})
        gift = bloomerang.create_transaction({
            "AccountId": person["Id"], "Date": "2026-11-20", "Amount": 5.0, "Method": "None",
            "Designations": [{"Type": "Donation", "Amount": 5.0, "FundId": next(iter(bloomerang.funds))}]})
        donation = wegive.add_transaction(next(iter(wegive.donors)), 100)
        payment = handbid.add_payment(next(iter(handbid.receipts)), 100)
        return person["Id"], gift["Id"], donation["id"], payment["id"]

    person, gift, donation, payment = creates(restored)
    assert person not in used_people and person > max(used_people)
    assert gift not in used_gifts and donation not in used_donors and payment not in used_payments
    assert creates(fresh) == (person, gift, donation, payment)
    clients = _clients(restored)
    stores["bloomerang"].clock = lambda: LATER
    answer = clients["bloomerang"].post("/v2/constituent", json={"Type": "Individual", "FirstName": "Over",
                                                                 "LastName": "Http"})
    assert answer.status_code == 200 and answer.json()["Id"] > person


def _rewrite_header(source: Path, target: Path, **changes: Any) -> Path:
    with open(source, "rb") as handle:
        handle.read(len(saved_state.MAGIC))
        header = pickle.load(handle)  # noqa: S301 - the test's own file
        rest = handle.read()
    with open(target, "wb") as out:
        out.write(saved_state.MAGIC)
        pickle.dump({**header, **changes}, out)
        out.write(rest)
    return target


def test_a_file_of_another_version_code_seed_or_kind_is_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    source = saved["path"]
    cases = {
        "state format 999": _rewrite_header(source, tmp_path / "format.sandbox", format=999),
        "saved by other sandbox code": _rewrite_header(source, tmp_path / "code.sandbox", code="0" * 16),
        "not a saved sandbox state": tmp_path / "text.sandbox",
    }
    cases["not a saved sandbox state"].write_text("hello")
    for expected, path in cases.items():
        with pytest.raises(saved_state.SandboxStateError, match=expected) as caught:
            Sandbox(state=path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(saved_state.SandboxStateError, match="saved for seed 11, not 12"):
        Sandbox(state=source, seed=12)
    with pytest.raises(saved_state.SandboxStateError, match="saved for donors 40, not 2000"):
        Sandbox(state=source, donors=2000)
    assert saved["header"]["code"] == saved_state.code_fingerprint()


def test_the_sandbox_command_refuses_a_state_before_serving(saved: dict[str, Any], tmp_path: Path) -> None:
    wrong = CliRunner().invoke(sandbox_command, ["--state", str(saved["path"]), "--seed", "12",
                                                 "--bloomerang-port", "0", "--wegive-port", "0",
                                                 "--handbid-port", "0"])
    assert wrong.exit_code == 1 and "cannot start the sandbox" in wrong.output and "not 12" in wrong.output
    missing = CliRunner().invoke(sandbox_command, ["--state", str(tmp_path / "none.sandbox")])
    assert missing.exit_code == 1 and "cannot be read" in missing.output
