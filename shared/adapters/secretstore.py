"""Key Vault secrets behind a small interface: versions, values, writes, property updates.

The real `SecretClient` is used everywhere; locally it talks to the Key Vault stand-in in
devhost/ over HTTPS (its own CA) with the placeholder credential devhost supplies, in Azure to
Key Vault with the function's managed identity. Nothing here ever logs a secret value.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from shared.adapters.blobstore import DEADLINE_OPTION, bounded_transport, unreachable
from shared.settings import Settings, SettingsError

VAULT_CONNECT_TIMEOUT = 2.0
"""Seconds to open a connection (TCP and TLS) to the vault: it is a regional service that answers
in milliseconds, so a connection that takes longer is not going to work."""
VAULT_READ_TIMEOUT = 4.0
"""Seconds one socket read may wait (vault answers are small JSON documents)."""
VAULT_DEADLINE = 6.0
"""A vault call's whole budget, retries, back-off and Retry-After included (azure-core's default
is 10 retries, 300 s per connect or read, and a 7-day total). A request that needs a stopped vault
thus fails in seconds, well within the 10 s an HTTP client is promised a 503 in."""
VAULT_RETRIES = 2
MAX_RETRY_AFTER = 1.0
"""A throttled vault's Retry-After is honoured up to this; longer waits fail the call instead."""


VaultCredential = TokenCredential
"""What authenticates vault calls (azure-core's protocol), named here so that code outside the
adapters can hand one over without importing an Azure SDK."""


class VaultUnavailable(AzureError):
    """The vault did not answer (timed out, refused, ...): an outage, not a refusal. The message
    is only the reason; it never holds a URL, a secret name or a value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextlib.contextmanager
def _answering() -> Iterator[None]:
    try:
        yield
    except AzureError as error:
        reason = unreachable(error)
        if reason is None or isinstance(error, VaultUnavailable):
            raise
        raise VaultUnavailable(reason) from error


_ambient_deadline: ContextVar[float | None] = ContextVar("wheelvault_vault_deadline", default=None)


class VaultRetry(RetryPolicy[Any, Any]):
    """azure-core's retry policy within a total budget, which `SecretStore.within` can shorten
    for a group of calls (one request's token check), and handed to the transport per try."""

    def __init__(self, budget: float = VAULT_DEADLINE, retries: int = VAULT_RETRIES) -> None:
        super().__init__(
            retry_total=retries,
            retry_connect=retries,
            retry_read=retries,
            retry_status=retries,
            retry_backoff_factor=0.25,
            retry_backoff_max=1.0,
            timeout=budget,
        )

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        deadline = time.monotonic() + float(settings["timeout"])
        ambient = _ambient_deadline.get()
        if ambient is not None:
            deadline = min(deadline, ambient)
        settings["timeout"] = max(0.0, deadline - time.monotonic())
        options[DEADLINE_OPTION] = deadline
        return settings

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_RETRY_AFTER)


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: str
    created_on: datetime
    expires_on: datetime | None
    enabled: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


def secret_client_from_settings(
    settings: Settings, *, local_credential: VaultCredential | None = None, **client_options: Any
) -> SecretClient:
    """A client for the vault the settings name. With `WHEELVAULT_VAULT_CREDENTIAL=local` the
    caller supplies `local_credential` (the devhost stand-ins own it: this module holds nothing
    made only for development); with the others it is ignored."""
    if not settings.vault_url:
        raise SettingsError("WHEELVAULT_VAULT_URL: required for access tokens (the Key Vault URL)")
    credential: TokenCredential
    options: dict[str, Any] = {"retry_policy": VaultRetry(), **client_options}
    connection: dict[str, Any] = {}  # a transport we build takes these itself, not the client
    if settings.vault_credential == "local":
        credential = _supplied(local_credential)
        options["verify_challenge_resource"] = False
        if settings.vault_ca_bundle:
            connection["connection_verify"] = settings.vault_ca_bundle
    elif settings.vault_credential == "managedidentity":
        credential = ManagedIdentityCredential(client_id=settings.vault_client_id)
    else:
        credential = DefaultAzureCredential(managed_identity_client_id=settings.vault_client_id)
    options.setdefault(
        "transport",
        bounded_transport(
            connect=VAULT_CONNECT_TIMEOUT, read=VAULT_READ_TIMEOUT, pool_size=8, **connection
        ),
    )
    return SecretClient(settings.vault_url, credential, **options)


def _supplied(local_credential: VaultCredential | None) -> VaultCredential:
    if local_credential is None:
        raise SettingsError(
            "WHEELVAULT_VAULT_CREDENTIAL=local: the local credential is supplied by the devhost "
            "stand-ins (the local host, make run, the wheelvault command, the test fixtures); "
            "in Azure use managedidentity or default"
        )
    return local_credential


def _version(props: Any) -> SecretVersion:
    return SecretVersion(
        name=str(props.name),
        version=str(props.version),
        created_on=props.created_on,
        expires_on=props.expires_on,
        enabled=bool(props.enabled),
        tags=dict(props.tags or {}),
        content_type=props.content_type,
    )


class SecretStore:
    def __init__(self, client: SecretClient) -> None:
        self.client = client

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Every vault call in this block ends within `seconds` of entering it (one request's
        several reads share one budget rather than each having its own)."""
        deadline = time.monotonic() + seconds
        outer = _ambient_deadline.get()
        token = _ambient_deadline.set(deadline if outer is None else min(outer, deadline))
        try:
            yield
        finally:
            _ambient_deadline.reset(token)

    def latest_versions(self, prefix: str) -> Iterator[SecretVersion]:
        """The latest version of each secret whose name starts with `prefix` (its properties)."""
        with _answering():
            for props in self.client.list_properties_of_secrets():
                if str(props.name).startswith(prefix):
                    yield _version(props)

    def versions(self, name: str) -> list[SecretVersion]:
        """Every version of `name` ([] if there is no such secret), ordered by creation time —
        which Key Vault keeps in whole seconds, so callers that need a strict order keep one."""
        try:
            with _answering():
                listing = self.client.list_properties_of_secret_versions(name)
                found = [_version(p) for p in listing]
        except ResourceNotFoundError:
            return []
        return sorted(found, key=lambda v: (v.created_on, v.version))

    def value(self, name: str, version: str) -> str | None:
        """The value of one version; None if it is gone or disabled."""
        try:
            with _answering():
                secret = self.client.get_secret(name, version)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as error:
            if error.status_code == 403:  # a disabled version
                return None
            raise
        return secret.value

    def set(
        self,
        name: str,
        value: str,
        *,
        tags: Mapping[str, str],
        content_type: str,
        expires_on: datetime | None,
    ) -> SecretVersion:
        with _answering():
            secret = self.client.set_secret(
                name, value, tags=dict(tags), content_type=content_type, expires_on=expires_on
            )
        return _version(secret.properties)

    def set_enabled(self, name: str, version: str, *, enabled: bool) -> None:
        with _answering():
            self.client.update_secret_properties(name, version, enabled=enabled)

    def ping(self, seconds: float = VAULT_READ_TIMEOUT) -> None:
        """One cheap call, no retries, at most `seconds` per connect or read: proves the vault
        answers and we may list (for /health)."""
        with _answering():
            pages = self.client.list_properties_of_secrets(
                max_page_size=1, retry_total=0, connection_timeout=seconds, read_timeout=seconds
            ).by_page()
            next(pages, None)
