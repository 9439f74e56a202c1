"""The process-wide service objects, built lazily on first use inside a handler.

Azure Functions keeps a worker process alive across invocations, so clients (and their
connection pools) are built once and reused. Nothing here runs at import time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

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


def build_services(settings: Settings) -> Services:
    store = BlobStore(blob_service_from_settings(settings))
    pages = IndexPages(store)
    return Services(
        settings=settings,
        store=store,
        pages=pages,
        publisher=Publisher(store, pages, max_upload_bytes=settings.max_upload_bytes),
        admin=IndexAdmin(store, pages),
    )


@functools.cache
def get_services() -> Services:
    return build_services(get_settings())


def reset_services() -> None:
    """Forget the cached services and settings (tests, and the local host on reload)."""
    get_services.cache_clear()
    reset_settings()
