"""Blob-trigger functions: what to watch, where, with which connection, and how to pace it.

In Azure, ``source=EventGrid`` blob triggers run on *BlobCreated* events: delivered at least
once, retried with backoff, dead-lettered at the end. Locally ``watcher.py`` stands in for the
events by listing the container every ``poll_interval`` seconds (0.25 s). This module reads a
function's binding into a :class:`BlobFunction`: the container and name pattern from ``path``
(``uploads/{name}``; ``%SETTING%`` resolved; ``{name}`` matches any text, slashes included, as
in Azure) and the connection string from the app setting named by ``connection``. The Blob
REST version is pinned from ``WHEELVAULT_STORAGE_API_VERSION`` when set, as the app's own
clients do. :class:`BlobOptions` holds the pacing: poll interval, retry delays (1, 2, 4, 8 s),
attempts (5) and the quarantine container; each watcher delivers with :data:`WORKERS` threads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.storage.blob import BlobServiceClient

from .functions import FunctionInfo
from .triggers import (
    TriggerConfigError,
    check_single_binding,
    resolve_settings,
)

BLOB_TRIGGER = "blobtrigger"
DEFAULT_CONNECTION = "AzureWebJobsStorage"
API_VERSION_SETTING = "WHEELVAULT_STORAGE_API_VERSION"
"""Pins the Blob REST version for every trigger connection, as the app's own clients do
(Azurite lags behind the SDK's default version)."""
DEFAULT_QUARANTINE = "quarantine"
POLL_SECONDS = 0.25
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)
MAX_ATTEMPTS = 5
WORKERS = 8  # host.json's blobs.maxDegreeOfParallelism in this app
CONTAINER_NAME = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]|\$root")
_PARAMETER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class BlobOptions:
    """How deliveries are paced: polling, retries, where poison goes."""

    poll_interval: float = POLL_SECONDS
    retry_delays: Sequence[float] = RETRY_DELAYS
    max_attempts: int = MAX_ATTEMPTS
    quarantine_container: str = DEFAULT_QUARANTINE

    def __post_init__(self) -> None:
        if self.poll_interval <= 0 or self.max_attempts < 1:
            raise ValueError("poll_interval must be > 0, max_attempts >= 1")
        if any(delay < 0 for delay in self.retry_delays):
            raise ValueError("retry delays cannot be negative")
        if not CONTAINER_NAME.fullmatch(self.quarantine_container):
            raise ValueError(f"{self.quarantine_container!r} is not a valid container name")

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if not self.retry_delays:
            return 0.0
        return float(self.retry_delays[min(attempt, len(self.retry_delays)) - 1])


@dataclass(frozen=True)
class BlobFunction:
    """A blob function ready to watch: container, name pattern and the storage connection."""

    info: FunctionInfo
    arg_name: str
    path: str
    container: str
    pattern: re.Pattern[str]
    connection: str  # the setting's name; its value is below and never shown
    connection_string: str = field(repr=False)
    api_version: str | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def client(self) -> BlobServiceClient:
        """A new client: no SDK retries (the watcher retries), short connect timeout."""
        options: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 30}
        if self.api_version:
            options["api_version"] = self.api_version
        return BlobServiceClient.from_connection_string(self.connection_string, **options)


def plan_blob(info: FunctionInfo, environ: Mapping[str, str]) -> BlobFunction:
    """Container and pattern from ``path``, the connection string from its setting."""
    arg_name = check_single_binding(info)
    path = resolve_settings(str(info.trigger.get("path", "")), environ)
    container, _, rest = path.partition("/")
    if not CONTAINER_NAME.fullmatch(container):
        raise TriggerConfigError(f"path {path!r} does not start with a valid container name")
    connection = str(info.trigger.get("connection") or DEFAULT_CONNECTION)
    value = environ.get(connection, "")
    if not value:
        if environ.get(f"{connection}__blobServiceUri"):
            raise TriggerConfigError(
                f"connection {connection} is identity-based; the local host needs a "
                f"connection string in app setting {connection}"
            )
        raise TriggerConfigError(f"app setting {connection} (the blob connection) is not set")
    function = BlobFunction(
        info,
        arg_name,
        path,
        container,
        _name_pattern(rest),
        connection,
        value,
        environ.get(API_VERSION_SETTING) or None,
    )
    try:
        function.client().close()
    except ValueError:
        raise TriggerConfigError(
            f"app setting {connection} is not a valid storage connection string"
        ) from None
    return function


def _name_pattern(template: str) -> re.Pattern[str]:
    """``{name}`` and friends match any text (slashes included, as in Azure); the rest as is."""
    if not template:
        return re.compile(r".+", re.DOTALL)
    parts, position = [], 0
    for match in _PARAMETER.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        parts.append(".+?")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.DOTALL)
