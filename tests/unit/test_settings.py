"""Settings: both forms of the storage connection, and errors that name the setting only."""

from __future__ import annotations

import pytest

from shared.settings import SettingsError, load_settings

ACCOUNT_KEY_LIKE = "AccountKey=c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1uZXZlci1sZWFr"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("WHEELVAULT_"):
            monkeypatch.delenv(key)


def test_connection_string_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHEELVAULT_STORAGE", f"DefaultEndpointsProtocol=https;{ACCOUNT_KEY_LIKE}")
    settings = load_settings()
    assert settings.storage_connection_string is not None
    assert settings.storage_blob_service_uri is None
    assert settings.max_upload_bytes == 100 * 1024 * 1024
    assert ACCOUNT_KEY_LIKE not in repr(settings)


def test_identity_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHEELVAULT_STORAGE__blobServiceUri", "https://acct.blob.core.windows.net")
    monkeypatch.setenv("WHEELVAULT_STORAGE__credential", "managedidentity")
    monkeypatch.setenv("WHEELVAULT_STORAGE__clientId", "00000000-0000-0000-0000-000000000001")
    settings = load_settings()
    assert settings.storage_connection_string is None
    assert settings.storage_blob_service_uri == "https://acct.blob.core.windows.net"
    assert settings.storage_credential == "managedidentity"
    assert settings.storage_client_id == "00000000-0000-0000-0000-000000000001"


def test_missing_connection_names_both_settings() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "WHEELVAULT_STORAGE" in str(caught.value)
    assert "WHEELVAULT_STORAGE__blobServiceUri" in str(caught.value)


def test_invalid_value_names_the_setting_but_not_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHEELVAULT_STORAGE", ACCOUNT_KEY_LIKE)
    monkeypatch.setenv("WHEELVAULT_MAX_UPLOAD_BYTES", "lots")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "WHEELVAULT_MAX_UPLOAD_BYTES" in message
    assert ACCOUNT_KEY_LIKE not in message
    assert "lots" not in message


def test_both_forms_at_once_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHEELVAULT_STORAGE", ACCOUNT_KEY_LIKE)
    monkeypatch.setenv("WHEELVAULT_STORAGE__blobServiceUri", "https://acct.blob.core.windows.net")
    with pytest.raises(SettingsError, match="only one"):
        load_settings()


def test_bad_credential_kind_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHEELVAULT_STORAGE__blobServiceUri", "https://acct.blob.core.windows.net")
    monkeypatch.setenv("WHEELVAULT_STORAGE__credential", "password")
    with pytest.raises(SettingsError, match="WHEELVAULT_STORAGE__credential"):
        load_settings()


def test_identity_form_builds_a_token_credential_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import ManagedIdentityCredential

    from shared.adapters.blobstore import blob_service_from_settings

    monkeypatch.setenv("WHEELVAULT_STORAGE__blobServiceUri", "https://acct.blob.core.windows.net")
    monkeypatch.setenv("WHEELVAULT_STORAGE__credential", "managedidentity")
    monkeypatch.setenv("WHEELVAULT_STORAGE__clientId", "00000000-0000-0000-0000-000000000001")
    client = blob_service_from_settings(load_settings())
    assert client.url.startswith("https://acct.blob.core.windows.net")
    assert isinstance(client.credential, ManagedIdentityCredential)


def test_local_settings_sample_sets_every_local_setting() -> None:
    """Every setting the code reads is in local.settings.sample.json (identity-only ones aside)."""
    import json
    from pathlib import Path

    from shared.settings import STORAGE_CONNECTION, Settings

    sample = json.loads((Path(__file__).parents[2] / "local.settings.sample.json").read_text())
    names = {f.alias for f in Settings.model_fields.values() if f.alias}
    identity_only = {n for n in names if n.startswith(f"{STORAGE_CONNECTION}__")}
    assert identity_only  # the rule below must not pass vacuously
    assert sorted(names - identity_only - set(sample["Values"])) == []


def test_readme_configuration_table_names_every_setting() -> None:
    from pathlib import Path

    from shared.settings import Settings

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## The local stack")]
    names = [field.alias or name for name, field in Settings.model_fields.items()]
    assert len(names) > 10
    assert [n for n in names if f"| `{n}` |" not in table] == []


# --- upstream (issue 13) --------------------------------------------------------------------

UPSTREAM_SECRET = "pa55-word-that-must-never-leak"


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHEELVAULT_STORAGE", ACCOUNT_KEY_LIKE)


@pytest.mark.usefixtures("storage")
def test_no_upstream_by_default() -> None:
    from shared.core.upstream import UpstreamPolicy

    settings = load_settings()
    assert settings.upstream_base_urls == ()
    assert settings.upstream_policy == UpstreamPolicy()
    assert (settings.upstream_page_seconds, settings.upstream_miss_seconds) == (600, 60)


