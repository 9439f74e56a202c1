"""Application settings, read from the environment (app settings, or local.settings.json).

Settings are read lazily, inside handlers, never at import: a function app whose import fails
registers no functions at all. A missing or invalid setting raises one `SettingsError` that names
the setting and never echoes its value (connection strings hold account keys).
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.core.entra import (
    DEFAULT_AUTHORITY,
    EntraConfig,
    parse_audiences,
    parse_authority,
    parse_tenant_id,
)
from shared.core.upstream import (
    UpstreamPolicy,
    parse_duration,
    parse_patterns,
    parse_upstream_urls,
)

STORAGE_CONNECTION = "WHEELVAULT_STORAGE"
"""Name of the storage connection (the blob trigger's `connection`). Locally it holds a connection
string; in Azure the identity-based form `WHEELVAULT_STORAGE__blobServiceUri` (+ `__credential`,
`__clientId`) is used instead, following the Functions convention for binding connections."""

MB = 1024 * 1024
_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
"""How an app setting that is a Key Vault reference reads when Azure could not resolve it."""


class SettingsError(RuntimeError):
    """A setting is missing or invalid. The message names the setting, never its value."""


class Settings(BaseSettings):
    """Every setting wheelvault reads. Names are the environment variable names."""

    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, env_ignore_empty=True
    )

    storage_connection_string: SecretStr | None = Field(default=None, alias=STORAGE_CONNECTION)
    storage_blob_service_uri: str | None = Field(
        default=None, alias=f"{STORAGE_CONNECTION}__blobServiceUri"
    )
    storage_credential: Literal["managedidentity"] | None = Field(
        default=None, alias=f"{STORAGE_CONNECTION}__credential"
    )
    storage_client_id: str | None = Field(default=None, alias=f"{STORAGE_CONNECTION}__clientId")
    storage_api_version: str | None = Field(
        default=None,
        alias="WHEELVAULT_STORAGE_API_VERSION",
        description="Pin the Blob REST API version (Azurite lags behind the SDK). Empty in Azure.",
    )
    max_upload_bytes: int = Field(
        default=100 * MB, alias="WHEELVAULT_MAX_UPLOAD_BYTES", gt=0, le=10 * 1024 * MB
    )

    vault_url: str | None = Field(
        default=None,
        alias="WHEELVAULT_VAULT_URL",
        description="Key Vault URL holding the access tokens, e.g. https://NAME.vault.azure.net",
    )
    vault_credential: Literal["default", "managedidentity", "local"] = Field(
        default="default",
        alias="WHEELVAULT_VAULT_CREDENTIAL",
        description="managedidentity in Azure; local for the devhost stand-in; default tries "
        "DefaultAzureCredential (az login, environment, managed identity)",
    )
    vault_client_id: str | None = Field(default=None, alias="WHEELVAULT_VAULT_CLIENT_ID")
    vault_ca_bundle: str | None = Field(
        default=None,
        alias="WHEELVAULT_VAULT_CA_BUNDLE",
        description="CA certificate to trust for the vault (the local stand-in's own CA)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:7071",
        alias="WHEELVAULT_PUBLIC_URL",
        description="Base URL consumers reach the index at; used in the companion index URL",
    )
    token_cache_seconds: float = Field(
        default=60.0, alias="WHEELVAULT_TOKEN_CACHE_SECONDS", ge=0, le=3600
    )
    rotation_schedule: str = Field(
        default="0 0 * * * *",
        alias="WHEELVAULT_ROTATION_SCHEDULE",
        description="NCRONTAB schedule of the rotation timer (read by the host via %...%)",
    )

    sas_expiry_seconds: int = Field(
        default=600,
        alias="WHEELVAULT_SAS_EXPIRY_SECONDS",
        ge=30,
        le=3600,
        description="Lifetime of a download or upload SAS; capped at one hour",
    )
    page_cache_seconds: int = Field(
        default=60,
        alias="WHEELVAULT_PAGE_CACHE_SECONDS",
        ge=0,
        le=86400,
        description="Cache-Control: private, max-age for index pages",
    )

    upstream_urls: SecretStr = Field(
        default=SecretStr(""),
        alias="WHEELVAULT_UPSTREAM_URLS",
        description="Upstream simple-index base URLs, tried in order (comma or space "
        "separated); credentials in them are secrets. Empty: no upstream",
    )
    upstream_reserved: str = Field(
        default="",
        alias="WHEELVAULT_UPSTREAM_RESERVED",
        description="Name patterns never taken from upstream (e.g. acme-*)",
    )
    upstream_allow: str = Field(
        default="",
        alias="WHEELVAULT_UPSTREAM_ALLOW",
        description="Name patterns that may come from upstream; empty: every name",
    )
    upstream_deny: str = Field(
        default="",
        alias="WHEELVAULT_UPSTREAM_DENY",
        description="Name patterns never taken from upstream",
    )
    upstream_min_age: str = Field(
        default="",
        alias="WHEELVAULT_UPSTREAM_MIN_AGE",
        description="ISO 8601 duration (P7D); younger upstream files, and files without an "
        "upload time, are not offered. Empty: no minimum",
    )
    upstream_page_seconds: int = Field(
        default=600, alias="WHEELVAULT_UPSTREAM_PAGE_SECONDS", ge=0, le=86400
    )
    upstream_miss_seconds: int = Field(
        default=60, alias="WHEELVAULT_UPSTREAM_MISS_SECONDS", ge=0, le=86400
    )

    entra_tenant_id: str | None = Field(
        default=None,
        alias="WHEELVAULT_ENTRA_TENANT_ID",
        description="The tenant's GUID; with WHEELVAULT_ENTRA_AUDIENCE turns Entra ID sign-in on",
    )
    entra_audience: str | None = Field(
        default=None,
        alias="WHEELVAULT_ENTRA_AUDIENCE",
        description="Accepted aud values (comma or space separated): the app's Application ID "
        "URI (v1 tokens) and/or client id (v2 tokens)",
    )
    entra_authority: str = Field(
        default=DEFAULT_AUTHORITY,
        alias="WHEELVAULT_ENTRA_AUTHORITY",
        description="https only: a sovereign cloud's login host, or the local stand-in",
    )
    entra_ca_bundle: str | None = Field(
        default=None,
        alias="WHEELVAULT_ENTRA_CA_BUNDLE",
        description="CA certificate to trust for the authority (the local stand-in's own CA)",
    )

    @property
    def entra(self) -> EntraConfig | None:
        """Entra ID sign-in's configuration; None (off) unless tenant and audience are set."""
        if self.entra_tenant_id is None or self.entra_audience is None:
            return None
        return EntraConfig(
            tenant_id=parse_tenant_id(self.entra_tenant_id),
            audiences=parse_audiences(self.entra_audience),
            authority=parse_authority(self.entra_authority),
            ca_bundle=self.entra_ca_bundle,
        )

    @model_validator(mode="after")
    def _entra_values(self) -> Settings:
        tenant, audience = "WHEELVAULT_ENTRA_TENANT_ID", "WHEELVAULT_ENTRA_AUDIENCE"
        if (self.entra_tenant_id is None) != (self.entra_audience is None):
            missing, given = (
                (audience, tenant) if self.entra_audience is None else (tenant, audience)
            )
            raise ValueError(f"{missing} must be set too: Entra ID sign-in needs it with {given}")
        checks = (
            (tenant, parse_tenant_id, self.entra_tenant_id),
            (audience, parse_audiences, self.entra_audience),
            ("WHEELVAULT_ENTRA_AUTHORITY", parse_authority, self.entra_authority),
        )
        for name, parse, value in checks:
            try:
                if value is not None:
                    parse(value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return self

    @property
    def upstream_base_urls(self) -> tuple[str, ...]:
        """The upstream base URLs in order, each ending in `/`; () when none. Secrets."""
        return parse_upstream_urls(self.upstream_urls.get_secret_value())

    @property
    def upstream_policy(self) -> UpstreamPolicy:
        return UpstreamPolicy(
            allow=parse_patterns(self.upstream_allow),
            deny=parse_patterns(self.upstream_deny),
            reserved=parse_patterns(self.upstream_reserved),
            min_age=parse_duration(self.upstream_min_age),
        )

    @model_validator(mode="after")
    def _upstream_values(self) -> Settings:
        # Each parser raises ValueError naming what is wrong, never the value (URLs may hold
        # credentials); the message is prefixed with the setting's name here.
        checks = (
            (
                "WHEELVAULT_UPSTREAM_URLS",
                parse_upstream_urls,
                self.upstream_urls.get_secret_value(),
            ),
            ("WHEELVAULT_UPSTREAM_RESERVED", parse_patterns, self.upstream_reserved),
            ("WHEELVAULT_UPSTREAM_ALLOW", parse_patterns, self.upstream_allow),
            ("WHEELVAULT_UPSTREAM_DENY", parse_patterns, self.upstream_deny),
            ("WHEELVAULT_UPSTREAM_MIN_AGE", parse_duration, self.upstream_min_age),
        )
        if self.upstream_urls.get_secret_value().lstrip().startswith(_KEY_VAULT_REFERENCE):
            raise ValueError(
                "WHEELVAULT_UPSTREAM_URLS: a Key Vault reference the platform did not resolve "
                "(the secret is missing, or the app's identity cannot read it)"
            )
        for name, parse, value in checks:
            try:
                parse(value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return self

    @model_validator(mode="after")
    def _one_storage_connection(self) -> Settings:
        if not self.storage_connection_string and not self.storage_blob_service_uri:
            raise ValueError(
                f"set {STORAGE_CONNECTION} (a connection string) or "
                f"{STORAGE_CONNECTION}__blobServiceUri (identity-based access)"
            )
        if self.storage_connection_string and self.storage_blob_service_uri:
            raise ValueError(
                f"set only one of {STORAGE_CONNECTION} and {STORAGE_CONNECTION}__blobServiceUri"
            )
        for name, url in (
            (f"{STORAGE_CONNECTION}__blobServiceUri", self.storage_blob_service_uri),
            ("WHEELVAULT_VAULT_URL", self.vault_url),
            ("WHEELVAULT_PUBLIC_URL", self.public_url),
        ):
            if url and not url.startswith(("https://", "http://")):
                raise ValueError(f"{name} must be an http(s) URL")
        if len(self.rotation_schedule.split()) != 6:
            raise ValueError("WHEELVAULT_ROTATION_SCHEDULE must be a six-field NCRONTAB schedule")
        return self


def _alias_of(field: str) -> str:
    info = Settings.model_fields.get(field)
    return info.alias if info is not None and info.alias else field


def describe(error: ValidationError) -> str:
    """One line naming each bad setting and what is wrong, never a value."""
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        loc = item.get("loc") or ()
        name = _alias_of(str(loc[0])) if loc else "settings"
        # Pydantic prefixes model-validator messages with "Value error, ".
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(message if not loc else f"{name}: {message}")
    return "invalid settings: " + "; ".join(problems)


def load_settings() -> Settings:
    """Read the settings now from the environment; raises SettingsError naming what is wrong."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe(error)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (inside a handler, not at import)."""
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the local host change the environment)."""
    get_settings.cache_clear()
