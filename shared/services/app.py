"""The process-wide service objects, built lazily on first use inside a handler.

Azure Functions keeps a worker process alive across invocations, so clients (and their
connection pools) are built once and reused. Nothing here runs at import time.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from shared.adapters.blobstore import BlobStore, blob_service_from_settings
from shared.adapters.sas import SasSigner
from shared.adapters.secretstore import SecretStore, secret_client_from_settings
from shared.services.frontdoor import FrontDoor
from shared.services.manage import IndexAdmin
from shared.services.pages import IndexPages
from shared.services.publish import Publisher
from shared.services.tokens import Tokens, TokenVerifier
from shared.settings import Settings, get_settings, reset_settings


class Services:
    """Everything a handler needs. Storage pieces are built at once (no I/O in that); the vault
    pieces on first use, so an app that only publishes never needs vault settings."""

    def __init__(self, settings: Settings, store: BlobStore, **secret_client_options: Any):
        self.settings = settings
        self.store = store
        self.pages = IndexPages(store)
        self.publisher = Publisher(store, self.pages, max_upload_bytes=settings.max_upload_bytes)
        self.admin = IndexAdmin(store, self.pages)
        self.signer = SasSigner(store.service)
        self.front_door = FrontDoor(
            store,
            self.signer,
            lambda: self.verifier,
            sas_lifetime=timedelta(seconds=settings.sas_expiry_seconds),
            page_cache_seconds=settings.page_cache_seconds,
        )
        self._secret_client_options = secret_client_options
        self._vault_lock = threading.Lock()
        self._tokens: Tokens | None = None
        self._verifier: TokenVerifier | None = None

    @property
    def tokens(self) -> Tokens:
        self._build_vault_pieces()
        assert self._tokens is not None
        return self._tokens

    @property
    def secrets(self) -> SecretStore:
        self._build_vault_pieces()
        assert self._tokens is not None
        return self._tokens.store

    @property
    def verifier(self) -> TokenVerifier:
        self._build_vault_pieces()
        assert self._verifier is not None
        return self._verifier

    def _build_vault_pieces(self) -> None:
        with self._vault_lock:
            if self._tokens is not None:
                return
            secrets = SecretStore(
                secret_client_from_settings(self.settings, **self._secret_client_options)
            )
            self._verifier = TokenVerifier(secrets, cache_seconds=self.settings.token_cache_seconds)
            self._tokens = Tokens(secrets, public_url=self.settings.public_url)


def build_services(settings: Settings, **client_options: Any) -> Services:
    """`client_options` go to the storage client (a benchmark's `raw_request_hook`, say)."""
    return Services(settings, BlobStore(blob_service_from_settings(settings, **client_options)))


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
