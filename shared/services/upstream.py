"""Upstream indexes behind the front door: pages on demand, files copied on first download.

Only names without a private page ever get here (the front door decides), and only names the
policy allows. A page is fetched from the upstreams in order (the first that has the project
wins), filtered by the policy, rendered as our own page and stored under `upstream/pages/` with
the time it was fetched; within `page_seconds` it is served as stored, later it is fetched again,
and when every upstream fails the stored page is served stale (and a log line says so). A name no
upstream has is remembered for `miss_seconds`, in this worker's memory: a miss costs one request
to learn again, and storing misses would write a blob per typo.

Each worker also holds the fresh pages it has read or fetched in memory (the least recently used
go first past `MAX_HELD_BYTES`), with their JSON and HTML views rendered once: a page request for
an upstream project then costs one storage round trip (the private page that must not exist),
not two and a parse and a render. A held page is served only while fresh, as the stored one
would be; so a page dropped from storage (`wheelvault upstream drop`) may still be served by a
worker that holds it until it goes stale, while its files are copied again on their next
download.

A file is copied into `upstream/files/` on its first download: streamed in blocks staged on the
blob (never the whole file in memory), hashed on the way, and committed create-only only when the
sha256 is the one the upstream page gave. A file that fits in one block (most wheels, every
`.metadata`) is written by one create-only put once its hash matches: one round trip, not two.
Until the commit nothing is visible, so a failed or tampered copy leaves nothing behind; of two
concurrent first downloads one commit wins and the other finds its blob. Once copied, a file is
served without asking the upstream anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.utils import NormalizedName

from shared.adapters.blobstore import BlobExists, BlobStore
from shared.adapters.upstream import UpstreamClient, UpstreamUnavailable
from shared.core import layout
from shared.core.clock import iso_z, utc_now
from shared.core.pages import (
    ProjectPage,
    parse_project_json,
    project_page_data,
    render_project_html,
    render_project_json,
)
from shared.core.upstream import (
    UpstreamPage,
    UpstreamPageError,
    UpstreamPolicy,
    parse_upstream_page,
    upstream_project_page,
)

log = logging.getLogger("wheelvault.upstream")

BLOCK_BYTES = 4 * 1024 * 1024
"""One staged block: the most of a file held in memory at once while copying it."""
MAX_MISSES = 10_000
MAX_HELD_BYTES = 32 * 1024 * 1024
"""Pages held in a worker's memory, counted by the size of their stored documents."""
METADATA_SUFFIX = ".metadata"


class UpstreamProblem(Exception):
    """A reply the front door passes on: status, stable code, a message that names no secret."""

    status = 404
    code = "not-found"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpstreamRefused(UpstreamProblem):
    """A policy rule keeps this name or file from upstream; the message names the rule."""

    code = "upstream-refused"


class UpstreamMissing(UpstreamProblem):
    """No upstream has this project or file."""


class UpstreamFailed(UpstreamProblem):
    """Every upstream failed and nothing is cached to fall back on."""

    status = 502
    code = "upstream-unavailable"


class UpstreamHashMismatch(UpstreamProblem):
    """The upstream's bytes are not the ones its page promised: refused, nothing stored."""

    status = 502
    code = "upstream-hash-mismatch"


@dataclass(frozen=True)
class Source:
    """Where an offered file is fetched from, and what it must hash to."""

    url: str
    sha256: str
    core_metadata_sha256: str | None
    size: int | None
    """As the upstream page gave it: a copy that grows past it is given up at once."""


@dataclass(frozen=True)
class CachedPage:
    page: ProjectPage
    fetched_at: datetime
    sources: dict[str, Source]
    refused: dict[str, str]
    """Filename → the rule that keeps it off the page, so a download of it can say which."""

    def to_json(self) -> bytes:
        document = {
            "fetched-at": iso_z(self.fetched_at),
            "page": project_page_data(self.page),
            "sources": {
                name: {
                    "url": s.url,
                    "sha256": s.sha256,
                    "core-metadata": s.core_metadata_sha256,
                    "size": s.size,
                }
                for name, s in self.sources.items()
            },
            "refused": self.refused,
        }
        return json.dumps(document, indent=1).encode() + b"\n"

    @staticmethod
    def from_json(data: bytes) -> CachedPage:
        """Raises ValueError (or KeyError/TypeError) for a document this class did not write."""
        document = json.loads(data)
        sources = {
            name: Source(s["url"], s["sha256"], s["core-metadata"], s["size"])
            for name, s in document["sources"].items()
        }
        return CachedPage(
            page=parse_project_json(json.dumps(document["page"]).encode()),
            fetched_at=datetime.fromisoformat(document["fetched-at"]),
            sources=sources,
            refused={str(k): str(v) for k, v in document["refused"].items()},
        )


