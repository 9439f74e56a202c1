"""Publishing through the registered blob-trigger function, against Azurite."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from packaging.utils import NormalizedName, canonicalize_name

from devhost.wheels import BuiltWheel, build_wheel, zip_bytes
from shared.adapters.blobstore import BlobInfo, BlobStore, StoredBlob
from shared.core import layout
from shared.core.errors import RejectCode
from shared.core.records import FileRecord
from shared.services.frontdoor import HttpProblem
from shared.services.pages import IndexPages
from shared.services.records import IndexRecords
from shared.services.wiring import build_services, get_services, install_services
from shared.settings import get_settings
from tests.support.functions import blob_event, function, handler

pytestmark = pytest.mark.integration

Publish = Callable[..., None]


def deliver(store: BlobStore, name: str, data: bytes) -> None:
    """Drop `data` as uploads/{name}, then deliver the event the way the host does."""
    etag = store.put(layout.UPLOADS, name, data, content_type=layout.BINARY_TYPE)
    handler("publish_upload")(blob_event(layout.UPLOADS, name, data, etag))


def publish(store: BlobStore, wheel: BuiltWheel) -> None:
    deliver(store, wheel.filename, wheel.data)


def snapshot(store: BlobStore, container: str = layout.INDEX) -> dict[str, str]:
    return {b.name: b.etag for b in store.list(container, "")}


def blob(store: BlobStore, container: str, name: str) -> bytes:
    found = store.get(container, name)
    assert found is not None, f"{container}/{name} missing"
    return found.data


def reason(store: BlobStore, name: str) -> dict[str, object]:
    return json.loads(blob(store, layout.QUARANTINE, layout.reason_path(name)))  # type: ignore[no-any-return]


def page_files(store: BlobStore, project: str) -> list[str]:
    page = json.loads(blob(store, layout.INDEX, layout.project_json(project)))  # type: ignore[arg-type]
    return [f["filename"] for f in page["files"]]


def root_projects(store: BlobStore) -> list[str]:
    return [p["name"] for p in json.loads(blob(store, layout.INDEX, layout.ROOT_JSON))["projects"]]


def served(store: BlobStore, project: str | None, *, html: bool) -> bytes:
    """A page as the front door serves it (HTML or PEP 691 JSON), 404s as b""."""
    accept = "text/html" if html else "application/vnd.pypi.simple.v1+json"
    try:
        reply = get_services().front_door.page(
            project, accept=accept, if_none_match=None, request_url="http://x/simple/"
        )
    except HttpProblem as problem:
        if problem.status != 404:
            raise
        return b""
    assert reply.status == 200
    return reply.body


def html_files(store: BlobStore, project: str) -> list[str]:
    """The filenames the served HTML page links, in order."""
    return re.findall(r">([^<]+\.whl)</a>", served(store, project, html=True).decode())


def test_binding_metadata() -> None:
    """What the host reads when it indexes the app (the function.json it generates)."""
    function_json = json.loads(function("publish_upload").get_function_json())
    assert function_json["scriptFile"] == "function_app.py"
    assert function_json["bindings"] == [
        {
            "direction": "IN",
            "type": "blobTrigger",
            "name": "upload",
            "path": "uploads/{name}",
            "connection": "WHEELVAULT_STORAGE",
            "source": "EventGrid",
        }
    ]


def test_publish_writes_file_sidecar_record_and_pages(storage_env: BlobStore) -> None:
    store = storage_env
    wheel = build_wheel("Hello.World", "1.0", requires_python=">=3.9")
    publish(store, wheel)

    file_blob = store.get(layout.INDEX, "files/hello-world/" + wheel.filename)
    assert file_blob is not None
    assert file_blob.data == wheel.data
    assert file_blob.content_type == "application/octet-stream"
    assert (
        blob(store, layout.INDEX, f"files/hello-world/{wheel.filename}.metadata") == wheel.metadata
    )
    record = FileRecord.from_json(
        blob(store, layout.INDEX, f"records/hello-world/{wheel.filename}.json")
    )
    assert (record.project, record.name, record.version) == ("hello-world", "Hello.World", "1.0")
    assert (record.sha256, record.size) == (wheel.sha256, len(wheel.data))
    assert record.requires_python == ">=3.9"
    assert record.yanked is False
    assert page_files(store, "hello-world") == [wheel.filename]
    assert root_projects(store) == ["hello-world"]
    assert (
        f'href="../../files/hello-world/{wheel.filename}#sha256={wheel.sha256}"'.encode()
        in served(store, "hello-world", html=True)
    )
    page_json = store.get(layout.INDEX, "simple/hello-world/index.json")
    assert page_json is not None
    assert page_json.content_type == "application/vnd.pypi.simple.v1+json"
    assert store.info(layout.INDEX, "simple/index.json") is not None
    # One stored truth per page: the HTML view is rendered from the JSON when served.
    assert not [name for name in snapshot(store) if name.endswith(".html")]
    assert blob(store, layout.INDEX, layout.claim_path(wheel.filename)) == (
        json.dumps({"filename": wheel.filename}).encode() + b"\n"
    )
    props = storage_env.service.get_blob_client(
        layout.INDEX, "files/hello-world/" + wheel.filename
    ).get_blob_properties()
    assert not props.content_settings.content_encoding
    assert store.info(layout.UPLOADS, wheel.filename) is None  # the upload is gone
    assert snapshot(store, layout.QUARANTINE) == {}


def test_the_same_upload_twice_is_one_file_and_no_change(storage_env: BlobStore) -> None:
    store = storage_env
    wheel = build_wheel("twice", "1.0")
    publish(store, wheel)
    before = snapshot(store)
    publish(store, wheel)
    assert snapshot(store) == before
    assert page_files(store, "twice") == [wheel.filename]
    assert store.info(layout.UPLOADS, wheel.filename) is None
    assert snapshot(store, layout.QUARANTINE) == {}


def test_different_bytes_under_a_published_filename_are_rejected(storage_env: BlobStore) -> None:
    store = storage_env
    publish(store, build_wheel("immutable", "1.0"))
    before = snapshot(store)
    impostor = build_wheel("immutable", "1.0", summary="something else")
    publish(store, impostor)
    assert snapshot(store) == before
    assert reason(store, impostor.filename)["code"] == "file-exists"
    assert blob(store, layout.QUARANTINE, impostor.filename) == impostor.data


def bad_inputs() -> list[tuple[str, bytes, RejectCode]]:
    good = build_wheel("bad", "1.0")
    return [
        ("bad-1.0.tar.gz", b"not really a tarball", RejectCode.NOT_GZIP),
        ("bad-1.0.zip", good.data, RejectCode.LEGACY_SDIST_FORMAT),
        ("notes.txt", b"hello", RejectCode.NOT_A_WHEEL),
        ("..evil-1.0-py3-none-any.whl", good.data, RejectCode.BAD_FILENAME),
        ("dir/bad-1.0-py3-none-any.whl", good.data, RejectCode.BAD_FILENAME),
        ("bad-1.0-py3-none-any\x07.whl", good.data, RejectCode.BAD_FILENAME),
        ("bad-1.0.whl", good.data, RejectCode.INVALID_WHEEL_FILENAME),
        ("bad-1.0-py3-none-any.whl", b"\x00" * 200, RejectCode.NOT_A_ZIP),
        ("bad-1.0-py3-none-any.whl", good.data[: len(good.data) // 2], RejectCode.CORRUPT_ZIP),
        (
            "bad-1.0-py3-none-any.whl",
            zip_bytes([("../escape.py", b"x"), *_dist_info("bad", "1.0")]),
            RejectCode.UNSAFE_PATH,
        ),
        (
            "bad-1.0-py3-none-any.whl",
            zip_bytes(
                [("bad/__init__.py", b"1"), ("bad/__init__.py", b"2"), *_dist_info("bad", "1.0")]
            ),
            RejectCode.DUPLICATE_MEMBER,
        ),
        (
            "bad-1.0-py3-none-any.whl",
            zip_bytes([("bad/zeros.bin", b"\x00" * (32 * 1024 * 1024)), *_dist_info("bad", "1.0")]),
            RejectCode.ZIP_BOMB,
        ),
        (
            "bad-1.0-py3-none-any.whl",
            zip_bytes([("bad/__init__.py", b"")]),
            RejectCode.DIST_INFO_MISSING,
        ),
        ("bad-1.0-py3-none-any.whl", build_wheel("other", "1.0").data, RejectCode.NAME_MISMATCH),
        ("bad-1.0-py3-none-any.whl", build_wheel("bad", "2.0").data, RejectCode.VERSION_MISMATCH),
        (
            "bad-1.0-py3-none-any.whl",
            build_wheel("bad", "1.0", requires_python='>=3.8"><script>alert(1)</script>').data,
            RejectCode.REQUIRES_PYTHON_INVALID,
        ),
        (
            "bad-1.0-py3-none-any.whl",
            build_wheel("bad", "1.0", metadata_override=b"this is not metadata\xff").data,
            RejectCode.METADATA_INVALID,
        ),
    ]


def _dist_info(name: str, version: str) -> list[tuple[str, bytes]]:
    wheel = build_wheel(name, version)
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(wheel.data)) as archive:
        return [
            (i.filename, archive.read(i)) for i in archive.infolist() if ".dist-info/" in i.filename
        ]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    bad_inputs(),
    ids=lambda v: str(v)[:40] if isinstance(v, str) else None,
)
def test_bad_input_is_quarantined_and_the_index_is_untouched(
    storage_env: BlobStore, name: str, data: bytes, code: RejectCode
) -> None:
    store = storage_env
    publish(store, build_wheel("bystander", "1.0"))
    before = snapshot(store)
    deliver(store, name, data)
    assert snapshot(store) == before
    found = reason(store, name)
    assert found["code"] == code.value
    assert set(found) >= {"code", "message", "at", "sha256", "size"}
    assert found["size"] == len(data)
    assert blob(store, layout.QUARANTINE, name) == data
    assert store.info(layout.UPLOADS, name) is None


def test_too_large_upload_is_quarantined(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.services.wiring import reset_services

    monkeypatch.setenv("WHEELVAULT_MAX_UPLOAD_BYTES", "2048")
    reset_services()
    wheel = build_wheel("big", "1.0", payload_bytes=10_000)
    publish(storage_env, wheel)
    assert reason(storage_env, wheel.filename)["code"] == "too-large"
    assert blob(storage_env, layout.QUARANTINE, wheel.filename) == wheel.data
    assert snapshot(storage_env) == {}


def test_two_different_rejects_under_one_name_are_both_kept(storage_env: BlobStore) -> None:
    store = storage_env
    deliver(store, "x.txt", b"first")
    deliver(store, "x.txt", b"second")
    assert blob(store, layout.QUARANTINE, "x.txt") == b"first"
    assert blob(store, layout.QUARANTINE, "x.txt.1") == b"second"
    assert reason(store, "x.txt.1")["code"] == "not-a-wheel"


def test_an_upload_replaced_during_publishing_is_not_deleted(storage_env: BlobStore) -> None:
    store = storage_env
    wheel = build_wheel("racy", "1.0")
    old_etag = store.put(
        layout.UPLOADS, wheel.filename, b"old bytes", content_type=layout.BINARY_TYPE
    )
    store.put(layout.UPLOADS, wheel.filename, wheel.data, content_type=layout.BINARY_TYPE)
    get_services().publisher.publish_upload(wheel.filename, [b"old bytes"], etag=old_etag)
    assert blob(store, layout.UPLOADS, wheel.filename) == wheel.data


def test_concurrent_publishers_lose_nothing(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = storage_env
    # Widen the window between reading the page and writing it back, so that a page write that
    # is not a true compare-and-swap would lose files here (checked by breaking it once).
    original = IndexPages._project_page

    def slow_read(self: IndexPages, project: NormalizedName, current: StoredBlob | None) -> Any:
        page = original(self, project, current)
        time.sleep(random.uniform(0, 0.03))
        return page

    monkeypatch.setattr(IndexPages, "_project_page", slow_read)
    same_project = [build_wheel("crowd", f"1.{i}") for i in range(50)]
    new_projects = [build_wheel(f"solo-{i}", "1.0") for i in range(20)]
    done: set[str] = set()  # filenames whose publish returned
    violations: list[str] = []
    finished = threading.Event()

    def run(wheel: BuiltWheel) -> None:
        publish(store, wheel)
        done.add(wheel.filename)

    def watch() -> None:
        """Once a publish has returned, its file must stay on the page from then on."""
        while not finished.is_set():
            expected = {f for f in done if f.startswith("crowd-")}
            if store.info(layout.INDEX, layout.project_json("crowd")) is not None:
                missing = expected - set(page_files(store, "crowd"))
                violations.extend(sorted(missing))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(run, same_project + new_projects))
    finally:
        finished.set()
        watcher.join()

    assert violations == []
    assert sorted(page_files(store, "crowd")) == sorted(w.filename for w in same_project)
    assert root_projects(store) == sorted(["crowd", *(f"solo-{i}" for i in range(20))])
    for wheel in new_projects:
        assert page_files(store, wheel.filename.split("-1.0")[0].replace("_", "-")) == [
            wheel.filename
        ]
    assert snapshot(store, layout.QUARANTINE) == {}
    assert snapshot(store, layout.UPLOADS) == {}


def test_a_page_write_from_a_stale_read_loses_the_swap(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic interleaving: A reads the page, B publishes completely, then A writes."""
    store = storage_env
    first = build_wheel("race", "1.0")
    publish(store, first)
    slow, fast = build_wheel("race", "2.0"), build_wheel("race", "3.0")
    read, resume = threading.Event(), threading.Event()
    original = IndexPages._project_page

    def paused_read(self: IndexPages, project: NormalizedName, current: StoredBlob | None) -> Any:
        page = original(self, project, current)
        if threading.current_thread().name == "writer-a" and not read.is_set():
            read.set()
            resume.wait(10)
        return page

    monkeypatch.setattr(IndexPages, "_project_page", paused_read)
    writer_a = threading.Thread(target=publish, args=(store, slow), name="writer-a")
    writer_a.start()
    assert read.wait(10)
    publish(store, fast)  # B's whole publish happens while A holds a stale page
    resume.set()
    writer_a.join(10)
    assert sorted(page_files(store, "race")) == sorted(w.filename for w in (first, slow, fast))
    assert get_services().manager.reindex() == []


