"""The upload API (PyPI's `/legacy/` form) through `function_app.app`, against Azurite and the
Key Vault stand-in: the routes, auth, every outcome of a file, and every refusal of a form."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import azure.functions as func
import pytest
from packaging.utils import canonicalize_name
from urllib3.filepost import encode_multipart_formdata

from devhost.wheels import BuiltWheel, build_wheel, zip_bytes
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.tokens import Policy, Scope
from shared.services import upload_api
from shared.services.wiring import Services, get_services, reset_services
from tests.fixtures.vault import VaultStandinProcess
from tests.support.functions import handler

pytestmark = pytest.mark.integration

Field = tuple[str, str]


@dataclass
class Api:
    services: Services
    store: BlobStore
    reader: str
    publisher: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        raw = f"__token__:{token or self.publisher}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def api(
    storage_env: BlobStore, vault_standin: VaultStandinProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    monkeypatch.setenv("WHEELVAULT_VAULT_URL", vault_standin.url)
    monkeypatch.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
    monkeypatch.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(vault_standin.ca_path))
    monkeypatch.setenv("WHEELVAULT_MAX_UPLOAD_BYTES", str(64 * 1024))
    reset_services()
    services = get_services()
    suffix = uuid.uuid4().hex[:8]
    reader = services.tokens.create(f"reader-{suffix}", Policy(Scope.READ))
    publisher = services.tokens.create(f"publisher-{suffix}", Policy(Scope.PUBLISH))
    yield Api(services, storage_env, reader, publisher)
    reset_services()


def fields_for(wheel: BuiltWheel, name: str = "demo", version: str = "1.0") -> list[Field]:
    """The form twine sends for a wheel (less the long metadata)."""
    return [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("name", name),
        ("version", version),
        ("filetype", "bdist_wheel"),
        ("pyversion", "py3"),
        ("metadata_version", "2.1"),
        ("summary", "A test package"),
        ("classifiers", "Programming Language :: Python :: 3"),
        ("classifiers", "License :: OSI Approved :: MIT License"),
        ("sha256_digest", wheel.sha256),
        ("blake2_256_digest", hashlib.blake2b(wheel.data, digest_size=32).hexdigest()),
        ("md5_digest", hashlib.md5(wheel.data, usedforsecurity=False).hexdigest()),
    ]


def without(fields: Sequence[Field], name: str) -> list[Field]:
    return [(k, v) for k, v in fields if k != name]


def without_digests(fields: Sequence[Field]) -> list[Field]:
    return [(k, v) for k, v in fields if not k.endswith("_digest")]


def replaced(fields: Sequence[Field], name: str, value: str) -> list[Field]:
    return [*without(fields, name), (name, value)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def multipart(fields: Sequence[Field], file: tuple[str, bytes] | None) -> tuple[bytes, str]:
    parts: list[tuple[str, str | tuple[str, bytes, str]]] = list(fields)
    if file is not None:
        parts.append(("content", (file[0], file[1], "application/octet-stream")))
    return encode_multipart_formdata(parts, boundary="wheelvault-test-boundary")


def post(
    api: Api,
    body: bytes,
    content_type: str = "multipart/form-data; boundary=wheelvault-test-boundary",
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    function: str = "upload_legacy",
    path: str | None = None,
) -> func.HttpResponse:
    sent = {"Content-Type": content_type, **(api.auth(token) if headers is None else headers)}
    request = func.HttpRequest(
        method="POST",
        url=f"http://127.0.0.1:7071/{'legacy/' if path is None else path}",
        headers=sent,
        params={},
        route_params={} if path is None else {"path": path},
        body=body,
    )
    response: func.HttpResponse = handler(function)(request)
    return response


def upload(
    api: Api,
    wheel: BuiltWheel,
    fields: Sequence[Field] | None = None,
    *,
    filename: str | None = None,
    function: str = "upload_legacy",
    path: str | None = None,
) -> func.HttpResponse:
    body, content_type = multipart(
        fields_for(wheel) if fields is None else fields, (filename or wheel.filename, wheel.data)
    )
    return post(api, body, content_type, function=function, path=path)


def error(response: func.HttpResponse) -> tuple[int, str, str]:
    found = json.loads(response.get_body())["error"]
    return response.status_code, found["code"], found["message"]


def index(store: BlobStore) -> dict[str, str]:
    return {b.name: b.etag for b in store.list(layout.INDEX, "")}


def quarantined(store: BlobStore) -> dict[str, dict[str, object]]:
    reasons = [b.name for b in store.list(layout.QUARANTINE, "") if b.name.endswith(".json")]
    return {name: json.loads(store.get(layout.QUARANTINE, name).data) for name in reasons}  # type: ignore[union-attr]


def page_files(store: BlobStore, project: str) -> list[str]:
    stored = store.get(layout.INDEX, layout.project_json(canonicalize_name(project)))
    assert stored is not None
    return [f["filename"] for f in json.loads(stored.data)["files"]]


# -- what happens to a file ------------------------------------------------------------------


def test_a_wheel_is_published_at_once_through_the_same_pipeline(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    response = upload(api, wheel)
    assert response.status_code == 200, response.get_body()
    answer = json.loads(response.get_body())
    assert answer == {
        "status": "published",
        "filename": wheel.filename,
        "project": "demo",
        "version": "1.0",
        "sha256": wheel.sha256,
    }
    assert page_files(api.store, "demo") == [wheel.filename]
    record = api.services.records.load(canonicalize_name("demo"), wheel.filename)
    assert record is not None
    assert record.source == "upload-api"
    assert list(api.store.list(layout.UPLOADS, "")) == []  # never a blob drop
    assert quarantined(api.store) == {}


def test_the_root_serves_the_same_api_and_nothing_else(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    response = upload(api, wheel, function="upload_root", path="")
    assert response.status_code == 200, response.get_body()
    for path in ("simple", "simple/demo", "legacy/extra"):
        refused = post(api, b"", function="upload_root", path=path, headers={})
        assert error(refused)[:2] == (404, "not-found")  # before, and without, any token


def test_an_identical_reupload_is_a_200_that_changes_nothing(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    assert upload(api, wheel).status_code == 200
    before = index(api.store)
    again = upload(api, wheel)
    assert again.status_code == 200
    assert json.loads(again.get_body())["status"] == "unchanged"
    assert index(api.store) == before
    assert quarantined(api.store) == {}


def test_a_changed_file_under_a_published_name_is_a_409_and_is_quarantined(api: Api) -> None:
    original = build_wheel("demo", "1.0")
    changed = build_wheel("demo", "1.0", summary="other bytes")
    assert upload(api, original).status_code == 200
    before = index(api.store)
    status, code, message = error(upload(api, changed, fields_for(changed)))
    assert (status, code) == (409, "file-exists")
    assert "already published with different contents" in message
    assert index(api.store) == before
    (reason,) = quarantined(api.store).values()
    assert (reason["code"], reason["source"]) == ("file-exists", "upload-api")
    assert reason["sha256"] == changed.sha256


def test_a_hostile_file_is_refused_with_its_code_and_kept_in_quarantine(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    data = zip_bytes([*wheel.members, ("../escape.py", b"import os")])
    fields = replaced(without_digests(fields_for(wheel)), "sha256_digest", sha256(data))
    body, content_type = multipart(fields, (wheel.filename, data))
    status, code, _ = error(post(api, body, content_type))
    assert (status, code) == (400, "unsafe-path")
    assert index(api.store) == {}
    assert [r["code"] for r in quarantined(api.store).values()] == ["unsafe-path"]
    kept = api.store.get(layout.QUARANTINE, wheel.filename)
    assert kept is not None
    assert kept.data == data


@pytest.mark.parametrize("algorithm", ["sha256_digest", "blake2_256_digest", "md5_digest"])
def test_every_digest_sent_is_checked_before_anything_else(api: Api, algorithm: str) -> None:
    wheel = build_wheel("demo", "1.0")
    fields = [(k, "0" * len(v) if k == algorithm else v) for k, v in fields_for(wheel)]
    status, code, message = error(upload(api, wheel, fields))
    assert (status, code) == (400, "digest-mismatch")
    assert algorithm in message
    assert index(api.store) == {}
    assert [r["code"] for r in quarantined(api.store).values()] == ["digest-mismatch"]


def test_digests_are_optional_and_any_case(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    fields = [(k, v.upper()) if k == "sha256_digest" else (k, v) for k, v in fields_for(wheel)]
    fields = [(k, v) for k, v in fields if k not in ("md5_digest", "blake2_256_digest")]
    assert upload(api, wheel, fields).status_code == 200
    other = build_wheel("other", "1.0")
    assert upload(api, other, without_digests(fields_for(other, "other"))).status_code == 200


@pytest.mark.parametrize(
    ("name", "version"), [("other", "1.0"), ("demo", "2.0"), ("demo", "not a version")]
)
def test_the_form_name_and_version_must_be_the_files(api: Api, name: str, version: str) -> None:
    wheel = build_wheel("demo", "1.0")
    status, code, message = error(upload(api, wheel, fields_for(wheel, name, version)))
    assert (status, code) == (400, "form-mismatch")
    assert "demo 1.0" in message
    assert index(api.store) == {}
    assert [r["code"] for r in quarantined(api.store).values()] == ["form-mismatch"]


def test_the_form_name_and_version_compare_normalised(api: Api) -> None:
    wheel = build_wheel("Demo.Pkg", "1.0")
    assert upload(api, wheel, fields_for(wheel, "demo-pkg", "1.0.0")).status_code == 200


def test_a_deleted_filename_is_a_400_so_skip_existing_does_not_hide_it(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    assert upload(api, wheel).status_code == 200
    api.services.manager.delete_file("demo", wheel.filename, reason="withdrawn")
    status, code, _ = error(upload(api, wheel))
    assert (status, code) == (400, "filename-tombstoned")


def test_an_unsafe_filename_is_refused_and_never_used_as_a_blob_name(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    for filename in ("../demo-1.0-py3-none-any.whl", "a/demo-1.0-py3-none-any.whl"):
        status, code, _ = error(upload(api, wheel, filename=filename))
        assert (status, code) == (400, "bad-filename")
    assert quarantined(api.store) == {}
    assert index(api.store) == {}


# -- size ------------------------------------------------------------------------------------


def test_a_request_too_large_for_the_cap_is_a_413_before_it_is_parsed(api: Api) -> None:
    body = b"x" * (64 * 1024 + upload_api.FORM_ROOM_BYTES + 1)  # not even a form
    status, code, message = error(post(api, body))
    assert (status, code) == (413, "too-large")
    assert "WHEELVAULT_MAX_UPLOAD_BYTES" in message
    assert "wheelvault upload" in message
    assert quarantined(api.store) == {}


def test_a_file_over_the_cap_is_a_413_and_is_kept_whole(api: Api) -> None:
    wheel = build_wheel("demo", "1.0", payload_bytes=80 * 1024)
    status, code, message = error(upload(api, wheel))
    assert (status, code) == (413, "too-large")
    assert "WHEELVAULT_MAX_UPLOAD_BYTES" in message
    kept = api.store.get(layout.QUARANTINE, wheel.filename)
    assert kept is not None
    assert kept.data == wheel.data
    assert index(api.store) == {}


def test_the_forms_fields_are_capped(api: Api) -> None:
    wheel = build_wheel("demo", "1.0")
    fields = [*fields_for(wheel), ("description", "x" * (upload_api.FIELDS_MAX_BYTES + 1))]
    status, code, _ = error(upload(api, wheel, fields))
    assert (status, code) == (413, "too-large")


# -- the form --------------------------------------------------------------------------------


FORM_CASES: dict[str, Callable[[list[Field]], list[Field]]] = {
    "no action": lambda f: without(f, ":action"),
    "another action": lambda f: replaced(f, ":action", "submit"),
    "no protocol": lambda f: without(f, "protocol_version"),
    "protocol 2": lambda f: replaced(f, "protocol_version", "2"),
    "no name": lambda f: without(f, "name"),
    "empty version": lambda f: replaced(f, "version", ""),
    "no filetype": lambda f: without(f, "filetype"),
    "an egg": lambda f: replaced(f, "filetype", "bdist_egg"),
    "sdist for a wheel": lambda f: replaced(f, "filetype", "sdist"),
    "two names": lambda f: [*f, ("name", "demo")],
    "short digest": lambda f: replaced(f, "sha256_digest", "abc"),
    "not hex": lambda f: replaced(f, "md5_digest", "z" * 32),
    "long value": lambda f: replaced(f, "version", "1" * 1001),
}


@pytest.mark.parametrize("case", sorted(FORM_CASES))
def test_a_bad_form_is_a_400_naming_the_problem(api: Api, case: str) -> None:
    wheel = build_wheel("demo", "1.0")
    status, code, _ = error(upload(api, wheel, FORM_CASES[case](fields_for(wheel))))
    assert (status, code) == (400, "bad-request")
    assert quarantined(api.store) == {}  # the file was never looked at
    assert index(api.store) == {}


def test_a_form_without_a_file_is_a_400(api: Api) -> None:
    body, content_type = multipart(fields_for(build_wheel()), None)
    assert error(post(api, body, content_type))[:2] == (400, "bad-request")


def test_a_form_with_two_files_is_a_400(api: Api) -> None:
    wheel = build_wheel()
    body, content_type = encode_multipart_formdata(
        [
            *fields_for(wheel),
            ("content", (wheel.filename, wheel.data, "application/octet-stream")),
            ("content", (wheel.filename, wheel.data, "application/octet-stream")),
        ],
        boundary="b",
    )
    assert error(post(api, body, content_type))[:2] == (400, "bad-request")


def test_a_body_that_is_no_form_is_refused(api: Api) -> None:
    wheel = build_wheel()
    body, content_type = multipart(fields_for(wheel), (wheel.filename, wheel.data))
    assert error(post(api, body, "application/json"))[:2] == (415, "unsupported-media-type")
    assert error(post(api, body, "multipart/form-data"))[:2] == (415, "unsupported-media-type")
    cut = body[: len(body) - 40]  # the closing boundary is missing
    assert error(post(api, cut, content_type))[:2] == (400, "bad-form")
    garbage = b"--wheelvault-test-boundary\r\nno header line\r\n\r\n"
    assert error(post(api, garbage, content_type))[:1] == (400,)
    assert quarantined(api.store) == {}


# -- auth ------------------------------------------------------------------------------------


def test_no_token_is_a_401_with_a_basic_challenge(api: Api) -> None:
    wheel = build_wheel()
    body, content_type = multipart(fields_for(wheel), (wheel.filename, wheel.data))
    refused = post(api, body, content_type, headers={})
    assert error(refused)[:2] == (401, "unauthorized")
    assert refused.headers["WWW-Authenticate"] == 'Basic realm="wheelvault"'
    forged = post(api, body, content_type, token="wvt_nope")
    assert error(forged)[:2] == (401, "unauthorized")


def test_a_read_token_is_a_403(api: Api) -> None:
    wheel = build_wheel()
    body, content_type = multipart(fields_for(wheel), (wheel.filename, wheel.data))
    refused = post(api, body, content_type, token=api.reader)
    assert error(refused)[:2] == (403, "forbidden")
    assert "WWW-Authenticate" not in refused.headers
    assert index(api.store) == {}
