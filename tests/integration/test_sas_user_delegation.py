"""User-delegation SAS, the path Azure takes (no account keys), for real against Azurite 3.37
started with HTTPS and `--oauth basic`, with a bearer-token credential instead of a key."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import BlobServiceClient

from devhost.standins.azurite import API_VERSION, Azurite, start_azurite
from devhost.standins.keyvault.certs import TlsFiles, ensure_tls_files
from shared.adapters.sas import SasSigner

pytestmark = pytest.mark.integration


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class EntraLikeCredential:
    """A bearer token shaped like Entra ID's for storage. Azurite's `basic` OAuth checks the
    audience, issuer and lifetime but not the signature; it stands in for a managed identity."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "oid": "11111111-1111-1111-1111-111111111111",
            "tid": "00000000-0000-0000-0000-000000000000",
        }
        token = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl"
        return AccessToken(token, now + 3600)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls_files(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[Azurite]:
    server = start_azurite(
        Path(tmp_path_factory.mktemp("azurite-oauth")),
        cert=tls.server_cert,
        key=tls.server_key,
        oauth=True,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def service(oauth_azurite: Azurite, tls: TlsFiles) -> Iterator[BlobServiceClient]:
    client = BlobServiceClient(
        oauth_azurite.blob_endpoint,
        credential=EntraLikeCredential(),
        api_version=API_VERSION,
        connection_verify=str(tls.ca_cert),
    )
    with client:
        yield client


def fetch(url: str, tls: TlsFiles, *, method: str = "GET", data: bytes | None = None) -> int:
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    request = urllib.request.Request(url, data=data, method=method)
    if method == "PUT":
        request.add_header("x-ms-blob-type", "BlockBlob")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_user_delegation_sas_for_one_blob(service: BlobServiceClient, tls: TlsFiles) -> None:
    container = service.get_container_client("index")
    if not container.exists():
        container.create_container()
    container.upload_blob("files/a/a-1.0-py3-none-any.whl", b"wheel a", overwrite=True)
    container.upload_blob("files/b/b-1.0-py3-none-any.whl", b"wheel b", overwrite=True)

    signer = SasSigner(service)
    assert not signer.uses_account_key
    signed = signer.read_url("index", "files/a/a-1.0-py3-none-any.whl", timedelta(seconds=3))
    query = dict(parse_qsl(urlsplit(signed.url).query))
    assert query["skoid"] == "11111111-1111-1111-1111-111111111111"  # a delegation SAS
    assert query["spr"] == "https"  # HTTPS only when the endpoint is HTTPS
    assert query["sp"] == "r"
    assert "sig" in query
    assert "/" not in urlsplit(signed.url).query

    assert fetch(signed.url, tls) == 200
    other = signed.url.replace("files/a/a-1.0", "files/b/b-1.0")
    assert fetch(other, tls) == 403
    assert fetch(signed.url, tls, method="PUT", data=b"x") == 403
    deadline = time.monotonic() + 4  # the expiry is whole seconds: at most 3 s from now
    while fetch(signed.url, tls) == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fetch(signed.url, tls) == 403  # expired

    upload = signer.create_url("index", "uploads-new.whl", timedelta(minutes=5))
    assert fetch(upload.url, tls, method="PUT", data=b"new") == 201
    assert fetch(upload.url, tls, method="PUT", data=b"again") in (403, 409)
    assert fetch(upload.url, tls) == 403


def test_delegation_key_is_cached_and_renewed(service: BlobServiceClient) -> None:
    now = [datetime.now(UTC)]
    signer = SasSigner(service, clock=lambda: now[0])
    first = signer.delegation_key()
    signer.read_url("index", "x", timedelta(minutes=1))
    assert signer.delegation_key() is first  # one key for many signatures
    now[0] += timedelta(hours=11, minutes=30)  # inside the last hour of its 12-hour life
    renewed = signer.delegation_key()
    assert renewed is not first
    assert signer.delegation_key() is renewed
