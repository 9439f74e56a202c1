"""The Key Vault stand-in, driven through the real ``SecretClient`` (and raw HTTPS where the SDK
hides what must be checked: the challenge, list bodies, error bodies, routes).

Most tests share the session's stand-in process and use unique secret names; tests about
start-up, restart and the first handshake start their own process.
"""

from __future__ import annotations

import datetime
import http.client
import json
import re
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline import PipelineResponse
from azure.core.polling import LROPoller
from azure.keyvault.secrets import SecretClient

from devhost.standins.keyvault.credential import LOCAL_TOKEN
from tests.fixtures.vault import (
    REPO_ROOT,
    VaultStandinProcess,
    running_vault_standin,
    start_vault_standin,
)

pytestmark = pytest.mark.integration

API = "api-version=7.6"
CHALLENGE = re.compile(
    r'^Bearer authorization="https://login\.microsoftonline\.com/[0-9a-f-]+", '
    r'resource="https://vault\.azure\.net"$'
)
UTC = datetime.UTC
POLL_TIMEOUT_SECONDS = 20
RAW_TOKEN = "raw-test-token"  # any non-empty bearer token is accepted


@pytest.fixture
def client(vault_standin: VaultStandinProcess) -> Iterator[SecretClient]:
    with vault_standin.secret_client() as secret_client:
        yield secret_client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def raw_request(
    vault: VaultStandinProcess,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    token: str | None = RAW_TOKEN,
) -> tuple[int, Message, Any]:
    """One HTTPS request verified against the stand-in's CA; returns status, headers, JSON."""
    parts = urlsplit(vault.url)
    assert parts.hostname is not None
    context = ssl.create_default_context(cafile=str(vault.ca_path))
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port, context=context, timeout=10
    )
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, response.headers, json.loads(data) if data else None
    finally:
        connection.close()


