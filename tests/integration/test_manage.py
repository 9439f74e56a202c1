"""Yank, delete (tombstones) and reindex, against Azurite."""

from __future__ import annotations

import json
from functools import partial

import pytest
from packaging.utils import canonicalize_name

from devhost.wheels import build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.errors import NotFound
from shared.core.negotiate import JSON_V1
from shared.services.wiring import get_services
from tests.integration.test_publish import (
    blob,
    counted,
    deliver,
    listings,
    page_files,
    publish,
    reason,
    root_projects,
    served,
    snapshot,
)

pytestmark = pytest.mark.integration


def files_by_name(store: BlobStore, project: str) -> dict[str, dict[str, object]]:
    page = json.loads(blob(store, layout.INDEX, layout.project_json(project)))
    return {f["filename"]: f for f in page["files"]}


def test_yank_and_unyank_a_file_and_a_release(storage_env: BlobStore) -> None:
    store = storage_env
    a = build_wheel("yanky", "1.0")
    b = build_wheel("yanky", "1.0", tag="py2.py3-none-any")
    c = build_wheel("yanky", "2.0")
    for wheel in (a, b, c):
        publish(store, wheel)
    manager = get_services().manager

    assert manager.yank("Yanky", filename=c.filename, reason="broken on <3.12>") == [c.filename]
    files = files_by_name(store, "yanky")
    assert files[c.filename]["yanked"] == "broken on <3.12>"
    assert files[a.filename]["yanked"] is False
    assert 'data-yanked="broken on &lt;3.12&gt;"' in served(store, "yanky", html=True).decode()

    assert sorted(manager.yank("yanky", version="1.0")) == sorted([a.filename, b.filename])
    files = files_by_name(store, "yanky")
    assert files[a.filename]["yanked"] is True
    assert files[b.filename]["yanked"] is True

    manager.unyank("yanky", version="1.0")
    manager.unyank("yanky", filename=c.filename)
    assert all(f["yanked"] is False for f in files_by_name(store, "yanky").values())
    assert "data-yanked" not in served(store, "yanky", html=True).decode()


def test_yank_of_unknown_things_says_so(storage_env: BlobStore) -> None:
    publish(storage_env, build_wheel("known", "1.0"))
    manager = get_services().manager
    with pytest.raises(NotFound):
        manager.yank("known", version="9.9")
    with pytest.raises(NotFound):
        manager.yank("known", filename="known-9.9-py3-none-any.whl")
    with pytest.raises(NotFound):
        manager.yank("unknown", version="1.0")
    with pytest.raises(ValueError, match="exactly one"):
        manager.yank("known")


def test_delete_tombstones_the_filename(storage_env: BlobStore) -> None:
    store = storage_env
    keep = build_wheel("deletable", "1.0")
    gone = build_wheel("deletable", "2.0")
    publish(store, keep)
    publish(store, gone)
    get_services().manager.delete_file("deletable", gone.filename, reason="leaked a secret")

    assert page_files(store, "deletable") == [keep.filename]
    assert store.info(layout.INDEX, f"files/deletable/{gone.filename}") is None
    assert store.info(layout.INDEX, f"files/deletable/{gone.filename}.metadata") is None
    tombstone = json.loads(blob(store, layout.INDEX, "tombstones/deletable/2-_-py3-none-any.json"))
    assert tombstone["reason"] == "leaked a secret"
    assert tombstone["sha256"] == gone.sha256

    before = snapshot(store)
    publish(store, gone)  # the very same bytes again
    assert reason(store, gone.filename)["code"] == "filename-tombstoned"
    assert snapshot(store) == before


def test_deleting_the_last_file_removes_the_project(storage_env: BlobStore) -> None:
    store = storage_env
    only = build_wheel("lonely", "1.0")
    publish(store, only)
    publish(store, build_wheel("other", "1.0"))
    get_services().manager.delete_file("lonely", only.filename)
    assert store.info(layout.INDEX, layout.project_json("lonely")) is None
    assert served(store, "lonely", html=True) == b""
    assert root_projects(store) == ["other"]
    with pytest.raises(NotFound):
        get_services().manager.delete_file("lonely", "lonely-7.0-py3-none-any.whl")


