"""Yank, delete (tombstones) and reindex, against Azurite."""

from __future__ import annotations

import json

import pytest

from devhost.wheels import build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.errors import NotFound
from shared.services.app import get_services
from tests.integration.test_publish import (
    blob,
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
    admin = get_services().admin

    assert admin.yank("Yanky", filename=c.filename, reason="broken on <3.12>") == [c.filename]
    files = files_by_name(store, "yanky")
    assert files[c.filename]["yanked"] == "broken on <3.12>"
    assert files[a.filename]["yanked"] is False
    assert 'data-yanked="broken on &lt;3.12&gt;"' in served(store, "yanky", html=True).decode()

    assert sorted(admin.yank("yanky", version="1.0")) == sorted([a.filename, b.filename])
    files = files_by_name(store, "yanky")
    assert files[a.filename]["yanked"] is True
    assert files[b.filename]["yanked"] is True

    admin.unyank("yanky", version="1.0")
    admin.unyank("yanky", filename=c.filename)
    assert all(f["yanked"] is False for f in files_by_name(store, "yanky").values())
    assert "data-yanked" not in served(store, "yanky", html=True).decode()


def test_yank_of_unknown_things_says_so(storage_env: BlobStore) -> None:
    publish(storage_env, build_wheel("known", "1.0"))
    admin = get_services().admin
    with pytest.raises(NotFound):
        admin.yank("known", version="9.9")
    with pytest.raises(NotFound):
        admin.yank("known", filename="known-9.9-py3-none-any.whl")
    with pytest.raises(NotFound):
        admin.yank("unknown", version="1.0")
    with pytest.raises(ValueError, match="exactly one"):
        admin.yank("known")


def test_delete_tombstones_the_filename(storage_env: BlobStore) -> None:
    store = storage_env
    keep = build_wheel("deletable", "1.0")
    gone = build_wheel("deletable", "2.0")
    publish(store, keep)
    publish(store, gone)
    get_services().admin.delete_file("deletable", gone.filename, reason="leaked a secret")

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
    get_services().admin.delete_file("lonely", only.filename)
    assert store.info(layout.INDEX, layout.project_json("lonely")) is None
    assert served(store, "lonely", html=True) == b""
    assert root_projects(store) == ["other"]
    with pytest.raises(NotFound):
        get_services().admin.delete_file("lonely", "lonely-7.0-py3-none-any.whl")


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
    get_services().admin.yank("re-a", version="1.1", reason="bad")
    pages = {
        name: blob(store, layout.INDEX, name)
        for name in snapshot(store)
        if name.startswith("simple/")
    }
    before = snapshot(store)
    assert get_services().admin.reindex() == []
    assert snapshot(store) == before  # not one blob rewritten

    for name in pages:
        store.delete(layout.INDEX, name)
    store.put(layout.INDEX, layout.project_json("ghost"), b"{}", content_type=layout.JSON_PAGE_TYPE)
    changed = get_services().admin.reindex()
    assert set(changed) == {"re-a", "re-b", "ghost", "(root)"}
    for name, data in pages.items():
        assert blob(store, layout.INDEX, name) == data, name
    assert store.info(layout.INDEX, layout.project_json("ghost")) is None
