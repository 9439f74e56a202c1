"""Deliver each new blob of a container to its function, at least once and never twice at once.

A blob is its name *and* ETag: a re-upload under the same name is a new blob. Blobs already
waiting when the host starts are delivered too (an upload made while the host was down is not
lost, unlike with Event Grid). For each one:

* one delivery at a time (never two concurrent invocations of the same blob version);
* a function that raises is retried after ``retry_delays``, up to ``max_attempts`` in all;
  then the blob moves to the quarantine container (``quarantine.py``): nothing silently lost,
  nothing retried forever;
* a storage error (Azurite restarting, say) is not the function's failure: the delivery is
  tried again later without using an attempt, and a failing listing is logged once per outage
  while polling goes on.

The function receives a real ``azure.functions.blob.InputStream``: name ``container/blob``,
URI, length, metadata, ``blob_properties`` (``ETag``, ``Length``, content type, times) and the
bytes, read at that ETag (a blob replaced meanwhile is left to its own delivery).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import azure.functions as func
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient

from .blobs import WORKERS, BlobFunction, BlobOptions
from .invoke import EventLoopThread
from .quarantine import Failure, quarantine_blob
from .triggers import Outcome, TriggerRunner, call_function, failed, log_invocation

logger = logging.getLogger("devhost.host")

STORAGE_RETRY_SECONDS = 1.0

BlobKey = tuple[str, str]  # (name, ETag without quotes)


class BlobBusy(Exception):
    """This version of the blob is being delivered right now."""


@dataclass(frozen=True)
class _Blob:
    """One downloaded blob version; each attempt gets a fresh stream over the same bytes."""

    path: str  # container/name, as the trigger reports it
    uri: str
    data: bytes
    properties: dict[str, object]
    metadata: dict[str, str]

    def stream(self) -> func.blob.InputStream:
        """What the trigger binding hands the function."""
        return func.blob.InputStream(
            data=self.data,
            name=self.path,
            uri=self.uri,
            length=len(self.data),
            blob_properties=dict(self.properties),
            metadata=dict(self.metadata),
        )


@dataclass
class _Delivery:
    """Where one blob version stands. Changed only by whoever set ``running``."""

    attempts: int = 0
    retry_at: float = 0.0
    running: bool = False
    gave_up: bool = False  # every attempt failed; only the move to quarantine is left
    last_error: str = ""
    storage_errors: int = 0


class BlobWatcher(TriggerRunner):
    """Delivers the blobs of one function's container: poll thread plus a worker pool."""

    def __init__(self, function: BlobFunction, loop: EventLoopThread, options: BlobOptions) -> None:
        name = function.name
        super().__init__(f"devhost-watch-{name}", f"the watcher of {name}")
        self.function = function
        self.options = options
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: dict[BlobKey, _Delivery] = {}
        self._done: set[BlobKey] = set()
        self._service: BlobServiceClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._failed_polls = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        """The workers, before the poll thread that hands them deliveries."""
        self._pool = ThreadPoolExecutor(
            WORKERS, thread_name_prefix=f"devhost-blob-{self.function.name}"
        )

    def stop(self) -> None:
        """Stop polling, let running deliveries finish, drop queued ones (kept for next time)."""
        super().stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for delivery in self._pending.values():
                delivery.running = False  # a cancelled delivery is tried again after a restart
            service, self._service = self._service, None
        if service is not None:
            service.close()

    def _client(self) -> BlobServiceClient:
        with self._lock:
            if self._service is None:
                self._service = self.function.client()
            return self._service

    # -- polling -----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._poll()
            if self._stop.wait(self.options.poll_interval):
                return

    def _poll(self) -> None:
        container = self._client().get_container_client(self.function.container)
        try:
            keys = [
                (str(blob.name), _bare(blob.etag))
                for blob in container.list_blobs()
                if self.function.pattern.fullmatch(str(blob.name))
            ]
        except Exception as exc:  # storage down, container missing: keep polling
            self._poll_failed(exc)
            return
        if self._failed_polls:
            logger.info(
                "blob watcher %s: storage answers again after %d failed polls",
                self.function.name,
                self._failed_polls,
            )
            self._failed_polls = 0
        for key, delivery in self._due(keys):
            assert self._pool is not None  # only the poll thread submits, and only while running
            self._pool.submit(self._deliver, key, delivery)

    def _due(self, keys: list[BlobKey]) -> list[tuple[BlobKey, _Delivery]]:
        """The listed blobs to deliver now, marked running; forgets blobs no longer listed."""
        now, due = time.monotonic(), []
        with self._lock:
            present = set(keys)
            self._done &= present
            for key in [k for k, d in self._pending.items() if k not in present and not d.running]:
                del self._pending[key]
            for key in keys:
                if key in self._done:
                    continue
                delivery = self._pending.setdefault(key, _Delivery())
                if not delivery.running and now >= delivery.retry_at:
                    delivery.running = True
                    due.append((key, delivery))
        return due

    def _poll_failed(self, exc: Exception) -> None:
        self._failed_polls += 1
        if self._failed_polls == 1:
            logger.warning(
                "blob watcher %s: cannot list container %s (%s); still polling",
                self.function.name,
                self.function.container,
                _storage_error(exc),
            )

    # -- delivery ----------------------------------------------------------------------------

    def _deliver(self, key: BlobKey, delivery: _Delivery) -> None:
        done = False
        try:
            if delivery.gave_up:
                done = self._quarantine(key, delivery, None)
                return
            blob = self._download(key)
            if blob is None:  # deleted or replaced since the listing
                done = True
                return
            delivery.attempts += 1
            outcome = self._invoke(blob, "blob")
            done = outcome.ok or self._after_failure(key, delivery, outcome, blob)
        except Exception as exc:  # storage (or host) trouble, not the function's: no attempt used
            delivery.storage_errors += 1
            logger.log(
                logging.WARNING if delivery.storage_errors == 1 else logging.DEBUG,
                "blob watcher %s: error delivering %r (%s); trying again every %.0fs",
                self.function.name,
                f"{self.function.container}/{key[0]}",
                _storage_error(exc),
                STORAGE_RETRY_SECONDS,
            )
            delivery.retry_at = time.monotonic() + STORAGE_RETRY_SECONDS
        finally:
            self._finish(key, delivery, done=done)

    def _after_failure(
        self, key: BlobKey, delivery: _Delivery, outcome: Outcome, blob: _Blob
    ) -> bool:
        """Schedule the retry, or give up and quarantine; True when nothing is left to do."""
        assert outcome.error is not None
        delivery.last_error = outcome.error
        limit = self.options.max_attempts
        if delivery.attempts < limit:
            delivery.retry_at = time.monotonic() + self.options.delay_after(delivery.attempts)
            result = f"failed: {outcome.error}; retrying {delivery.attempts + 1} of {limit}"
            log_invocation(self.function.name, "blob", outcome, result, blob=blob.path)
            return False
        delivery.gave_up = True
        result = f"failed: {outcome.error}; poisoned after {delivery.attempts} attempts"
        log_invocation(self.function.name, "blob", outcome, result, blob=blob.path)
        return self._quarantine(key, delivery, blob.data)

    def _quarantine(self, key: BlobKey, delivery: _Delivery, data: bytes | None) -> bool:
        name, etag = key
        if data is None:
            blob = self._download(key)
            if blob is None:
                return True  # gone or replaced: nothing to quarantine
            data = blob.data
        failure = Failure(self.function.name, delivery.attempts, delivery.last_error)
        target = quarantine_blob(
            self._client(),
            self.function.container,
            name,
            _quoted(etag),
            data,
            quarantine=self.options.quarantine_container,
            failure=failure,
        )
        logger.warning(
            "blob %r moved to %r after %d failed attempts",
            f"{self.function.container}/{name}",
            f"{self.options.quarantine_container}/{target}",
            delivery.attempts,
        )
        return True

    def _finish(self, key: BlobKey, delivery: _Delivery, *, done: bool) -> None:
        with self._lock:
            delivery.running = False
            if done:
                self._pending.pop(key, None)
                self._done.add(key)

    def _invoke(self, blob: _Blob, trigger: str) -> Outcome:
        """Call the function; log here unless a blob trigger's failure (retry or poison) is."""
        outcome = call_function(
            self.function.info, self.function.arg_name, blob.stream(), self._loop
        )
        if outcome.ok or trigger != "blob":
            log_invocation(self.function.name, trigger, outcome, failed(outcome), blob=blob.path)
        return outcome

    def _download(self, key: BlobKey) -> _Blob | None:
        """The blob at exactly this ETag; None when it was deleted or replaced meanwhile."""
        name, etag = key
        client = self._client().get_blob_client(self.function.container, name)
        try:
            downloader = client.download_blob(
                etag=_quoted(etag), match_condition=MatchConditions.IfNotModified
            )
            data = downloader.readall()
        except (ResourceNotFoundError, ResourceModifiedError):
            return None
        props = downloader.properties
        md5 = props.content_settings.content_md5
        properties = {
            "ETag": _quoted(str(props.etag)),
            "Length": len(data),
            "ContentType": props.content_settings.content_type,
            "ContentMD5": base64.b64encode(bytes(md5)).decode() if md5 else None,
            "BlobType": getattr(props.blob_type, "value", str(props.blob_type)),
            "LastModified": props.last_modified.isoformat() if props.last_modified else None,
            "CreatedOn": props.creation_time.isoformat() if props.creation_time else None,
        }
        return _Blob(
            path=f"{self.function.container}/{name}",
            uri=client.url,
            data=data,
            properties={k: v for k, v in properties.items() if v is not None},
            metadata=dict(props.metadata or {}),
        )

    # -- the admin API -------------------------------------------------------------------------

    def claim(self, name: str) -> BlobKey | None:
        """Reserve the current version of ``name`` for a manual run; None if there is no blob.

        Raises :class:`BlobBusy` while that version is being delivered.
        """
        client = self._client().get_blob_client(self.function.container, name)
        try:
            key = (name, _bare(client.get_blob_properties().etag))
        except ResourceNotFoundError:
            return None
        with self._lock:
            delivery = self._pending.setdefault(key, _Delivery())
            if delivery.running:
                raise BlobBusy(name)
            delivery.running = True
        return key

    def run_claimed(self, key: BlobKey) -> None:
        """One manual attempt (no retries); success counts as the blob's delivery."""
        with self._lock:
            delivery = self._pending.get(key) or _Delivery(running=True)
        done = False
        try:
            blob = self._download(key)
            if blob is None:
                logger.warning("admin run of %s: %r is gone", self.function.name, key[0])
                return
            done = self._invoke(blob, "admin").ok
        except Exception as exc:
            logger.warning(
                "admin run of %s: storage error (%s)", self.function.name, _storage_error(exc)
            )
        finally:
            self._finish(key, delivery, done=done)


def _bare(etag: object) -> str:
    """Listings give ETags bare, properties quoted: compare them bare."""
    return str(etag).strip('"')


def _quoted(etag: str) -> str:
    return f'"{_bare(etag)}"'


def _storage_error(exc: Exception) -> str:
    """Type, status and error code only: SDK messages can be long and echo request details."""
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None)
        return f"{type(exc).__name__} {exc.status_code}" + (f" {code}" if code else "")
    return type(exc).__name__
