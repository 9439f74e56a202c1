"""Keeping the stored pages equal to what the records say.

Pages are re-rendered from a listing of records and written with an ETag compare-and-swap. The
page's ETag is read *before* the records are listed: a writer whose listing missed someone's
record then always holds an ETag that is already stale, so its write fails and it lists again.
That is what keeps concurrent publishers from losing each other's files.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from packaging.utils import NormalizedName, canonicalize_name

from shared.adapters.blobstore import BlobChanged, BlobExists, BlobStore, StoredBlob
from shared.core import layout
from shared.core.pages import (
    build_project_page,
    build_root_page,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from shared.core.records import FileRecord

log = logging.getLogger("wheelvault.pages")

MAX_ATTEMPTS = 200
A = TypeVar("A")
B = TypeVar("B")
PageWrite = tuple[str, bytes, str, StoredBlob | None]  # path, bytes, content type, current


class PageConflict(RuntimeError):
    """A page kept changing under us for MAX_ATTEMPTS rounds: raise so the platform retries."""


class IndexPages:
    """Renders and stores the simple-index pages from the records in the `index` container."""

    def __init__(
        self, store: BlobStore, *, readers: int = 8, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="records")
        self._sleep = sleep

    def load_records(self, project: NormalizedName) -> list[FileRecord]:
        names = [b.name for b in self.store.list(layout.INDEX, layout.record_prefix(project))]
        blobs = self._pool.map(lambda n: self.store.get(layout.INDEX, n), names)
        return [FileRecord.from_json(b.data) for b in blobs if b is not None]

    def list_projects(self) -> list[NormalizedName]:
        return sorted(
            canonicalize_name(p)
            for p in self.store.list_prefixes(layout.INDEX, layout.RECORDS_PREFIX)
        )

    def refresh_project(
        self,
        project: NormalizedName,
        *,
        includes: str | None = None,
        before_first_page: Callable[[], object] | None = None,
    ) -> bool:
        """Make the project's pages match its records; True if a page was written or deleted.

        `includes`: a filename whose record the caller has written. Once a stored page lists
        it, any later write to that page is based on a later listing, so our job is done.
        `before_first_page`: runs when the project has no page yet, before one is written (the
        publisher adds the project to the root page there, so a crash cannot skip that step).
        """
        html_path, json_path = layout.project_html(project), layout.project_json(project)
        for attempt in range(MAX_ATTEMPTS):
            current_json, current_html = self._read_pair(json_path, html_path)
            records = self.load_records(project)
            try:
                if not records:
                    return self._delete_pages((json_path, current_json), (html_path, current_html))
                if current_json is None and before_first_page is not None:
                    before_first_page()
                page = build_project_page(project, records)
                return self._write_pair(
                    (json_path, render_project_json(page), layout.JSON_PAGE_TYPE, current_json),
                    (html_path, render_project_html(page), layout.HTML_TYPE, current_html),
                )
            except (BlobChanged, BlobExists):
                if includes is not None and self._lists(json_path, includes):
                    return False
                self._backoff(attempt)
        raise PageConflict(f"project page {project!r} kept changing; giving up for this attempt")

    def refresh_root(self) -> bool:
        """Make the root pages list exactly the projects that have records."""
        for attempt in range(MAX_ATTEMPTS):
            current_json, current_html = self._read_pair(layout.ROOT_JSON, layout.ROOT_HTML)
            page = build_root_page(self.list_projects())
            try:
                return self._write_pair(
                    (layout.ROOT_JSON, render_root_json(page), layout.JSON_PAGE_TYPE, current_json),
                    (layout.ROOT_HTML, render_root_html(page), layout.HTML_TYPE, current_html),
                )
            except (BlobChanged, BlobExists):
                self._backoff(attempt)
        raise PageConflict("root page kept changing; giving up for this attempt")

    def both(self, first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
        """Run two independent storage calls at once: each is a network round trip."""
        pending = self._pool.submit(first)
        try:
            other = second()
        finally:
            done = pending.result()
        return done, other

    def _read_pair(self, first: str, second: str) -> tuple[StoredBlob | None, StoredBlob | None]:
        return self.both(
            functools.partial(self.store.get, layout.INDEX, first),
            functools.partial(self.store.get, layout.INDEX, second),
        )

    def _write_pair(self, first: PageWrite, second: PageWrite) -> bool:
        """Compare-and-swap both views of a page; True if either changed."""
        wrote = self.both(
            functools.partial(self._swap, *first), functools.partial(self._swap, *second)
        )
        return wrote[0] or wrote[1]

    def reindex(self) -> list[str]:
        """Rebuild every page from the records; returns the projects whose pages changed.

        On a correct index this writes nothing at all, so it is safe to run any time.
        """
        projects = self.list_projects()
        paged = set(self.store.list_prefixes(layout.INDEX, "simple/"))
        changed: list[str] = [p for p in projects if self.refresh_project(p)]
        changed += [
            p for p in sorted(paged - set(projects)) if self.refresh_project(canonicalize_name(p))
        ]
        if self.refresh_root():
            changed.append("(root)")
        return changed

    def _swap(self, path: str, data: bytes, content_type: str, current: StoredBlob | None) -> bool:
        if current is not None and current.data == data:
            return False
        self.store.put(
            layout.INDEX,
            path,
            data,
            content_type=content_type,
            create_only=current is None,
            if_match=current.etag if current is not None else None,
        )
        return True

    def _delete_pages(self, *pages: tuple[str, StoredBlob | None]) -> bool:
        deleted = False
        for path, current in pages:
            if current is not None:
                deleted |= self.store.delete(layout.INDEX, path, if_match=current.etag)
        return deleted

    def _lists(self, json_path: str, filename: str) -> bool:
        current = self.store.get(layout.INDEX, json_path)
        if current is None:
            return False
        return any(f["filename"] == filename for f in json.loads(current.data)["files"])

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(0.5, 0.005 * (2 ** min(attempt, 7)))))