def test_a_reindex_from_a_stale_listing_loses_the_swap(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: reindex lists the records, B publishes completely, then reindex writes."""
    store = storage_env
    first = build_wheel("relist", "1.0")
    publish(store, first)
    store.put(layout.INDEX, layout.project_json("relist"), b"{}", content_type="x/y")  # damaged
    late = build_wheel("relist", "2.0")
    listed, resume = threading.Event(), threading.Event()
    original = IndexRecords.load_project

    def paused_load(self: IndexRecords, project: NormalizedName) -> list[FileRecord]:
        records = original(self, project)
        if threading.current_thread().name == "reindexer" and not listed.is_set():
            listed.set()
            resume.wait(10)
        return records

    monkeypatch.setattr(IndexRecords, "load_project", paused_load)
    reindexer = threading.Thread(target=get_services().manager.reindex, name="reindexer")
    reindexer.start()
    assert listed.wait(10)
    publish(store, late)
    resume.set()
    reindexer.join(10)
    assert sorted(page_files(store, "relist")) == sorted([first.filename, late.filename])


# -- immutability keyed on the distribution ------------------------------------------------


def test_a_respelled_filename_of_a_published_distribution_is_refused(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    original = build_wheel("hello_wheelvault", "1.0.0")
    publish(store, original)
    before = snapshot(store)
    respelled = "Hello_WheelVault-1.0.0-py3-none-any.whl"  # the same bytes, another spelling
    deliver(store, respelled, original.data)
    shorter = build_wheel("hello_wheelvault", "1.0", summary="other bytes")  # 1.0 == 1.0.0
    publish(store, shorter)
    assert snapshot(store) == before
    for name in (respelled, shorter.filename):
        found = reason(store, name)
        assert found["code"] == "file-exists"
        assert original.filename in str(found["message"])
    publish(store, original)  # an identical re-upload stays a success that changes nothing
    assert snapshot(store) == before
    assert page_files(store, "hello-wheelvault") == [original.filename]
    assert store.info(layout.UPLOADS, original.filename) is None


def test_another_build_or_tag_of_a_version_is_another_file(storage_env: BlobStore) -> None:
    store = storage_env
    wheels = [
        build_wheel("hello_wheelvault", "1.0.0"),
        build_wheel("hello_wheelvault", "1.0", build="1"),
        build_wheel("hello_wheelvault", "1.0", tag="py2.py3-none-any"),
        build_wheel("hello_wheelvault", "1.0.1"),
    ]
    for wheel in wheels:
        publish(store, wheel)
    assert sorted(page_files(store, "hello-wheelvault")) == sorted(w.filename for w in wheels)
    assert snapshot(store, layout.QUARANTINE) == {}


def test_two_racing_spellings_of_one_distribution_cannot_both_win(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: A passes its checks, B publishes completely, then A writes."""
    store = storage_env
    slow = build_wheel("hello_wheelvault", "1.0")
    fast = build_wheel("hello_wheelvault", "1.0.0", summary="other bytes")
    checked, resume = threading.Event(), threading.Event()
    original = BlobStore.info

    def paused_info(self: BlobStore, container: str, name: str) -> BlobInfo | None:
        found = original(self, container, name)
        if threading.current_thread().name == "writer-a" and name.startswith("tombstones/"):
            checked.set()
            resume.wait(10)
        return found

    monkeypatch.setattr(BlobStore, "info", paused_info)
    writer_a = threading.Thread(target=publish, args=(store, slow), name="writer-a")
    writer_a.start()
    assert checked.wait(10)
    publish(store, fast)
    resume.set()
    writer_a.join(10)
    assert page_files(store, "hello-wheelvault") == [fast.filename]
    assert reason(store, slow.filename)["code"] == "file-exists"
    assert store.info(layout.INDEX, layout.file_path("hello-wheelvault", slow.filename)) is None


# -- one truth per page: HTML and JSON cannot disagree ----------------------------------------


def test_interleaved_publishers_cannot_make_html_and_json_disagree(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bad interleaving of two publishers of one project, pinned: both read the page state,
    then A writes the HTML, B the JSON, and A's JSON and B's HTML lose their swaps. Both return
    (each finds its file in the JSON); the HTML must list B's file all the same."""
    store = storage_env
    first = build_wheel("views", "1.0")
    publish(store, first)
    a, b = build_wheel("views", "2.0"), build_wheel("views", "3.0")
    script = [("a", "html"), ("b", "json"), ("a", "json"), ("b", "html")]
    done: list[tuple[str, str]] = []
    turn = threading.Condition()
    a_read, b_read = threading.Event(), threading.Event()
    original_put = BlobStore.put

    def scripted_put(self: BlobStore, container: str, name: str, data: Any, **kw: Any) -> str:
        """Page writes go in the script's order (as far as they happen at all)."""
        if not name.startswith("simple/views/"):
            return original_put(self, container, name, data, **kw)
        step = ("b" if b.filename.encode() in data else "a", name.rsplit(".", 1)[1])
        scripted = step in script and step not in done
        if scripted:
            with turn:
                turn.wait_for(lambda: set(script[: script.index(step)]) <= set(done), 1.0)
        try:
            return original_put(self, container, name, data, **kw)
        finally:
            if scripted:
                with turn:
                    done.append(step)
                    turn.notify_all()

    def pause_after_reading(original: Callable[..., Any]) -> Callable[..., Any]:
        """A waits after reading the page state until B has read it too."""

        def read(*args: Any) -> Any:
            result = original(*args)
            if threading.current_thread().name == "writer-a" and not a_read.is_set():
                a_read.set()
                b_read.wait(5)
            if threading.current_thread().name == "writer-b":
                b_read.set()
            return result

        return read

    monkeypatch.setattr(BlobStore, "put", scripted_put)
    for owner, method in ((IndexRecords, "load_project"), (IndexPages, "_project_page")):
        # whichever reads the state to change
        monkeypatch.setattr(owner, method, pause_after_reading(getattr(owner, method)))
    writer_a = threading.Thread(target=publish, args=(store, a), name="writer-a")
    writer_b = threading.Thread(target=publish, args=(store, b), name="writer-b")
    writer_a.start()
    assert a_read.wait(10)
    writer_b.start()
    writer_a.join(20)
    writer_b.join(20)
    everything = sorted(w.filename for w in (first, a, b))
    assert sorted(page_files(store, "views")) == everything
    assert sorted(html_files(store, "views")) == everything
    assert html_files(store, "views") == page_files(store, "views")


# -- constant cost, crash safety -----------------------------------------------------------


class Requests:
    """Records the storage requests a client sends (its `raw_request_hook`)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> None:
        http = getattr(request, "http_request", request)
        with self._lock:
            self.seen.append((str(http.method), str(http.url)))

    def take(self) -> list[tuple[str, str]]:
        with self._lock:
            taken, self.seen = self.seen, []
        return taken


def counted() -> Requests:
    """Serve the functions from a client whose requests are recorded."""
    requests = Requests()
    install_services(build_services(get_settings(), raw_request_hook=requests))
    return requests


def listings(requests: list[tuple[str, str]]) -> list[str]:
    return [url for _, url in requests if "comp=list" in url]


def test_a_publish_costs_the_same_whatever_the_size_of_the_project(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    requests = counted()
    cost = {}
    for size in (2, 25):
        project = f"sized-{size}"
        for i in range(size):
            publish(store, build_wheel(project, f"0.{i}"))
        requests.take()
        publish(store, build_wheel(project, "9.0"))
        made = requests.take()
        assert listings(made) == [], "a publish lists nothing"
        cost[size] = len(made)
    assert cost[2] == cost[25]
    assert cost[2] <= 8  # tombstone, claim, file, sidecar, record, page read + write, upload


PUBLISH_WRITES = ("dists/", "files/", "files/", "records/", "simple/index.json", "simple/")


@pytest.mark.parametrize("crash_at", range(len(PUBLISH_WRITES)), ids=lambda n: PUBLISH_WRITES[n])
def test_a_publish_cut_short_after_any_write_is_completed_by_the_next_delivery(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    """The process dies before its `crash_at`-th index write; the platform delivers again."""
    store = storage_env
    publish(store, build_wheel("bystander", "1.0"))
    wheel = build_wheel("phoenix", "1.0")
    writes: list[str] = []
    original_put = BlobStore.put

    def dying_put(self: BlobStore, container: str, name: str, data: Any, **kw: Any) -> str:
        if container == layout.INDEX:
            writes.append(name)
            if len(writes) == crash_at + 1:
                raise ConnectionError("the worker died")
        return original_put(self, container, name, data, **kw)

    monkeypatch.setattr(BlobStore, "put", dying_put)
    with pytest.raises(ConnectionError):
        publish(store, wheel)
    assert writes[-1].startswith(PUBLISH_WRITES[crash_at])
    monkeypatch.setattr(BlobStore, "put", original_put)
    handler("publish_upload")(  # the same event again: the upload is still there
        blob_event(layout.UPLOADS, wheel.filename, wheel.data, None)
    )
    assert page_files(store, "phoenix") == [wheel.filename]
    assert html_files(store, "phoenix") == [wheel.filename]
    assert root_projects(store) == ["bystander", "phoenix"]
    assert store.info(layout.UPLOADS, wheel.filename) is None
    assert get_services().manager.reindex() == []


def test_each_view_has_its_own_etag_and_both_follow_the_truth(storage_env: BlobStore) -> None:
    store = storage_env
    publish(store, build_wheel("tagged", "1.0"))
    door = get_services().front_door

    def get(accept: str, if_none_match: str | None = None) -> tuple[int, str, bytes]:
        reply = door.page(
            "tagged", accept=accept, if_none_match=if_none_match, request_url="http://x/simple/"
        )
        return reply.status, reply.headers["ETag"], reply.body

    html_type, json_type = "text/html", "application/vnd.pypi.simple.v1+json"
    _, html_etag, html = get(html_type)
    _, json_etag, _ = get(json_type)
    assert html_etag != json_etag
    assert get(html_type, html_etag)[0] == 304
    assert get(json_type, json_etag)[0] == 304
    assert get(html_type, json_etag)[0] == 200  # one view's ETag never validates the other
    assert get(json_type, html_etag)[0] == 200
    publish(store, build_wheel("tagged", "2.0"))
    for accept, etag in ((html_type, html_etag), (json_type, json_etag)):
        status, newer, body = get(accept, etag)
        assert status == 200
        assert newer != etag
        assert b"tagged-2.0-py3-none-any.whl" in body
    assert b"tagged-2.0-py3-none-any.whl" not in html


def test_a_damaged_page_is_rebuilt_from_the_records_by_the_next_change(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    first, second = build_wheel("mended", "1.0"), build_wheel("mended", "2.0")
    publish(store, first)
    for path in (layout.ROOT_JSON, layout.project_json(canonicalize_name("mended"))):
        store.put(layout.INDEX, path, b"<not json>", content_type="x/y")
    publish(store, second)
    assert page_files(store, "mended") == [first.filename, second.filename]
    get_services().pages.add_project(canonicalize_name("mended"))  # listed already, yet repaired
    assert root_projects(store) == ["mended"]
    assert get_services().manager.reindex() == []
