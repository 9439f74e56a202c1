"""The poison path: a blob whose function kept failing goes to the quarantine container.

Event Grid gives up on an event after its retries and dead-letters it; the local host does the
equivalent with wheelvault's own quarantine (`shared.services.quarantine`, as for rejected
uploads), with code ``handler-failed`` and the function's name in the reason. What is the local
host's own: the reason says how often and with which exception *type* the function failed, never
the exception text (it may hold secrets); the container is created if missing (as Azure does);
and the blob is deleted last and only in the version that failed, so a newer upload under the
same name is never lost.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from shared.adapters.blobstore import BlobChanged, BlobStore
from shared.core.errors import RejectCode
from shared.services.quarantine import Quarantine

logger = logging.getLogger("devhost.host")


@dataclass(frozen=True)
class Failure:
    """Why a blob is quarantined: which function, how many attempts, the last error's type."""

    function: str
    attempts: int
    error: str

    @property
    def message(self) -> str:
        return (
            f"the function {self.function} failed {self.attempts} times "
            f"(last error: {self.error}); the blob was not processed"
        )


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
    store = BlobStore(service)
    target = _keep(store, quarantine, name, data, failure)
    try:
        store.delete(source, name, if_match=etag)  # False: deleted meanwhile, nothing left
    except BlobChanged:
        logger.warning(
            "blob %r was replaced while being quarantined; the new version is delivered anew",
            f"{source}/{name}",
        )
    return target


def _keep(store: BlobStore, container: str, name: str, data: bytes, failure: Failure) -> str:
    def put() -> str:
        return Quarantine(store, container=container).put(
            name,
            lambda: data,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            code=RejectCode.HANDLER_FAILED,
            message=failure.message,
            extra={"function": failure.function},
        )

    try:
        return put()
    except ResourceNotFoundError:  # no quarantine container yet: make it, as Azure does
        store.ensure_containers((container,))
        return put()
