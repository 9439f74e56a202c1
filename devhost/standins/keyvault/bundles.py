"""JSON bodies shaped like Key Vault's secret bundles and list items.

The SDK parses ``id`` back into ``vault_url``/``name``/``version`` and reads ``attributes`` as unix
seconds, so ids must be ``{base}/secrets/{name}/{32-hex version}`` and timestamps integers.
Fields Key Vault omits for plain secrets (``managed``, ``kid``) are omitted here too, and values
only appear in the bodies of operations that return them (set and get).
"""

from __future__ import annotations

from typing import Any

from .store import RECOVERABLE_DAYS, RECOVERY_LEVEL, DeletedSecretView, SecretVersion, SecretView


def secret_bundle(base_url: str, view: SecretView, *, include_value: bool) -> dict[str, Any]:
    """A ``SecretBundle``: what set/get/update/recover return for one version."""
    body: dict[str, Any] = {}
    if include_value:
        body["value"] = view.version.value
    body["id"] = version_id(base_url, view.name, view.version.version)
    body.update(_properties(view.version))
    return body


def secret_item(base_url: str, view: SecretView, *, versioned: bool) -> dict[str, Any]:
    """A ``SecretItem`` for list pages: never a value; the version only in the versions list."""
    if versioned:
        item_id = version_id(base_url, view.name, view.version.version)
    else:
        item_id = secret_id(base_url, view.name)
    return {"id": item_id, **_properties(view.version)}


def deleted_bundle(base_url: str, view: DeletedSecretView) -> dict[str, Any]:
    """A ``DeletedSecretBundle`` (delete and get-deleted): the latest version plus deletion info."""
    return _deleted(base_url, view, version_id(base_url, view.name, view.latest.version))


def deleted_item(base_url: str, view: DeletedSecretView) -> dict[str, Any]:
    """A ``DeletedSecretItem`` for the deleted-secrets list (id without version)."""
    return _deleted(base_url, view, secret_id(base_url, view.name))


def secret_id(base_url: str, name: str) -> str:
    """The identifier of a secret, whichever its latest version."""
    return f"{base_url}/secrets/{name}"


def version_id(base_url: str, name: str, version: str) -> str:
    """The full secret identifier of one version."""
    return f"{secret_id(base_url, name)}/{version}"


def recovery_id(base_url: str, name: str) -> str:
    """Where a soft-deleted secret lives until it is purged or recovered."""
    return f"{base_url}/deletedsecrets/{name}"


def _deleted(base_url: str, view: DeletedSecretView, item_id: str) -> dict[str, Any]:
    return {
        "recoveryId": recovery_id(base_url, view.name),
        "deletedDate": view.deleted_date,
        "scheduledPurgeDate": view.scheduled_purge_date,
        "id": item_id,
        **_properties(view.latest),
    }


def _properties(version: SecretVersion) -> dict[str, Any]:
    body: dict[str, Any] = {"attributes": _attributes(version)}
    if version.content_type is not None:
        body["contentType"] = version.content_type
    if version.tags is not None:
        body["tags"] = dict(version.tags)
    return body


def _attributes(version: SecretVersion) -> dict[str, Any]:
    attributes: dict[str, Any] = {"enabled": version.enabled}
    if version.not_before is not None:
        attributes["nbf"] = version.not_before
    if version.expires is not None:
        attributes["exp"] = version.expires
    attributes["created"] = version.created
    attributes["updated"] = version.updated
    attributes["recoveryLevel"] = RECOVERY_LEVEL
    attributes["recoverableDays"] = RECOVERABLE_DAYS
    return attributes
