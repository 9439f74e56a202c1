"""Entra ID access tokens at the HTTP front door, through `function_app.app` with real
HttpRequest objects: tokens from the Entra ID stand-in's token endpoint (its keys read over
HTTPS by the real `OidcClient`), against Azurite and the Key Vault stand-in."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import azure.functions as func
import jwt
import pytest

from shared.adapters.blobstore import BlobStore
from shared.core.tokens import Policy, Scope
from shared.services.wiring import Services, get_services, reset_services
from tests.fixtures.entra import EntraStandinProcess
from tests.fixtures.vault import VaultStandinProcess
from tests.support.entra_tokens import SigningKey
from tests.support.functions import handler

pytestmark = pytest.mark.integration

REALM = 'Basic realm="wheelvault"'
UPLOAD = json.dumps({"filename": "demo_pkg-1.0-py3-none-any.whl"}).encode()


def issue(entra: EntraStandinProcess, principal: str, scope: str | None = None) -> str:
    """An access token from the stand-in's token endpoint (client credentials, as
    `ClientSecretCredential` asks for one)."""
    return entra.client_credentials_token(principal, scope)


def basic(token: str, user: str = "anyone") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(name: str, url: str, headers: dict[str, str], *, body: bytes = b"") -> func.HttpResponse:
    method = "POST" if body else "GET"
    request = func.HttpRequest(
        method=method, url=f"http://127.0.0.1:7071{url}", headers=headers, params={}, body=body
    )
    response: func.HttpResponse = handler(name)(request)
    return response


def root(headers: dict[str, str]) -> func.HttpResponse:
    return call("simple_root", "/simple/", headers)


def upload_sas(headers: dict[str, str]) -> func.HttpResponse:
    return call("sas_upload", "/sas/upload", headers, body=UPLOAD)


def error(response: func.HttpResponse) -> tuple[str, str]:
    problem = json.loads(response.get_body())["error"]
    return problem["code"], problem["message"]


@dataclass
class Index:
    services: Services
    reader_token: str
    """A wheelvault read token."""


def _index(monkeypatch: pytest.MonkeyPatch, vault: VaultStandinProcess) -> Index:
    monkeypatch.setenv("WHEELVAULT_VAULT_URL", vault.url)
    monkeypatch.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
    monkeypatch.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(vault.ca_path))
    reset_services()
    services = get_services()
    token = services.tokens.create(f"reader-{uuid.uuid4().hex[:8]}", Policy(Scope.READ))
    return Index(services, token)


@pytest.fixture
def entra_on(
    storage_env: BlobStore,
    vault_standin: VaultStandinProcess,
    entra_standin: EntraStandinProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Index]:
    for name, value in entra_standin.settings().items():
        monkeypatch.setenv(name, value)
    yield _index(monkeypatch, vault_standin)
    reset_services()


@pytest.fixture
def entra_off(
    storage_env: BlobStore, vault_standin: VaultStandinProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Index]:
    yield _index(monkeypatch, vault_standin)
    reset_services()


@pytest.fixture(autouse=True)
def every_log_record(caplog: pytest.LogCaptureFixture) -> None:
    """Debug and up, from every logger: no token may appear in any of them."""
    caplog.set_level(logging.DEBUG)


def assert_never_shown(
    token: str, response: func.HttpResponse, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the token nor any 12 characters of its claims or signature in the body or logs."""
    pieces = [
        segment[i : i + 12]
        for segment in token.split(".")[1:]
        for i in range(0, max(1, len(segment) - 11), 6)
    ]
    for text in (response.get_body().decode(), caplog.text):
        assert token not in text
        assert [piece for piece in pieces if piece and piece in text] == []


# -- accepted --------------------------------------------------------------------------------


@pytest.mark.usefixtures("entra_on")
def test_a_read_role_reads_with_basic_any_username_or_bearer(
    entra_standin: EntraStandinProcess,
) -> None:
    token = issue(entra_standin, "reader")
    for headers in (basic(token), basic(token, "__token__"), basic(token, ""), bearer(token)):
        response = root(headers)
        assert response.status_code == 200, response.get_body()


@pytest.mark.usefixtures("entra_on")
@pytest.mark.parametrize("principal", ["publisher", "developer"])
def test_a_publish_role_gets_an_upload_sas(
    entra_standin: EntraStandinProcess, principal: str
) -> None:
    token = issue(entra_standin, principal)
    response = upload_sas(bearer(token))
    assert response.status_code == 200, response.get_body()
    assert json.loads(response.get_body())["url"].startswith("http")
    assert root(basic(token)).status_code == 200  # publish implies read


def test_the_principal_is_named_by_its_object_id(
    entra_on: Index, entra_standin: EntraStandinProcess
) -> None:
    who = entra_on.services.front_door.authorize(
        bearer(issue(entra_standin, "reader"))["Authorization"], Scope.READ
    )
    assert who == f"entra:{entra_standin.principals['reader'].object_id}"


