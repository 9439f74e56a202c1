"""The records: one per published file, the index's source of truth, and the facts beside them.

A record is written create-only when its file is published and changed only by compare-and-swap
(a yank), so two writers never lose each other's change. Next to the records live the two other
facts about distributions: the claim (which filename a distribution is published as, created
first and never deleted: the immutability guard) and the tombstone (a deleted distribution, never
published again). Pages are derived from all this (`shared.services.pages`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from packaging.utils import NormalizedName, canonicalize_name

from shared.adapters.blobstore import BlobChanged, BlobExists, BlobStore
from shared.core import layout
from shared.core.clock import iso_z
from shared.core.errors import NotFound
from shared.core.records import FileRecord

MAX_ATTEMPTS = 200
RecordChange = Callable[[FileRecord], FileRecord]


class RecordConflict(RuntimeError):
    """A record kept changing under us for MAX_ATTEMPTS rounds: raise so the platform retries."""


class IndexRecords:
    """Reads and writes the records, claims and tombstones in the `index` container."""

    def __init__(self, store: BlobStore, *, readers: int = 8) -> None:
        self.store = store
        # A project's records are small blobs read one request each: in parallel, a page of
        # thousands of files is rebuilt in seconds rather than minutes.
        self._pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="records")

    # -- records -----------------------------------------------------------------------------

    def load(self, project: NormalizedName, filename: str) -> FileRecord | None:
        stored = self.store.get(layout.INDEX, layout.record_path(project, filename))
        return None if stored is None else FileRecord.from_json(stored.data)

    def exists(self, project: NormalizedName, filename: str) -> bool:
        return self.store.info(layout.INDEX, layout.record_path(project, filename)) is not None

    def load_files(self, project: NormalizedName, filenames: Iterable[str]) -> list[FileRecord]:
        """The records of these files, in their order; a file without one is left out."""
        return self._read([layout.record_path(project, f) for f in filenames])

    def load_project(self, project: NormalizedName) -> list[FileRecord]:
        """Every record of `project` (a listing, then parallel reads)."""
        return self._read(
            [b.name for b in self.store.list(layout.INDEX, layout.record_prefix(project))]
        )

    def list_projects(self) -> list[NormalizedName]:
        """The projects that have records, sorted."""
        return sorted(
            canonicalize_name(p)
            for p in self.store.list_prefixes(layout.INDEX, layout.RECORDS_PREFIX)
        )

    def create(self, record: FileRecord) -> FileRecord:
        """Write the record unless an earlier delivery did; returns the record as stored.

        Callers must go on with the stored record (its upload time, a yank since), not theirs.
        """
        path = layout.record_path(record.normalized_project, record.filename)
        try:
            self.store.put(
                layout.INDEX,
                path,
                record.to_json(),
                content_type=layout.JSON_TYPE,
                create_only=True,
            )
            return record
        except BlobExists:
            stored = self.store.get(layout.INDEX, path)
            return record if stored is None else FileRecord.from_json(stored.data)

    def update(self, project: NormalizedName, filename: str, change: RecordChange) -> None:
        """Apply `change` to the stored record by compare-and-swap, reading again on a lost swap.

        NotFound if the record is gone; RecordConflict if it kept changing for MAX_ATTEMPTS.
        """
        path = layout.record_path(project, filename)
        for _ in range(MAX_ATTEMPTS):
            stored = self.store.get(layout.INDEX, path)
            if stored is None:
                raise NotFound(f"record {path!r} disappeared")
            data = change(FileRecord.from_json(stored.data)).to_json()
            if data == stored.data:
                return
            try:
                self.store.put(
                    layout.INDEX, path, data, content_type=layout.JSON_TYPE, if_match=stored.etag
                )
                return
            except BlobChanged:
                continue
        raise RecordConflict(f"record {path!r} kept changing")

    def delete(self, project: NormalizedName, filename: str) -> bool:
        return self.store.delete(layout.INDEX, layout.record_path(project, filename))

    def _read(self, paths: list[str]) -> list[FileRecord]:
        blobs = self._pool.map(lambda path: self.store.get(layout.INDEX, path), paths)
        return [FileRecord.from_json(b.data) for b in blobs if b is not None]

    # -- claims ------------------------------------------------------------------------------

    def claim(self, filename: str) -> str:
        """Claim `filename`'s distribution; returns the filename it is published as.

        That is `filename` itself when this call (or an earlier delivery of it) made the claim.
        Create-only: of two uploads of one distribution, however spelled, exactly one claims it.
        Claims are never deleted (a deleted file keeps its claim beside its tombstone).
        """
        path = layout.claim_path(filename)
        body = json.dumps({"filename": filename}).encode() + b"\n"
        try:
            self.store.put(
                layout.INDEX, path, body, content_type=layout.JSON_TYPE, create_only=True
            )
            return filename
        except BlobExists:
            existing = self.store.get(layout.INDEX, path)
            return filename if existing is None else str(json.loads(existing.data)["filename"])

    def claim_missing(self, project: NormalizedName, records: list[FileRecord]) -> bool:
        """Give every file a claim (files published before claims existed have none)."""
        claimed = {b.name for b in self.store.list(layout.INDEX, layout.claim_prefix(project))}
        missing = [r for r in records if layout.claim_path(r.filename) not in claimed]
        for record in missing:
            self.claim(record.filename)
        return bool(missing)

    # -- tombstones --------------------------------------------------------------------------

    def tombstoned(self, filename: str) -> bool:
        """Whether `filename`'s distribution was deleted, however the filename spells it."""
        return self.store.info(layout.INDEX, layout.tombstone_path(filename)) is not None

    def tombstone(self, record: FileRecord, *, reason: str, at: datetime) -> None:
        """Mark the record's distribution deleted for good; a tombstone there already is kept
        (an earlier, interrupted delete)."""
        note = {
            "filename": record.filename,
            "project": record.normalized_project,
            "sha256": record.sha256,
            "deleted_at": iso_z(at),
            "reason": reason,
        }
        with contextlib.suppress(BlobExists):
            self.store.put(
                layout.INDEX,
                layout.tombstone_path(record.filename),
                json.dumps(note, indent=2).encode() + b"\n",
                content_type=layout.JSON_TYPE,
                create_only=True,
            )

    def carry_tombstones_over(self) -> list[str]:
        """Copy each tombstone an older version kept by filename to its keyed path."""
        carried = []
        for blob in self.store.list(layout.INDEX, layout.TOMBSTONES_PREFIX):
            filename = layout.legacy_tombstone_name(blob.name)
            old = self.store.get(layout.INDEX, blob.name) if filename else None
            if filename is None or old is None:
                continue
            try:
                self.store.put(
                    layout.INDEX,
                    layout.tombstone_path(filename),
                    old.data,
                    content_type=layout.JSON_TYPE,
                    create_only=True,
                )
            except BlobExists:
                continue
            carried.append(f"{filename} (tombstone)")
        return carried


def is_file_of(project: NormalizedName, filename: str) -> bool:
    """Whether `filename` names a wheel or an sdist of `project` (any spelling of it)."""
    try:
        owner, _ = layout.distribution_key(filename)
    except ValueError:  # neither kind: InvalidWheelFilename, or the sdist rules' Rejection
        return False
    return owner == project
