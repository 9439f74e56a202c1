"""Bounded waits (issue 9 §4.1): a stopped vault or a hung storage endpoint costs a request
seconds, not azure-core's 300 s per try times its retries, and /health answers within 5 s.

"Stopped" is SIGSTOP on a stand-in process of this test's own (the session's stays untouched):
the kernel still completes TCP handshakes into the listen backlog, so nothing is refused and
only timeouts end the wait, which is what a hung vault looks like to a client. A hung storage
endpoint is a listening socket that never accepts, for the same reason.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest
from azure.core.exceptions import AzureError

from devhost.standins.azurite import Azurite
from devhost.standins.keyvault.credential import LocalVaultCredential
from shared.adapters.blobstore import (
    STORAGE_DEADLINE,
    BlobStore,
    StorageRetry,
    blob_service_from_settings,
)
from shared.adapters.secretstore import (
    SecretStore,
    SecretVersion,
    VaultRetry,
    VaultUnavailable,
    secret_client_from_settings,
)
from shared.core import layout
from shared.core.tokens import Policy, Scope, new_token
from shared.services.tokens import Tokens
from shared.services.verifier import TokenVerifier
from shared.services.wiring import HEALTH_SECONDS, get_services, reset_services
from shared.settings import Settings, load_settings
from tests.fixtures.vault import VaultStandinProcess, start_vault_standin
from tests.support.functions import handler

pytestmark = pytest.mark.integration

PUBLIC = "https://pkgs.example.com"


@pytest.fixture
def own_vault(tmp_path: Path) -> Iterator[VaultStandinProcess]:
    """A stand-in only this test uses, so it may be stopped; resumed and ended whatever happens."""
    standin = start_vault_standin(tmp_path / "data", tmp_path / "logs")
    try:
        yield standin
    finally:
        os.kill(standin.pid, signal.SIGCONT)
        standin.stop()


@pytest.fixture
def app_on(
    storage_env: BlobStore, own_vault: VaultStandinProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[VaultStandinProcess]:
    monkeypatch.setenv("WHEELVAULT_VAULT_URL", own_vault.url)
    monkeypatch.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
    monkeypatch.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(own_vault.ca_path))
    monkeypatch.setenv("WHEELVAULT_PUBLIC_URL", PUBLIC)
    reset_services()
    yield own_vault
    reset_services()


@pytest.fixture
def hung_endpoint() -> Iterator[int]:
    """A port that completes TCP handshakes (the backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def call(name: str, url: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest(
        method="GET",
        url=f"http://127.0.0.1:7071{url}",
        headers=headers or {},
        params={},
        route_params={},
        body=b"",
    )
    response: func.HttpResponse = handler(name)(request)
    return response


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}


def new_reader(vault: VaultStandinProcess) -> str:
    with vault.secret_client() as client:
        return Tokens(SecretStore(client), public_url=PUBLIC).create(
            f"reader-{time.monotonic_ns()}", Policy(Scope.READ)
        )


def test_a_stopped_vault_gives_a_json_503_within_10_seconds(
    app_on: VaultStandinProcess,
) -> None:
    token = new_reader(app_on)
    assert call("simple_root", "/simple/", basic(token)).status_code == 200  # warm: pooled
    fresh = new_reader(app_on)  # a value this process has not seen: it needs the vault
    os.kill(app_on.pid, signal.SIGSTOP)
    started = time.monotonic()
    response = call("simple_root", "/simple/", basic(fresh))
    elapsed = time.monotonic() - started
    print(f"stopped vault: 503 after {elapsed:.2f} s")
    assert response.status_code == 503
    assert elapsed < 10, f"took {elapsed:.1f} s"
    body = json.loads(response.get_body())
    assert body["error"]["code"] == "unavailable"
    assert "vault" in body["error"]["message"]
    assert fresh not in response.get_body().decode()
    assert response.headers["Retry-After"] == "5"
    # A token whose versions are cached keeps working while the vault is stopped.
    assert call("simple_root", "/simple/", basic(token)).status_code == 200


def test_a_stopped_vault_before_any_connection_fails_within_the_budget(
    app_on: VaultStandinProcess,
) -> None:
    """No pooled connection: the TLS handshake itself hangs (the connect timeout ends it).
    A small budget here keeps the test fast; the real bound is pinned above."""
    client = secret_client_from_settings(
        load_settings(),
        local_credential=LocalVaultCredential(),
        retry_policy=VaultRetry(budget=1.0),
    )
    os.kill(app_on.pid, signal.SIGSTOP)
    started = time.monotonic()
    with client, pytest.raises(VaultUnavailable) as raised:
        SecretStore(client).versions("wvtoken-anything")
    assert time.monotonic() - started < 1.6
    assert raised.value.reason == "timed out"
    assert str(raised.value) == "timed out"  # no URL, no name


def test_health_answers_within_5_seconds_with_the_vault_stopped(
    app_on: VaultStandinProcess,
) -> None:
    assert json.loads(call("health", "/health").get_body())["status"] == "ok"
    os.kill(app_on.pid, signal.SIGSTOP)
    for _ in range(2):  # again while the first probe may still be running: no pile-up
        started = time.monotonic()
        response = call("health", "/health")
        elapsed = time.monotonic() - started
        print(f"stopped vault: /health after {elapsed:.2f} s")
        assert elapsed < 5, f"took {elapsed:.1f} s"
        assert response.status_code == 503
        body = json.loads(response.get_body())
        assert body["status"] == "unhealthy"
        assert body["storage"] == "ok"
        assert body["vault"].startswith("error: ")
        assert app_on.url.split("//")[1] not in response.get_body().decode()
    os.kill(app_on.pid, signal.SIGCONT)
    time.sleep(0.2)
    assert call("health", "/health").status_code == 200


def test_health_probes_concurrently_with_both_backends_hung(
    app_on: VaultStandinProcess, hung_endpoint: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    azurite_key = os.environ["WHEELVAULT_STORAGE"].split("AccountKey=")[1].split(";")[0]
    monkeypatch.setenv(
        "WHEELVAULT_STORAGE",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={azurite_key};BlobEndpoint=http://127.0.0.1:{hung_endpoint}/devstoreaccount1;",
    )
    reset_services()
    os.kill(app_on.pid, signal.SIGSTOP)
    started = time.monotonic()
    body = json.loads(call("health", "/health").get_body())
    elapsed = time.monotonic() - started
    assert elapsed < HEALTH_SECONDS + 0.5 < 5  # both at once, not one after the other
    assert body["storage"].startswith("error: ")
    assert body["vault"].startswith("error: ")
    assert azurite_key not in json.dumps(body)


def test_calls_grouped_by_within_share_one_budget(app_on: VaultStandinProcess) -> None:
    secrets = get_services().secrets
    secrets.versions("wvtoken-anything")  # a pooled connection, as in a warm worker
    os.kill(app_on.pid, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(VaultUnavailable), secrets.within(1.0):
        secrets.value("wvtoken-anything", "0" * 32)
    assert time.monotonic() - started < 1.6  # the shorter budget of the block wins


def hung_storage_settings(azurite: Azurite, port: int) -> Settings:
    key = azurite.connection_string.split("AccountKey=")[1].split(";")[0]
    return Settings.model_validate(
        {
            "WHEELVAULT_STORAGE": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={key};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        }
    )


def test_a_hung_storage_call_ends_within_its_deadline(hung_endpoint: int, azurite: Azurite) -> None:
    """Small budget for speed (test_cli pins the real bound through the command line)."""
    settings = hung_storage_settings(azurite, hung_endpoint)
    assert StorageRetry().budget == STORAGE_DEADLINE < 10
    quick = BlobStore(blob_service_from_settings(settings, retry_policy=StorageRetry(budget=1.0)))
    started = time.monotonic()
    with pytest.raises(AzureError):
        quick.info(layout.INDEX, "x")
    assert time.monotonic() - started < 2


class HungStore(SecretStore):
    """A vault whose every listing hangs for `seconds`, then fails as a timeout would."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def versions(self, name: str) -> list[SecretVersion]:
        self.calls += 1
        time.sleep(self.seconds)
        raise VaultUnavailable("timed out")


def test_requests_queued_behind_a_hung_read_fail_within_their_own_deadline() -> None:
    """Many requests for one uncached name while the vault hangs: they share the first read, and
    none waits past its deadline for it (before, each waited for all earlier ones in turn)."""
    store = HungStore(0.5)
    check = TokenVerifier(store, verify_seconds=0.8)
    token = new_token("queued")
    outcomes: list[tuple[float, str]] = []

    def one() -> None:
        started = time.monotonic()
        try:
            check.verify("Bearer " + token, Scope.READ)
            outcome = "verified"
        except VaultUnavailable:
            outcome = "unavailable"
        outcomes.append((time.monotonic() - started, outcome))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {outcome for _, outcome in outcomes} == {"unavailable"}
    assert max(seconds for seconds, _ in outcomes) < 1.2  # serially: 6 x 0.5 s
    assert store.calls <= 2


def test_storage_that_does_not_answer_is_a_json_503_naming_storage(
    app_on: VaultStandinProcess, hung_endpoint: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = new_reader(app_on)
    key = os.environ["WHEELVAULT_STORAGE"].split("AccountKey=")[1].split(";")[0]
    monkeypatch.setenv(
        "WHEELVAULT_STORAGE",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={key};BlobEndpoint=http://127.0.0.1:{hung_endpoint}/devstoreaccount1;",
    )
    reset_services()
    started = time.monotonic()
    response = call("simple_root", "/simple/", basic(token))
    elapsed = time.monotonic() - started
    print(f"hung storage: 503 after {elapsed:.2f} s")
    assert response.status_code == 503
    assert elapsed < 10
    body = json.loads(response.get_body())
    assert body["error"] == {
        "code": "unavailable",
        "message": "the index's storage did not answer; try again shortly",
    }
    assert key not in response.get_body().decode()
