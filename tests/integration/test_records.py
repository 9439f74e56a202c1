"""The records service on its own: create-only records, compare-and-swap updates, claims and
tombstones, against Azurite."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from shared.adapters.blobstore import BlobChanged, BlobStore
from shared.core import layout
from shared.core.errors import NotFound
from shared.core.records import FileRecord
from shared.services import records as records_module
from shared.services.records import IndexRecords, RecordConflict, is_file_of

pytestmark = pytest.mark.integration

PROJECT = canonicalize_name("demo-pkg")


def record(version: str = "1.0", **changes: Any) -> FileRecord:
    made = FileRecord(
        project=PROJECT,
        name="demo-pkg",
        version=version,
        filename=f"demo_pkg-{version}-py3-none-any.whl",
        sha256="a" * 64,
        size=10,
        upload_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        metadata_sha256="b" * 64,
    )
    return made.model_copy(update=changes)


def test_create_keeps_the_record_of_an_earlier_delivery(storage_env: BlobStore) -> None:
    records = IndexRecords(storage_env)
    first = record()
    assert records.create(first) == first
    later = record(upload_time=datetime(2027, 1, 1, tzinfo=UTC))
    assert records.create(later) == first
    assert records.load(PROJECT, first.filename) == first


def test_loading_and_listing(storage_env: BlobStore) -> None:
    records = IndexRecords(storage_env, readers=2)
    stored = [records.create(record(f"1.{i}")) for i in range(5)]
    records.create(record().model_copy(update={"project": "other", "name": "other"}))
    assert sorted(records.load_project(PROJECT), key=lambda r: r.version) == stored
    wanted = [stored[3].filename, "demo_pkg-9.9-py3-none-any.whl", stored[0].filename]
    assert records.load_files(PROJECT, wanted) == [stored[3], stored[0]]  # in order, gaps out
    assert records.list_projects() == ["demo-pkg", "other"]
    assert records.exists(PROJECT, stored[1].filename)
    assert records.delete(PROJECT, stored[1].filename)
    assert not records.exists(PROJECT, stored[1].filename)
    assert records.load(PROJECT, stored[1].filename) is None


def test_update_swaps_and_leaves_an_unchanged_record_alone(storage_env: BlobStore) -> None:
    records = IndexRecords(storage_env)
    original = records.create(record())
    path = layout.record_path(PROJECT, original.filename)
    records.update(PROJECT, original.filename, lambda r: r.with_yank(yanked=True, reason="bad"))
    yanked = records.load(PROJECT, original.filename)
    assert yanked is not None
    assert (yanked.yanked, yanked.yanked_reason) == (True, "bad")
    etag = storage_env.info(layout.INDEX, path)
    records.update(PROJECT, original.filename, lambda r: r.with_yank(yanked=True, reason="bad"))
    assert storage_env.info(layout.INDEX, path) == etag  # nothing to change: nothing written


def test_update_reads_again_after_a_lost_swap(storage_env: BlobStore) -> None:
    """Someone else changes the record between our read and our write: theirs survives."""
    records = IndexRecords(storage_env)
    original = records.create(record())
    path = layout.record_path(PROJECT, original.filename)
    meddled: list[str] = []

    def meddle(current: FileRecord) -> FileRecord:
        if not meddled:
            other = current.model_copy(update={"source": "uploads/theirs"})
            storage_env.put(layout.INDEX, path, other.to_json(), content_type=layout.JSON_TYPE)
            meddled.append("once")
        return current.with_yank(yanked=True, reason="ours")

    records.update(PROJECT, original.filename, meddle)
    final = records.load(PROJECT, original.filename)
    assert final is not None
    assert (final.source, final.yanked, final.yanked_reason) == ("uploads/theirs", True, "ours")


def test_update_gives_up_with_record_conflict_and_not_found(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = IndexRecords(storage_env)
    original = records.create(record())

    def always_lose(self: BlobStore, container: str, name: str, data: Any, **kw: Any) -> str:
        raise BlobChanged(name)

    with pytest.raises(NotFound, match="disappeared"):
        records.update(PROJECT, "demo_pkg-9.9-py3-none-any.whl", lambda r: r)
    monkeypatch.setattr(records_module, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(BlobStore, "put", always_lose)
    with pytest.raises(RecordConflict, match="kept changing"):
        records.update(PROJECT, original.filename, lambda r: r.with_yank(yanked=True, reason=""))


def test_a_claim_answers_with_the_spelling_that_made_it(storage_env: BlobStore) -> None:
    records = IndexRecords(storage_env)
    assert records.claim("demo_pkg-1.0-py3-none-any.whl") == "demo_pkg-1.0-py3-none-any.whl"
    assert records.claim("demo_pkg-1.0-py3-none-any.whl") == "demo_pkg-1.0-py3-none-any.whl"
    assert records.claim("Demo.Pkg-1.0.0-py3-none-any.whl") == "demo_pkg-1.0-py3-none-any.whl"
    assert records.claim("demo_pkg-1.0-1-py3-none-any.whl") == "demo_pkg-1.0-1-py3-none-any.whl"


def test_claim_missing_claims_only_unclaimed_files(storage_env: BlobStore) -> None:
    records = IndexRecords(storage_env)
    old, new = record("1.0"), record("2.0")
    records.claim(old.filename)
    assert records.claim_missing(PROJECT, [old, new]) is True
    assert records.claim(new.filename) == new.filename
    assert records.claim_missing(PROJECT, [old, new]) is False


def test_a_tombstone_is_written_once_and_covers_every_spelling(storage_env: BlobStore) -> None:
    records = IndexRecords(storage_env)
    gone = record()
    assert not records.tombstoned(gone.filename)
    records.tombstone(gone, reason="leaked", at=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC))
    records.tombstone(gone, reason="again", at=datetime(2027, 1, 1, tzinfo=UTC))
    assert records.tombstoned("Demo_Pkg-1.0.0-py3-none-any.whl")
    stored = storage_env.get(layout.INDEX, layout.tombstone_path(gone.filename))
    assert stored is not None
    assert json.loads(stored.data) == {
        "filename": gone.filename,
        "project": "demo-pkg",
        "sha256": "a" * 64,
        "deleted_at": "2026-05-06T07:08:09Z",
        "reason": "leaked",
    }


def test_tombstones_of_an_older_version_are_carried_over_once(storage_env: BlobStore) -> None:
    records = IndexRecords(storage_env)
    legacy = f"{layout.TOMBSTONES_PREFIX}demo_pkg-1.0-py3-none-any.whl"
    storage_env.put(layout.INDEX, legacy, b'{"old": true}\n', content_type=layout.JSON_TYPE)
    assert records.carry_tombstones_over() == ["demo_pkg-1.0-py3-none-any.whl (tombstone)"]
    assert records.carry_tombstones_over() == []
    assert records.tombstoned("demo_pkg-1.0.0-py3-none-any.whl")


def test_is_file_of_checks_the_project_of_any_spelling() -> None:
    assert is_file_of(PROJECT, "Demo.Pkg-1.0-py3-none-any.whl")
    assert not is_file_of(PROJECT, "other-1.0-py3-none-any.whl")
    assert is_file_of(PROJECT, "demo_pkg-1.0.tar.gz")
    assert not is_file_of(PROJECT, "demo-pkg-1.0.tar.gz")  # not the PEP 625 spelling
    assert not is_file_of(PROJECT, "demo_pkg-1.0.zip")
