"""The Entra ID stand-in, driven through the real azure-identity credentials (client secret, and
App Service managed identity via ``DefaultAzureCredential``), raw HTTPS where the shapes matter,
PyJWT against its published keys, and wheelvault's own verifier for the key-rotation proof.

Tests that rotate keys, restart, or count key fetches start their own stand-in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential
from cryptography import x509

from devhost.standins.entra import EntraStandin, LocalPrincipal
from devhost.standins.entra.addresses import EntraAddresses
from devhost.standins.entra.api import IDENTITY_HEADER
from shared.adapters.oidc import OidcClient
from shared.core.entra import ROLE_PUBLISH, ROLE_READ, EntraConfig
from shared.core.tokens import Scope
from shared.services.entra import EntraVerifier
from tests.fixtures.entra import EntraStandinProcess, start_entra_standin
from tests.fixtures.standin_process import REPO_ROOT

pytestmark = pytest.mark.integration

TIMEOUT = 30
CONCURRENT_REQUESTS = 16


@pytest.fixture
def own_standin(tmp_path: Path) -> Iterator[EntraStandinProcess]:
    """A stand-in of this test's own: its keys and its fetch count are nobody else's."""
    standin = start_entra_standin(tmp_path / "data", tmp_path / "logs")
    try:
        yield standin
    finally:
        standin.stop()


def credential(
    standin: EntraStandinProcess, principal: LocalPrincipal, secret: str | None = None
) -> ClientSecretCredential:
    return ClientSecretCredential(
        standin.tenant_id,
        principal.client_id,
        principal.client_secret if secret is None else secret,
        authority=standin.url,
        disable_instance_discovery=True,
        connection_verify=str(standin.ca_path),
    )


def get(standin: EntraAddresses, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(standin.url + path, verify=str(standin.ca_path), timeout=TIMEOUT, **kwargs)


def token_request(standin: EntraStandinProcess, form: dict[str, str]) -> requests.Response:
    url = f"{standin.url}/{standin.tenant_id}/oauth2/v2.0/token"
    return requests.post(url, data=form, verify=str(standin.ca_path), timeout=TIMEOUT)


def fresh_token(standin: EntraStandinProcess, name: str, scope: str | None = None) -> str:
    """A new token straight from the token endpoint (MSAL would hand back a cached one)."""
    principal = standin.principals[name]
    form = {
        "grant_type": "client_credentials",
        "client_id": principal.client_id,
        "client_secret": principal.client_secret,
        "scope": scope or standin.scope,
    }
    response = token_request(standin, form)
    response.raise_for_status()
    return str(response.json()["access_token"])


def published_kids(standin: EntraAddresses, path: str = "discovery/v2.0/keys") -> set[str]:
    keys = get(standin, f"/{standin.tenant_id}/{path}").json()["keys"]
    return {key["kid"] for key in keys}


def verified_claims(
    standin: EntraStandinProcess, token: str, audience: str, issued_by: str | None = None
) -> dict[str, Any]:
    """The token's claims, checked with PyJWT against the key the stand-in publishes for it;
    ``issued_by``: the URL of the stand-in that issued it, if another (a restart's new port)."""
    jwks = get(standin, f"/{standin.tenant_id}/discovery/v2.0/keys").json()
    kid = jwt.get_unverified_header(token)["kid"]
    (entry,) = [key for key in jwks["keys"] if key["kid"] == kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(entry, algorithm="RS256").key,
        algorithms=["RS256"],
        audience=audience,
        issuer=f"{issued_by or standin.url}/{standin.tenant_id}/v2.0",
        options={"require": ["exp", "iat", "nbf", "iss", "aud"]},
    )
    return claims


# -- client credentials --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "roles"),
    [
        ("developer", [ROLE_READ, ROLE_PUBLISH]),
        ("reader", [ROLE_READ]),
        ("publisher", [ROLE_PUBLISH]),
        ("nobody", None),
    ],
)
def test_client_secret_credential_gets_a_token_with_the_principals_roles(
    entra_standin: EntraStandinProcess, name: str, roles: list[str] | None
) -> None:
    principal = entra_standin.principals[name]
    token = credential(entra_standin, principal).get_token(entra_standin.scope).token

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["typ"] == "JWT"
    assert header["kid"] in published_kids(entra_standin)
    claims = verified_claims(entra_standin, token, entra_standin.client_id)
    assert claims["ver"] == "2.0"
    assert claims["tid"] == entra_standin.tenant_id
    assert claims["azp"] == principal.client_id
    assert claims["oid"] == claims["sub"] == principal.object_id
    assert claims.get("roles") == roles
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    assert len(claims["uti"]) == 22