def test_reindex_rebuilds_pages_and_changes_nothing_on_a_correct_index(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    for wheel in (
        build_wheel("re-a", "1.0"),
        build_wheel("re-a", "1.1"),
        build_wheel("re-b", "0.1"),
    ):
        publish(store, wheel)
    get_services().manager.yank("re-a", version="1.1", reason="bad")
    pages = {
        name: blob(store, layout.INDEX, name)
        for name in snapshot(store)
        if name.startswith("simple/")
    }
    before = snapshot(store)
    assert get_services().manager.reindex() == []
    assert snapshot(store) == before  # not one blob rewritten

    for name in pages:
        store.delete(layout.INDEX, name)
    store.put(layout.INDEX, layout.project_json("ghost"), b"{}", content_type=JSON_V1)
    changed = get_services().manager.reindex()
    assert set(changed) == {"re-a", "re-b", "ghost", "(root)"}
    for name, data in pages.items():
        assert blob(store, layout.INDEX, name) == data, name
    assert store.info(layout.INDEX, layout.project_json("ghost")) is None


def test_a_respelled_filename_of_a_deleted_distribution_stays_tombstoned(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    gone = build_wheel("hello_wheelvault", "1.0.0")
    publish(store, gone)
    get_services().manager.delete_file("hello-wheelvault", gone.filename, reason="leaked")
    before = snapshot(store)
    respelled = "Hello_WheelVault-1.0-py3-none-any.whl"
    deliver(store, respelled, build_wheel("hello_wheelvault", "1.0").data)
    assert reason(store, respelled)["code"] == "filename-tombstoned"
    assert snapshot(store) == before
    with pytest.raises(NotFound):  # not a wheel filename of that project
        get_services().manager.delete_file("other", gone.filename)


def test_yank_unyank_and_delete_cost_the_same_whatever_the_size_of_the_project(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    requests = counted()
    manager = get_services().manager
    cost: dict[int, dict[str, int]] = {}
    for size in (2, 25):
        project = f"managed-{size}"
        for i in range(size):
            publish(store, build_wheel(project, f"0.{i}"))
        target = build_wheel(project, "0.0").filename
        requests.take()
        cost[size] = {}
        for action, run in (
            ("yank file", partial(manager.yank, project, filename=target, reason="r")),
            ("unyank release", partial(manager.unyank, project, version="0.0")),
            ("delete", partial(manager.delete_file, project, target)),
        ):
            run()
            made = requests.take()
            assert listings(made) == [], f"{action} lists nothing"
            cost[size][action] = len(made)
        assert target not in page_files(store, project)
    assert cost[2] == cost[25]


def test_deleting_the_last_file_costs_no_listing_and_keeps_a_racing_new_page(
    storage_env: BlobStore,
) -> None:
    store = storage_env
    requests = counted()
    only = build_wheel("fleeting", "1.0")
    publish(store, only)
    for i in range(5):
        publish(store, build_wheel(f"stays-{i}", "1.0"))
    requests.take()
    get_services().manager.delete_file("fleeting", only.filename)
    assert listings(requests.take()) == []
    assert "fleeting" not in root_projects(store)
    # A publisher that created the page while the root was losing the project puts it back.
    store.put(
        layout.INDEX,
        layout.project_json(canonicalize_name("fleeting")),
        blob(store, layout.INDEX, layout.project_json(canonicalize_name("stays-0"))),
        content_type=JSON_V1,
    )
    get_services().pages.add_project(canonicalize_name("fleeting"))
    assert get_services().pages.remove_project(canonicalize_name("fleeting")) is False
    assert "fleeting" in root_projects(store)


def test_reindex_carries_an_older_layout_over_then_changes_nothing(
    storage_env: BlobStore,
) -> None:
    """Stored HTML pages, filename tombstones and files without a claim (older versions)."""
    store = storage_env
    kept, deleted = build_wheel("legacy", "1.0"), build_wheel("legacy", "2.0")
    publish(store, kept)
    publish(store, deleted)
    get_services().manager.delete_file("legacy", deleted.filename)
    project = canonicalize_name("legacy")
    # As an older version left it: HTML stored, a tombstone by filename, no claims.
    store.delete(layout.INDEX, layout.tombstone_path(deleted.filename))
    store.put(layout.INDEX, f"tombstones/{deleted.filename}", b"{}\n", content_type="x/y")
    for name in (layout.claim_path(kept.filename), layout.claim_path(deleted.filename)):
        store.delete(layout.INDEX, name)
    for name in (layout.legacy_html(project), layout.legacy_html(None)):
        store.put(layout.INDEX, name, b"<html></html>", content_type=layout.HTML_TYPE)

    changed = get_services().manager.reindex()
    assert set(changed) == {
        "legacy (claims)",
        "simple/index.html (removed)",
        "simple/legacy/index.html (removed)",
        f"{deleted.filename} (tombstone)",
    }
    assert get_services().manager.reindex() == []
    assert not [name for name in snapshot(store) if name.endswith(".html")]
    deliver(store, "Legacy-2.0.0-py3-none-any.whl", deleted.data)
    assert reason(store, "Legacy-2.0.0-py3-none-any.whl")["code"] == "filename-tombstoned"
    deliver(store, "Legacy-1.0.0-py3-none-any.whl", kept.data)
    assert reason(store, "Legacy-1.0.0-py3-none-any.whl")["code"] == "file-exists"
    assert page_files(store, "legacy") == [kept.filename]
