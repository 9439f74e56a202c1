"""Source distributions through every path of the index, as wheels go: a blob dropped into
`uploads`, the upload SAS and its PUT, `wheelvault upload` and `status`, both page views, the
file redirects, yank, delete and reindex, and pip installing one from the index. Against
Azurite; the SAS routes, the command line and pip also with the vault stand-in and the local
functions host."""

from __future__ import annotations

import base64
import json
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from devhost.cli import index as cli
from devhost.standins.host.localhost import LocalHost
from devhost.wheels import (
    BuiltSdist,
    build_sdist,
    build_wheel,
    make_metadata,
    tar_gz_bytes,
    tar_member,
)
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.errors import RejectCode
from shared.core.records import FileRecord, format_upload_time
from shared.core.tokens import Policy, Scope
from shared.services.wiring import get_services, reset_services
from tests.fixtures.vault import VaultStandinProcess
from tests.integration.test_frontdoor import call, error_code, fetch
from tests.integration.test_publish import blob, deliver, reason, served, snapshot
from tests.support import clients
from tests.support.functions import blob_event, handler, registered
from tests.unit.test_pages import parse

pytestmark = pytest.mark.integration


def publish(store: BlobStore, sdist: BuiltSdist) -> None:
    deliver(store, sdist.filename, sdist.data)


def page(store: BlobStore, project: str) -> dict[str, dict[str, object]]:
    """The stored JSON page's files by filename, in page order."""
    data = json.loads(blob(store, layout.INDEX, layout.project_json(project)))  # type: ignore[arg-type]
    return {f["filename"]: f for f in data["files"]}


def html_anchors(store: BlobStore, project: str) -> dict[str, dict[str, str | None]]:
    return {text: attrs for attrs, text in parse(served(store, project, html=True)).anchors}


def record_of(store: BlobStore, project: str, filename: str) -> FileRecord | None:
    found = store.get(layout.INDEX, layout.record_path(canonicalize_name(project), filename))
    return None if found is None else FileRecord.from_json(found.data)


# -- the blob drop: published, listed, immutable ----------------------------------------------