@dataclass
class HeldPage:
    """A fresh page in this worker's memory, and its views once asked for."""

    cached: CachedPage
    size: int
    """Of its stored document: what it counts against MAX_HELD_BYTES."""
    views: dict[bool, tuple[bytes, str]] = field(default_factory=dict)
    """html? → (body, ETag)."""


def render_view(page: ProjectPage, *, html: bool) -> tuple[bytes, str]:
    """(body, ETag) of one representation of an upstream page. The JSON view's ETag names its
    bytes; the HTML view's is derived from it, so both change together."""
    data = render_project_json(page)
    etag = "u" + hashlib.sha256(data).hexdigest()[:32]
    if html:
        return render_project_html(page), "h" + etag
    return data, etag


class UpstreamIndex:
    def __init__(
        self,
        store: BlobStore,
        client: UpstreamClient,
        policy: UpstreamPolicy,
        *,
        page_seconds: float,
        miss_seconds: float,
        block_bytes: int = BLOCK_BYTES,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.client = client
        self.policy = policy
        self.page_seconds = page_seconds
        self.miss_seconds = miss_seconds
        self.block_bytes = block_bytes
        self.clock = clock
        self._misses: dict[str, float] = {}
        self._misses_lock = threading.Lock()
        self._held: OrderedDict[str, HeldPage] = OrderedDict()
        self._held_bytes = 0
        self._held_lock = threading.Lock()

    # -- pages ------------------------------------------------------------------------------

    def page(self, project: NormalizedName) -> ProjectPage:
        """The project's upstream page as we serve it, or an UpstreamProblem."""
        return self._cached_page(project).page

    def page_view(self, project: NormalizedName, *, html: bool) -> tuple[bytes, str]:
        """(body, ETag) of the project's upstream page as JSON or HTML, or an UpstreamProblem;
        rendered once per page a worker holds."""
        cached = self._cached_page(project)  # held from now on if it is fresh
        held = self._fresh_held(project, self.clock())
        if held is None or held.cached is not cached:  # a stale page, served as upstream failed
            return render_view(cached.page, html=html)
        view = held.views.get(html)
        if view is None:  # two threads may render it at once: the same bytes either way
            view = held.views[html] = render_view(held.cached.page, html=html)
        return view

    def forget_pages(self) -> None:
        """Let go of every page held in memory, as a new worker starts (a benchmark's cold
        start; storage is untouched)."""
        with self._held_lock:
            self._held.clear()
            self._held_bytes = 0

    def _cached_page(self, project: NormalizedName) -> CachedPage:
        self._check_name(project)
        now = self.clock()
        held = self._fresh_held(project, now)
        if held is not None:
            return held.cached
        stored = self._stored_page(project)
        cached = stored[0] if stored is not None else None
        if stored is not None and self._fresh(stored[0], now):
            self._hold(project, *stored)
            return stored[0]
        if self._missed(project):
            raise UpstreamMissing(f"no project named {project!r} here or upstream")
        return self._refresh(project, cached, now)

    def _fresh(self, cached: CachedPage, now: datetime) -> bool:
        return now - cached.fetched_at < timedelta(seconds=self.page_seconds)

    def _fresh_held(self, project: NormalizedName, now: datetime) -> HeldPage | None:
        with self._held_lock:
            held = self._held.get(project)
            if held is None:
                return None
            if not self._fresh(held.cached, now):
                self._forget(project)
                return None
            self._held.move_to_end(project)
            return held

    def _hold(self, project: NormalizedName, cached: CachedPage, size: int) -> None:
        with self._held_lock:
            self._forget(project)
            self._held[project] = HeldPage(cached, size)
            self._held_bytes += size
            while self._held_bytes > MAX_HELD_BYTES and len(self._held) > 1:
                self._forget(next(iter(self._held)))

    def _forget(self, project: str) -> None:
        """Under `_held_lock`."""
        held = self._held.pop(project, None)
        if held is not None:
            self._held_bytes -= held.size

    def _refresh(
        self, project: NormalizedName, cached: CachedPage | None, now: datetime
    ) -> CachedPage:
        failures: list[str] = []
        for upstream in self.client.upstreams:
            try:
                fetched = self.client.fetch_page(upstream, project)
                if fetched is None:
                    continue
                parsed = parse_upstream_page(
                    fetched.data, fetched.content_type, fetched.url, project
                )
            except (UpstreamUnavailable, UpstreamPageError) as error:
                failures.append(f"{upstream.shown}: {_reason(error)}")
                continue
            page = self._filtered(project, parsed, now)
            document = page.to_json()
            self.store.put(
                layout.INDEX,
                layout.upstream_page_path(project),
                document,
                content_type=layout.JSON_TYPE,
            )
            self._hold(project, page, len(document))
            log.info("upstream page fetched project=%s files=%d", project, len(page.sources))
            return page
        return self._no_fresh_page(project, cached, failures)

    def _no_fresh_page(
        self, project: NormalizedName, cached: CachedPage | None, failures: list[str]
    ) -> CachedPage:
        if not failures:  # every upstream answered: none has it
            self._remember_miss(project)
            log.info("upstream has no project=%s (remembered %gs)", project, self.miss_seconds)
            raise UpstreamMissing(f"no project named {project!r} here or upstream")
        reasons = "; ".join(failures)
        if cached is not None:
            log.warning(
                "upstream failed, serving the stale page project=%s fetched-at=%s: %s",
                project,
                iso_z(cached.fetched_at),
                reasons,
            )
            return cached
        log.warning("upstream failed, no cached page project=%s: %s", project, reasons)
        raise UpstreamFailed(f"the upstream index did not answer for {project!r}")

    def _filtered(self, project: NormalizedName, parsed: UpstreamPage, now: datetime) -> CachedPage:
        offered, refused = self.policy.offered(parsed, now)
        for filename, reason in sorted(refused.items()):
            log.info("upstream file not offered project=%s file=%s: %s", project, filename, reason)
        page = upstream_project_page(project, offered)
        # The metadata hash as the page links it (none for an sdist), so a `.metadata`
        # request is served exactly when the page promises one.
        links = {link.filename: link for link in page.files}
        sources = {
            f.filename: Source(
                f.url, links[f.filename].sha256, links[f.filename].core_metadata_sha256, f.size
            )
            for f in offered
        }
        return CachedPage(page, now, sources, dict(refused))

    def _stored_page(self, project: NormalizedName) -> tuple[CachedPage, int] | None:
        """The stored page and the size of its document."""
        stored = self.store.get(layout.INDEX, layout.upstream_page_path(project))
        if stored is None:
            return None
        try:
            return CachedPage.from_json(stored.data), len(stored.data)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable cached upstream page project=%s: fetching again", project)
            return None

    def _check_name(self, project: NormalizedName) -> None:
        refusal = self.policy.name_refusal(project)
        if refusal is not None:
            log.info("upstream refused project=%s: %s", project, refusal)
            raise UpstreamRefused(f"{project!r} is not taken from upstream: {refusal}")

    def _missed(self, project: NormalizedName) -> bool:
        with self._misses_lock:
            until = self._misses.get(project)
            if until is not None and until <= time.monotonic():
                del self._misses[project]
                until = None
            return until is not None

    def _remember_miss(self, project: NormalizedName) -> None:
        with self._misses_lock:
            if len(self._misses) >= MAX_MISSES:  # bounded: forget the oldest
                self._misses.pop(next(iter(self._misses)))
            self._misses[project] = time.monotonic() + self.miss_seconds

    # -- files ------------------------------------------------------------------------------

    def file(self, project: NormalizedName, filename: str) -> str:
        """The blob (in the index container) holding this upstream file or its `.metadata`,
        copied on first download; an UpstreamProblem otherwise."""
        self._check_name(project)
        path = layout.upstream_file_path(project, filename)
        if self.store.info(layout.INDEX, path) is not None:
            return path  # copied before: the upstream is not asked, even if it is gone
        cached = self._cached_page(project)
        if filename.endswith(METADATA_SUFFIX):
            return self._metadata(project, cached, filename.removesuffix(METADATA_SUFFIX))
        source = self._source(project, cached, filename)
        self._copy(source.url, path, source.sha256, project, source.size)
        if source.core_metadata_sha256 is not None:
            self._metadata_alongside(project, filename, source)
        return path

    def _source(self, project: NormalizedName, cached: CachedPage, filename: str) -> Source:
        source = cached.sources.get(filename)
        if source is not None:
            return source
        reason = cached.refused.get(filename)
        if reason is not None:
            log.info("upstream refused file project=%s file=%s: %s", project, filename, reason)
            raise UpstreamRefused(f"{filename} is not offered from upstream: {reason}")
        raise UpstreamMissing(f"no file {filename!r} in project {project!r}")

    def _metadata(self, project: NormalizedName, cached: CachedPage, filename: str) -> str:
        source = self._source(project, cached, filename)
        if source.core_metadata_sha256 is None:
            raise UpstreamMissing(f"no core metadata for {filename!r} upstream")
        path = layout.upstream_file_path(project, filename + METADATA_SUFFIX)
        self._copy(source.url + METADATA_SUFFIX, path, source.core_metadata_sha256, project)
        return path

    def _metadata_alongside(self, project: NormalizedName, filename: str, source: Source) -> None:
        """The core-metadata file comes along; the file itself is served either way."""
        path = layout.upstream_file_path(project, filename + METADATA_SUFFIX)
        if self.store.info(layout.INDEX, path) is not None:
            return
        assert source.core_metadata_sha256 is not None
        try:
            self._copy(source.url + METADATA_SUFFIX, path, source.core_metadata_sha256, project)
        except UpstreamProblem as problem:
            log.warning("upstream metadata not copied file=%s: %s", filename, problem.message)

    def _copy(
        self, url: str, path: str, sha256: str, project: NormalizedName, size: int | None = None
    ) -> None:
        """Stream `url` into `path` as staged blocks; commit create-only if the hash matches."""
        try:
            staged, digest = self._stage(url, path, size)
        except UpstreamUnavailable as error:
            log.warning("upstream copy failed project=%s path=%s: %s", project, path, error)
            raise UpstreamFailed(f"the upstream did not deliver {_name(path)}") from None
        except _TooLarge:
            log.warning("upstream file larger than its page says, refused path=%s", path)
            raise UpstreamHashMismatch(
                f"{_name(path)} from upstream is larger than its page says: refused"
            ) from None
        if digest != sha256:
            log.warning(
                "upstream hash mismatch, refused and not stored project=%s path=%s "
                "expected=%s got=%s",
                project,
                path,
                sha256,
                digest,
            )
            raise UpstreamHashMismatch(
                f"{_name(path)} from upstream does not match its sha256: refused"
            )
        self._commit(path, staged, sha256, project)

    def _stage(self, url: str, path: str, size: int | None) -> tuple[list[str] | bytes, str]:
        """The block ids staged, or the whole file when it fits in one block (nothing staged
        then: it is put at once if its hash matches), and the sha256 of the bytes."""
        writer = uuid.uuid4().hex  # block ids unique to this copy: racing copies never mix
        digest = hashlib.sha256()
        blocks: list[str] = []
        copied = 0

        def hashed(block: bytes) -> bytes:
            nonlocal copied
            copied += len(block)
            if size is not None and copied > size:
                raise _TooLarge
            digest.update(block)
            return block

        def stage(block: bytes) -> None:
            blocks.append(f"{writer}-{len(blocks):08d}")
            self.store.stage_block(layout.INDEX, path, blocks[-1], block)

        with self.client.open_file(url) as chunks:
            pieces = (hashed(block) for block in _blocks(chunks, self.block_bytes))
            first = next(pieces, b"")
            for block in pieces:  # a second block: the file is staged block by block
                if first:
                    stage(first)
                    first = b""  # one block in memory at a time from here on
                stage(block)
        return (blocks or first), digest.hexdigest()

    def _commit(
        self, path: str, staged: list[str] | bytes, sha256: str, project: NormalizedName
    ) -> None:
        metadata = {"source": "upstream", "sha256": sha256}
        try:
            if isinstance(staged, bytes):
                self.store.put(
                    layout.INDEX,
                    path,
                    staged,
                    content_type=layout.BINARY_TYPE,
                    create_only=True,
                    metadata=metadata,
                )
            else:
                self.store.commit_blocks(
                    layout.INDEX, path, staged, content_type=layout.BINARY_TYPE, metadata=metadata
                )
        except BlobExists:  # a concurrent first download committed the same verified bytes
            log.info("upstream copy already stored path=%s", path)
            return
        blocks = 1 if isinstance(staged, bytes) else len(staged)
        log.info("upstream file copied project=%s path=%s blocks=%d", project, path, blocks)


def _blocks(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Chunks regrouped into blocks of `size` bytes (the last one shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


class _TooLarge(Exception):
    """More bytes than the upstream page gave as the file's size."""


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _reason(error: Exception) -> str:
    if isinstance(error, UpstreamPageError):
        return f"unreadable page ({type(error).__name__})"
    return str(error)
