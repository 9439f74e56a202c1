"""The process-wide service objects, built lazily on first use inside a handler.

Azure Functions keeps a worker process alive across invocations, so clients (and their
connection pools) are built once and reused. Nothing here runs at import time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from shared.adapters.blobstore import BlobStore, blob_service_from_settings
from shared.services.manage import IndexAdmin
from shared.services.pages import IndexPages
from shared.services.publish import Publisher
from shared.settings import Settings, get_settings, reset_settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: BlobStore
    pages: IndexPages
    publisher: Publisher
    admin: IndexAdmin


def build_services(settings: Settings, **client_options: Any) -> Services:
    store = BlobStore(blob_service_from_settings(settings, **client_options))
    pages = IndexPages(store)
    return Services(
        settings=settings,
        store=store,
        pages=pages,
        publisher=Publisher(store, pages, max_upload_bytes=settings.max_upload_bytes),
        admin=IndexAdmin(store, pages),
    )


_lock = threading.Lock()
_services: Services | None = None


def get_services() -> Services:
    """The process-wide services, built on first use (inside a handler, never at import)."""
    global _services
    with _lock:
        if _services is None:
            _services = build_services(get_settings())
        return _services


def install_services(services: Services | None) -> None:
    """Use these services from now on (a benchmark or host that builds its own clients)."""
    global _services
    with _lock:
        _services = services


def reset_services() -> None:
    """Forget the cached services and settings (tests, and the local host on reload)."""
    install_services(None)
    reset_settings()
