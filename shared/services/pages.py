"""Keeping the stored pages equal to what the records say, at a constant cost per change.

Each page has one stored truth, its PEP 691 JSON, written with an ETag compare-and-swap; the HTML
view is rendered from that JSON when served (`page_view`), so the two views cannot disagree.

A publish, yank or delete changes one file: it reads the page with its ETag, applies the change
to the parsed page and writes it back on that ETag; a 412 means someone else wrote in between, so
it reads again and re-applies. That costs a few requests however large the project or the index
is. Only `reindex` renders pages from a listing of every record, to prove or repair them; it reads
the page's ETag *before* listing the records, so a listing that missed someone's record always
comes with an ETag that is already stale.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from packaging.utils import NormalizedName, canonicalize_name

from shared.adapters.blobstore import BlobChanged, BlobExists, BlobStore, StoredBlob
from shared.core import layout
from shared.core.negotiate import JSON_V1
from shared.core.pages import (
    PageFormatError,
    ProjectPage,
    RootPage,
    build_project_page,
    build_root_page,
    file_link,
    parse_project_json,
    parse_root_json,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
    with_file,
    with_project,
    without_file,
    without_project,
)
from shared.core.records import FileRecord
from shared.services.records import IndexRecords

log = logging.getLogger("wheelvault.pages")

MAX_ATTEMPTS = 200
WRITTEN_PAGES = 16
ProjectChange = Callable[[ProjectPage], ProjectPage | None]  # None: nothing to change
RootChange = Callable[[RootPage], RootPage | None]


class PageConflict(RuntimeError):
    """A page kept changing under us for MAX_ATTEMPTS rounds: raise so the platform retries."""


class IndexPages:
    """Changes and stores the simple-index pages in the `index` container."""

    def __init__(
        self,
        store: BlobStore,
        records: IndexRecords,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.records = records
        self._sleep = sleep
        # The pages this worker wrote last, parsed, by path: (ETag, page). A page of 10,000
        # files is 6 MB of JSON, ~0.1 s to parse; the next change here often starts from it.
        self._written: OrderedDict[str, tuple[str, ProjectPage]] = OrderedDict()
        self._written_lock = threading.Lock()

    def forget_written(self) -> None:
        """Drop the pages this worker remembers writing: the next change parses (a cold worker)."""
        with self._written_lock:
            self._written.clear()

    # -- one change, constant cost ---------------------------------------------------------

    def add_file(self, record: FileRecord) -> bool:
        """List a published file unless its page lists it already; True if the page changed.

        A page that lists the file already is left alone: whatever changed the file since
        (a yank) went through the page too, and must not be undone by a late redelivery.
        A new project goes on the root page before its page exists (a crash in between leaves a
        retry that still sees a new project) and is checked again after (see `remove_project`).
        """
        link = file_link(record)
        project = record.normalized_project
        return self._change_project(
            project,
            lambda page: None if page.file(link.filename) else with_file(page, link),
            root_first=True,
        )

    def update_files(self, project: NormalizedName, filenames: Iterable[str]) -> bool:
        """Show files as their records say now (yank, unyank); True if the page changed.

        The records are read on every attempt, after the page: of two racing changes to one
        record, the one that writes the page last has read the record last.
        """
        wanted = list(filenames)

        def change(page: ProjectPage) -> ProjectPage | None:
            changed = page
            for record in self.records.load_files(project, wanted):
                link = file_link(record)
                if changed.file(link.filename) != link:
                    changed = with_file(changed, link)
            return None if changed is page else changed

        return self._change_project(project, change, root_first=True)

    def remove_file(self, project: NormalizedName, filename: str) -> bool:
        """Unlist a file; the page goes when its last file does. True if the page changed."""
        return self._change_project(
            project,
            lambda page: without_file(page, filename) if page.file(filename) else None,
            root_first=False,
        )

    def listed_files(self, project: NormalizedName) -> list[str]:
        """The filenames the project's page lists: one read, whatever the project's size."""
        page = self.store.get(layout.INDEX, layout.project_json(project))
        return [f.filename for f in parse_project_json(page.data).files] if page is not None else []

    def add_project(self, project: NormalizedName) -> bool:
        return self._change_root(
            lambda root: None if project in root.projects else with_project(root, project)
        )

    def remove_project(self, project: NormalizedName) -> bool:
        """Take a project off the root page if it has no page (any more).

        A publisher may create the page meanwhile: it adds the project to the root after
        creating the page, and this checks for the page after removing the project. Each
        writes first and reads the other's blob second, so one of them sees the other.
        """
        page_path = layout.project_json(project)

        def change(root: RootPage) -> RootPage | None:
            if project not in root.projects or self.store.info(layout.INDEX, page_path):
                return None
            return without_project(root, project)

        removed = self._change_root(change)
        if removed and self.store.info(layout.INDEX, page_path) is not None:
            self.add_project(project)
        return removed

    def _change_project(
        self, project: NormalizedName, change: ProjectChange, *, root_first: bool
    ) -> bool:
        """Apply `change` to the project's page by compare-and-swap. `root_first`: a page this
        creates goes on the root page before it is written and is checked there again after."""
        path = layout.project_json(project)
        for attempt in range(MAX_ATTEMPTS):
            current = self.store.get(layout.INDEX, path)
            page, repaired = self._project_page(project, current)
            changed = change(page)
            if changed is None and not repaired:
                return False
            new_project = current is None and root_first
            try:
                if new_project:
                    self.add_project(project)
                self._write_project(path, changed or page, current)
                if new_project:
                    self.add_project(project)
                return True
            except (BlobChanged, BlobExists):
                self._backoff(attempt)
        raise PageConflict(f"project page {project!r} kept changing; giving up for this attempt")

    def _project_page(
        self, project: NormalizedName, current: StoredBlob | None
    ) -> tuple[ProjectPage, bool]:
        """The stored page, parsed; True with it if it had to be rebuilt (and must be written)."""
        if current is None:
            return build_project_page(project, []), False
        with self._written_lock:
            written = self._written.get(layout.project_json(project))
        if written is not None and written[0] == current.etag:
            return written[1], False  # what parsing `current` would give: this worker wrote it
        try:
            return parse_project_json(current.data), False
        except PageFormatError:
            # A page no renderer wrote: rebuild it from the records (the slow, sure way). It is
            # written even if this change is in it already: a reindex may hold a stale listing
            # and the page's ETag, and only a write makes its swap fail.
            log.warning("unreadable page rebuilt", extra={"wheelvault": {"project": project}})
            return build_project_page(project, self.records.load_project(project)), True

    def _write_project(self, path: str, page: ProjectPage, current: StoredBlob | None) -> None:
        if not page.files:
            if current is not None and not self.store.delete(
                layout.INDEX, path, if_match=current.etag
            ):
                raise BlobChanged(path)  # gone already: someone else changed it, look again
            return
        etag = self._put(path, render_project_json(page), current)
        with self._written_lock:
            self._written[path] = (etag, page)
            self._written.move_to_end(path)
            while len(self._written) > WRITTEN_PAGES:
                self._written.popitem(last=False)

    def _change_root(self, change: RootChange) -> bool:
        for attempt in range(MAX_ATTEMPTS):
            current = self.store.get(layout.INDEX, layout.ROOT_JSON)
            root, repaired = self._root_page(current)
            changed = change(root)
            if changed is None and not repaired:
                return False
            try:
                self._put(layout.ROOT_JSON, render_root_json(changed or root), current)
                return True
            except (BlobChanged, BlobExists):
                self._backoff(attempt)
        raise PageConflict("root page kept changing; giving up for this attempt")

    def _root_page(self, current: StoredBlob | None) -> tuple[RootPage, bool]:
        """As `_project_page`, for the root page."""
        if current is None:
            return build_root_page([]), False
        try:
            return parse_root_json(current.data), False
        except PageFormatError:
            log.warning("unreadable root page rebuilt")
            return build_root_page(self.records.list_projects()), True

    def _put(self, path: str, data: bytes, current: StoredBlob | None) -> str:
        return self.store.put(
            layout.INDEX,
            path,
            data,
            content_type=JSON_V1,
            create_only=current is None,
            if_match=current.etag if current is not None else None,
        )

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(0.5, 0.005 * (2 ** min(attempt, 7)))))

    # -- the full render: reindex and repair only -------------------------------------------

    def reindex(self) -> list[str]:
        """Rebuild every page from the records; returns what changed.

        On a correct index this writes nothing at all, so it is safe to run any time. It also
        carries an older version's layout over: stored HTML pages go, filename tombstones and
        files without a claim get their keyed blobs.
        """
        projects = self.records.list_projects()
        stored = {b.name for b in self.store.list(layout.INDEX, layout.PAGES_PREFIX)}
        paged = {canonicalize_name(n.split("/")[1]) for n in stored if n.count("/") == 2}
        changed: list[str] = []
        for project in sorted(set(projects) | paged):
            rewritten, records = self.rebuild_project(project)
            if rewritten:
                changed.append(project)
            if self.records.claim_missing(project, records):
                changed.append(f"{project} (claims)")
        if self.rebuild_root():
            changed.append("(root)")
        changed += self._drop_html(stored) + self.records.carry_tombstones_over()
        return changed

    def rebuild_project(self, project: NormalizedName) -> tuple[bool, list[FileRecord]]:
        """Render the page from every record: (whether the page changed, the records)."""
        path = layout.project_json(project)
        for attempt in range(MAX_ATTEMPTS):
            current = self.store.get(layout.INDEX, path)  # before the listing: see module doc
            records = self.records.load_project(project)
            page = build_project_page(project, records)
            stored = current.data if current is not None else None
            if stored == (render_project_json(page) if records else None):
                return False, records
            try:
                self._write_project(path, page, current)
                return True, records
            except (BlobChanged, BlobExists):
                self._backoff(attempt)
        raise PageConflict(f"project page {project!r} kept changing; giving up for this attempt")

    def rebuild_root(self) -> bool:
        """Make the root page list exactly the projects that have records."""
        for attempt in range(MAX_ATTEMPTS):
            current = self.store.get(layout.INDEX, layout.ROOT_JSON)  # before the listing
            data = render_root_json(build_root_page(self.records.list_projects()))
            if current is not None and current.data == data:
                return False
            try:
                self._put(layout.ROOT_JSON, data, current)
                return True
            except (BlobChanged, BlobExists):
                self._backoff(attempt)
        raise PageConflict("root page kept changing; giving up for this attempt")

    def _drop_html(self, stored: set[str]) -> list[str]:
        html = sorted(n for n in stored if n.endswith("/index.html") or n == layout.ROOT_HTML)
        return [f"{name} (removed)" for name in html if self.store.delete(layout.INDEX, name)]


# -- serving: the HTML view of the JSON truth -------------------------------------------------


class PageViews:
    """Each stored page's HTML view, rendered from its JSON, cached per (path, ETag).

    The least recently used views go first once they hold more than `max_bytes` together.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def view(self, path: str, stored: StoredBlob, *, html: bool) -> tuple[bytes, str]:
        """(body, ETag) of one representation; the HTML's ETag is derived from the JSON's."""
        if not html:
            return stored.data, stored.etag
        key = (path, stored.etag)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is None:
            cached = render_html(path, stored.data)
            with self._lock:
                if key not in self._cache:
                    self._cache[key] = cached
                    self._bytes += len(cached)
                while self._bytes > self._max_bytes and len(self._cache) > 1:
                    self._bytes -= len(self._cache.popitem(last=False)[1])
        return cached, html_etag(stored.etag)


def render_html(path: str, data: bytes) -> bytes:
    if path == layout.ROOT_JSON:
        return render_root_html(parse_root_json(data))
    return render_project_html(parse_project_json(data))


def html_etag(json_etag: str) -> str:
    """A different, strong ETag for the HTML view that changes whenever the JSON's does."""
    inner = json_etag.removeprefix("W/").strip('"')
    return f'"{inner}-html"'


VIEWS = PageViews()


def page_view(path: str, stored: StoredBlob, *, html: bool) -> tuple[bytes, str]:
    return VIEWS.view(path, stored, html=html)
