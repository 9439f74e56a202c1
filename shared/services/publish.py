"""Publish: turn a blob dropped into `uploads` into an immutable, indexed release.

Validation first (nothing touches the index until the wheel is known good), then create-only
writes in an order that makes every retry safe: the distribution's claim (the immutability guard,
keyed on the distribution, not on how the filename is spelled), file, sidecar, record, root page
(only for a new project), project page, and the upload's deletion last. A crash anywhere leaves
either nothing or a state the next delivery of the same event completes.

Every step costs a constant number of storage requests, whatever the size of the project or the
index: the page step reads the page, adds the file and writes it back on the ETag it read.

Two ways in, one pipeline: `publish_upload` (the blob trigger) and the upload API (PyPI's
`/legacy/` form, `shared.services.upload_api`) both call `publish`, which spools, validates,
checks what the request said about the file (`Expected`: its digests, name and version),
publishes or quarantines, and answers with a `PublishResult`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, BinaryIO, Literal, Protocol, runtime_checkable

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from shared.adapters.blobstore import BlobChanged, BlobExists, BlobStore
from shared.core import layout
from shared.core.clock import utc_now
from shared.core.distribution import DistributionInfo, check_upload_name, inspect_distribution
from shared.core.errors import RejectCode, Rejection
from shared.core.records import FileRecord
from shared.core.sdist import SdistLimits
from shared.core.wheel import Limits
from shared.services.pages import IndexPages
from shared.services.quarantine import Payload, Quarantine
from shared.services.records import IndexRecords

log = logging.getLogger("wheelvault.publish")

CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 16 * 1024 * 1024


@dataclass(frozen=True)
class PublishResult:
    """What happened to one upload. `status` is published, unchanged or rejected."""

    upload: str
    status: Literal["published", "unchanged", "rejected"]
    sha256: str
    size: int
    project: str | None = None
    version: str | None = None
    code: RejectCode | None = None
    message: str | None = None
    quarantined_as: str | None = None

    def log_fields(self) -> dict[str, object]:
        fields = {k: v for k, v in self.__dict__.items() if v is not None}
        fields["upload"] = repr(self.upload)[1:-1]  # one printable line, whatever the name holds
        return fields


@runtime_checkable
class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _chunks(stream: IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    """The upload's bytes in chunks: read from a file (which is also an iterable, of lines),
    or as an iterable yields them."""
    if isinstance(stream, _Readable):
        while chunk := stream.read(CHUNK):
            yield chunk
    else:
        yield from stream


class _Spool(contextlib.ExitStack):
    """The upload's bytes as a binary file: in memory up to SPOOL_IN_MEMORY, on disk beyond."""

    def __init__(self) -> None:
        super().__init__()
        self.file: BinaryIO = io.BytesIO()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        if isinstance(self.file, io.BytesIO) and self.file.tell() > SPOOL_IN_MEMORY:
            on_disk = self.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - the ExitStack closes it
            on_disk.write(self.file.getvalue())
            self.file = on_disk

    def rewound(self) -> BinaryIO:
        self.file.seek(0)
        return self.file


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


DIGESTS: Mapping[str, Callable[[], _Hasher]] = {
    "md5": lambda: hashlib.md5(usedforsecurity=False),  # PyPI's oldest field; a checksum here
    "sha256": hashlib.sha256,
    "blake2_256": lambda: hashlib.blake2b(digest_size=32),
}
"""The digests the upload API's form can carry (`{algorithm}_digest`), and how to compute each."""


