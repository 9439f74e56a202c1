"""Blob Storage behind a small interface: reads, conditional writes, listings.

Only the conditions the index needs are exposed (create-only, compare-and-swap on ETag), and
Azure's exceptions for them are translated into `BlobExists` / `BlobChanged`. Every other storage
error propagates unchanged: it is transient as far as the callers know, and the platform retries.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import requests
import requests.adapters
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.blob import (
    BlobBlock,
    BlobPrefix,
    BlobServiceClient,
    ContentSettings,
    ExponentialRetry,
)
from urllib3.util.retry import Retry

from shared.core import layout
from shared.settings import Settings


class BlobExists(Exception):
    """A create-only write found the blob already there."""


class BlobChanged(Exception):
    """A compare-and-swap write lost: the blob's ETag is no longer the one we read."""


@dataclass(frozen=True)
class StoredBlob:
    data: bytes
    etag: str
    content_type: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BlobInfo:
    name: str
    etag: str
    size: int
    content_type: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None
    """When the blob was last written (for a create-only blob: when it was made)."""


POOL_SIZE = 32
"""Connections kept per host: concurrent invocations share one client, and page refreshes read
records in parallel, so requests' default of 10 would churn connections under load."""

STORAGE_CONNECT_TIMEOUT = 4.0
"""Seconds to open a connection (TCP and TLS). urllib3 also applies it to each send() of a request
body, so it is the longest an upload may stall, not how long it may take."""
STORAGE_READ_TIMEOUT = 6.0
"""Seconds one socket read may wait for data: per read, not per transfer, so a big download that
keeps streaming is never cut off, while storage that stops answering is noticed at once."""
STORAGE_DEADLINE = 7.0
"""A storage call's whole budget, retries and back-off included: no retry starts past it, and each
try's timeouts are clipped to what is left (azure-storage-blob's defaults, 20 s and 60 s per try
and 3 retries 15-40 s apart, let one call take 80 s when storage is down). Short enough that the
CLI fails within 10 s; a transfer that keeps moving is never cut, as the timeouts are per read."""
STORAGE_RETRIES = 3
MIN_TRY_SECONDS = 0.5
"""A retry is started only with at least this much of the budget left."""
DEADLINE_OPTION = "wheelvault_deadline"
"""Per-call option (a `time.monotonic()` instant) that the retry policies set for the transport."""


class BoundedTransport(RequestsTransport):  # type: ignore[misc]  # exported untyped
    """The requests transport, clipping each try's connect and read timeouts to the call's deadline.

    Used for the vault client too: azure-core clips only the connect timeout, so a last retry
    could otherwise wait a full read timeout past the budget.
    """

    def send(self, request: Any, **kwargs: Any) -> Any:
        deadline = kwargs.pop(DEADLINE_OPTION, None)
        if deadline is not None:
            left = max(deadline - time.monotonic(), MIN_TRY_SECONDS)
            config = self.connection_config
            for key, default in (
                ("connection_timeout", config.timeout),
                ("read_timeout", config.read_timeout),
            ):
                kwargs[key] = min(kwargs.get(key) or default, left)
        return super().send(request, **kwargs)


def bounded_transport(
    *, connect: float, read: float, pool_size: int = POOL_SIZE, **options: Any
) -> BoundedTransport:
    session = requests.Session()
    # As azure-core's own session: urllib3 never retries, the SDK's retry policy does.
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4,
        pool_maxsize=pool_size,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return BoundedTransport(
        session=session,
        session_owner=True,
        connection_timeout=connect,
        read_timeout=read,
        **options,
    )


class StorageRetry(ExponentialRetry):
    """The storage SDK's retry policy within a total budget: short jittered back-off, no retry
    that could not finish before the deadline, and the deadline handed to the transport."""

    def __init__(self, budget: float = STORAGE_DEADLINE, retries: int = STORAGE_RETRIES) -> None:
        super().__init__(retry_total=retries, initial_backoff=0, random_jitter_range=0)
        self.budget = budget

    def configure_retries(self, request: Any) -> dict[str, Any]:
        settings: dict[str, Any] = super().configure_retries(request)
        settings["deadline"] = time.monotonic() + self.budget
        request.context.options[DEADLINE_OPTION] = settings["deadline"]
        return settings

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        # 0.25 s, 0.5 s, 1 s (±20 %): `count` is the retry about to start, from 1.
        wanted = 0.25 * 2 ** (int(settings["count"]) - 1) * random.uniform(0.8, 1.2)
        return float(max(0.0, min(wanted, _left(settings) - MIN_TRY_SECONDS)))

    def increment(
        self, settings: dict[str, Any], request: Any, response: Any = None, error: Any = None
    ) -> bool:
        retry = bool(super().increment(settings, request, response=response, error=error))
        return retry and _left(settings) >= MIN_TRY_SECONDS