def wait_done(poller: LROPoller[Any]) -> None:
    """Wait for a delete/recover poller, bounded: a broken server would make it poll forever."""
    poller.wait(timeout=POLL_TIMEOUT_SECONDS)
    assert poller.done(), "the SDK's poller never saw the operation complete"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m devhost.standins.keyvault`` to completion (for start-up failures)."""
    return subprocess.run(
        [sys.executable, "-m", "devhost.standins.keyvault", "--host", "127.0.0.1", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- the challenge handshake ------------------------------------------------------------------


def test_request_without_token_gets_the_challenge(vault_standin: VaultStandinProcess) -> None:
    name = unique("challenge")
    status, headers, body = raw_request(
        vault_standin,
        "PUT",
        f"/secrets/{name}?{API}",
        body=json.dumps({"value": "not-stored"}).encode(),
        token=None,
    )
    assert status == 401
    assert CHALLENGE.match(headers["WWW-Authenticate"] or "")
    assert body["error"]["code"] == "Unauthorized"
    # The unauthenticated body was not acted on.
    assert raw_request(vault_standin, "GET", f"/secrets/{name}?{API}")[0] == 404
    # An empty bearer token is no token.
    assert raw_request(vault_standin, "GET", f"/secrets?{API}", token="")[0] == 401
    assert raw_request(vault_standin, "GET", f"/secrets?{API}", token="anything")[0] == 200


def test_sdk_answers_the_challenge_before_its_first_request(tmp_path: Path) -> None:
    # A fresh process on a new port: the SDK's process-wide challenge cache has no entry for it.
    standin = start_vault_standin(tmp_path / "data", tmp_path)
    seen: list[tuple[str, int, bool]] = []

    def record(response: PipelineResponse[Any, Any]) -> None:
        request = response.http_request
        seen.append((request.method, response.http_response.status_code, bool(request.content)))

    try:
        with standin.secret_client(raw_response_hook=record) as fresh:
            fresh.set_secret("first", "value-1")
            fresh.get_secret("first")
    finally:
        assert standin.stop() == 0
    # The bodiless probe is challenged, then the real request is sent with its body.
    assert seen == [("PUT", 401, False), ("PUT", 200, True), ("GET", 200, False)]


# -- set, get, properties ---------------------------------------------------------------------


def test_set_get_latest_and_get_version(
    client: SecretClient, vault_standin: VaultStandinProcess
) -> None:
    name = unique("basic")
    first = client.set_secret(name, "value-one")
    second = client.set_secret(name, "value-two")

    assert first.properties.version != second.properties.version
    assert re.fullmatch(r"[0-9a-f]{32}", second.properties.version or "")
    assert second.id == f"{vault_standin.url}/secrets/{name}/{second.properties.version}"
    assert client.get_secret(name).value == "value-two"
    assert client.get_secret(name, first.properties.version).value == "value-one"
    latest = client.get_secret(name)
    assert latest.properties.version == second.properties.version
    assert latest.properties.enabled is True
    assert latest.properties.created_on is not None
    assert latest.properties.updated_on is not None
    assert latest.properties.recovery_level == "Recoverable+Purgeable"
    assert latest.properties.managed is None


def test_content_type_and_tags_round_trip(client: SecretClient) -> None:
    name = unique("typed")
    created = client.set_secret(
        name, "{}", content_type="application/json", tags={"team": "pkg", "env": "dev"}
    )
    fetched = client.get_secret(name)
    assert fetched.properties.content_type == "application/json"
    assert fetched.properties.tags == {"team": "pkg", "env": "dev"}
    [listed] = list(client.list_properties_of_secret_versions(name))
    assert listed.version == created.properties.version
    assert listed.content_type == "application/json"
    assert listed.tags == {"team": "pkg", "env": "dev"}
    # A new version does not inherit them, as in Key Vault.
    client.set_secret(name, "plain")
    assert client.get_secret(name).properties.content_type is None
    assert client.get_secret(name).properties.tags is None


def test_names_are_case_insensitive(client: SecretClient) -> None:
    name = unique("Mixed")
    client.set_secret(name, "v1")
    client.set_secret(name.upper(), "v2")
    fetched = client.get_secret(name.lower())
    assert fetched.value == "v2"
    assert fetched.name == name  # the spelling used at creation
    assert len(list(client.list_properties_of_secret_versions(name))) == 2


def test_disabled_version_is_forbidden_until_reenabled(client: SecretClient) -> None:
    name = unique("toggle")
    client.set_secret(name, "value")
    updated = client.update_secret_properties(name, enabled=False)
    assert updated.enabled is False

    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret(name)
    assert excinfo.value.status_code == 403
    assert excinfo.value.error is not None
    assert excinfo.value.error.code == "Forbidden"
    assert "SecretDisabled" in str(excinfo.value)
    # Listing still shows it, disabled.
    [listed] = list(client.list_properties_of_secret_versions(name))
    assert listed.enabled is False

    client.update_secret_properties(name, enabled=True)
    assert client.get_secret(name).value == "value"


def test_update_one_version_with_expiry(client: SecretClient) -> None:
    name = unique("expiry")
    old = client.set_secret(name, "old-value")
    new = client.set_secret(name, "new-value")
    expires = datetime.datetime(2020, 1, 1, tzinfo=UTC)
    not_before = datetime.datetime(2019, 6, 1, tzinfo=UTC)

    updated = client.update_secret_properties(
        name,
        old.properties.version,
        expires_on=expires,
        not_before=not_before,
        content_type="text/plain",
        tags={"rotated": "yes"},
    )
    assert updated.version == old.properties.version
    assert updated.expires_on == expires
    assert updated.not_before == not_before
    assert updated.content_type == "text/plain"
    assert updated.tags == {"rotated": "yes"}
    assert updated.updated_on is not None
    assert updated.created_on is not None
    assert updated.updated_on >= updated.created_on

    # Only that version changed.
    latest = client.get_secret(name)
    assert latest.properties.version == new.properties.version
    assert latest.properties.expires_on is None
    # Key Vault does not enforce exp on reads; the expired version stays readable.
    assert client.get_secret(name, old.properties.version).value == "old-value"


# -- listing and paging -----------------------------------------------------------------------


def test_list_secrets_pages_with_nextlink(
    client: SecretClient, vault_standin: VaultStandinProcess
) -> None:
    names = {unique("page") for _ in range(5)}
    for name in names:
        client.set_secret(name, "listed-value")

    pages = [list(page) for page in client.list_properties_of_secrets(max_page_size=2).by_page()]
    assert len(pages) >= 3
    assert all(len(page) <= 2 for page in pages)
    listed = [item.name for page in pages for item in page]
    assert len(listed) == len(set(listed))
    assert names <= set(listed)
    item = next(i for page in pages for i in page if i.name in names)
    assert item.version is None  # list items name the secret, not a version
    assert item.enabled is True

    status, _, body = raw_request(vault_standin, "GET", f"/secrets?{API}&maxresults=2")
    assert status == 200
    assert len(body["value"]) == 2
    assert all("value" not in entry for entry in body["value"])
    next_link = urlsplit(body["nextLink"])
    assert f"{next_link.scheme}://{next_link.netloc}" == vault_standin.url
    assert parse_qs(next_link.query)["maxresults"] == ["2"]


def test_list_versions_pages_in_creation_order(client: SecretClient) -> None:
    name = unique("versions")
    created = [client.set_secret(name, f"value-{i}").properties.version for i in range(5)]

    pages = [
        list(page)
        for page in client.list_properties_of_secret_versions(name, max_page_size=2).by_page()
    ]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item.version for page in pages for item in page] == created
    assert all(item.name == name for page in pages for item in page)


def test_server_side_page_size(tmp_path: Path) -> None:
    standin = start_vault_standin(tmp_path / "data", tmp_path, extra_args=["--page-size", "2"])
    try:
        with standin.secret_client() as small_pages:
            for index in range(5):
                small_pages.set_secret(f"s{index}", "v")
            pages = [list(p) for p in small_pages.list_properties_of_secrets().by_page()]
    finally:
        standin.stop()
    assert [[item.name for item in page] for page in pages] == [
        ["s0", "s1"],
        ["s2", "s3"],
        ["s4"],
    ]


def test_bad_maxresults_is_rejected(vault_standin: VaultStandinProcess) -> None:
    for value in ("0", "26", "two"):
        status, _, body = raw_request(vault_standin, "GET", f"/secrets?{API}&maxresults={value}")
        assert (status, body["error"]["code"]) == (400, "BadParameter")


# -- soft delete --------------------------------------------------------------------------------


def test_delete_get_deleted_and_purge(
    client: SecretClient, vault_standin: VaultStandinProcess
) -> None:
    name = unique("deleted")
    client.set_secret(name, "doomed")

    poller = client.begin_delete_secret(name)
    wait_done(poller)
    deleted = poller.result()
    assert deleted.name == name
    assert deleted.recovery_id == f"{vault_standin.url}/deletedsecrets/{name}"
    assert deleted.deleted_date is not None
    assert deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date > deleted.deleted_date

    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    assert client.get_deleted_secret(name).recovery_id == deleted.recovery_id
    assert name in {item.name for item in client.list_deleted_secrets()}
    # The name stays reserved while the secret is soft-deleted.
    with pytest.raises(ResourceExistsError) as excinfo:
        client.set_secret(name, "reuse")
    assert excinfo.value.status_code == 409

    client.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_secret(name)
    assert client.set_secret(name, "reborn").value == "reborn"
    assert len(list(client.list_properties_of_secret_versions(name))) == 1


def test_recover_restores_all_versions(client: SecretClient) -> None:
    name = unique("recover")
    first = client.set_secret(name, "first")
    client.set_secret(name, "second")
    wait_done(client.begin_delete_secret(name))

    recovered = client.begin_recover_deleted_secret(name)
    wait_done(recovered)
    assert recovered.result().name == name
    assert client.get_secret(name).value == "second"
    assert client.get_secret(name, first.properties.version).value == "first"
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)


def test_deleting_an_unknown_secret_is_not_found(client: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        client.begin_delete_secret(unique("never-set"))


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad_name", "dots.not.allowed", "a" * 128, "sp ace"])
def test_bad_names_are_rejected(client: SecretClient, name: str) -> None:
    with pytest.raises(HttpResponseError) as excinfo:
        client.set_secret(name, "value")
    assert excinfo.value.status_code == 400
    assert excinfo.value.error is not None
    assert excinfo.value.error.code == "BadParameter"
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret(name)
    assert excinfo.value.status_code == 400


def test_longest_name_is_accepted(client: SecretClient) -> None:
    name = ("x" + uuid.uuid4().hex) * 4
    name = name[:127]
    assert client.set_secret(name, "value").name == name


def test_unknown_secret_or_version_is_not_found(client: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_secret(unique("missing"))
    assert excinfo.value.error is not None
    assert excinfo.value.error.code == "SecretNotFound"

    name = unique("known")
    client.set_secret(name, "value")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name, uuid.uuid4().hex)
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name, "not-a-version")
    with pytest.raises(ResourceNotFoundError):
        client.update_secret_properties(unique("missing"), enabled=False)


def test_bad_bodies_are_rejected_without_echo(vault_standin: VaultStandinProcess) -> None:
    marker = f"body-marker-{uuid.uuid4().hex}"
    name = unique("body")
    bad_bodies = [
        b"{not json " + marker.encode(),
        json.dumps([marker]).encode(),
        json.dumps({"contentType": marker}).encode(),  # no value
        json.dumps({"value": 42, "tags": {"t": marker}}).encode(),
        json.dumps({"value": marker, "tags": {"t": 1}}).encode(),
        json.dumps({"value": marker, "tags": [marker]}).encode(),
        json.dumps({"value": marker, "attributes": {"enabled": "yes"}}).encode(),
        json.dumps({"value": marker, "attributes": {"exp": "tomorrow"}}).encode(),
        json.dumps({"value": marker, "contentType": "x" * 256}).encode(),
        json.dumps({"value": "x" * (25 * 1024 + 1)}).encode(),
    ]
    for body in bad_bodies:
        status, _, error = raw_request(vault_standin, "PUT", f"/secrets/{name}?{API}", body=body)
        assert (status, error["error"]["code"]) == (400, "BadParameter"), body[:40]
        assert marker not in json.dumps(error)
    assert raw_request(vault_standin, "GET", f"/secrets/{name}?{API}")[0] == 404

    raw_request(vault_standin, "PUT", f"/secrets/{name}?{API}", body=b'{"value": "ok"}')
    status, _, error = raw_request(
        vault_standin, "PATCH", f"/secrets/{name}/?{API}", body=json.dumps([marker]).encode()
    )
    assert (status, error["error"]["code"]) == (400, "BadParameter")
    assert marker not in json.dumps(error)


def test_unknown_routes_and_methods(vault_standin: VaultStandinProcess) -> None:
    status, _, body = raw_request(vault_standin, "GET", f"/keys/some-key?{API}")
    assert (status, body["error"]["code"]) == (404, "NotFound")
    status, _, _ = raw_request(vault_standin, "GET", f"/secrets/a/b/c/d?{API}")
    assert status == 404
    status, headers, _ = raw_request(vault_standin, "POST", f"/secrets/some-name?{API}")
    assert status == 405
    assert set((headers["Allow"] or "").split(", ")) == {"GET", "PUT", "DELETE"}
    assert raw_request(vault_standin, "DELETE", f"/secrets?{API}")[0] == 405
    status, _, body = raw_request(vault_standin, "GET", "/secrets")
    assert (status, body["error"]["code"]) == (400, "BadParameter")  # api-version is required


@pytest.fixture
def own_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultStandinProcess]:
    """A stand-in of the test's own: every round below lists every secret, and on the session's
    stand-in that would cost whatever the tests before this one left there."""
    with running_vault_standin(tmp_path_factory, "concurrent-vault") as standin:
        yield standin


def test_concurrent_requests_are_all_applied(own_standin: VaultStandinProcess) -> None:
    shared = unique("concurrent")
    workers, rounds = 8, 5
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            with own_standin.secret_client() as own_client:
                for index in range(rounds):
                    own_client.set_secret(shared, f"{worker}-{index}")
                    own_client.set_secret(f"{shared}-{worker}-{index}", "own")  # new names too
                    list(own_client.list_properties_of_secrets())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with own_standin.secret_client() as reader:
        versions = list(reader.list_properties_of_secret_versions(shared))
        names = {item.name for item in reader.list_properties_of_secrets()}
    assert len({v.version for v in versions}) == workers * rounds
    assert {f"{shared}-{w}-{i}" for w in range(workers) for i in range(rounds)} <= names


# -- process behaviour ----------------------------------------------------------------------------


def test_state_and_certificates_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_vault_standin(data_dir, tmp_path / "first")
    try:
        with first.secret_client() as before:
            old = before.set_secret("kept", "v1", content_type="text/plain", tags={"k": "v"})
            before.set_secret("kept", "v2")
            before.update_secret_properties("kept", old.properties.version, enabled=False)
            before.set_secret("gone", "soon-deleted")
            wait_done(before.begin_delete_secret("gone"))
        ca_before = first.ca_path.read_bytes()
        server_cert_before = (data_dir / "tls" / "server-cert.pem").read_bytes()
    finally:
        assert first.stop() == 0  # SIGTERM is a clean shutdown
    assert "Traceback" not in first.output()

    second = start_vault_standin(data_dir, tmp_path / "second")
    try:
        assert second.url != first.url  # a new process on a new port
        assert second.ca_path.read_bytes() == ca_before
        assert (data_dir / "tls" / "server-cert.pem").read_bytes() == server_cert_before
        with second.secret_client() as after:
            assert after.get_secret("kept").value == "v2"
            versions = list(after.list_properties_of_secret_versions("kept"))
            assert versions[0].version == old.properties.version
            assert versions[0].enabled is False
            assert versions[0].content_type == "text/plain"
            assert versions[0].tags == {"k": "v"}
            assert after.get_deleted_secret("gone").name == "gone"
            with pytest.raises(ResourceNotFoundError):
                after.get_secret("gone")
    finally:
        assert second.stop() == 0


def test_port_in_use_is_a_clear_error(vault_standin: VaultStandinProcess, tmp_path: Path) -> None:
    port = urlsplit(vault_standin.url).port
    result = run_cli("--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ready" not in result.stdout


def test_second_process_on_the_same_data_dir_is_refused(vault_standin: VaultStandinProcess) -> None:
    result = run_cli("--port", "0", "--data-dir", str(vault_standin.data_dir))
    assert result.returncode == 2
    assert "in use by another Key Vault stand-in" in result.stderr
    assert "Traceback" not in result.stderr


def test_values_and_tokens_never_reach_the_logs(vault_standin: VaultStandinProcess) -> None:
    marker = f"log-marker-{uuid.uuid4().hex}"
    name = unique("logged")
    with vault_standin.secret_client() as logged:
        logged.set_secret(name, marker, tags={"t": marker})
        logged.get_secret(name)
        logged.update_secret_properties(name, enabled=False)
        with pytest.raises(HttpResponseError):
            logged.get_secret(name)
        logged.update_secret_properties(name, enabled=True)
        list(logged.list_properties_of_secrets())
        wait_done(logged.begin_delete_secret(name))
        wait_done(logged.begin_recover_deleted_secret(name))
    raw_request(vault_standin, "PUT", f"/secrets/{name}?{API}", body=b"{" + marker.encode())
    raw_request(vault_standin, "PUT", f"/secrets/{name}?{API}", body=b"x", token=marker)

    output = vault_standin.output()
    assert f"PUT /secrets/{name} 200" in output  # requests are logged...
    assert f"GET /secrets/{name}/ 403" in output
    assert marker not in output  # ...but never values, bodies or tokens
    assert LOCAL_TOKEN not in output
    assert "Bearer" not in output
    assert "api-version" not in output