def test_wheelvault_tokens_still_work_with_entra_on(entra_on: Index) -> None:
    assert root(basic(entra_on.reader_token)).status_code == 200
    response = upload_sas(basic(entra_on.reader_token))
    assert (response.status_code, error(response)[0]) == (403, "forbidden")
    assert root(basic("wvt_made-up_x")).status_code == 401


def test_wheelvault_tokens_work_with_entra_off(entra_off: Index) -> None:
    assert entra_off.services.entra is None
    assert root(basic(entra_off.reader_token)).status_code == 200


# -- refused ---------------------------------------------------------------------------------


def test_a_read_role_cannot_publish(
    entra_on: Index, entra_standin: EntraStandinProcess, caplog: pytest.LogCaptureFixture
) -> None:
    token = issue(entra_standin, "reader")
    response = upload_sas(basic(token))
    assert response.status_code == 403
    assert error(response) == (
        "forbidden",
        "this identity may only read: publishing needs the Packages.Publish role",
    )
    assert_never_shown(token, response, caplog)


@pytest.mark.usefixtures("entra_on")
def test_no_role_is_forbidden_naming_the_roles(
    entra_standin: EntraStandinProcess, caplog: pytest.LogCaptureFixture
) -> None:
    token = issue(entra_standin, "nobody")
    for response in (root(bearer(token)), upload_sas(bearer(token))):
        assert response.status_code == 403
        code, message = error(response)
        assert code == "forbidden"
        assert "Packages.Read" in message
        assert "Packages.Publish" in message
        assert_never_shown(token, response, caplog)


@pytest.mark.usefixtures("entra_on")
def test_a_token_for_another_app_is_401_saying_why(
    entra_standin: EntraStandinProcess, caplog: pytest.LogCaptureFixture
) -> None:
    token = issue(entra_standin, "developer", scope="api://other-app/.default")
    response = root(basic(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert error(response) == (
        "unauthorized",
        "the Entra ID token was refused: it was issued for another application (aud)",
    )
    assert "wrong-audience" in caplog.text
    assert_never_shown(token, response, caplog)


@pytest.mark.usefixtures("entra_on")
def test_forged_tokens_are_401_saying_why(
    entra_standin: EntraStandinProcess, caplog: pytest.LogCaptureFixture
) -> None:
    genuine = issue(entra_standin, "developer")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    stranger = SigningKey.new()
    cases = {
        "it is signed with a key the tenant does not publish": jwt.encode(
            claims, stranger.private, "RS256", headers={"kid": stranger.kid}
        ),
        "its signature does not match the tenant's key": jwt.encode(
            claims, stranger.private, "RS256", headers={"kid": kid}
        ),
        "it is signed with alg none; only RS256 is accepted": jwt.encode(
            claims, None, "none", headers={"kid": kid}
        ),
    }  # expired, not yet valid, ... need the tenant's private key: tests/unit/test_entra.py
    for reason, token in cases.items():
        response = upload_sas(bearer(token))
        assert response.status_code == 401, reason
        assert error(response) == ("unauthorized", f"the Entra ID token was refused: {reason}")
        assert_never_shown(token, response, caplog)


def test_entra_off_says_so(
    entra_off: Index, entra_standin: EntraStandinProcess, caplog: pytest.LogCaptureFixture
) -> None:
    token = issue(entra_standin, "developer")
    response = root(bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == REALM
    code, message = error(response)
    assert code == "unauthorized"
    assert message.startswith("Entra ID sign-in is not enabled on this index")
    assert_never_shown(token, response, caplog)


def test_a_hung_authority_is_503_within_ten_seconds(
    storage_env: BlobStore,
    vault_standin: VaultStandinProcess,
    entra_standin: EntraStandinProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listener that accepts connections and never answers: the wait for the keys ends within
    its bounds (here the 3 s connect timeout, as the TLS handshake never completes; never past
    the 8 s deadline), and the client hears a 503."""
    with socket.create_server(("127.0.0.1", 0)) as hung:
        for name, value in entra_standin.settings().items():
            monkeypatch.setenv(name, value)
        port = hung.getsockname()[1]
        monkeypatch.setenv("WHEELVAULT_ENTRA_AUTHORITY", f"https://127.0.0.1:{port}")
        _index(monkeypatch, vault_standin)
        started = time.monotonic()
        response = root(bearer(issue(entra_standin, "reader")))
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert waited < 10
    reset_services()


def test_unreadable_keys_are_503_with_retry_after(
    storage_env: BlobStore,
    vault_standin: VaultStandinProcess,
    entra_standin: EntraStandinProcess,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in entra_standin.settings().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WHEELVAULT_ENTRA_AUTHORITY", "https://127.0.0.1:9")  # nothing listens
    _index(monkeypatch, vault_standin)
    token = issue(entra_standin, "developer")
    response = root(basic(token))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    code, message = error(response)
    assert code == "unavailable"
    assert "signing keys could not be read" in message
    assert "Entra ID keys unavailable" in caplog.text
    assert_never_shown(token, response, caplog)
    reset_services()
