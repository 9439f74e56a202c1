"""The HTTP front door through `function_app.app` with real HttpRequest objects, against Azurite
and the Key Vault stand-in: auth, PEP 691 pages, redirects to SAS, SAS endpoints, health."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import pytest

from devhost.wheels import BuiltWheel, build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.tokens import Policy, Scope
from shared.services.wiring import Services, get_services, reset_services
from tests.fixtures.vault import VaultStandinProcess
from tests.support.functions import blob_event, handler

pytestmark = pytest.mark.integration

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Index:
    services: Services
    reader: str
    publisher: str
    wheels: dict[str, BuiltWheel]

    def auth(self, token: str | None = None) -> dict[str, str]:
        raw = f"anyone:{token or self.reader}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def index(
    storage_env: BlobStore, vault_standin: VaultStandinProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Index]:
    monkeypatch.setenv("WHEELVAULT_VAULT_URL", vault_standin.url)
    monkeypatch.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
    monkeypatch.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(vault_standin.ca_path))
    reset_services()
    services = get_services()
    suffix = uuid.uuid4().hex[:8]
    reader = services.tokens.create(f"reader-{suffix}", Policy(Scope.READ))
    publisher = services.tokens.create(f"publisher-{suffix}", Policy(Scope.PUBLISH))
    wheels = {
        "1.0": build_wheel("Demo.Pkg", "1.0"),
        "1.1": build_wheel("Demo.Pkg", "1.1", requires_python=">=3.8"),
        "2.0": build_wheel("Demo.Pkg", "2.0"),
        "2.1b1": build_wheel("Demo.Pkg", "2.1b1"),
    }
    for wheel in wheels.values():
        etag = storage_env.put(layout.UPLOADS, wheel.filename, wheel.data, content_type="x/y")
        handler("publish_upload")(blob_event(layout.UPLOADS, wheel.filename, wheel.data, etag))
    services.manager.yank("demo-pkg", version="2.0", reason="broken")
    yield Index(services, reader, publisher, wheels)
    reset_services()


def call(
    name: str,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    route: dict[str, str] | None = None,
) -> func.HttpResponse:
    request = func.HttpRequest(
        method=method,
        url=f"http://127.0.0.1:7071{url}",
        headers=headers or {},
        params={},
        route_params=route or {},
        body=body,
    )
    response: func.HttpResponse = handler(name)(request)
    return response


def error_code(response: func.HttpResponse) -> str:
    code: str = json.loads(response.get_body())["error"]["code"]
    return code


def fetch(url: str, *, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    if method == "PUT":
        request.add_header("x-ms-blob-type", "BlockBlob")
    try:
        with NO_PROXY.open(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic " + base64.b64encode(b"x:wvt_nope").decode(), "Bearer junk", "Digest x"],
)
def test_no_or_bad_token_is_401_with_a_basic_challenge(
    index: Index, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for name, url, route in (
        ("simple_root", "/simple/", {}),
        ("simple_project", "/simple/demo-pkg/", {"project": "demo-pkg"}),
        ("files", "/files/demo-pkg/x.whl", {"project": "demo-pkg", "filename": "x.whl"}),
    ):
        response = call(name, url, headers=headers, route=route)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="wheelvault"'
        assert error_code(response) == "unauthorized"


def test_a_read_token_cannot_get_an_upload_sas(index: Index) -> None:
    body = json.dumps({"filename": "demo_pkg-3.0-py3-none-any.whl"}).encode()
    response = call("sas_upload", "/sas/upload", method="POST", headers=index.auth(), body=body)
    assert response.status_code == 403  # a valid token, without publish scope
    assert error_code(response) == "forbidden"


# -- pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (PIP_ACCEPT, JSON),
        ("application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.v1+html"),
        ("text/html", "text/html"),
        (None, "text/html"),
        ("*/*", "text/html"),
        ("text/html;q=0.9, application/vnd.pypi.simple.v1+json;q=0.2", "text/html"),
    ],
)
def test_pep_691_negotiation(index: Index, accept: str | None, content_type: str) -> None:
    headers = index.auth() | ({"Accept": accept} if accept else {})
    response = call(
        "simple_project", "/simple/demo-pkg/", headers=headers, route={"project": "demo-pkg"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == content_type
    assert response.headers["Vary"] == "Accept"
    assert response.headers["Cache-Control"] == "private, max-age=60"
    body = response.get_body()
    if content_type == JSON:
        page = json.loads(body)
        assert page["name"] == "demo-pkg"
        assert len(page["files"]) == 4
    else:
        assert b'<meta name="pypi:repository-version" content="1.1">' in body


def test_nothing_acceptable_is_406(index: Index) -> None:
    headers = index.auth() | {"Accept": "application/json"}
    response = call("simple_root", "/simple/", headers=headers)
    assert response.status_code == 406
    assert error_code(response) == "not-acceptable"


def test_etag_and_304(index: Index) -> None:
    headers = index.auth() | {"Accept": JSON}
    first = call(
        "simple_project", "/simple/demo-pkg/", headers=headers, route={"project": "demo-pkg"}
    )
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    again = call(
        "simple_project",
        "/simple/demo-pkg/",
        headers=headers | {"If-None-Match": etag},
        route={"project": "demo-pkg"},
    )
    assert again.status_code == 304
    assert again.get_body() == b""
    html = call(
        "simple_project", "/simple/demo-pkg/", headers=index.auth(), route={"project": "demo-pkg"}
    )
    assert html.headers["ETag"] != etag  # each representation has its own ETag
    index.services.manager.yank("demo-pkg", version="1.0", reason="changed")
    changed = call(
        "simple_project",
        "/simple/demo-pkg/",
        headers=headers | {"If-None-Match": etag},
        route={"project": "demo-pkg"},
    )
    assert changed.status_code == 200


def test_root_lists_projects_and_head_has_no_body(index: Index) -> None:
    get = call("simple_root", "/simple/", headers=index.auth() | {"Accept": JSON})
    assert json.loads(get.get_body())["projects"] == [{"name": "demo-pkg"}]
    head = call("simple_root", "/simple/", method="HEAD", headers=index.auth() | {"Accept": JSON})
    assert head.status_code == 200
    assert head.get_body() == b""
    assert head.headers["ETag"] == get.headers["ETag"]


def test_non_normalised_name_redirects_and_unknown_is_404(index: Index) -> None:
    moved = call(
        "simple_project", "/simple/Demo.Pkg/", headers=index.auth(), route={"project": "Demo.Pkg"}
    )
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/simple/demo-pkg/"
    unknown = call(
        "simple_project", "/simple/requests/", headers=index.auth(), route={"project": "requests"}
    )
    assert unknown.status_code == 404  # never a redirect to public PyPI
    assert "Location" not in unknown.headers


@pytest.mark.parametrize("project", ["..", ".", "a/b", "-x", "x" * 300, "na\u00efve"])
def test_odd_project_segments_are_4xx(index: Index, project: str) -> None:
    response = call(
        "simple_project", f"/simple/{project}/", headers=index.auth(), route={"project": project}
    )
    assert 400 <= response.status_code < 500
    assert error_code(response) in {"bad-path", "bad-project"}


# -- files -----------------------------------------------------------------------------------


def test_file_download_is_a_redirect_to_a_sas_for_that_blob(index: Index) -> None:
    wheel = index.wheels["1.1"]
    for filename, expected in (
        (wheel.filename, wheel.data),
        (f"{wheel.filename}.metadata", wheel.metadata),
    ):
        response = call(
            "files",
            f"/files/demo-pkg/{filename}",
            headers=index.auth(),
            route={"project": "demo-pkg", "filename": filename},
        )
        assert response.status_code == 302
        assert response.headers["Cache-Control"] == "no-store"
        location = response.headers["Location"]
        parts = urlsplit(location)
        assert parts.path.endswith(f"/index/files/demo-pkg/{filename}")
        query = dict(parse_qsl(parts.query))
        assert query["sp"] == "r"  # read only
        assert query["sr"] == "b"  # one blob
        assert "/" not in parts.query  # every value percent-encoded
        assert index.reader not in location
        assert fetch(location) == (200, expected)


def test_missing_file_is_404_and_bad_filenames_are_400(index: Index) -> None:
    missing = call(
        "files",
        "/files/demo-pkg/demo_pkg-9.9-py3-none-any.whl",
        headers=index.auth(),
        route={"project": "demo-pkg", "filename": "demo_pkg-9.9-py3-none-any.whl"},
    )
    assert missing.status_code == 404
    for filename in ("..", ".hidden", "a..b.whl", "x%00.whl"):
        bad = call(
            "files",
            f"/files/demo-pkg/{filename}",
            headers=index.auth(),
            route={"project": "demo-pkg", "filename": filename},
        )
        assert bad.status_code == 400, filename


# -- SAS on request --------------------------------------------------------------------------


def install(index: Index, payload: object | bytes) -> func.HttpResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call("sas_install", "/sas/install", method="POST", headers=index.auth(), body=body)


def test_install_sas_picks_the_newest_matching_non_yanked_version(index: Index) -> None:
    result = json.loads(install(index, {"requirement": "demo-pkg>=1.0"}).get_body())
    assert result["version"] == "1.1"  # 2.0 is yanked, 2.1b1 a pre-release
    (entry,) = result["files"]
    wheel = index.wheels["1.1"]
    assert (entry["filename"], entry["sha256"]) == (wheel.filename, wheel.sha256)
    assert entry["expires_on"].endswith("Z")
    assert fetch(entry["url"]) == (200, wheel.data)

    pinned = json.loads(install(index, {"requirement": "Demo_Pkg==2.0"}).get_body())
    assert pinned["version"] == "2.0"  # a yanked version is still served when pinned (PEP 592)
    pre = json.loads(install(index, {"requirement": "demo-pkg>=2.1b1"}).get_body())
    assert pre["version"] == "2.1b1"
    one = json.loads(install(index, {"project": "demo-pkg", "filename": wheel.filename}).get_body())
    assert one["files"][0]["filename"] == wheel.filename


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"requirement": "demo-pkg; python_version > '3'"}, 400, "bad-requirement"),
        ({"requirement": "demo-pkg @ https://example.com/x.whl"}, 400, "bad-requirement"),
        ({"requirement": "not a requirement!!"}, 400, "bad-requirement"),
        ({"requirement": "demo-pkg>=5"}, 404, "no-match"),
        ({"requirement": "unknown-pkg"}, 404, "not-found"),
        ({"nothing": 1}, 400, "bad-request"),
        ([1, 2], 400, "bad-json"),
        (b"{not json", 400, "bad-json"),
        (b"\xff\xfe\x00", 400, "bad-json"),
        (b"{" + b" " * 70_000 + b"}", 413, "too-large"),
    ],
)
def test_install_sas_bad_requests(index: Index, payload: object, status: int, code: str) -> None:
    response = install(index, payload)
    assert response.status_code == status
    assert error_code(response) == code


def upload_sas(index: Index, filename: str, token: str | None = None) -> func.HttpResponse:
    body = json.dumps({"filename": filename}).encode()
    return call(
        "sas_upload",
        "/sas/upload",
        method="POST",
        headers=index.auth(token or index.publisher),
        body=body,
    )


def test_upload_sas_is_create_only(index: Index) -> None:
    wheel = build_wheel("demo-pkg", "3.0")
    result = json.loads(upload_sas(index, wheel.filename).get_body())
    assert result["method"] == "PUT"
    url = result["url"]
    assert dict(parse_qsl(urlsplit(url).query))["sp"] == "c"
    assert fetch(url, method="PUT", data=wheel.data)[0] == 201
    assert fetch(url, method="PUT", data=b"overwrite")[0] in (403, 409)
    assert fetch(url)[0] == 403  # cannot read
    stored = index.services.store.get(layout.UPLOADS, wheel.filename)
    assert stored is not None
    assert stored.data == wheel.data


@pytest.mark.parametrize(
    ("filename", "status", "code"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", 409, "file-exists"),
        # The same distribution spelled differently: publishing it would be refused.
        ("Demo_Pkg-1.0.0-py3-none-any.whl", 409, "file-exists"),
        ("demo_pkg-1.0.zip", 400, "legacy-sdist-format"),
        ("demo-pkg-1.0.tar.gz", 400, "sdist-name-not-normalized"),
        ("demo_pkg-1.0.txt", 400, "not-a-wheel"),
        ("../x-1.0-py3-none-any.whl", 400, "bad-filename"),
        ("x.whl", 400, "invalid-wheel-filename"),
    ],
)
def test_upload_sas_refusals(index: Index, filename: str, status: int, code: str) -> None:
    response = upload_sas(index, filename)
    assert response.status_code == status
    assert error_code(response) == code


# -- SAS properties --------------------------------------------------------------------------


def test_a_sas_cannot_read_another_blob_or_write_and_expires(index: Index) -> None:
    signer = index.services.signer
    wheel = index.wheels["1.0"]
    path = layout.file_path("demo-pkg", wheel.filename)  # type: ignore[arg-type]
    signed = signer.read_url(layout.INDEX, path, timedelta(seconds=3))
    assert fetch(signed.url) == (200, wheel.data)
    other = signed.url.replace(wheel.filename, index.wheels["1.1"].filename)
    assert fetch(other)[0] == 403
    assert fetch(signed.url, method="PUT", data=b"x")[0] == 403
    import time

    deadline = time.monotonic() + 4  # the expiry is whole seconds: at most 3 s from now
    while fetch(signed.url)[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fetch(signed.url)[0] == 403
    with pytest.raises(ValueError, match="one hour"):
        signer.read_url(layout.INDEX, path, timedelta(hours=2))


# -- health ----------------------------------------------------------------------------------


def test_health_reports_both_backends(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy = call("health", "/health")
    assert healthy.status_code == 200
    assert json.loads(healthy.get_body()) == {"status": "ok", "storage": "ok", "vault": "ok"}
    monkeypatch.setenv("WHEELVAULT_VAULT_URL", "https://127.0.0.1:9")
    reset_services()
    sick = call("health", "/health")
    assert sick.status_code == 503
    body = json.loads(sick.get_body())
    assert body["status"] == "unhealthy"
    assert body["storage"] == "ok"
    assert body["vault"].startswith("error: ")
    assert "127.0.0.1" not in sick.get_body().decode()


# -- malformed bodies (issue 9 §4.2) ---------------------------------------------------------

MALFORMED_BODIES = [
    pytest.param(b"[" * 1000, 400, "bad-json", id="nested-1000"),
    pytest.param(b"[" * 60_000, 400, "bad-json", id="nested-60000"),
    pytest.param(
        b'{"requirement": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "bad-json", id="deep-value"
    ),
    pytest.param(b'{"a": {"b": {"c": 1}}}', 400, "bad-request", id="nested-3-unknown-keys"),
    pytest.param(b"\xff\xfe\x00", 400, "bad-json", id="invalid-utf8"),
    pytest.param(b'"\xc3\x28"', 400, "bad-json", id="invalid-utf8-in-string"),
    pytest.param(b"", 400, "bad-json", id="empty"),
    pytest.param(b"null", 400, "bad-json", id="null"),
    pytest.param(b'"a string"', 400, "bad-json", id="string"),
    pytest.param(b"1" * 5000, 400, "bad-json", id="huge-integer"),
    pytest.param(b"{" + b" " * 70_000 + b"}", 413, "too-large", id="too-large"),
    pytest.param(b"[" * 70_000, 413, "too-large", id="too-large-nested"),
    pytest.param(b'{"requirement": 5}', 400, "bad-request", id="number"),
    pytest.param(b'{"requirement": null}', 400, "bad-request", id="null-value"),
    pytest.param(b'{"requirement": ["demo-pkg"]}', 400, "bad-request", id="list-value"),
    pytest.param(b'{"requirement": {"x": 1}}', 400, "bad-request", id="object-value"),
    pytest.param(b'{"requirement": "\\ud800"}', 400, "bad-request", id="lone-surrogate"),
    pytest.param(b'{"requirement": "demo\\u0000pkg"}', 400, "bad-requirement", id="nul"),
    pytest.param(b'{"project": 1, "filename": "x.whl"}', 400, "bad-request", id="project-number"),
    pytest.param(b'{"project": "demo-pkg", "filename": true}', 400, "bad-request", id="bool"),
    pytest.param(b'{"project": "a/../b", "filename": "x.whl"}', 400, "bad-project", id="path"),
    pytest.param(b"NaN", 400, "bad-json", id="nan"),
    pytest.param(b'{"requirement": "demo-pkg"} trailing', 400, "bad-json", id="trailing"),
]


@pytest.mark.parametrize(("body", "status", "code"), MALFORMED_BODIES)
def test_malformed_install_bodies_are_4xx_with_a_message(
    index: Index, body: bytes, status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = install(index, body)
    assert response.status_code == status
    assert error_code(response) == code
    assert json.loads(response.get_body())["error"]["message"]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"[" * 1000, 400, "bad-json", id="nested-1000"),
        pytest.param(b"\xff", 400, "bad-json", id="invalid-utf8"),
        pytest.param(b'{"filename": ["x.whl"]}', 400, "bad-request", id="list-value"),
        pytest.param(b'{"filename": 7}', 400, "bad-request", id="number"),
        pytest.param(
            b'{"filename": "\\ud800-1.0-py3-none-any.whl"}', 400, "bad-request", id="surrogate"
        ),
        pytest.param(b'{"filename": "x' + b"y" * 2000 + b'.whl"}', 400, "bad-request", id="long"),
        pytest.param(b"{" + b" " * 70_000 + b"}", 413, "too-large", id="too-large"),
    ],
)
def test_malformed_upload_bodies_are_4xx_with_a_message(
    index: Index, body: bytes, status: int, code: str
) -> None:
    response = call(
        "sas_upload", "/sas/upload", method="POST", headers=index.auth(index.publisher), body=body
    )
    assert response.status_code == status
    assert error_code(response) == code