@dataclass(frozen=True)
class Expected:
    """What a request says about the file it carries; `publish` checks each part it is given.

    `digests`: algorithm (a key of DIGESTS) -> lower-case hex, as sent; every one must match
    the bytes. `name` and `version`: as the form gives them; they must be the file's own
    (compared normalised, as PyPI compares them).
    """

    name: str | None = None
    version: str | None = None
    digests: Mapping[str, str] = field(default_factory=dict)

    def check_digests(self, computed: Mapping[str, str]) -> None:
        for algorithm, sent in self.digests.items():
            if not hmac.compare_digest(sent.encode(), computed[algorithm].encode()):
                raise Rejection(
                    RejectCode.DIGEST_MISMATCH,
                    f"the file's {algorithm} digest is {computed[algorithm]}, not the "
                    f"{algorithm}_digest sent with it ({sent}): the file changed on the way, "
                    "or the digest is of another file",
                )

    def check_metadata(self, project: str, version: str) -> None:
        """`project`/`version`: the file's own (its metadata's name, normalised, and version)."""
        same_name = self.name is None or canonicalize_name(self.name) == project
        if same_name and (self.version is None or _same_version(self.version, version)):
            return
        raise Rejection(
            RejectCode.FORM_MISMATCH,
            f"the form says name {self.name!r} version {self.version!r}, but the file is "
            f"{project} {version}: send the name and version of the file's own metadata",
        )


def _same_version(sent: str, version: str) -> bool:
    try:
        return Version(sent) == Version(version)
    except InvalidVersion:
        return False