def test_a_dropped_sdist_is_published_beside_the_wheel_of_its_release(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    sdist = build_sdist("Hello.World", "1.0", requires_python=">=3.9")
    wheel = build_wheel("Hello.World", "1.0", requires_python=">=3.9")
    publish(store, sdist)
    deliver(store, wheel.filename, wheel.data)

    assert blob(store, layout.INDEX, f"files/hello-world/{sdist.filename}") == sdist.data
    assert store.info(layout.INDEX, f"files/hello-world/{sdist.filename}.metadata") is None
    assert store.info(layout.INDEX, f"files/hello-world/{wheel.filename}.metadata") is not None
    record = record_of(store, "hello-world", sdist.filename)
    assert record is not None
    assert (record.name, record.version, record.requires_python) == ("Hello.World", "1.0", ">=3.9")
    assert (record.sha256, record.size, record.metadata_sha256) == (
        sdist.sha256,
        len(sdist.data),
        None,
    )
    # A wheel and the sdist of one release are two distributions: one claim each.
    claims = {b.name for b in store.list(layout.INDEX, layout.claim_prefix(record.project))}
    assert claims == {layout.claim_path(sdist.filename), layout.claim_path(wheel.filename)}

    files = page(store, "hello-world")
    assert list(files) == [wheel.filename, sdist.filename]
    assert files[sdist.filename] == {
        "filename": sdist.filename,
        "url": f"../../files/hello-world/{sdist.filename}",
        "hashes": {"sha256": sdist.sha256},
        "requires-python": ">=3.9",
        "size": len(sdist.data),
        "upload-time": format_upload_time(record.upload_time),
        "yanked": False,
    }
    assert "core-metadata" in files[wheel.filename]
    assert json.loads(served(store, "hello-world", html=False))["versions"] == ["1.0"]
    anchors = html_anchors(store, "hello-world")
    assert anchors[sdist.filename] == {
        "href": f"../../files/hello-world/{sdist.filename}#sha256={sdist.sha256}",
        "data-requires-python": ">=3.9",
    }
    assert "data-core-metadata" in anchors[wheel.filename]
    assert list(store.list(layout.UPLOADS, "")) == []


def test_an_sdist_is_immutable_under_any_spelling_of_its_release(storage_env: BlobStore) -> None:
    store = storage_env
    sdist = build_sdist("demo", "1.0")
    publish(store, sdist)
    before = snapshot(store)

    publish(store, sdist)  # the same bytes again: nothing changes
    assert snapshot(store) == before
    changed = build_sdist("demo", "1.0", requires_python=">=3.10")
    assert changed.filename == sdist.filename
    assert changed.data != sdist.data
    publish(store, changed)
    assert reason(store, sdist.filename)["code"] == RejectCode.FILE_EXISTS
    respelled = build_sdist("demo", "1.0.0")  # the same release: 1.0 == 1.0.0
    publish(store, respelled)
    refusal = reason(store, respelled.filename)
    assert refusal["code"] == RejectCode.FILE_EXISTS
    assert f"the same distribution as the published {sdist.filename}" in str(refusal["message"])

    assert snapshot(store) == before
    assert blob(store, layout.INDEX, layout.file_path("demo", sdist.filename)) == sdist.data  # type: ignore[arg-type]
    assert list(page(store, "demo")) == [sdist.filename]


# -- management: yank and unyank by version, delete with a tombstone, reindex -----------------


def test_yank_unyank_delete_and_reindex_take_the_sdist_along(storage_env: BlobStore) -> None:
    store = storage_env
    wheel = build_wheel("demo", "1.0")
    sdist, newer = build_sdist("demo", "1.0"), build_sdist("demo", "2.0")
    deliver(store, wheel.filename, wheel.data)
    publish(store, sdist)
    publish(store, newer)
    manager = get_services().manager

    assert manager.yank("demo", version="1.0", reason="broken") == [wheel.filename, sdist.filename]
    assert page(store, "demo")[sdist.filename]["yanked"] == "broken"
    assert html_anchors(store, "demo")[sdist.filename]["data-yanked"] == "broken"
    assert manager.unyank("demo", version="1.0.0") == [wheel.filename, sdist.filename]
    assert manager.yank("demo", filename=newer.filename) == [newer.filename]
    assert [f["yanked"] for f in page(store, "demo").values()] == [False, False, True]

    stored = blob(store, layout.INDEX, layout.project_json(canonicalize_name("demo")))
    store.delete(layout.INDEX, layout.project_json(canonicalize_name("demo")))
    assert manager.reindex() == ["demo"]
    assert blob(store, layout.INDEX, layout.project_json(canonicalize_name("demo"))) == stored

    manager.delete_file("demo", sdist.filename, reason="leaked a secret")
    assert list(page(store, "demo")) == [wheel.filename, newer.filename]
    assert store.info(layout.INDEX, layout.file_path("demo", sdist.filename)) is None  # type: ignore[arg-type]
    assert record_of(store, "demo", sdist.filename) is None
    tombstone = json.loads(blob(store, layout.INDEX, layout.tombstone_path(sdist.filename)))
    assert (tombstone["filename"], tombstone["reason"]) == (sdist.filename, "leaked a secret")
    before = snapshot(store)
    for again in (sdist, build_sdist("demo", "1.0.0")):
        publish(store, again)
        assert reason(store, again.filename)["code"] == RejectCode.FILENAME_TOMBSTONED
    assert snapshot(store) == before
    assert manager.reindex() == []


# -- hostile sdists: refused, quarantined with the reason, the index untouched ----------------


def _bomb() -> bytes:
    """64 MiB of zeros in a 64 KiB archive: over the cap of 16 MiB (the ratio floor)."""
    top = "demo-2.0"
    members = [
        tar_member(f"{top}/PKG-INFO", make_metadata("demo", "2.0")),
        tar_member(f"{top}/zeros.bin", bytes(64 * 1024 * 1024)),
    ]
    return tar_gz_bytes(members)


HOSTILE: dict[str, tuple[Callable[[], bytes], RejectCode]] = {
    "traversal": (
        lambda: (
            build_sdist(
                "demo", "2.0", extra_members=[tar_member("demo-2.0/../../etc/cron.d/x", b"x")]
            ).data
        ),
        RejectCode.UNSAFE_PATH,
    ),
    "symlink-out": (
        lambda: (
            build_sdist(
                "demo",
                "2.0",
                extra_members=[
                    tar_member("demo-2.0/passwd", type=tarfile.SYMTYPE, linkname="../../etc/passwd")
                ],
            ).data
        ),
        RejectCode.UNSAFE_LINK,
    ),
    "bomb": (_bomb, RejectCode.SDIST_BOMB),
    "pkg-info-name": (
        lambda: build_sdist("demo", "2.0", pkg_info_override=make_metadata("other", "2.0")).data,
        RejectCode.NAME_MISMATCH,
    ),
    "pkg-info-version": (
        lambda: build_sdist("demo", "2.0", pkg_info_override=make_metadata("demo", "2.1")).data,
        RejectCode.VERSION_MISMATCH,
    ),
    "not-gzip": (lambda: b"PK\x03\x04 a zip, named .tar.gz", RejectCode.NOT_GZIP),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_sdist_changes_nothing_and_is_quarantined(
    storage_env: BlobStore, case: str
) -> None:
    store = storage_env
    publish(store, build_sdist("demo", "1.0"))
    before = snapshot(store)
    make, code = HOSTILE[case]
    data = make()
    deliver(store, "demo-2.0.tar.gz", data)

    assert snapshot(store) == before  # no record, no file, no claim, no page change
    refusal = reason(store, "demo-2.0.tar.gz")
    assert refusal["code"] == code, refusal["message"]
    assert blob(store, layout.QUARANTINE, "demo-2.0.tar.gz") == data
    assert list(store.list(layout.UPLOADS, "")) == []


# -- the front door: upload SAS, file redirects, install SAS ----------------------------------


@dataclass
class Door:
    store: BlobStore
    reader: str
    publisher: str

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}

    def post(
        self, function: str, body: object, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST to an HTTP function (`sas_upload` is /sas/upload) as its handler receives it."""
        response = call(
            function,
            f"/{function.replace('_', '/')}",
            method="POST",
            headers=self.auth(token or self.publisher),
            body=json.dumps(body).encode(),
        )
        return response.status_code, json.loads(response.get_body())


@pytest.fixture
def door(
    storage_env: BlobStore, vault_standin: VaultStandinProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Door]:
    monkeypatch.setenv("WHEELVAULT_VAULT_URL", vault_standin.url)
    monkeypatch.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
    monkeypatch.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(vault_standin.ca_path))
    reset_services()
    tokens = get_services().tokens
    suffix = uuid.uuid4().hex[:8]
    yield Door(
        storage_env,
        reader=tokens.create(f"sdist-reader-{suffix}", Policy(Scope.READ)),
        publisher=tokens.create(f"sdist-publisher-{suffix}", Policy(Scope.PUBLISH)),
    )
    reset_services()


def test_an_upload_sas_and_its_put_publish_an_sdist(door: Door) -> None:
    store = door.store
    sdist = build_sdist("sas-demo", "1.0")
    status, answer = door.post("sas_upload", {"filename": sdist.filename})
    assert status == 200, answer
    assert fetch(str(answer["url"]), method="PUT", data=sdist.data)[0] == 201
    uploaded = store.get(layout.UPLOADS, sdist.filename)
    assert uploaded is not None
    handler("publish_upload")(
        blob_event(layout.UPLOADS, sdist.filename, uploaded.data, uploaded.etag)
    )
    assert list(page(store, "sas-demo")) == [sdist.filename]

    get_services().manager.delete_file("sas-demo", sdist.filename)
    for filename, expected, code in [
        (build_sdist("sas-demo", "2.0").filename, 200, None),
        (sdist.filename, 409, "filename-tombstoned"),
        ("sas_demo-1.0.0.tar.gz", 409, "filename-tombstoned"),  # the same release, respelled
        ("sas_demo-1.0.zip", 400, "legacy-sdist-format"),
        ("sas_demo-1.0-py3.11.egg", 400, "egg-not-accepted"),
        ("Sas.Demo-2.0.tar.gz", 400, "sdist-name-not-normalized"),
        ("sas_demo-2.0.tar.gz.txt", 400, "not-a-wheel"),
        ("../sas_demo-2.0.tar.gz", 400, "bad-filename"),
    ]:
        status, answer = door.post("sas_upload", {"filename": filename})
        assert (status, answer.get("error", {}).get("code")) == (expected, code), filename
    publish(store, build_sdist("sas-demo", "3.0"))
    status, answer = door.post("sas_upload", {"filename": "sas_demo-3.0.0.tar.gz"})
    assert (status, answer["error"]["code"]) == (409, "file-exists")


def test_an_sdist_downloads_through_a_redirect_and_has_no_metadata_file(door: Door) -> None:
    sdist = build_sdist("down-demo", "1.0")
    publish(door.store, sdist)
    route = {"project": "down-demo", "filename": sdist.filename}
    response = call("files", "/files/x", headers=door.auth(door.reader), route=route)
    assert response.status_code == 302
    assert fetch(response.headers["Location"]) == (200, sdist.data)
    route["filename"] += ".metadata"
    missing = call("files", "/files/x", headers=door.auth(door.reader), route=route)
    assert (missing.status_code, error_code(missing)) == (404, "not-found")


def test_the_install_sas_hands_out_wheels_and_names_an_sdist_only_release(door: Door) -> None:
    store = door.store
    wheel = build_wheel("mixed", "1.0")
    deliver(store, wheel.filename, wheel.data)
    publish(store, build_sdist("mixed", "1.0"))
    sdist_only = build_sdist("mixed", "2.0")
    publish(store, sdist_only)

    status, answer = door.post("sas_install", {"requirement": "mixed<2"}, door.reader)
    assert status == 200
    assert [f["filename"] for f in answer["files"]] == [wheel.filename]
    status, answer = door.post("sas_install", {"requirement": "mixed"}, door.reader)
    assert (status, answer["error"]["code"]) == (409, "no-wheel")
    assert sdist_only.filename in answer["error"]["message"]
    named = {"project": "mixed", "filename": sdist_only.filename}
    status, answer = door.post("sas_install", named, door.reader)
    assert status == 200
    assert answer["version"] == "2.0"
    assert [(f["filename"], f["sha256"]) for f in answer["files"]] == [
        (sdist_only.filename, sdist_only.sha256)
    ]


# -- the command line and pip, through the local functions host -------------------------------


@pytest.fixture
def host(door: Door) -> Iterator[LocalHost]:
    """The real app on a free port, publishing what lands in `uploads` as the platform would."""
    local = LocalHost(
        functions=registered().values(),
        port=0,
        load_settings=False,
        blob_triggers=True,
        timer_triggers=False,
        poll_interval=0.05,
    )
    with local:
        yield local


def test_wheelvault_upload_takes_a_dist_directory_and_reports_each_file(
    door: Door, host: LocalHost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel, sdist = build_wheel("cli-demo", "1.0"), build_sdist("cli-demo", "1.0")
    (dist / wheel.filename).write_bytes(wheel.data)
    (dist / sdist.filename).write_bytes(sdist.data)
    (dist / "cli_demo-1.0.zip").write_bytes(b"a legacy sdist")
    files = cli.distributions([str(dist)])
    assert [f.name for f in files] == [wheel.filename, sdist.filename]
    assert "skipping" in capsys.readouterr().err

    names = cli.upload(files, base_url=host.url, token=door.publisher, progress=False)
    states = cli.wait_for(door.store, names, timeout=30)
    assert states == {wheel.filename: ("published", ""), sdist.filename: ("published", "")}
    assert list(page(door.store, "cli-demo")) == [wheel.filename, sdist.filename]

    # A rerun with --skip-existing compares the sdist's bytes through the install SAS.
    again = cli.upload(
        files, base_url=host.url, token=door.publisher, progress=False, skip_existing=True
    )
    assert again == names
    changed = dist / sdist.filename
    changed.write_bytes(build_sdist("cli-demo", "1.0", requires_python=">=3.12").data)
    with pytest.raises(cli.IndexCliError, match="already published with different contents"):
        cli.upload(
            [changed], base_url=host.url, token=door.publisher, progress=False, skip_existing=True
        )

    hostile = dist / "cli_demo-2.0.tar.gz"
    hostile.write_bytes(b"not gzip")
    cli.upload([hostile], base_url=host.url, token=door.publisher, progress=False)
    state, detail = cli.wait_for(door.store, [hostile.name], timeout=30)[hostile.name]
    assert (state, detail.split(":")[0]) == ("quarantined", "not-gzip")
    assert cli.upload_state(door.store, "cli_demo-9.0.tar.gz") == (
        "not uploaded",
        "nothing pending, published or quarantined under that name",
    )


# A PEP 517 backend with no requirements, shipped inside the sdist (`backend-path`): pip builds
# the sdist in its usual isolated environment without fetching setuptools from anywhere, so the
# install below needs nothing but this index. Written for this test; it packs the module and
# PKG-INFO (as METADATA) into a pure wheel.
BACKEND = b"""
import base64, hashlib, pathlib, re, zipfile

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    metadata = pathlib.Path("PKG-INFO").read_bytes()
    fields = dict(re.findall(rb"^(Name|Version): (.+)$", metadata, re.M))
    name = re.sub(r"[-_.]+", "_", fields[b"Name"].decode()).lower()
    dist_info = f"{name}-{fields[b'Version'].decode()}.dist-info"
    files = {p.as_posix(): p.read_bytes() for p in sorted(pathlib.Path(name).rglob("*.py"))}
    files[f"{dist_info}/METADATA"] = metadata
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\\nTag: py3-none-any\\n"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist_info}/RECORD"] = ("\\n".join([*record, f"{dist_info}/RECORD,,"]) + "\\n").encode()
    filename = f"{dist_info[:-len('.dist-info')]}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / filename, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return filename
"""
PYPROJECT = b'[build-system]\nrequires = []\nbuild-backend = "wv_backend"\nbackend-path = ["."]\n'


def installable_sdist(name: str, version: str) -> tuple[str, bytes]:
    """(filename, bytes) of an sdist that builds with BACKEND alone."""
    module = canonicalize_name(name).replace("-", "_")
    top = f"{module}-{version}"
    members = [
        tar_member(f"{top}/PKG-INFO", make_metadata(name, version, requires_python=">=3.8")),
        tar_member(f"{top}/pyproject.toml", PYPROJECT),
        tar_member(f"{top}/wv_backend.py", BACKEND),
        tar_member(f"{top}/{module}/__init__.py", f"__version__ = {version!r}\n".encode()),
    ]
    return f"{top}.tar.gz", tar_gz_bytes(members)


def test_pip_installs_an_sdist_from_the_index(door: Door, host: LocalHost, tmp_path: Path) -> None:
    filename, data = installable_sdist("built-here", "1.0")
    door.store.put(layout.UPLOADS, filename, data, content_type="x/y")  # the blob drop
    wait_for_file(door.store, "built-here", filename)

    home = tmp_path / "home"
    python = clients.new_venv(tmp_path / "venv", home)
    index_url = f"http://reader:{door.reader}@{host.url.removeprefix('http://')}/simple/"
    result = clients.pip(python, home, "install", "-v", "--index-url", index_url, "built-here")
    assert result.returncode == 0, result.output
    assert filename in result.output  # the sdist itself was fetched, then built
    assert "Building wheel for built-here" in result.output
    assert clients.installed_version(python, "built-here", home) == "1.0"
    imported = clients.run(
        [str(python), "-c", "import built_here; print(built_here.__version__)"], home
    )
    assert imported.stdout.strip() == "1.0"


def wait_for_file(store: BlobStore, project: str, filename: str, seconds: float = 15) -> None:
    path = layout.file_path(canonicalize_name(project), filename)
    deadline = time.monotonic() + seconds
    while store.info(layout.INDEX, path) is None:
        assert time.monotonic() < deadline, f"{filename} was not published within {seconds} s"
        time.sleep(0.05)
