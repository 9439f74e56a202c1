"""The process-wide service objects, built lazily on first use inside a handler.

Azure Functions keeps a worker process alive across invocations, so clients (and their
connection pools) are built once and reused. Nothing here runs at import time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from shared.adapters.blobstore import BlobStore, blob_service_from_settings
from shared.adapters.oidc import OidcClient
from shared.adapters.sas import SasSigner
from shared.adapters.secretstore import SecretStore, VaultCredential, secret_client_from_settings
from shared.adapters.upstream import UpstreamClient, parse_upstreams
from shared.services.entra import EntraVerifier
from shared.services.frontdoor import FrontDoor, Reply
from shared.services.manage import IndexManager
from shared.services.pages import IndexPages
from shared.services.publish import Publisher
from shared.services.records import IndexRecords
from shared.services.tokens import Tokens
from shared.services.upload_api import UploadApi
from shared.services.upstream import UpstreamIndex
from shared.services.verifier import TokenVerifier
from shared.settings import Settings, SettingsError, get_settings, reset_settings

HEALTH_SECONDS = 4.0
"""/health answers within this (probes and load balancers commonly give up at 5 s): storage and
the vault are probed at once, and a probe that has not answered by then is reported as failed."""

_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wheelvault-health")


class Services:
    """Everything a handler needs. Storage pieces are built at once (no I/O in that); the vault
    pieces on first use, so an app that only publishes never needs vault settings."""

    def __init__(self, settings: Settings, store: BlobStore, **secret_client_options: Any):
        self.settings = settings
        self.store = store
        self.records = IndexRecords(store)
        self.pages = IndexPages(store, self.records)
        self.publisher = Publisher(
            store, self.records, self.pages, max_upload_bytes=settings.max_upload_bytes
        )
        self.upload_api = UploadApi(self.publisher, max_upload_bytes=settings.max_upload_bytes)
        self.manager = IndexManager(store, self.records, self.pages)
        self.signer = SasSigner(store.service)
        self.upstream = build_upstream(settings, store)
        self.front_door = FrontDoor(
            store,
            self.signer,
            lambda: self.verifier,
            sas_lifetime=timedelta(seconds=settings.sas_expiry_seconds),
            page_cache_seconds=settings.page_cache_seconds,
            upstream=self.upstream,
            entra=lambda: self.entra,
        )
        self._entra_lock = threading.Lock()
        self._entra: EntraVerifier | None = None
        self._secret_client_options = secret_client_options
        self._vault_lock = threading.Lock()
        self._tokens: Tokens | None = None
        self._verifier: TokenVerifier | None = None
        self._probe_lock = threading.Lock()
        self._running: dict[str, Future[None]] = {}

    def health(self, seconds: float = HEALTH_SECONDS) -> dict[str, str]:
        """ "ok" or "error: <what>" per backend, within `seconds` whatever the backends do.

        A probe still running from an earlier call is waited on rather than started again, so
        a flood of /health against a hung backend cannot pile up threads or connections.
        """
        futures = {
            "storage": self._probe("storage", lambda: self.store.ping(seconds)),
            "vault": self._probe("vault", lambda: self.secrets.ping(seconds)),
        }
        wait(futures.values(), timeout=seconds)
        return {name: _outcome(future, seconds) for name, future in futures.items()}

    def _probe(self, name: str, probe: Callable[[], None]) -> Future[None]:
        with self._probe_lock:
            running = self._running.get(name)
            if running is None or running.done():
                running = self._running[name] = _probes.submit(probe)
            return running

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

    @property
    def entra(self) -> EntraVerifier | None:
        """The Entra ID verifier, built on first use; None while Entra ID sign-in is off."""
        if self._entra is None:  # every Entra request asks: the settings are parsed once
            config = self.settings.entra
            if config is None:
                return None
            with self._entra_lock:
                if self._entra is None:
                    self._entra = EntraVerifier(config, OidcClient(config.ca_bundle))
        return self._entra

    def _build_vault_pieces(self) -> None:
        with self._vault_lock:
            if self._tokens is not None:
                return
            client = secret_client_from_settings(
                self.settings,
                local_credential=_local_vault_credential,
                **self._secret_client_options,
            )
            secrets = SecretStore(client)
            self._verifier = TokenVerifier(secrets, cache_seconds=self.settings.token_cache_seconds)
            self._tokens = Tokens(secrets, public_url=self.settings.public_url)


def build_upstream(settings: Settings, store: BlobStore) -> UpstreamIndex | None:
    """The upstream indexes behind the front door; None (private only) when none is set."""
    urls = settings.upstream_base_urls
    if not urls:
        return None
    return UpstreamIndex(
        store,
        UpstreamClient(parse_upstreams(urls)),
        settings.upstream_policy,
        page_seconds=settings.upstream_page_seconds,
        miss_seconds=settings.upstream_miss_seconds,
    )


def _outcome(future: Future[None], seconds: float) -> str:
    """Only the kind of failure: exception texts may hold endpoints."""
    if not future.done():
        return f"error: no answer within {seconds:g} s"
    error = future.exception()
    return "ok" if error is None else f"error: {type(error).__name__}"


def health_reply() -> Reply:
    """/health's answer: 200 when every backend answers, else 503; never cached. Without
    settings there is nothing to probe, which is unhealthy too (and says only that)."""
    try:
        checks = get_services().health()
    except SettingsError:
        checks = {"settings": "error: SettingsError"}
    healthy = all(v == "ok" for v in checks.values())
    body = json.dumps({"status": "ok" if healthy else "unhealthy", **checks}).encode()
    return Reply(200 if healthy else 503, body, "application/json", {"Cache-Control": "no-store"})


def build_services(settings: Settings, **client_options: Any) -> Services:
    """`client_options` go to the storage client (a benchmark's `raw_request_hook`, say)."""
    return Services(settings, BlobStore(blob_service_from_settings(settings, **client_options)))


_lock = threading.Lock()
_services: Services | None = None
_local_vault_credential: VaultCredential | None = None


def use_local_vault_credential(credential: VaultCredential) -> None:
    """The credential for `WHEELVAULT_VAULT_CREDENTIAL=local`, installed once by whoever runs
    the app against the devhost Key Vault stand-in (the local host, the test fixtures); it
    outlives `reset_services`. Without it, "local" fails with a SettingsError."""
    global _local_vault_credential
    _local_vault_credential = credential


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