@pytest.mark.usefixtures("storage")
def test_upstream_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    monkeypatch.setenv(
        "WHEELVAULT_UPSTREAM_URLS",
        f"https://ci:{UPSTREAM_SECRET}@pkgs.example/simple, https://pypi.org/simple/",
    )
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_RESERVED", "Acme_* corp-*")
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_ALLOW", "")
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_DENY", "evil,typo-squat")
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_MIN_AGE", "P7D")
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_PAGE_SECONDS", "30")
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_MISS_SECONDS", "0")
    settings = load_settings()
    assert settings.upstream_base_urls == (
        f"https://ci:{UPSTREAM_SECRET}@pkgs.example/simple/",
        "https://pypi.org/simple/",
    )
    policy = settings.upstream_policy
    assert policy.reserved == ("acme-*", "corp-*")
    assert policy.allow == ()
    assert policy.deny == ("evil", "typo-squat")
    assert policy.min_age == timedelta(days=7)
    assert (settings.upstream_page_seconds, settings.upstream_miss_seconds) == (30, 0)
    assert UPSTREAM_SECRET not in repr(settings)
    assert UPSTREAM_SECRET not in str(settings.model_dump())


@pytest.mark.usefixtures("storage")
@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("WHEELVAULT_UPSTREAM_URLS", f"ftp://ci:{UPSTREAM_SECRET}@pkgs.example/", "entry 1"),
        (
            "WHEELVAULT_UPSTREAM_URLS",
            f"https://pypi.org/simple/ pkgs.example/{UPSTREAM_SECRET}",
            "entry 2",
        ),
        ("WHEELVAULT_UPSTREAM_RESERVED", f"acme-* {UPSTREAM_SECRET}/x", "pattern 2"),
        ("WHEELVAULT_UPSTREAM_ALLOW", f"[{UPSTREAM_SECRET}", "pattern 1"),
        ("WHEELVAULT_UPSTREAM_DENY", f"{UPSTREAM_SECRET}]", "pattern 1"),
        ("WHEELVAULT_UPSTREAM_MIN_AGE", f"P{UPSTREAM_SECRET}", "ISO 8601 duration"),
        ("WHEELVAULT_UPSTREAM_MIN_AGE", "P0D", "positive"),
        (
            "WHEELVAULT_UPSTREAM_URLS",
            "@Microsoft.KeyVault(VaultName=kv-wv-x;SecretName=wvupstream-urls)",
            "did not resolve",
        ),
        ("WHEELVAULT_UPSTREAM_PAGE_SECONDS", "-1", "greater than or equal to 0"),
        ("WHEELVAULT_UPSTREAM_MISS_SECONDS", "86401", "less than or equal to 86400"),
    ],
)
def test_bad_upstream_settings_are_named_never_echoed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{name}: " in message
    assert problem in message
    assert UPSTREAM_SECRET not in message
    assert value not in message


# --- Entra ID sign-in (issue 14) ------------------------------------------------------------

TENANT = "72F988BF-86F1-41AF-91AB-2D7CD011DB47"


@pytest.mark.usefixtures("storage")
def test_entra_is_off_by_default() -> None:
    settings = load_settings()
    assert settings.entra is None
    assert settings.entra_authority == "https://login.microsoftonline.com"


@pytest.mark.usefixtures("storage")
def test_entra_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.core.entra import EntraConfig

    monkeypatch.setenv("WHEELVAULT_ENTRA_TENANT_ID", TENANT)
    monkeypatch.setenv("WHEELVAULT_ENTRA_AUDIENCE", "api://wheelvault-x, 0000-client  ")
    assert load_settings().entra == EntraConfig(
        TENANT.lower(), ("api://wheelvault-x", "0000-client"), "https://login.microsoftonline.com"
    )
    monkeypatch.setenv("WHEELVAULT_ENTRA_AUTHORITY", "https://login.microsoftonline.us/")
    monkeypatch.setenv("WHEELVAULT_ENTRA_CA_BUNDLE", "/tmp/ca.pem")
    config = load_settings().entra
    assert config is not None
    assert config.authority == "https://login.microsoftonline.us"
    assert config.ca_bundle == "/tmp/ca.pem"
    assert config.v1_metadata_url == (
        f"https://login.microsoftonline.us/{TENANT.lower()}/.well-known/openid-configuration"
    )


@pytest.mark.usefixtures("storage")
@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("WHEELVAULT_ENTRA_TENANT_ID", "WHEELVAULT_ENTRA_AUDIENCE"),
        ("WHEELVAULT_ENTRA_AUDIENCE", "WHEELVAULT_ENTRA_TENANT_ID"),
    ],
)
def test_entra_needs_both_tenant_and_audience(
    monkeypatch: pytest.MonkeyPatch, given: str, missing: str
) -> None:
    monkeypatch.setenv(given, TENANT)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert f"{missing} must be set too" in str(caught.value)


@pytest.mark.usefixtures("storage")
@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("WHEELVAULT_ENTRA_TENANT_ID", "contoso.onmicrosoft.com", "GUID"),
        ("WHEELVAULT_ENTRA_TENANT_ID", f"{TENANT}/../common", "GUID"),
        ("WHEELVAULT_ENTRA_AUDIENCE", " ,, ", "Application ID URI"),
        ("WHEELVAULT_ENTRA_AUTHORITY", "http://login.microsoftonline.com", "https"),
        ("WHEELVAULT_ENTRA_AUTHORITY", "https://login.example/?x=1", "no credentials, query"),
    ],
)
def test_bad_entra_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv("WHEELVAULT_ENTRA_TENANT_ID", TENANT)
    monkeypatch.setenv("WHEELVAULT_ENTRA_AUDIENCE", "api://wheelvault-x")
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert f"{name}: " in str(caught.value)
    assert problem in str(caught.value)