def unreachable(error: BaseException) -> str | None:
    """Why a call got no answer ("timed out", "connection refused", ...), or None when the
    service did answer (an HTTP error is a refusal, not an outage). Never the error's own text,
    which may hold URLs."""
    if not isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return None
    text = f"{error} {error.inner_exception or ''}".lower()
    for marker, reason in (
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("certificate", "TLS certificate not trusted"),
    ):
        if marker in text:
            return reason
    return "connection failed"


def is_outage(error: BaseException) -> bool:
    return isinstance(error, AzureError) and unreachable(error) is not None


def _left(settings: dict[str, Any]) -> float:
    return float(settings["deadline"]) - time.monotonic()


def _transport() -> RequestsTransport:
    # The storage SDK's block size, which it applies only to a transport it builds itself.
    return bounded_transport(
        connect=STORAGE_CONNECT_TIMEOUT,
        read=STORAGE_READ_TIMEOUT,
        connection_data_block_size=256 * 1024,
    )


def blob_endpoint(settings: Settings) -> str:
    """The blob endpoint the settings point at, for messages (never the connection string)."""
    if settings.storage_blob_service_uri:
        return settings.storage_blob_service_uri
    assert settings.storage_connection_string is not None  # guaranteed by the settings model
    service = BlobServiceClient.from_connection_string(
        settings.storage_connection_string.get_secret_value()
    )
    return service.url.split("?", 1)[0].rstrip("/")


def blob_service_from_settings(settings: Settings, **client_options: Any) -> BlobServiceClient:
    """A client for either form of the Functions storage connection.

    `client_options` go to the SDK client as they are (a benchmark's `raw_request_hook`, say).
    """
    options: dict[str, Any] = {
        "transport": _transport(),
        "retry_policy": StorageRetry(),
        **client_options,
    }
    if settings.storage_api_version:
        options["api_version"] = settings.storage_api_version
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), **options
        )
    assert settings.storage_blob_service_uri is not None  # guaranteed by the settings model
    credential: ManagedIdentityCredential | DefaultAzureCredential
    if settings.storage_credential == "managedidentity":
        credential = ManagedIdentityCredential(client_id=settings.storage_client_id)
    else:
        credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
    return BlobServiceClient(settings.storage_blob_service_uri, credential=credential, **options)


