"""What the stack sets up once its services answer: the containers and the two local tokens.

Both steps are idempotent, so every start runs them: containers are created if missing, and a
token is created only when the vault has never heard of it. Existing tokens are read, never
re-created or rotated, so the index URL a developer pasted somewhere keeps working across
restarts (rotation stays the timer's job).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from azure.core.exceptions import AzureError

from devhost.stack.children import Cancelled, StackError
from devhost.standins.keyvault.credential import LocalVaultCredential
from shared.adapters.blobstore import BlobStore, blob_service_from_settings
from shared.adapters.secretstore import SecretStore, secret_client_from_settings
from shared.core import layout
from shared.core.tokens import Policy, Scope, TokenError, secret_name
from shared.services.tokens import Tokens
from shared.settings import Settings

T = TypeVar("T")

READER = "local-reader"
PUBLISHER = "local-publisher"
LOCAL_TOKENS = ((READER, Scope.READ), (PUBLISHER, Scope.PUBLISH))
RETRY_SECONDS = 15.0
"""A service that just started listening may refuse a first request; give it this long."""


@dataclass(frozen=True)
class LocalToken:
    """One local token: its value, or None when it exists but has no usable version."""

    name: str
    scope: Scope
    value: str | None
    created: bool


def retrying(action: Callable[[], T], what: str, cancel: threading.Event) -> T:
    """Run `action`, retrying Azure and socket errors briefly; then one clear StackError."""
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.1
    while True:
        if cancel.is_set():
            raise Cancelled("stopped while starting")
        try:
            return action()
        except (AzureError, OSError) as error:
            if time.monotonic() > deadline:
                raise StackError(f"could not {what}: {type(error).__name__}: {error}") from error
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def ensure_containers(settings: Settings, cancel: threading.Event) -> None:
    """Create uploads, index and quarantine if missing (kept as they are otherwise)."""
    with blob_service_from_settings(settings) as service:
        store = BlobStore(service)
        retrying(
            lambda: store.ensure_containers(layout.CONTAINERS), "create the containers", cancel
        )


def ensure_tokens(settings: Settings, cancel: threading.Event) -> dict[str, LocalToken]:
    """The local reader and publisher tokens, created on the first run only."""
    with secret_client_from_settings(settings, local_credential=LocalVaultCredential()) as client:
        tokens = Tokens(SecretStore(client), public_url=settings.public_url)
        return {
            name: retrying(
                functools.partial(ensure_token, tokens, name, scope),
                f"read or create token {name}",
                cancel,
            )
            for name, scope in LOCAL_TOKENS
        }


def ensure_token(tokens: Tokens, name: str, scope: Scope) -> LocalToken:
    """Create `name` if the vault has no such secret; otherwise read its current value."""
    if not tokens.store.versions(secret_name(name)):
        policy = Policy(scope, description="local development token made by make run")
        return LocalToken(name, scope, tokens.create(name, policy), created=True)
    try:
        return LocalToken(name, scope, tokens.show(name), created=False)
    except TokenError:
        # Revoked or expired on purpose, perhaps: left alone, and the banner says so.
        return LocalToken(name, scope, None, created=False)
