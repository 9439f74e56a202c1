"""Key Vault secrets behind a small interface: versions, values, writes, property updates.

The real `SecretClient` is used everywhere; locally it talks to the Key Vault stand-in in
devhost/ over HTTPS (its own CA) with a placeholder bearer token, in Azure to Key Vault with the
function's managed identity. Nothing here ever logs a secret value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from shared.settings import Settings, SettingsError


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: str
    created_on: datetime
    expires_on: datetime | None
    enabled: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None


class LocalStandinCredential:
    """A placeholder bearer token for the local Key Vault stand-in (it accepts any token).

    A real vault refuses it, so selecting it in Azure by mistake fails closed.
    """

    TOKEN = "local-standin-placeholder"  # noqa: S105 - not a secret: the stand-in accepts any

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self.TOKEN, int(time.time()) + 3600)


def secret_client_from_settings(settings: Settings, **client_options: Any) -> SecretClient:
    if not settings.vault_url:
        raise SettingsError("WHEELVAULT_VAULT_URL: required for access tokens (the Key Vault URL)")
    credential: TokenCredential
    options: dict[str, Any] = dict(client_options)
    if settings.vault_credential == "local":
        credential = LocalStandinCredential()
        options["verify_challenge_resource"] = False
        if settings.vault_ca_bundle:
            options["connection_verify"] = settings.vault_ca_bundle
    elif settings.vault_credential == "managedidentity":
        credential = ManagedIdentityCredential(client_id=settings.vault_client_id)
    else:
        credential = DefaultAzureCredential(managed_identity_client_id=settings.vault_client_id)
    return SecretClient(settings.vault_url, credential, **options)


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

    def names(self, prefix: str) -> Iterator[SecretVersion]:
        """Secrets whose name starts with `prefix` (properties of their current version)."""
        for props in self.client.list_properties_of_secrets():
            if str(props.name).startswith(prefix):
                yield _version(props)

    def versions(self, name: str) -> list[SecretVersion]:
        """Every version of `name` ([] if there is no such secret), ordered by creation time —
        which Key Vault keeps in whole seconds, so callers that need a strict order keep one."""
        try:
            found = [_version(p) for p in self.client.list_properties_of_secret_versions(name)]
        except ResourceNotFoundError:
            return []
        return sorted(found, key=lambda v: (v.created_on, v.version))

    def value(self, name: str, version: str) -> str | None:
        """The value of one version; None if it is gone or disabled."""
        try:
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
        secret = self.client.set_secret(
            name, value, tags=dict(tags), content_type=content_type, expires_on=expires_on
        )
        return _version(secret.properties)

    def set_enabled(self, name: str, version: str, enabled: bool) -> None:
        self.client.update_secret_properties(name, version, enabled=enabled)

    def ping(self) -> None:
        """One cheap call that proves the vault answers and we may list (for /health)."""
        pages = self.client.list_properties_of_secrets(max_page_size=1, retry_total=0).by_page()
        next(pages, None)