class Publisher:
    def __init__(
        self,
        store: BlobStore,
        records: IndexRecords,
        pages: IndexPages,
        *,
        max_upload_bytes: int,
        limits: Limits | None = None,
        sdist_limits: SdistLimits | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.records = records
        self.pages = pages
        self.quarantine = Quarantine(store, clock=clock)
        self.max_upload_bytes = max_upload_bytes
        self.limits = limits or Limits()
        self.sdist_limits = sdist_limits or SdistLimits()
        self.clock = clock

    def publish_upload(
        self, name: str, stream: IO[bytes] | Iterable[bytes], *, etag: str | None = None
    ) -> PublishResult:
        """Publish `uploads/{name}` whose bytes `stream` yields, then remove the upload;
        never raises for bad input.

        `etag`: the version of the upload these bytes came from, so that the final delete cannot
        remove a newer blob written under the same name meanwhile (its own event will follow).
        """
        result = self.publish(
            name,
            stream,
            source=f"{layout.UPLOADS}/{name}",
            reread=lambda: self.store.read_chunks(layout.UPLOADS, name),
        )
        self._remove_upload(name, etag)
        return result

    def publish(
        self,
        name: str,
        stream: IO[bytes] | Iterable[bytes],
        *,
        source: str,
        reread: Callable[[], Payload],
        expected: Expected | None = None,
    ) -> PublishResult:
        """Publish the file `name` whose bytes `stream` yields; never raises for bad input.

        Spool, validate, check `expected` (digests before anything else is looked at, the
        name and version against the file's metadata), publish or quarantine. `source` says
        where the file came from (kept in its record and in a quarantine reason); `reread`
        gives every byte again, for quarantining a file over the cap (only its head is spooled).
        """
        expected = expected or Expected()
        with _Spool() as spool:
            digests, size = self._spool(_chunks(stream), spool, expected.digests)
            sha256 = digests["sha256"]
            try:
                self.check_name(name)
                if size > self.max_upload_bytes:
                    raise Rejection(
                        RejectCode.TOO_LARGE,
                        f"{size} bytes is over the limit of {self.max_upload_bytes} bytes "
                        "(WHEELVAULT_MAX_UPLOAD_BYTES)",
                    )
                expected.check_digests(digests)
                info = inspect_distribution(
                    name,
                    spool.rewound(),
                    wheel_limits=self.limits,
                    sdist_limits=self.sdist_limits,
                )
                expected.check_metadata(info.project, info.version)
                status = self._publish(info, spool.rewound(), sha256, size, source)
                result = PublishResult(
                    name, status, sha256, size, project=info.project, version=info.version
                )
            except Rejection as rejection:
                kept = spool.rewound if size <= self.max_upload_bytes else reread
                quarantined = self._quarantine(name, rejection, sha256, size, kept, source)
                result = PublishResult(
                    name,
                    "rejected",
                    sha256,
                    size,
                    code=rejection.code,
                    message=rejection.message,
                    quarantined_as=quarantined,
                )
        log.info("upload %s", result.status, extra={"wheelvault": result.log_fields()})
        return result

    @staticmethod
    def check_name(name: str) -> None:
        """The first check `publish` makes: a Rejection for a name that is no upload name."""
        check_upload_name(name)

    def _spool(
        self, chunks: Iterator[bytes], spool: _Spool, algorithms: Iterable[str]
    ) -> tuple[dict[str, str], int]:
        """Hash every byte (sha256 and `algorithms`); keep at most one byte over the cap (the
        rest is only hashed)."""
        hashers = {name: DIGESTS[name]() for name in {"sha256", *algorithms}}
        size = 0
        for chunk in chunks:
            for hasher in hashers.values():
                hasher.update(chunk)
            if size <= self.max_upload_bytes:
                spool.write(chunk[: self.max_upload_bytes + 1 - size])
            size += len(chunk)
        return {name: hasher.hexdigest() for name, hasher in hashers.items()}, size

    def _publish(
        self, info: DistributionInfo, spool: IO[bytes], sha256: str, size: int, source: str
    ) -> Literal["published", "unchanged"]:
        project, filename = info.project, info.filename
        if self.records.tombstoned(filename):
            raise Rejection(
                RejectCode.FILENAME_TOMBSTONED,
                f"{filename} was deleted from the index and can never be published again; "
                "publish a new version (or a new build tag) instead",
            )
        published_as = self.records.claim(filename)
        if published_as != filename:
            raise Rejection(
                RejectCode.FILE_EXISTS,
                f"{filename} is the same distribution as the published {published_as}; "
                "files are immutable, publish a new version instead",
            )
        status: Literal["published", "unchanged"] = "published"
        try:
            self.store.put(
                layout.INDEX,
                layout.file_path(project, filename),
                spool,
                length=size,
                content_type=layout.BINARY_TYPE,
                create_only=True,
                metadata={"sha256": sha256},
            )
        except BlobExists:
            if self._published_sha256(info) != sha256:
                raise Rejection(
                    RejectCode.FILE_EXISTS,
                    f"{filename} is already published with different contents; "
                    "files are immutable, publish a new version instead",
                ) from None
            status = "unchanged"
        # Sidecar before record: a page lists a file once its record exists, and everything a
        # page links to must already be there.
        if info.metadata is not None:  # a wheel's PEP 658 file; an sdist has none
            self._create(layout.metadata_path(project, filename), info.metadata, layout.BINARY_TYPE)
        record = self.records.create(self._record(info, sha256, size, source))
        self.pages.add_file(record)
        return status

    def _record(self, info: DistributionInfo, sha256: str, size: int, source: str) -> FileRecord:
        return FileRecord(
            project=info.project,
            name=info.name,
            version=info.version,
            filename=info.filename,
            sha256=sha256,
            size=size,
            upload_time=self.clock(),
            requires_python=info.requires_python,
            metadata_sha256=info.metadata_sha256,
            source=source,
            warnings=info.warnings,
        )

    def _published_sha256(self, info: DistributionInfo) -> str:
        path = layout.file_path(info.project, info.filename)
        existing = self.store.info(layout.INDEX, path)
        if existing is not None and "sha256" in existing.metadata:
            return existing.metadata["sha256"]
        digest = hashlib.sha256()
        for chunk in self.store.read_chunks(layout.INDEX, path):
            digest.update(chunk)
        return digest.hexdigest()

    def _create(self, path: str, data: bytes, content_type: str) -> None:
        """Create-only write; an existing blob (from an earlier delivery) is kept as it is."""
        with contextlib.suppress(BlobExists):
            self.store.put(layout.INDEX, path, data, content_type=content_type, create_only=True)

    def _quarantine(
        self,
        name: str,
        rejection: Rejection,
        sha256: str,
        size: int,
        data: Callable[[], Payload],
        source: str,
    ) -> str:
        return self.quarantine.put(
            name,
            data,
            sha256=sha256,
            size=size,
            code=rejection.code,
            message=rejection.message,
            extra={"source": source},
        )

    def _remove_upload(self, name: str, etag: str | None) -> None:
        try:
            self.store.delete(layout.UPLOADS, name, if_match=etag)
        except BlobChanged:
            log.warning(
                "upload replaced while being published; its own event will publish it",
                extra={"wheelvault": {"upload": repr(name)[1:-1]}},
            )
