"""Quarantine: where a file that will not be published is kept, with why.

The bytes go under the upload's name (`{name}.N` when different bytes are there already, and a
name too long for a blob is cut and given the hash) with `{name}.reason.json` beside them:
code, message, time, sha256, size and the upload's name, plus whatever the caller adds. Used by
publishing for rejected uploads and by the local host for blobs whose function kept failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import IO

from shared.adapters.blobstore import BlobExists, BlobStore
from shared.core import layout
from shared.core.clock import iso_z, utc_now
from shared.core.errors import RejectCode

MAX_BLOB_NAME = 1024
MAX_SAME_NAME = 1000
Payload = bytes | IO[bytes] | Iterable[bytes]
"""The bytes to keep, as `BlobStore.put` takes them."""


class Quarantine:
    """Puts files with their reasons into one quarantine container."""

    def __init__(
        self,
        store: BlobStore,
        *,
        container: str = layout.QUARANTINE,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.container = container
        self.clock = clock

    def put(
        self,
        upload: str,
        data: Callable[[], Payload],
        *,
        sha256: str,
        size: int,
        code: RejectCode,
        message: str,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """Keep the bytes `data()` gives and the reason; returns the name they are kept under.

        `data` is called for each write it takes (a write that lost a race has used them up).
        Safe to repeat: the same bytes are found again under the same name.
        """
        target = self._store(quarantine_name(upload, sha256), data, sha256)
        reason = {
            "code": code.value,
            "message": message,
            "at": iso_z(self.clock()),
            "sha256": sha256,
            "size": size,
            "upload": upload,
            **(extra or {}),
        }
        self.store.put(
            self.container,
            layout.reason_path(target),
            json.dumps(reason, indent=2).encode() + b"\n",
            content_type=layout.JSON_TYPE,
        )
        return target

    def _store(self, base: str, data: Callable[[], Payload], sha256: str) -> str:
        """Create-only under `base` or the first `base.N` that is free or holds these bytes.

        Each name is looked at before writing, so bytes kept already are never sent again.
        """
        for n in range(MAX_SAME_NAME):
            candidate = base if n == 0 else f"{base}.{n}"
            existing = self.store.info(self.container, candidate)
            if existing is None and self._create(candidate, data(), sha256):
                return candidate
            existing = existing or self.store.info(self.container, candidate)
            if existing is not None and existing.metadata.get("sha256") == sha256:
                return candidate
        return f"{base}.{sha256}"

    def _create(self, name: str, data: Payload, sha256: str) -> bool:
        """Write the blob; False when another writer created it first."""
        try:
            self.store.put(
                self.container,
                name,
                data,
                content_type=layout.BINARY_TYPE,
                create_only=True,
                metadata={"sha256": sha256},
            )
        except BlobExists:
            return False
        return True


def quarantine_name(upload: str, sha256: str) -> str:
    """The name `upload`'s bytes are kept under (before any `.N`): a name too long for a blob
    with its suffixes is cut and made unique by the hash."""
    return upload if len(upload) <= MAX_BLOB_NAME - 40 else f"{upload[:900]}~{sha256[:16]}"
