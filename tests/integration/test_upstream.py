"""Upstream indexes behind the front door, against Azurite and two local upstreams: a PEP 691
JSON index with `.metadata` files (tests/support/upstream_index.py) and pypiserver (HTML only).

The front door is driven through `FrontDoor.page` / `FrontDoor.file` (what the HTTP routes call
after authentication); downloads follow the 302 to Azurite with the SAS they carry.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import logging
import math
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest
from packaging.utils import canonicalize_name

from bench.front_door import PypiServer
from devhost.wheels import BuiltWheel, build_wheel
from shared.adapters.blobstore import BlobStore, StoredBlob
from shared.adapters.sas import SasSigner
from shared.adapters.upstream import UpstreamClient, parse_upstreams
from shared.core import layout
from shared.core.clock import utc_now
from shared.core.tokens import Policy, Scope
from shared.core.upstream import UpstreamPolicy, parse_upstream_urls
from shared.services.frontdoor import FrontDoor, HttpProblem, Reply
from shared.services.upstream import UpstreamIndex
from shared.services.wiring import get_services, reset_services
from tests.fixtures.vault import VaultStandinProcess
from tests.support.functions import handler
from tests.support.upstream_index import JsonUpstream

pytestmark = pytest.mark.integration

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "text/html"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
OLD = timedelta(days=30)
LOG = "wheelvault.upstream"


class CountingStore(BlobStore):
    """The real store, recording the size of every block staged (memory is bounded by them)."""

    def __init__(self, store: BlobStore) -> None:
        super().__init__(store.service)
        self.staged: list[int] = []
        self.reads = collections.Counter[str]()
        """Blob name → how many times it was read (`get`)."""

    def get(self, container: str, name: str) -> StoredBlob | None:
        self.reads[name] += 1
        return super().get(container, name)

    def stage_block(self, container: str, name: str, block_id: str, data: bytes) -> None:
        self.staged.append(len(data))
        super().stage_block(container, name, block_id, data)


@dataclass
class Setup:
    store: CountingStore
    upstream: JsonUpstream

    def door(
        self,
        *urls: str,
        policy: UpstreamPolicy | None = None,
        page_seconds: float = 600,
        miss_seconds: float = 60,
        chunk_bytes: int = 1024 * 1024,
        block_bytes: int = 4 * 1024 * 1024,
    ) -> FrontDoor:
        client = UpstreamClient(
            parse_upstreams(parse_upstream_urls(" ".join(urls or (self.upstream.url,)))),
            chunk_bytes=chunk_bytes,
        )
        index = UpstreamIndex(
            self.store,
            client,
            policy or UpstreamPolicy(),
            page_seconds=page_seconds,
            miss_seconds=miss_seconds,
            block_bytes=block_bytes,
        )
        return FrontDoor(
            self.store,
            SasSigner(self.store.service),
            lambda: pytest.fail("pages and files are authorised by the HTTP layer"),
            sas_lifetime=timedelta(minutes=5),
            page_cache_seconds=60,
            upstream=index,
        )


@pytest.fixture
def setup(storage_env: BlobStore) -> Iterator[Setup]:
    with JsonUpstream() as upstream:
        yield Setup(CountingStore(storage_env), upstream)


def page(door: FrontDoor, project: str, accept: str = JSON) -> Reply:
    return door.page(project, accept=accept, if_none_match=None, request_url=f"/simple/{project}/")


def page_json(door: FrontDoor, project: str) -> dict[str, object]:
    reply = page(door, project)
    assert reply.status == 200, reply
    data: dict[str, object] = json.loads(reply.body)
    return data


def problem(call: Callable[..., object], *args: object) -> HttpProblem:
    with pytest.raises(HttpProblem) as caught:
        call(*args)
    return caught.value


def download(door: FrontDoor, project: str, filename: str) -> bytes:
    reply = door.file(project, filename)
    assert reply.status == 302
    with NO_PROXY.open(reply.headers["Location"], timeout=30) as answer:
        data: bytes = answer.read()
    return data


def files_of(data: dict[str, object]) -> dict[str, dict[str, object]]:
    entries = data["files"]
    assert isinstance(entries, list)
    return {f["filename"]: f for f in entries}


def stored_upstream_files(store: BlobStore) -> list[str]:
    return sorted(b.name for b in store.list(layout.INDEX, layout.UPSTREAM_FILES_PREFIX))


# -- pages ---------------------------------------------------------------------------------------


def test_a_json_upstream_page_is_fetched_filtered_rendered_and_stored(setup: Setup) -> None:
    now = utc_now()
    good = build_wheel("numpyish", "1.0", requires_python=">=3.9")
    yanked = build_wheel("numpyish", "1.1")
    unhashed = build_wheel("numpyish", "1.2")
    fresh = build_wheel("numpyish", "2.0")
    setup.upstream.add("numpyish", good, now - OLD, requires_python=">=3.9")
    setup.upstream.add("numpyish", yanked, now - OLD, yanked="broken build")
    setup.upstream.add("numpyish", unhashed, now - OLD, with_hash=False)
    setup.upstream.add("numpyish", fresh, now - timedelta(hours=1))
    door = setup.door(policy=UpstreamPolicy(min_age=timedelta(days=7)))

    files = files_of(page_json(door, "numpyish"))

    assert sorted(files) == sorted([good.filename, yanked.filename])
    entry = files[good.filename]
    assert entry["url"] == f"../../files/numpyish/{good.filename}"
    assert entry["hashes"] == {"sha256": good.sha256}
    assert entry["requires-python"] == ">=3.9"
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(good.metadata).hexdigest()}
    assert entry["size"] == len(good.data)
    assert entry["upload-time"] == (now - OLD).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert files[yanked.filename]["yanked"] == "broken build"
    html = page(door, "numpyish", HTML).body.decode()
    assert f'href="../../files/numpyish/{good.filename}#sha256={good.sha256}"' in html
    assert fresh.filename not in html
    assert unhashed.filename not in html
    stored = setup.store.get(layout.INDEX, layout.upstream_page_path(canonicalize_name("numpyish")))
    assert stored is not None
    document = json.loads(stored.data)
    assert abs((utc_now() - datetime.fromisoformat(document["fetched-at"])).total_seconds()) < 60
    assert set(document["refused"]) == {unhashed.filename, fresh.filename}
    assert "MIN_AGE" in document["refused"][fresh.filename]


def test_a_fresh_page_is_served_from_storage_and_a_stale_one_fetched_again(setup: Setup) -> None:
    setup.upstream.add("pkg", build_wheel("pkg", "1.0"), utc_now() - OLD)
    fresh = setup.door()
    page_json(fresh, "pkg")
    page_json(fresh, "pkg")
    assert setup.upstream.count("/simple/pkg/") == 1

    setup.upstream.add("pkg", build_wheel("pkg", "1.1"), utc_now() - OLD)
    refetching = setup.door(page_seconds=0)
    assert len(files_of(page_json(refetching, "pkg"))) == 2
    assert setup.upstream.count("/simple/pkg/") == 2


def test_a_worker_holds_a_fresh_page_in_memory_and_reads_storage_once(setup: Setup) -> None:
    wheel = build_wheel("pkg", "1.0")
    setup.upstream.add("pkg", wheel, utc_now() - OLD)
    door = setup.door()
    first = page(door, "pkg")
    reads = setup.store.reads.copy()
    assert page(door, "pkg").body == first.body
    assert page(door, "pkg", HTML).status == 200
    # held: only the private page was looked for, twice
    assert setup.store.reads - reads == collections.Counter({"simple/pkg/index.json": 2})
    # Dropped from storage, the page is still held while fresh, and its files copied from it.
    setup.store.delete(layout.INDEX, layout.upstream_page_path(canonicalize_name("pkg")))
    assert page(door, "pkg").body == first.body
    assert download(door, "pkg", wheel.filename) == wheel.data
    assert setup.upstream.count("/simple/pkg/") == 1
    assert door.upstream is not None
    door.upstream.forget_pages()  # as a new worker starts: the upstream is asked again
    assert page(door, "pkg").body == first.body
    assert setup.upstream.count("/simple/pkg/") == 2


def test_a_stale_page_is_served_when_the_upstream_is_down(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    wheel = build_wheel("pkg", "1.0")
    setup.upstream.add("pkg", wheel, utc_now() - OLD)
    door = setup.door(page_seconds=0)
    page_json(door, "pkg")
    setup.upstream.stop()

    with caplog.at_level(logging.WARNING, LOG):
        assert list(files_of(page_json(door, "pkg"))) == [wheel.filename]
    assert "serving the stale page project=pkg" in caplog.text
    assert "connection failed" in caplog.text

    never_seen = problem(page, door, "other")
    assert (never_seen.status, never_seen.code) == (502, "upstream-unavailable")


def test_an_unknown_name_is_remembered_briefly(setup: Setup) -> None:
    door = setup.door(miss_seconds=0.5)
    for _ in range(3):
        missing = problem(page, door, "nothing-here")
        assert (missing.status, missing.code) == (404, "not-found")
    assert setup.upstream.count("/simple/nothing-here/") == 1
    time.sleep(0.6)
    problem(page, door, "nothing-here")
    assert setup.upstream.count("/simple/nothing-here/") == 2


def test_upstreams_are_tried_in_order(setup: Setup) -> None:
    with JsonUpstream() as second:
        second.add("only-second", build_wheel("only-second", "1.0"), utc_now() - OLD)
        setup.upstream.add("both", build_wheel("both", "1.0"), utc_now() - OLD)
        second.add("both", build_wheel("both", "2.0"), utc_now() - OLD)
        door = setup.door(setup.upstream.url, second.url)
        assert list(files_of(page_json(door, "only-second"))) == [
            "only_second-1.0-py3-none-any.whl"
        ]
        assert list(files_of(page_json(door, "both"))) == ["both-1.0-py3-none-any.whl"]
        assert second.count("/simple/both/") == 0


# -- policy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        (UpstreamPolicy(reserved=("acme-*",)), "WHEELVAULT_UPSTREAM_RESERVED"),
        (UpstreamPolicy(deny=("acme-tool",)), "WHEELVAULT_UPSTREAM_DENY"),
        (UpstreamPolicy(allow=("requests", "numpy*")), "WHEELVAULT_UPSTREAM_ALLOW"),
    ],
)
def test_a_refused_name_is_404_naming_the_rule_and_upstream_is_not_asked(
    setup: Setup, caplog: pytest.LogCaptureFixture, policy: UpstreamPolicy, rule: str
) -> None:
    wheel = build_wheel("acme-tool", "1.0")
    setup.upstream.add("acme-tool", wheel, utc_now() - OLD)
    door = setup.door(policy=policy)
    with caplog.at_level(logging.INFO, LOG):
        for refused in (
            problem(page, door, "acme-tool"),
            problem(door.file, "acme-tool", wheel.filename),
        ):
            assert (refused.status, refused.code) == (404, "upstream-refused")
            assert rule in refused.message
    assert "upstream refused project=acme-tool: acme-tool" in caplog.text
    assert rule in caplog.text
    assert setup.upstream.count() == 0


def test_files_kept_off_the_page_are_404_naming_the_rule(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = build_wheel("pkg", "2.0")
    unhashed = build_wheel("pkg", "1.0")
    setup.upstream.add("pkg", fresh, utc_now() - timedelta(hours=2))
    setup.upstream.add("pkg", unhashed, utc_now() - OLD, with_hash=False)
    door = setup.door(policy=UpstreamPolicy(min_age=timedelta(days=1)))
    with caplog.at_level(logging.INFO, LOG):
        young = problem(door.file, "pkg", fresh.filename)
        no_hash = problem(door.file, "pkg", unhashed.filename)
    assert (young.status, young.code) == (404, "upstream-refused")
    assert "younger than WHEELVAULT_UPSTREAM_MIN_AGE" in young.message
    assert (no_hash.status, no_hash.code) == (404, "upstream-refused")
    assert "no sha256" in no_hash.message
    assert f"upstream refused file project=pkg file={fresh.filename}" in caplog.text
    assert setup.upstream.count("/files/") == 0
    assert stored_upstream_files(setup.store) == []


def test_a_private_project_never_consults_upstream(setup: Setup, storage_env: BlobStore) -> None:
    private = build_wheel("acme-core", "1.0")
    upstream_wheel = build_wheel("acme-core", "99.0")
    setup.upstream.add("acme-core", upstream_wheel, utc_now() - OLD)
    reset_services()
    services = get_services()  # no upstream configured: publish as usual
    storage_env.put(layout.UPLOADS, private.filename, private.data, content_type="x/y")
    services.publisher.publish_upload(private.filename, [private.data])
    door = setup.door()

    assert list(files_of(page_json(door, "acme-core"))) == [private.filename]
    assert download(door, "acme-core", private.filename) == private.data
    missing = problem(door.file, "acme-core", upstream_wheel.filename)
    assert (missing.status, missing.code) == (404, "not-found")
    assert setup.upstream.count() == 0


# -- files ---------------------------------------------------------------------------------------


def test_the_first_download_copies_file_and_metadata_and_later_ones_stay_local(
    setup: Setup,
) -> None:
    wheel = build_wheel("pkg", "1.0")
    setup.upstream.add("pkg", wheel, utc_now() - OLD)
    door = setup.door()

    assert download(door, "pkg", wheel.filename) == wheel.data
    assert stored_upstream_files(setup.store) == [
        f"upstream/files/pkg/{wheel.filename}",
        f"upstream/files/pkg/{wheel.filename}.metadata",
    ]
    info = setup.store.info(layout.INDEX, f"upstream/files/pkg/{wheel.filename}")
    assert info is not None
    assert info.metadata == {"source": "upstream", "sha256": wheel.sha256}
    assert setup.upstream.count("/files/") == 2
    setup.upstream.stop()

    again = setup.door()  # a new worker: nothing in memory
    assert download(again, "pkg", wheel.filename) == wheel.data
    assert download(again, "pkg", wheel.filename + ".metadata") == wheel.metadata


def test_metadata_alone_is_copied_for_resolvers(setup: Setup) -> None:
    wheel = build_wheel("pkg", "1.0")
    setup.upstream.add("pkg", wheel, utc_now() - OLD)
    door = setup.door()
    assert download(door, "pkg", wheel.filename + ".metadata") == wheel.metadata
    assert setup.upstream.hits(f"/files/{wheel.filename}") == 0
    assert stored_upstream_files(setup.store) == [f"upstream/files/pkg/{wheel.filename}.metadata"]


@pytest.mark.parametrize(
    ("tampered", "message"),
    [
        (lambda w: build_wheel("pkg", "1.0", summary="evil").data, "does not match its sha256"),
        (lambda w: w.data + b"\0" * 5_000_000, "larger than its page says"),
    ],
    ids=["other-bytes", "longer"],
)
def test_a_tampered_file_is_refused_and_nothing_is_stored(
    setup: Setup,
    caplog: pytest.LogCaptureFixture,
    tampered: Callable[[BuiltWheel], bytes],
    message: str,
) -> None:
    wheel = build_wheel("pkg", "1.0")
    setup.upstream.add("pkg", wheel, utc_now() - OLD)
    setup.upstream.tamper(wheel.filename, tampered(wheel))
    door = setup.door(block_bytes=1024 * 1024)
    with caplog.at_level(logging.WARNING, LOG):
        refused = problem(door.file, "pkg", wheel.filename)
    assert (refused.status, refused.code) == (502, "upstream-hash-mismatch")
    assert message in refused.message
    assert "refused" in caplog.text
    assert stored_upstream_files(setup.store) == []
    assert setup.store.info(layout.INDEX, f"upstream/files/pkg/{wheel.filename}") is None
    assert len(setup.store.staged) <= 2  # a longer file is given up as soon as it is longer


@pytest.mark.parametrize(
    "block_bytes", [1024 * 1024, 4 * 1024 * 1024], ids=["staged-blocks", "one-put"]
)
def test_two_concurrent_first_downloads_store_one_correct_file(
    setup: Setup, block_bytes: int
) -> None:
    wheel = build_wheel("pkg", "1.0", payload_bytes=3 * 1024 * 1024)
    setup.upstream.add("pkg", wheel, utc_now() - OLD)
    setup.upstream.hold_files(2)  # both copies are in flight before either gets a byte
    doors = [setup.door(block_bytes=block_bytes) for _ in range(2)]
    page_json(doors[0], "pkg")
    results: list[bytes | BaseException] = []

    def first_download(door: FrontDoor) -> None:
        try:
            results.append(download(door, "pkg", wheel.filename))
        except BaseException as error:
            results.append(error)

    threads = [threading.Thread(target=first_download, args=(d,)) for d in doors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [wheel.data, wheel.data]
    assert setup.upstream.hits(f"/files/{wheel.filename}") == 2
    stored = setup.store.get(layout.INDEX, f"upstream/files/pkg/{wheel.filename}")
    assert stored is not None
    assert hashlib.sha256(stored.data).hexdigest() == wheel.sha256
    assert (len(setup.store.staged) > 0) == (block_bytes < len(wheel.data))


def test_a_large_file_is_copied_in_bounded_blocks(setup: Setup) -> None:
    wheel = build_wheel("big", "1.0", payload_bytes=50 * 1024 * 1024)
    setup.upstream.add("big", wheel, utc_now() - OLD)
    block = 4 * 1024 * 1024
    door = setup.door(block_bytes=block, chunk_bytes=256 * 1024)
    tracemalloc.start()
    try:
        reply = door.file("big", wheel.filename)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reply.status == 302
    # Measured: 17 MiB for 50 MB and for 200 MB alike (a block, its copy, the SDK's buffers).
    assert peak < len(wheel.data) / 2
    wheel_blocks = setup.store.staged[: math.ceil(len(wheel.data) / block)]
    assert max(setup.store.staged) <= block
    assert sum(wheel_blocks) == len(wheel.data)
    assert len(wheel_blocks) == math.ceil(len(wheel.data) / block) >= 13
    info = setup.store.info(layout.INDEX, f"upstream/files/big/{wheel.filename}")
    assert info is not None
    assert info.size == len(wheel.data)
    assert info.metadata["sha256"] == wheel.sha256


# -- credentials, pypiserver, wiring -------------------------------------------------------------


def test_credentials_go_to_the_upstream_only_and_never_into_logs(
    storage_env: BlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    wheel = build_wheel("pkg", "1.0")
    with JsonUpstream(credentials=("reader", "s3cr3t-pass")) as upstream:
        upstream.add("pkg", wheel, utc_now() - OLD)
        setup = Setup(CountingStore(storage_env), upstream)
        door = setup.door(page_seconds=0)
        with caplog.at_level(logging.DEBUG):
            assert download(door, "pkg", wheel.filename) == wheel.data
            upstream.stop()
            page_json(door, "pkg")  # stale, with the upstream's URL in the warning
            failed = problem(page, door, "other")
    assert upstream.unauthorized == 0
    assert "127.0.0.1" in caplog.text
    assert "s3cr3t-pass" not in caplog.text
    assert "s3cr3t-pass" not in failed.message
    stored = setup.store.get(layout.INDEX, layout.upstream_page_path(canonicalize_name("pkg")))
    assert stored is not None
    assert b"s3cr3t-pass" not in stored.data


def test_an_html_only_upstream_pypiserver(storage_env: BlobStore, tmp_path: Path) -> None:
    wheel = build_wheel("htmlpkg", "1.0")
    packages = tmp_path / "packages"
    packages.mkdir()
    (packages / wheel.filename).write_bytes(wheel.data)
    with PypiServer(packages, tmp_path / "pypiserver.log") as server, JsonUpstream() as unused:
        setup = Setup(CountingStore(storage_env), unused)
        door = setup.door(server.index_url)
        entry = files_of(page_json(door, "htmlpkg"))[wheel.filename]
        assert entry["hashes"] == {"sha256": wheel.sha256}
        assert "upload-time" not in entry
        assert "core-metadata" not in entry
        assert download(door, "htmlpkg", wheel.filename) == wheel.data
        # Without upload times a minimum age offers nothing (fail closed), saying why.
        strict = setup.door(server.index_url, policy=UpstreamPolicy(min_age=timedelta(days=1)))
        setup.store.delete(layout.INDEX, layout.upstream_page_path(canonicalize_name("htmlpkg")))
        assert files_of(page_json(strict, "htmlpkg")) == {}
    assert stored_upstream_files(setup.store) == [f"upstream/files/htmlpkg/{wheel.filename}"]


def test_services_build_the_upstream_only_when_urls_are_set(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reset_services()
    assert get_services().front_door.upstream is None
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_URLS", "http://127.0.0.1:9/simple/")
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_RESERVED", "acme-*")
    reset_services()
    upstream = get_services().front_door.upstream
    assert upstream is not None
    assert upstream.policy.reserved == ("acme-*",)
    reset_services()


def test_without_upstream_an_unknown_project_is_404_as_before(storage_env: BlobStore) -> None:
    reset_services()
    door = get_services().front_door
    missing = problem(page, door, "nothing")
    assert (missing.status, missing.code, missing.message) == (
        404,
        "not-found",
        "no project named 'nothing' in this index",
    )
    missing = problem(door.file, "nothing", "nothing-1.0-py3-none-any.whl")
    assert (missing.status, missing.code) == (404, "not-found")


def test_the_http_routes_serve_upstream_pages_files_and_refusals(
    setup: Setup, vault_standin: VaultStandinProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = build_wheel("pkg", "1.0")
    setup.upstream.add("pkg", wheel, utc_now() - OLD)
    setup.upstream.add("acme-app", build_wheel("acme-app", "1.0"), utc_now() - OLD)
    monkeypatch.setenv("WHEELVAULT_VAULT_URL", vault_standin.url)
    monkeypatch.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
    monkeypatch.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(vault_standin.ca_path))
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_URLS", setup.upstream.url)
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_RESERVED", "acme-*")
    reset_services()
    token = get_services().tokens.create(f"reader-{uuid.uuid4().hex[:8]}", Policy(Scope.READ))
    auth = {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}

    def call(name: str, **route: str) -> func.HttpResponse:
        request = func.HttpRequest(
            method="GET",
            url="http://127.0.0.1:7071/" + "/".join(route.values()) + "/",
            headers={**auth, "Accept": JSON},
            params={},
            route_params=route,
            body=b"",
        )
        response: func.HttpResponse = handler(name)(request)
        return response

    listed = call("simple_project", project="pkg")
    assert listed.status_code == 200
    assert list(files_of(json.loads(listed.get_body()))) == [wheel.filename]
    redirected = call("files", project="pkg", filename=wheel.filename)
    assert redirected.status_code == 302
    with NO_PROXY.open(redirected.headers["Location"], timeout=30) as answer:
        assert answer.read() == wheel.data
    reserved = call("simple_project", project="acme-app")
    assert reserved.status_code == 404
    error = json.loads(reserved.get_body())["error"]
    assert error["code"] == "upstream-refused"
    assert "WHEELVAULT_UPSTREAM_RESERVED" in error["message"]
    assert setup.upstream.count("/simple/acme-app/") == 0
    reset_services()


def test_credentials_are_never_sent_to_another_origin(storage_env: BlobStore) -> None:
    wheel = build_wheel("pkg", "1.0")
    with (
        JsonUpstream(credentials=("reader", "s3cr3t-pass")) as index,
        JsonUpstream() as file_host,
    ):
        index.add("pkg", wheel, utc_now() - OLD)
        file_host.add("pkg", wheel, utc_now() - OLD)
        index.files_url = f"http://127.0.0.1:{file_host.port}/files/"
        door = Setup(CountingStore(storage_env), index).door()
        assert download(door, "pkg", wheel.filename) == wheel.data
    assert index.hits("/simple/pkg/") == 1
    assert index.sent_authorization == 1
    assert file_host.hits(f"/files/{wheel.filename}") == 1
    assert file_host.hits(f"/files/{wheel.filename}.metadata") == 1
    assert file_host.sent_authorization == 0