def test_a_wrong_secret_is_refused_with_the_aadsts_code(
    entra_standin: EntraStandinProcess,
) -> None:
    reader = entra_standin.principals["reader"]
    wrong = "not-the-secret-" + reader.client_secret[:4]
    with pytest.raises(ClientAuthenticationError) as refused:
        credential(entra_standin, reader, wrong).get_token(entra_standin.scope)

    message = str(refused.value)
    assert "AADSTS7000215: Invalid client secret provided" in message
    assert wrong not in message
    assert reader.client_secret not in message


def test_token_endpoint_errors_have_entras_shape(entra_standin: EntraStandinProcess) -> None:
    reader = entra_standin.principals["reader"]
    base = {"grant_type": "client_credentials", "client_id": reader.client_id}
    cases = [
        (
            {**base, "client_secret": "x", "scope": entra_standin.scope},
            401,
            "invalid_client",
            7000215,
        ),
        ({**base, "scope": entra_standin.scope}, 401, "invalid_client", 7000216),
        (
            {
                **base,
                "client_id": "no-such-client",
                "client_secret": "x",
                "scope": entra_standin.scope,
            },
            400,
            "unauthorized_client",
            700016,
        ),
        (
            {**base, "client_secret": reader.client_secret, "scope": entra_standin.app_id_uri},
            400,
            "invalid_scope",
            1002012,
        ),
        (
            {**base, "client_secret": reader.client_secret, "scope": "api://nowhere/.default"},
            400,
            "invalid_resource",
            500011,
        ),
        (
            {**base, "grant_type": "password", "client_secret": "x", "scope": entra_standin.scope},
            400,
            "unsupported_grant_type",
            70003,
        ),
        ({"client_id": reader.client_id}, 400, "invalid_request", 900144),
    ]
    for form, status, error, code in cases:
        response = token_request(entra_standin, form)
        body = response.json()
        assert (response.status_code, body["error"], body["error_codes"]) == (status, error, [code])
        assert body["error_description"].startswith(f"AADSTS{code}: ")
        assert f"Trace ID: {body['trace_id']}" in body["error_description"]
        assert f"Correlation ID: {body['correlation_id']}" in body["error_description"]
        assert body["error_uri"] == f"{entra_standin.url}/error?code={code}"
        assert body["timestamp"].endswith("Z")


def test_a_token_for_another_app_has_its_audience_and_no_roles(
    entra_standin: EntraStandinProcess,
) -> None:
    developer = entra_standin.principals["developer"]
    other = entra_standin.directory.other_app
    token = credential(entra_standin, developer).get_token("api://other-app/.default").token

    claims = verified_claims(entra_standin, token, other.client_id)
    assert claims["aud"] == other.client_id != entra_standin.client_id
    assert "roles" not in claims
    assert claims["azp"] == developer.client_id


