"""Index management: yank and un-yank, delete (with a tombstone), and reindex.

Every operation changes records first and then the page, by a one-file change read back from the
records (a constant number of storage requests, whatever the project's size), so the records stay
the single source of truth and `reindex` can always repair the pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.clock import utc_now
from shared.core.errors import NotFound
from shared.core.pages import file_version
from shared.services.pages import IndexPages
from shared.services.records import IndexRecords, is_file_of

log = logging.getLogger("wheelvault.manage")


class IndexManager:
    """Yanks, un-yanks and deletes files, and reindexes: records first, then pages."""

    def __init__(
        self,
        store: BlobStore,
        records: IndexRecords,
        pages: IndexPages,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.records = records
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
        if not is_file_of(name, filename):
            raise NotFound(f"{filename!r} is not a file of project {name!r}")
        record = self.records.load(name, filename)
        if record is None and not self.records.tombstoned(filename):
            raise NotFound(f"{filename!r} is not a file of project {name!r}")
        if record is not None:
            self.records.tombstone(record, reason=reason, at=self.clock())
            self.records.delete(name, filename)
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
        for target in targets:
            self.records.update(name, target, lambda r: r.with_yank(yanked=yanked, reason=reason))
        self.pages.update_files(name, targets)
        log.info(
            "yanked" if yanked else "unyanked",
            extra={"wheelvault": {"project": name, "files": targets}},
        )
        return targets

    def _select(self, name: NormalizedName, version: str | None, filename: str | None) -> list[str]:
        """The filenames to change: `filename` if it has a record, or the release's files."""
        if filename is not None:
            if not self.records.exists(name, filename):
                raise NotFound(f"{filename!r} is not a file of project {name!r}")
            return [filename]
        assert version is not None
        try:
            wanted = Version(version)
        except InvalidVersion:
            raise NotFound(f"{version!r} is not a valid version") from None
        # The release's files as the page lists them: one read, whatever the project's size.
        files = [f for f in self.pages.listed_files(name) if file_version(f) == wanted]
        if not files:
            raise NotFound(f"project {name!r} has no files for version {version}")
        return sorted(files)
