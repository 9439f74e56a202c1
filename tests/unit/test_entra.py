"""Entra ID access tokens: the pure rules (`shared.core.entra`), the verifier
(`shared.services.entra`) with real RSA keys and real PyJWT, the tenant's documents served
in-process (`tests.support.entra_tokens.FakeTenant`, counting every fetch), and the front door's
Entra path (`FrontDoor.authorize`). Through `function_app.app` against the Entra ID stand-in:
tests/integration/test_entra_frontdoor.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives import serialization

from shared.adapters.blobstore import BlobStore
from shared.adapters.oidc import EntraUnavailable
from shared.adapters.sas import SasSigner
from shared.core.entra import (
    ROLE_PUBLISH,
    ROLE_READ,
    EntraConfig,
    EntraRefusal,
    looks_like_jwt,
    parse_audiences,
    parse_authority,
    parse_tenant_id,
    principal_from_claims,
    scope_for_roles,
)
from shared.core.tokens import Scope, new_token
from shared.services.entra import EntraVerifier
from shared.services.frontdoor import FrontDoor, HttpProblem
from shared.services.verifier import TokenVerifier
from tests.support.entra_tokens import (
    APP_ID_URI,
    CALLER_APP_ID,
    CLIENT_ID,
    OTHER_APP_ID_URI,
    FakeTenant,
    SigningKey,
)

# --- the pure part --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "scope"),
    [
        ([ROLE_READ], Scope.READ),
        ([ROLE_PUBLISH], Scope.PUBLISH),
        ([ROLE_READ, ROLE_PUBLISH], Scope.PUBLISH),
        ([], None),
        (["Packages.Admin", "packages.read", "Reader"], None),
        (["Other.Role", ROLE_READ], Scope.READ),
    ],
)
def test_roles_map_to_scopes(roles: list[str], scope: Scope | None) -> None:
    assert scope_for_roles(roles) is scope


def test_principal_keeps_only_wheelvault_roles_and_names_the_caller() -> None:
    principal = principal_from_claims(
        {"oid": "o-1", "azp": "app-1", "roles": ["Other", ROLE_READ, 7], "upn": "a@example.com"}
    )
    assert principal.roles == frozenset({ROLE_READ})
    assert principal.scope is Scope.READ
    assert (principal.object_id, principal.app_id, principal.display) == (
        "o-1",
        "app-1",
        "a@example.com",
    )
    app_only = principal_from_claims({"oid": "o-2", "appid": "app-2", "roles": "not-a-list"})
    assert (app_only.display, app_only.scope, app_only.roles) == ("app-2", None, frozenset())
    with pytest.raises(EntraRefusal) as caught:
        principal_from_claims({"azp": "app-1"})
    assert caught.value.code == "malformed"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln", True),
        ("eyJhbGciOiJub25lIn0.eyJhIjoxfQ.", True),  # alg none: no signature, still Entra's path
        (new_token("reader"), False),
        ("eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ", False),
        ("eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln.more", False),
        ("abc.def.ghi", False),
        ("eyJ a.b.c", False),
        ("eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln\n", False),
        ("", False),
    ],
)
def test_looks_like_jwt(value: str, expected: bool) -> None:
    assert looks_like_jwt(value) is expected


def test_config_urls_and_setting_parsers() -> None:
    tenant = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    config = EntraConfig(parse_tenant_id(tenant), ("x",), parse_authority("https://l.example/"))
    assert config.tenant_id == tenant.lower()
    assert config.v2_metadata_url == (
        f"https://l.example/{tenant.lower()}/v2.0/.well-known/openid-configuration"
    )
    assert config.v1_metadata_url == (
        f"https://l.example/{tenant.lower()}/.well-known/openid-configuration"
    )
    assert parse_audiences(f" {APP_ID_URI},{CLIENT_ID}  {APP_ID_URI}\n") == (APP_ID_URI, CLIENT_ID)
    for bad in ("contoso.onmicrosoft.com", "../x", ""):
        with pytest.raises(ValueError, match="GUID"):
            parse_tenant_id(bad)
    for bad in ("http://l.example", "https://u:p@l.example", "https://l.example/?q=1", "l.example"):
        with pytest.raises(ValueError, match="https"):
            parse_authority(bad)
    with pytest.raises(ValueError, match="Application ID URI"):
        parse_audiences(" , ")


# --- the verifier: fixtures -----------------------------------------------------------------


class Monotonic:
    """The verifier's clock for its cache and rate limit; moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def tenant_keys() -> list[SigningKey]:
    return [SigningKey.new(), SigningKey.new()]  # RSA key generation is slow: once per module


