"""Index management: yank and un-yank, delete (with a tombstone), and reindex.

Every operation changes records first and then the page, by a one-file change read back from the
records (a constant number of storage requests, whatever the project's size), so the records stay
the single source of truth and `reindex` can always repair the pages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from packaging.utils import InvalidWheelFilename, NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from shared.adapters.blobstore import BlobChanged, BlobExists, BlobStore
from shared.core import layout
from shared.core.errors import NotFound
from shared.core.pages import file_version, parse_project_json
from shared.core.records import FileRecord
from shared.services.pages import MAX_ATTEMPTS, IndexPages, PageConflict
from shared.services.publish import utc_now

log = logging.getLogger("wheelvault.manage")


class IndexAdmin:
    def __init__(
        self, store: BlobStore, pages: IndexPages, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.store = store
        self.pages = pages
        self.clock = clock

    def yank(
        self,
        project: str,
        *,
        version: str | None = None,
        filename: str | None = None,
        reason: str = "",
    ) -> list[str]:
        """Yank one file (`filename`) or every file of a release (`version`) — PEP 592."""
        return self._set_yank(project, version, filename, yanked=True, reason=reason)

    def unyank(
        self, project: str, *, version: str | None = None, filename: str | None = None
    ) -> list[str]:
        return self._set_yank(project, version, filename, yanked=False, reason=None)

    def delete_file(self, project: str, filename: str, *, reason: str = "") -> None:
        """Remove a file for good; its distribution is tombstoned, never to be published again
        under any spelling of its filename."""
        name = canonicalize_name(project)
        tombstone = _tombstone(name, filename)
        record_path = layout.record_path(name, filename)
        stored = self.store.get(layout.INDEX, record_path)
        if stored is None and self.store.info(layout.INDEX, tombstone) is None:
            raise NotFound(f"{filename!r} is not a file of project {name!r}")
        if stored is not None:
            record = FileRecord.from_json(stored.data)
            note = {
                "filename": filename,
                "project": name,
                "sha256": record.sha256,
                "deleted_at": self.clock().isoformat().replace("+00:00", "Z"),
                "reason": reason,
            }
            try:
                self.store.put(
                    layout.INDEX,
                    tombstone,
                    json.dumps(note, indent=2).encode() + b"\n",
                    content_type=layout.JSON_TYPE,
                    create_only=True,
                )
            except BlobExists:
                pass  # an earlier, interrupted delete
            self.store.delete(layout.INDEX, record_path)
        # Pages next, so no page links a file that is about to disappear; blobs last. The root
        # loses the project only once its page is gone (also when a retry finds it gone).
        self.pages.remove_file(name, filename)
        self.pages.remove_project(name)
        self.store.delete(layout.INDEX, layout.metadata_path(name, filename))
        self.store.delete(layout.INDEX, layout.file_path(name, filename))
        log.info("deleted", extra={"wheelvault": {"project": name, "filename": filename}})

    def reindex(self) -> list[str]:
        return self.pages.reindex()

    def _set_yank(
        self,
        project: str,
        version: str | None,
        filename: str | None,
        *,
        yanked: bool,
        reason: str | None,
    ) -> list[str]:
        if (version is None) == (filename is None):
            raise ValueError("name exactly one of a version or a filename")
        name = canonicalize_name(project)
        targets = self._select(name, version, filename)
        for path in targets:
            self._update_record(path, yanked=yanked, reason=reason)
        self.pages.update_files(name, lambda: self._read_records(targets))
        changed = [p.rsplit("/", 1)[-1].removesuffix(".json") for p in targets]
        log.info(
            "yanked" if yanked else "unyanked",
            extra={"wheelvault": {"project": name, "files": changed}},
        )
        return changed

    def _select(self, name: NormalizedName, version: str | None, filename: str | None) -> list[str]:
        if filename is not None:
            path = layout.record_path(name, filename)
            if self.store.info(layout.INDEX, path) is None:
                raise NotFound(f"{filename!r} is not a file of project {name!r}")
            return [path]
        assert version is not None
        try:
            wanted = Version(version)
        except InvalidVersion:
            raise NotFound(f"{version!r} is not a valid version") from None
        # The release's files as the page lists them: one read, whatever the project's size.
        page = self.store.get(layout.INDEX, layout.project_json(name))
        files = parse_project_json(page.data).files if page is not None else ()
        paths = [
            layout.record_path(name, f.filename)
            for f in files
            if file_version(f.filename) == wanted
        ]
        if not paths:
            raise NotFound(f"project {name!r} has no files for version {version}")
        return sorted(paths)

    def _read_records(self, paths: list[str]) -> list[FileRecord]:
        blobs = [self.store.get(layout.INDEX, path) for path in paths]
        return [FileRecord.from_json(b.data) for b in blobs if b is not None]

    def _update_record(self, path: str, *, yanked: bool, reason: str | None) -> None:
        for _ in range(MAX_ATTEMPTS):
            stored = self.store.get(layout.INDEX, path)
            if stored is None:
                raise NotFound(f"record {path!r} disappeared")
            record = FileRecord.from_json(stored.data).with_yank(yanked=yanked, reason=reason)
            data = record.to_json()
            if data == stored.data:
                return
            try:
                self.store.put(
                    layout.INDEX, path, data, content_type=layout.JSON_TYPE, if_match=stored.etag
                )
                return
            except BlobChanged:
                continue
        raise PageConflict(f"record {path!r} kept changing")


def _tombstone(project: NormalizedName, filename: str) -> str:
    """The tombstone path of `filename`, or NotFound if it cannot be a file of `project`."""
    try:
        owner, _ = layout.distribution_key(filename)
    except InvalidWheelFilename:
        owner = None
    if owner != project:
        raise NotFound(f"{filename!r} is not a file of project {project!r}")
    return layout.tombstone_path(filename)