def test_an_unknown_tenant_is_refused_as_entra_does(entra_standin: EntraStandinProcess) -> None:
    response = get(
        entra_standin, "/00000000-1111-2222-3333-444444444444/v2.0/.well-known/openid-configuration"
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_codes"]) == ("invalid_tenant", [90002])


# -- managed identity ----------------------------------------------------------------------------

_DEFAULT_CREDENTIAL = """
import sys
from azure.identity import DefaultAzureCredential
print(DefaultAzureCredential().get_token(sys.argv[1]).token)
"""


def test_default_azure_credential_uses_the_managed_identity_endpoint(
    entra_standin: EntraStandinProcess, tmp_path: Path
) -> None:
    reader = entra_standin.principals["reader"]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AZURE_", "IDENTITY_", "MSI_", "REQUESTS_CA", "SSL_CERT"))
    }
    env.update(
        HOME=str(tmp_path),  # no az login, no token cache of the developer's
        IDENTITY_ENDPOINT=entra_standin.identity_endpoint,
        IDENTITY_HEADER=entra_standin.identity_header,
        AZURE_CLIENT_ID=reader.client_id,
        REQUESTS_CA_BUNDLE=str(entra_standin.ca_path),
    )
    result = subprocess.run(
        [sys.executable, "-c", _DEFAULT_CREDENTIAL, entra_standin.scope],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    claims = verified_claims(entra_standin, result.stdout.strip(), entra_standin.client_id)
    assert claims["roles"] == [ROLE_READ]
    assert claims["azp"] == reader.client_id
    assert claims["oid"] == reader.object_id


def test_the_managed_identity_endpoint_speaks_app_services_protocol(
    entra_standin: EntraStandinProcess,
) -> None:
    params = {"api-version": "2019-08-01", "resource": entra_standin.app_id_uri}
    headers = {IDENTITY_HEADER: entra_standin.identity_header}

    answer = get(entra_standin, "/msi/token", params=params, headers=headers)
    body = answer.json()
    assert answer.status_code == 200
    developer = entra_standin.principals["developer"]  # no client_id: the default identity
    assert body["client_id"] == developer.client_id
    assert body["resource"] == entra_standin.app_id_uri
    assert body["token_type"] == "Bearer"
    claims = verified_claims(entra_standin, body["access_token"], entra_standin.client_id)
    assert body["expires_on"] == str(claims["exp"])
    assert claims["roles"] == [ROLE_READ, ROLE_PUBLISH]

    wrong_header = get(entra_standin, "/msi/token", params=params, headers={IDENTITY_HEADER: "x"})
    assert wrong_header.status_code == 401
    assert "access_token" not in wrong_header.json()
    unknown = get(
        entra_standin, "/msi/token", params={**params, "client_id": "nope"}, headers=headers
    )
    assert unknown.status_code == 400
    assert set(unknown.json()) == {"statusCode", "message"}


# -- discovery -----------------------------------------------------------------------------------


def test_the_openid_configurations_name_the_tenants_endpoints(
    entra_standin: EntraStandinProcess,
) -> None:
    base = f"{entra_standin.url}/{entra_standin.tenant_id}"
    v2 = get(
        entra_standin, f"/{entra_standin.tenant_id}/v2.0/.well-known/openid-configuration"
    ).json()
    v1 = get(entra_standin, f"/{entra_standin.tenant_id}/.well-known/openid-configuration").json()

    assert v2["issuer"] == f"{base}/v2.0"
    assert v2["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert v2["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert v2["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert v2["id_token_signing_alg_values_supported"] == ["RS256"]
    assert v1["issuer"] == f"{base}/"
    assert v1["jwks_uri"] == f"{base}/discovery/keys"
    assert v1["id_token_signing_alg_values_supported"] == ["RS256"]

    (key,) = get(entra_standin, f"/{entra_standin.tenant_id}/discovery/keys").json()["keys"][-1:]
    assert set(key) == {"kty", "use", "kid", "x5t", "n", "e"}
    assert (key["kty"], key["use"], key["e"]) == ("RSA", "sig", "AQAB")
    assert published_kids(entra_standin, "discovery/keys") == published_kids(entra_standin)


def test_settings_point_wheelvault_at_the_standin(entra_standin: EntraStandinProcess) -> None:
    assert entra_standin.settings() == {
        "WHEELVAULT_ENTRA_TENANT_ID": entra_standin.tenant_id,
        "WHEELVAULT_ENTRA_AUDIENCE": f"api://wheelvault-local,{entra_standin.client_id}",
        "WHEELVAULT_ENTRA_AUTHORITY": entra_standin.url,
        "WHEELVAULT_ENTRA_CA_BUNDLE": str(entra_standin.ca_path),
    }
    assert entra_standin.scope == "api://wheelvault-local/.default"
    assert entra_standin.identity_endpoint == f"{entra_standin.url}/msi/token"


# -- state, rotation -----------------------------------------------------------------------------


def test_a_restart_keeps_the_tenant_principals_and_keys(tmp_path: Path) -> None:
    first = start_entra_standin(tmp_path / "data", tmp_path / "logs1")
    try:
        token = fresh_token(first, "publisher")
        kids = published_kids(first)
    finally:
        assert first.stop() == 0
    second = start_entra_standin(tmp_path / "data", tmp_path / "logs2")
    try:
        assert second.directory == first.directory
        assert published_kids(second) == kids
        # Signed before the restart, still verified by the keys published after it.
        claims = verified_claims(second, token, second.client_id, issued_by=first.url)
        assert claims["roles"] == [ROLE_PUBLISH]
        assert "entra-standin ready" in second.output()
    finally:
        second.stop()


def test_rotation_signs_with_the_new_key_and_retires_old_ones_on_request(
    own_standin: EntraStandinProcess,
) -> None:
    before = fresh_token(own_standin, "reader")
    (old_kid,) = published_kids(own_standin)

    new_kid = own_standin.rotate()
    after = fresh_token(own_standin, "reader")
    assert jwt.get_unverified_header(after)["kid"] == new_kid != old_kid
    assert published_kids(own_standin) == {old_kid, new_kid}
    assert published_kids(own_standin, "discovery/keys") == {old_kid, new_kid}
    verified_claims(own_standin, before, own_standin.client_id)  # the old key still verifies

    newest = own_standin.rotate(retire_previous=True)
    assert published_kids(own_standin) == {newest}
    assert jwt.get_unverified_header(fresh_token(own_standin, "reader"))["kid"] == newest


def test_the_admin_endpoints_need_the_identity_header(own_standin: EntraStandinProcess) -> None:
    rotate = requests.post(
        own_standin.url + "/admin/rotate", json={}, verify=str(own_standin.ca_path), timeout=TIMEOUT
    )
    assert rotate.status_code == 401
    assert len(published_kids(own_standin)) == 1
    assert get(own_standin, "/admin/key-fetches").status_code == 401
    assert own_standin.key_fetches == 1  # the published_kids above


# -- the proof: key rotation at the verifier ------------------------------------------


class SteppedClock:
    """The verifier's monotonic clock, moved on by the test past its refresh limit."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_rotation_is_picked_up_by_one_key_fetch_shared_by_concurrent_requests(
    own_standin: EntraStandinProcess,
) -> None:
    clock = SteppedClock()
    config = EntraConfig(
        own_standin.tenant_id,
        (own_standin.app_id_uri, own_standin.client_id),
        authority=own_standin.url,
        ca_bundle=str(own_standin.ca_path),
    )
    verifier = EntraVerifier(config, OidcClient(config.ca_bundle), monotonic=clock)
    publisher = own_standin.principals["publisher"]

    principal = verifier.verify(fresh_token(own_standin, "publisher"))
    assert (principal.object_id, principal.scope) == (publisher.object_id, Scope.PUBLISH)
    fetches = own_standin.key_fetches

    own_standin.rotate()
    rotated = fresh_token(own_standin, "publisher")
    assert verifier.verify(rotated).object_id == publisher.object_id
    assert own_standin.key_fetches == fetches + 1
    verifier.verify(rotated)  # now held: no fetch
    assert own_standin.key_fetches == fetches + 1

    clock.advance(verifier.unknown_key_refresh_seconds + 1)
    own_standin.rotate()
    tokens = [fresh_token(own_standin, "reader") for _ in range(CONCURRENT_REQUESTS)]
    start = threading.Barrier(CONCURRENT_REQUESTS)

    def verify_together(token: str) -> Scope | None:
        start.wait(timeout=TIMEOUT)
        return verifier.verify(token).scope

    with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
        scopes = list(pool.map(verify_together, tokens))
    assert scopes == [Scope.READ] * CONCURRENT_REQUESTS
    assert own_standin.key_fetches == fetches + 2


def test_the_ready_line_and_state_file_describe_the_process(
    own_standin: EntraStandinProcess,
) -> None:
    state = json.loads((own_standin.data_dir / "entra.json").read_text())
    assert state["tenant_id"] == own_standin.tenant_id
    assert sorted(state["principals"]) == ["developer", "nobody", "publisher", "reader"]
    assert f"url={own_standin.url} ca={own_standin.ca_path}" in own_standin.output()
    for principal in own_standin.principals.values():
        assert principal.client_secret not in own_standin.output()


def test_the_v1_token_endpoint_names_the_app_by_resource(
    entra_standin: EntraStandinProcess,
) -> None:
    reader = entra_standin.principals["reader"]
    form = {
        "grant_type": "client_credentials",
        "client_id": reader.client_id,
        "client_secret": reader.client_secret,
        "resource": entra_standin.app_id_uri,
    }
    url = f"{entra_standin.url}/{entra_standin.tenant_id}/oauth2/token"
    body = requests.post(url, data=form, verify=str(entra_standin.ca_path), timeout=TIMEOUT).json()

    claims = verified_claims(entra_standin, body["access_token"], entra_standin.client_id)
    assert body["resource"] == entra_standin.app_id_uri
    assert (body["expires_in"], body["expires_on"]) == ("3600", str(claims["exp"]))
    assert claims["roles"] == [ROLE_READ]


def test_a_second_standin_on_the_same_data_dir_refuses_to_start(
    own_standin: EntraStandinProcess,
) -> None:
    command = [sys.executable, "-m", "devhost.standins.entra", "--port", "0", "--data-dir"]
    second = subprocess.run(
        [*command, str(own_standin.data_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert second.returncode == 2
    assert "in use by another Entra ID stand-in" in second.stderr
    assert "Traceback" not in second.stderr


def test_the_python_api_serves_in_process(tmp_path: Path) -> None:
    with EntraStandin(tmp_path) as standin:
        (first,) = published_kids(standin)
        kid = standin.rotate()
        assert published_kids(standin) == {first, kid}
        assert standin.key_fetches == 2
        assert standin.rotate(retire_previous=True) not in (first, kid)
        assert len(published_kids(standin)) == 1
        ca = x509.load_pem_x509_certificate(standin.ca_path.read_bytes())
        assert "Entra ID stand-in" in ca.subject.rfc4514_string()
        assert standin.settings()["WHEELVAULT_ENTRA_AUTHORITY"] == standin.url


def test_a_refusal_carries_the_clients_request_id_only_when_it_is_a_guid(
    entra_standin: EntraStandinProcess,
) -> None:
    url = f"{entra_standin.url}/{entra_standin.tenant_id}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials"}

    def correlation(request_id: str) -> str:
        headers = {"client-request-id": request_id}
        response = requests.post(
            url, data=form, headers=headers, verify=str(entra_standin.ca_path), timeout=TIMEOUT
        )
        return str(response.json()["correlation_id"])

    guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert correlation(guid) == guid
    odd = correlation("<script>")
    assert odd != "<script>"
    assert len(odd) == len(guid)