@pytest.fixture
def tenant(tenant_keys: list[SigningKey]) -> FakeTenant:
    return FakeTenant(keys=[tenant_keys[0]])


@pytest.fixture
def clock() -> Monotonic:
    return Monotonic()


@pytest.fixture
def verifier(tenant: FakeTenant, clock: Monotonic) -> EntraVerifier:
    return EntraVerifier(tenant.config, tenant, monotonic=clock)


def refusal(verifier: EntraVerifier, token: str) -> EntraRefusal:
    with pytest.raises(EntraRefusal) as caught:
        verifier.verify(token)
    message = str(caught.value)
    for part in token.split("."):
        if len(part) > 8:
            assert part not in message, "a refusal must never quote the token"
    return caught.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    head = b64(json.dumps(header).encode())
    return f"{head}.{b64(json.dumps(claims).encode())}"


# --- accepted -------------------------------------------------------------------------------


def test_a_v2_token_with_the_client_id_as_audience_is_accepted(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    oid = "0b1c2d3e-0000-4000-8000-000000000001"
    principal = verifier.verify(tenant.token(oid=oid, roles=[ROLE_READ]))
    assert principal.object_id == oid
    assert principal.app_id == CALLER_APP_ID
    assert principal.scope is Scope.READ
    # One read of each document to start; a second token costs none.
    assert sorted(tenant.fetches.values()) == [1, 1, 1]
    verifier.verify(tenant.token())
    assert sum(tenant.fetches.values()) == 3


def test_a_v1_token_with_the_uri_audience_and_the_sts_issuer_is_accepted(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    token = tenant.token(v1=True, roles=[ROLE_PUBLISH], upn="dev@example.com")
    assert tenant.claims(v1=True)["iss"].startswith("https://sts.")
    principal = verifier.verify(token)
    assert principal.scope is Scope.PUBLISH
    assert principal.display == "dev@example.com"


def test_a_token_without_roles_is_accepted_with_no_scope(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    principal = verifier.verify(tenant.token(roles=None))
    assert principal.scope is None
    assert principal.roles == frozenset()


# --- refused: time --------------------------------------------------------------------------


def test_expired_is_refused(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    now = int(time.time())
    token = tenant.token(iat=now - 7200, nbf=now - 7200, exp=now - 120)
    found = refusal(verifier, token)
    assert (found.code, found.message) == ("expired", "it has expired")


def test_not_yet_valid_is_refused(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    now = int(time.time())
    assert refusal(verifier, tenant.token(nbf=now + 120)).code == "not-yet-valid"
    assert refusal(verifier, tenant.token(iat=now + 120, nbf=now)).code == "not-yet-valid"


def test_the_leeway_is_honoured_on_both_sides(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    now = int(time.time())
    assert verifier.leeway_seconds == 60
    verifier.verify(tenant.token(exp=now - 30, nbf=now - 3600, iat=now - 3600))  # 30 s late
    verifier.verify(tenant.token(nbf=now + 30, iat=now + 30))  # 30 s early
    assert refusal(verifier, tenant.token(exp=now - 90)).code == "expired"
    assert refusal(verifier, tenant.token(nbf=now + 90, iat=now)).code == "not-yet-valid"
    strict = EntraVerifier(tenant.config, tenant, leeway_seconds=0)
    assert refusal(strict, tenant.token(exp=now - 30)).code == "expired"


def test_a_token_without_exp_is_refused(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    found = refusal(verifier, tenant.token(exp=None))
    assert (found.code, found.message) == ("malformed", "it has no exp claim")


# --- refused: who it is for and from --------------------------------------------------------


@pytest.mark.parametrize("aud", [OTHER_APP_ID_URI, "00000000-0000-0000-0000-000000000000", []])
def test_a_token_for_another_app_is_refused(
    tenant: FakeTenant, verifier: EntraVerifier, aud: object
) -> None:
    found = refusal(verifier, tenant.token(aud=aud))
    assert found.code in {"wrong-audience", "malformed"}
    if aud:
        assert found.code == "wrong-audience"
        assert "another application" in found.message


def test_a_token_without_aud_is_refused(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    assert refusal(verifier, tenant.token(aud=None)).message == "it has no aud claim"


def test_another_tenants_issuer_is_refused(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    other = "00000000-1111-2222-3333-444444444444"
    found = refusal(verifier, tenant.token(iss=f"{tenant.authority}/{other}/v2.0", tid=other))
    assert found.code == "wrong-issuer"
    assert refusal(verifier, tenant.token(iss=None)).code == "malformed"


def test_a_tid_of_another_tenant_is_refused(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    found = refusal(verifier, tenant.token(tid="00000000-1111-2222-3333-444444444444"))
    assert found.code == "wrong-tenant"
    assert refusal(verifier, tenant.token(tid=None)).code == "wrong-tenant"


# --- refused: signature and algorithm -------------------------------------------------------


def test_a_token_signed_with_another_key_under_a_known_kid_is_refused(
    tenant: FakeTenant, verifier: EntraVerifier, tenant_keys: list[SigningKey]
) -> None:
    impostor = SigningKey(tenant.keys[0].kid, tenant_keys[1].private)
    found = refusal(verifier, tenant.token(key=impostor))
    assert (found.code, found.message) == (
        "bad-signature",
        "its signature does not match the tenant's key",
    )
    genuine = tenant.token()
    head, body, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["roles"] = [ROLE_PUBLISH, "Extra"]
    tampered = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    assert refusal(verifier, tampered).code == "bad-signature"


def test_alg_none_is_refused_before_any_key_is_read(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    for alg in ("none", "None", "NONE"):
        token = unsigned({"alg": alg, "typ": "JWT", "kid": tenant.keys[0].kid}, tenant.claims())
        found = refusal(verifier, token + ".")
        assert found.code == "bad-algorithm"
        assert "only RS256" in found.message
    assert not tenant.fetches


def test_hs256_signed_with_the_public_key_is_refused(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    """The classic confusion: the public key's PEM used as an HMAC secret."""
    pem = (
        tenant.keys[0]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    verifier.verify(tenant.token())  # keys held: the refusal does not depend on a fetch
    signing_input = unsigned({"alg": "HS256", "kid": tenant.keys[0].kid}, tenant.claims())
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    found = refusal(verifier, f"{signing_input}.{b64(mac)}")
    assert found.code == "bad-algorithm"
    assert "alg HS256" in found.message


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "EdDSA", "x" * 40, 7, None])
def test_only_rs256_is_accepted(tenant: FakeTenant, verifier: EntraVerifier, alg: object) -> None:
    token = unsigned({"alg": alg, "kid": tenant.keys[0].kid}, tenant.claims()) + ".c2ln"
    found = refusal(verifier, token)
    assert found.code == "bad-algorithm"
    assert "x" * 20 not in found.message


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJSUzI1NiJ9",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "eyJub3QganNvbg.e30.c2ln",  # the header is not JSON
        "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",  # no kid
        "eyJhbGciOiJSUzI1NiIsImtpZCI6MX0.e30.c2ln",  # kid not a string
        "eyJ" + "A" * 20000 + ".e30.c2ln",
        "not a token at all",
    ],
)
def test_malformed_strings_are_refused(verifier: EntraVerifier, token: str) -> None:
    assert refusal(verifier, token).code == "malformed"


def test_a_payload_that_is_not_json_is_malformed(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    """Signed by the tenant's key, so it is the payload that is at fault."""
    key = tenant.keys[0]
    token = jwt.api_jws.encode(b"not json", key.private, "RS256", headers={"kid": key.kid})
    assert refusal(verifier, token).code == "malformed"
    head = b64(json.dumps({"alg": "RS256", "kid": key.kid}).encode())
    assert refusal(verifier, f"{head}.{b64(b'not json')}.c2ln").code == "bad-signature"


# --- keys: unknown kid, rotation, rate limit ------------------------------------------------


def test_an_unknown_kid_reloads_once_then_is_refused(
    tenant: FakeTenant, verifier: EntraVerifier, tenant_keys: list[SigningKey], clock: Monotonic
) -> None:
    verifier.verify(tenant.token())
    assert tenant.key_fetches == 1
    stranger = SigningKey("not-published", tenant_keys[1].private)
    found = refusal(verifier, tenant.token(key=stranger))
    assert found.code == "unknown-key"
    assert tenant.key_fetches == 2  # exactly one reload
    another = SigningKey("also-not-published", tenant_keys[1].private)
    assert refusal(verifier, tenant.token(key=another)).code == "unknown-key"
    assert refusal(verifier, tenant.token(key=stranger)).code == "unknown-key"
    assert tenant.key_fetches == 2  # within the refresh interval: no fetch
    clock.now += verifier.unknown_key_refresh_seconds
    assert refusal(verifier, tenant.token(key=another)).code == "unknown-key"
    assert tenant.key_fetches == 3


def test_an_unknown_kid_on_a_cold_verifier_costs_one_key_fetch(
    tenant: FakeTenant, verifier: EntraVerifier, tenant_keys: list[SigningKey]
) -> None:
    stranger = SigningKey("not-published", tenant_keys[1].private)
    assert refusal(verifier, tenant.token(key=stranger)).code == "unknown-key"
    assert tenant.key_fetches == 1  # the first load answers it; no second fetch is waited on


def test_a_rotated_key_is_accepted_after_exactly_one_reload(
    tenant: FakeTenant, verifier: EntraVerifier, tenant_keys: list[SigningKey]
) -> None:
    old = tenant.token()
    verifier.verify(old)
    tenant.keys = [tenant_keys[1], *tenant.keys]  # the tenant publishes a new key, signs with it
    assert verifier.verify(tenant.token()).scope is Scope.PUBLISH
    assert tenant.key_fetches == 2
    verifier.verify(old)  # the old key is still published and still held
    verifier.verify(tenant.token())
    assert tenant.key_fetches == 2


def test_a_retired_key_stops_working_when_the_keys_reload(
    tenant: FakeTenant, verifier: EntraVerifier, tenant_keys: list[SigningKey], clock: Monotonic
) -> None:
    old = tenant.token()
    verifier.verify(old)
    tenant.keys = [tenant_keys[1]]
    clock.now += verifier.keys_max_age_seconds
    verifier.verify(tenant.token())
    assert refusal(verifier, old).code == "unknown-key"


def test_concurrent_requests_with_a_new_kid_share_one_fetch(
    tenant: FakeTenant, verifier: EntraVerifier, tenant_keys: list[SigningKey]
) -> None:
    verifier.verify(tenant.token())
    tenant.keys = [tenant_keys[1], *tenant.keys]
    tenant.before_answer = lambda url: time.sleep(0.2)  # a slow tenant: requests pile up
    threads = 16
    tokens = [tenant.token(oid=f"oid-{i}") for i in range(threads)]
    start = threading.Barrier(threads)
    found: dict[int, str] = {}

    def present(i: int) -> None:
        start.wait()
        try:
            found[i] = verifier.verify(tokens[i]).object_id
        except (EntraRefusal, EntraUnavailable) as error:
            found[i] = repr(error)

    workers = [threading.Thread(target=present, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert found == {i: f"oid-{i}" for i in range(threads)}
    assert tenant.key_fetches == 2  # the first load, and one reload for all sixteen


def test_concurrent_cold_requests_share_the_first_load(tenant: FakeTenant) -> None:
    verifier = EntraVerifier(tenant.config, tenant)
    tenant.before_answer = lambda url: time.sleep(0.05)
    start = threading.Barrier(8)
    results: list[object] = []

    def present() -> None:
        start.wait()
        results.append(verifier.verify(tenant.token()).scope)

    run_threads(present, 8)
    assert results == [Scope.PUBLISH] * 8
    assert sorted(tenant.fetches.values()) == [1, 1, 1]


def run_threads(target: Callable[[], None], count: int) -> None:
    workers = [threading.Thread(target=target) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)


def test_a_request_waits_on_a_hung_fetch_no_longer_than_its_deadline(tenant: FakeTenant) -> None:
    verifier = EntraVerifier(tenant.config, tenant, fetch_seconds=0.3)
    release = threading.Event()
    tenant.before_answer = lambda url: release.wait(5)
    leader = threading.Thread(target=lambda: _ignore(verifier.verify, tenant.token()))
    leader.start()
    while not tenant.fetches:
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(EntraUnavailable, match="timed out waiting"):
        verifier.verify(tenant.token())
    assert time.monotonic() - started < 1.0
    release.set()
    leader.join(5)


def _ignore(call: Callable[[str], object], token: str) -> None:
    try:
        call(token)
    except (EntraRefusal, EntraUnavailable):
        pass


# --- keys: age, failures, what counts as a key ----------------------------------------------


def test_keys_reload_after_their_age_and_survive_a_failed_reload(
    tenant: FakeTenant, verifier: EntraVerifier, clock: Monotonic
) -> None:
    verifier.verify(tenant.token())
    clock.now += verifier.keys_max_age_seconds - 1
    verifier.verify(tenant.token())
    assert tenant.fetches[tenant.config.v2_metadata_url] == 1
    clock.now += 1
    tenant.fail.add(tenant.config.v2_metadata_url)
    verifier.verify(tenant.token())  # the reload failed: the keys held still serve
    assert tenant.fetches[tenant.config.v2_metadata_url] == 2
    verifier.verify(tenant.token())
    assert tenant.fetches[tenant.config.v2_metadata_url] == 2  # retried later, not per request
    tenant.fail.clear()
    clock.now += 60
    verifier.verify(tenant.token())
    assert tenant.fetches[tenant.config.v2_metadata_url] == 3


def test_unavailable_keys_are_unavailable_not_a_refusal(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    tenant.fail.add(tenant.jwks_uri)
    with pytest.raises(EntraUnavailable) as caught:
        verifier.verify(tenant.token())
    assert caught.value.reason == f"HTTP 503 from {tenant.jwks_uri}"
    tenant.fail.clear()
    assert verifier.verify(tenant.token()).scope is Scope.PUBLISH


def test_without_the_v1_document_only_v2_tokens_are_accepted(
    tenant: FakeTenant, verifier: EntraVerifier, clock: Monotonic
) -> None:
    tenant.fail.add(tenant.config.v1_metadata_url)
    verifier.verify(tenant.token())
    assert refusal(verifier, tenant.token(v1=True)).code == "wrong-issuer"
    tenant.fail.clear()
    clock.now += verifier.unknown_key_refresh_seconds  # retried sooner than the keys' age
    verifier.verify(tenant.token(v1=True))


@pytest.mark.parametrize(
    "change",
    [
        {"kty": "EC"},
        {"use": "enc"},
        {"alg": "RS512"},
        {"kid": 5},
        {"n": "not base64 !"},
    ],
)
def test_only_rsa_signing_keys_count(
    tenant: FakeTenant, verifier: EntraVerifier, change: dict[str, Any]
) -> None:
    good = tenant.keys[0].jwk()
    bad = {**good, **change}
    tenant_documents = tenant.documents
    tenant.documents = lambda: {  # type: ignore[method-assign]
        **tenant_documents(),
        tenant.jwks_uri: {"keys": [bad]},
    }
    with pytest.raises(EntraUnavailable, match="no RSA signing keys"):
        verifier.verify(tenant.token())


def test_a_short_rsa_key_does_not_count(tenant: FakeTenant) -> None:
    short = SigningKey.new(bits=1024)
    tenant.keys = [short, *tenant.keys]
    verifier = EntraVerifier(tenant.config, tenant)
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # PyJWT signs, but warns
        token = tenant.token(key=short)
    assert refusal(verifier, token).code == "unknown-key"
    assert verifier.verify(tenant.token(key=tenant.keys[1])).scope is Scope.PUBLISH


# --- tokens accepted before -----------------------------------------------------------------


def test_a_remembered_token_is_refused_once_it_expires(tenant: FakeTenant) -> None:
    verifier = EntraVerifier(tenant.config, tenant, leeway_seconds=0)
    expires = int(time.time()) + 1
    token = tenant.token(exp=expires)
    assert verifier.verify(token).scope is Scope.PUBLISH
    assert verifier.verify(token).scope is Scope.PUBLISH  # remembered
    while time.time() < expires + 0.05:
        time.sleep(0.05)
    assert refusal(verifier, token).code == "expired"


def test_a_remembered_token_is_rechecked_when_the_keys_are_due(
    tenant: FakeTenant, verifier: EntraVerifier, clock: Monotonic
) -> None:
    token = tenant.token()
    verifier.verify(token)
    tenant.fail.add(tenant.config.v2_metadata_url)
    clock.now += verifier.keys_max_age_seconds
    verifier.verify(token)  # checked in full: the reload is tried (and fails; keys kept)
    assert tenant.fetches[tenant.config.v2_metadata_url] == 2


# --- the front door's Entra path (FrontDoor.authorize; storage is never touched) ------------


def front_door(entra: EntraVerifier | None) -> FrontDoor:
    service = BlobServiceClient("https://unused.blob.core.windows.net")

    def no_vault() -> TokenVerifier:
        raise AssertionError("an Entra ID token must not reach the wheelvault-token verifier")

    return FrontDoor(
        BlobStore(service),
        SasSigner(service),
        no_vault,
        sas_lifetime=timedelta(minutes=10),
        page_cache_seconds=60,
        entra=lambda: entra,
    )


def problem(door: FrontDoor, authorization: str, scope: Scope) -> HttpProblem:
    with pytest.raises(HttpProblem) as caught:
        door.authorize(authorization, scope)
    return caught.value


def as_basic(token: str, user: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def test_the_front_door_takes_an_entra_token_as_basic_password_or_bearer(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    door = front_door(verifier)
    token = tenant.token(oid="oid-1", roles=[ROLE_PUBLISH])
    for header in (as_basic(token), as_basic(token, "__token__"), f"Bearer {token}"):
        assert door.authorize(header, Scope.PUBLISH) == "entra:oid-1"
        assert door.authorize(header, Scope.READ) == "entra:oid-1"


def test_the_front_door_refuses_saying_why_never_quoting_the_token(
    tenant: FakeTenant, verifier: EntraVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    door = front_door(verifier)
    token = tenant.token(aud=OTHER_APP_ID_URI)
    refused = problem(door, f"Bearer {token}", Scope.READ)
    assert (refused.status, refused.code) == (401, "unauthorized")
    assert refused.message == (
        "the Entra ID token was refused: it was issued for another application (aud)"
    )
    assert refused.headers == {"WWW-Authenticate": 'Basic realm="wheelvault"'}
    assert "wrong-audience" in caplog.text
    for part in token.split("."):
        assert part not in caplog.text
        assert part not in refused.message


def test_the_front_door_maps_roles_to_403s(tenant: FakeTenant, verifier: EntraVerifier) -> None:
    door = front_door(verifier)
    reader = f"Bearer {tenant.token(oid='r', roles=[ROLE_READ])}"
    assert door.authorize(reader, Scope.READ) == "entra:r"
    read_only = problem(door, reader, Scope.PUBLISH)
    assert (read_only.status, read_only.code, read_only.headers) == (403, "forbidden", {})
    assert read_only.message.endswith("publishing needs the Packages.Publish role")
    for roles in (None, ["Packages.Admin"]):
        nobody = problem(door, f"Bearer {tenant.token(roles=roles)}", Scope.READ)
        assert (nobody.status, nobody.code) == (403, "forbidden")
        assert "Packages.Read" in nobody.message
        assert "Packages.Publish" in nobody.message


def test_the_front_door_with_entra_off_says_so(tenant: FakeTenant) -> None:
    off = problem(front_door(None), as_basic(tenant.token()), Scope.READ)
    assert (off.status, off.code) == (401, "unauthorized")
    assert off.message.startswith("Entra ID sign-in is not enabled on this index")


def test_the_front_door_lets_unreadable_keys_through_as_unavailable(
    tenant: FakeTenant, verifier: EntraVerifier
) -> None:
    tenant.fail.add(tenant.jwks_uri)
    with pytest.raises(EntraUnavailable):  # functions/frontdoor.py makes it a 503
        front_door(verifier).authorize(f"Bearer {tenant.token()}", Scope.READ)
