"""The poison path: a blob whose function kept failing goes to the quarantine container.

Event Grid gives up on an event after its retries and dead-letters it; the local host does the
equivalent with what wheelvault already uses for rejected uploads: the bytes under
``quarantine/{name}`` (``{name}.N`` when different bytes are there already) and
``{name}.reason.json`` next to them with code ``handler-failed``. The upload is deleted last
and only in the version that failed, so a newer upload under the same name is never lost.
The reason says how often and with which exception *type* the function failed, never the
exception text (it may hold secrets).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from shared.core.errors import RejectCode

logger = logging.getLogger("devhost.host")

REASON_SUFFIX = ".reason.json"
MAX_BLOB_NAME = 1024
MAX_SAME_NAME = 1000


@dataclass(frozen=True)
class Failure:
    """Why a blob is quarantined: which function, how many attempts, the last error's type."""

    function: str
    attempts: int
    error: str


def quarantine_blob(
    service: BlobServiceClient,
    source: str,
    name: str,
    etag: str,
    data: bytes,
    *,
    quarantine: str,
    failure: Failure,
) -> str:
    """Copy ``data`` and a reason to ``quarantine``, then delete ``source/name`` at ``etag``.

    Returns the name the bytes were stored under. Storage errors propagate: the caller tries
    again later, and every step is safe to repeat.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    container = service.get_container_client(quarantine)
    target = _store(container, name, data, sha256)
    reason = {
        "code": RejectCode.HANDLER_FAILED.value,
        "message": (
            f"the function {failure.function} failed {failure.attempts} times "
            f"(last error: {failure.error}); the blob was not processed"
        ),
        "at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "sha256": sha256,
        "size": len(data),
        "upload": name,
        "function": failure.function,
    }
    container.upload_blob(
        target + REASON_SUFFIX,
        json.dumps(reason, indent=2).encode() + b"\n",
        overwrite=True,
        content_settings=ContentSettings(content_type="application/json"),
    )
    try:
        service.get_blob_client(source, name).delete_blob(
            etag=etag, match_condition=MatchConditions.IfNotModified
        )
    except ResourceNotFoundError:
        pass  # deleted meanwhile (by the function's last attempt, say): nothing left to remove
    except ResourceModifiedError:
        logger.warning(
            "blob %r was replaced while being quarantined; the new version is delivered anew",
            f"{source}/{name}",
        )
    return target


def _store(container: ContainerClient, name: str, data: bytes, sha256: str) -> str:
    """Create-only write under ``name`` or the first free ``name.N``; the same bytes are reused."""
    base = name
    if len(name) > MAX_BLOB_NAME - 40:
        base = f"{name[:900]}~{sha256[:16]}"
    for n in range(MAX_SAME_NAME):
        candidate = base if n == 0 else f"{base}.{n}"
        if _create(container, candidate, data, sha256):
            return candidate
        existing = container.get_blob_client(candidate).get_blob_properties()
        if (existing.metadata or {}).get("sha256") == sha256:
            return candidate
    return f"{base}.{sha256}"


def _create(container: ContainerClient, name: str, data: bytes, sha256: str) -> bool:
    """Create the blob; False when one is there already. Creates the container if missing."""
    for _ in range(2):
        try:
            container.upload_blob(
                name,
                data,
                overwrite=False,
                metadata={"sha256": sha256},
                content_settings=ContentSettings(content_type="application/octet-stream"),
            )
        except ResourceExistsError:
            return False
        except ResourceNotFoundError:  # no quarantine container yet: make it, as Azure does
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            continue
        return True
    raise ResourceNotFoundError(f"container {container.container_name} cannot be created")