class BlobStore:
    """The blob operations wheelvault uses, over one storage account."""

    def __init__(self, service: BlobServiceClient) -> None:
        self.service = service

    def ping(self, seconds: float = STORAGE_READ_TIMEOUT) -> None:
        """One quick call, no retries, at most `seconds` per connect or read: proves storage
        answers and the index is readable."""
        self.service.get_container_client(layout.INDEX).get_container_properties(
            retry_total=0,
            timeout=max(1, int(seconds)),  # the server-side limit, in whole seconds
            connection_timeout=seconds,
            read_timeout=seconds,
        )

    def ensure_containers(self, names: tuple[str, ...]) -> None:
        for name in names:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_container(name)

    def get(self, container: str, name: str) -> StoredBlob | None:
        try:
            downloader = self.service.get_blob_client(container, name).download_blob()
            data = downloader.readall()
        except ResourceNotFoundError:
            return None
        props = downloader.properties
        return StoredBlob(
            data=data,
            etag=str(props.etag),
            content_type=props.content_settings.content_type,
            metadata=dict(props.metadata or {}),
        )

    def info(self, container: str, name: str) -> BlobInfo | None:
        try:
            props = self.service.get_blob_client(container, name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return BlobInfo(
            name=name,
            etag=str(props.etag),
            size=int(props.size),
            content_type=props.content_settings.content_type,
            metadata=dict(props.metadata or {}),
            last_modified=props.last_modified,
        )

    def put(
        self,
        container: str,
        name: str,
        data: bytes | IO[bytes] | Iterable[bytes],
        *,
        content_type: str,
        create_only: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
        length: int | None = None,
    ) -> str:
        """Write a blob; returns its new ETag.

        `create_only` fails with BlobExists if the blob exists; `if_match` fails with BlobChanged
        unless the blob's ETag is still that value. Neither: overwrite. The blob never gets a
        Content-Encoding, so clients receive exactly the bytes that were hashed.
        """
        client = self.service.get_blob_client(container, name)
        conditions: dict[str, Any] = {}  # create_only: overwrite=False sends If-None-Match: *
        if if_match is not None and not create_only:
            conditions = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        try:
            result = client.upload_blob(
                data,
                length=length,
                overwrite=not create_only,
                content_settings=ContentSettings(content_type=content_type),
                metadata=dict(metadata) if metadata else None,
                **conditions,
            )
        except ResourceExistsError as error:
            raise BlobExists(f"{container}/{name}") from error
        except ResourceModifiedError as error:
            if create_only:
                raise BlobExists(f"{container}/{name}") from error
            raise BlobChanged(f"{container}/{name}") from error
        except ResourceNotFoundError as error:
            # If-Match against a blob deleted meanwhile: the swap lost all the same.
            if if_match is not None:
                raise BlobChanged(f"{container}/{name}") from error
            raise
        return str(result["etag"])

    def stage_block(self, container: str, name: str, block_id: str, data: bytes) -> None:
        """Upload one block of a blob that stays invisible until `commit_blocks`.

        `block_id` must be unique to the writer (and of one length per blob): writers racing
        on one name stage side by side, and only the blocks a commit lists become the blob.
        """
        self.service.get_blob_client(container, name).stage_block(block_id, data, len(data))

    def commit_blocks(
        self,
        container: str,
        name: str,
        block_ids: list[str],
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Make the staged blocks the blob, create-only (If-None-Match: *); returns its ETag.

        BlobExists when the blob is already there: another writer committed first, and any
        blocks this one staged are dropped by storage.
        """
        client = self.service.get_blob_client(container, name)
        try:
            result = client.commit_block_list(
                [BlobBlock(block_id=b) for b in block_ids],
                content_settings=ContentSettings(content_type=content_type),
                metadata=dict(metadata) if metadata else None,
                match_condition=MatchConditions.IfMissing,
            )
        except (ResourceExistsError, ResourceModifiedError) as error:
            raise BlobExists(f"{container}/{name}") from error
        except HttpResponseError as error:
            # The other writer's commit discarded our uncommitted blocks: the blob exists.
            code = getattr(error, "error_code", None)  # set by the storage SDK, untyped
            if code == "InvalidBlockList" and self.info(container, name) is not None:
                raise BlobExists(f"{container}/{name}") from error
            raise
        return str(result["etag"])

    def delete(self, container: str, name: str, *, if_match: str | None = None) -> bool:
        """Delete a blob; False when it was not there. With `if_match`, only that version."""
        conditions: dict[str, Any] = {}
        if if_match is not None:
            conditions = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        try:
            self.service.get_blob_client(container, name).delete_blob(**conditions)
        except ResourceNotFoundError:
            return False
        except ResourceModifiedError as error:
            raise BlobChanged(f"{container}/{name}") from error
        return True

    def list(self, container: str, prefix: str) -> Iterator[BlobInfo]:
        client = self.service.get_container_client(container)
        for props in client.list_blobs(name_starts_with=prefix):
            yield BlobInfo(
                name=str(props.name),
                etag=str(props.etag),
                size=int(props.size),
                content_type=props.content_settings.content_type,
                last_modified=props.last_modified,
            )

    def list_prefixes(self, container: str, prefix: str) -> Iterator[str]:
        """The "folders" directly under `prefix` (without it and without the trailing /)."""
        client = self.service.get_container_client(container)
        for item in client.walk_blobs(name_starts_with=prefix, delimiter="/"):
            if isinstance(item, BlobPrefix):
                yield str(item.name)[len(prefix) :].rstrip("/")

    def read_chunks(self, container: str, name: str) -> Iterator[bytes]:
        """Stream a blob without holding it in memory (the too-large path)."""
        yield from self.service.get_blob_client(container, name).download_blob().chunks()
