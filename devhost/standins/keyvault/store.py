"""Secrets, their versions and soft-deleted secrets, persisted as one JSON file in the data dir.

Key Vault semantics kept here because code under test depends on them:

* every set creates a new version; "latest" is the most recently created version, even when it
  is disabled (reading it is then refused by the API layer, as Key Vault does);
* names are case-insensitive but the spelling used at creation is what ids show;
* delete is a soft delete that moves every version to the deleted set, where the name stays
  reserved until it is purged, recovered, or its scheduled purge date passes.

One lock serialises all operations and the file is rewritten atomically after every change, so
concurrent requests cannot interleave and a crash cannot leave half-written state. A second
process on the same data dir would silently overwrite this one's changes, so the dir is locked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from ._files import atomic_write, ensure_private_dir, lock_dir
from .errors import (
    deleted_name_conflict,
    deleted_secret_not_found,
    secret_not_found,
)

NAME_PATTERN = re.compile(r"[0-9a-zA-Z-]{1,127}")
VERSION_PATTERN = re.compile(r"[0-9a-f]{32}")
RECOVERABLE_DAYS = 90
RECOVERY_LEVEL = "Recoverable+Purgeable"
STATE_FILE = "secrets.json"
_STATE_FORMAT = 1

_T = TypeVar("_T")


class StoreError(Exception):
    """The data dir cannot be used (locked by another process, or unreadable state)."""


@dataclass(frozen=True)
class SecretVersion:
    """One immutable-value version; only its properties change after creation."""

    version: str
    value: str
    content_type: str | None
    tags: Mapping[str, str] | None
    enabled: bool
    not_before: int | None
    expires: int | None
    created: int
    updated: int


@dataclass(frozen=True)
class VersionProperties:
    """The properties a set or an update request names; ``None`` means not named.

    A set then takes Key Vault's default (enabled, nothing else); an update leaves the property
    unchanged, as Key Vault does.
    """

    content_type: str | None = None
    tags: Mapping[str, str] | None = None
    enabled: bool | None = None
    not_before: int | None = None
    expires: int | None = None


@dataclass(frozen=True)
class SecretView:
    """A snapshot of one version together with its secret's display name."""

    name: str
    version: SecretVersion


@dataclass(frozen=True)
class DeletedSecretView:
    """A snapshot of a soft-deleted secret, described by its latest version."""

    name: str
    latest: SecretVersion
    deleted_date: int
    scheduled_purge_date: int


@dataclass
class _Secret:
    name: str
    versions: list[SecretVersion]

    @property
    def latest(self) -> SecretVersion:
        return self.versions[-1]

    def find(self, version: str) -> int | None:
        wanted = version.lower()
        for index, candidate in enumerate(self.versions):
            if candidate.version == wanted:
                return index
        return None


@dataclass
class _Deleted:
    secret: _Secret
    deleted_date: int
    scheduled_purge_date: int

    def view(self) -> DeletedSecretView:
        return DeletedSecretView(
            self.secret.name, self.secret.latest, self.deleted_date, self.scheduled_purge_date
        )


class SecretStore:
    """Thread-safe, persistent secret state for one data dir. Use :meth:`open` and :meth:`close`."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._state_path = data_dir / STATE_FILE
        self._lock = threading.Lock()
        self._active: dict[str, _Secret] = {}
        self._deleted: dict[str, _Deleted] = {}
        self._lock_file: IO[str] | None = None

    @classmethod
    def open(cls, data_dir: Path) -> SecretStore:
        """Lock ``data_dir`` for this process and load its state (an empty vault if none yet)."""
        store = cls(data_dir)
        ensure_private_dir(data_dir)
        store._acquire_dir_lock()
        try:
            store._load()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release the data-dir lock. State is already on disk after every change."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- active secrets -------------------------------------------------------------------

    def set_secret(self, name: str, value: str, new: VersionProperties) -> SecretView:
        """Create a new version (and the secret itself if needed); 409 if the name is deleted."""
        with self._locked() as now:
            key = name.lower()
            if key in self._deleted:
                raise deleted_name_conflict(self._deleted[key].secret.name)
            version = SecretVersion(
                version=uuid.uuid4().hex,
                value=value,
                content_type=new.content_type,
                tags=dict(new.tags) if new.tags is not None else None,
                enabled=True if new.enabled is None else new.enabled,
                not_before=new.not_before,
                expires=new.expires,
                created=now,
                updated=now,
            )
            secret = self._active.setdefault(key, _Secret(name, []))
            secret.versions.append(version)
            self._save()
            return SecretView(secret.name, version)

    def get_secret(self, name: str, version: str | None = None) -> SecretView:
        """The given version, or the latest one when ``version`` is ``None``/empty."""
        with self._locked():
            secret, index = self._find(name, version)
            return SecretView(secret.name, secret.versions[index])

    def update_secret(
        self, name: str, version: str | None, changes: VersionProperties
    ) -> SecretView:
        """Change the properties of one version (the latest when ``version`` is empty)."""
        with self._locked() as now:
            secret, index = self._find(name, version)
            current = secret.versions[index]
            updated = dataclasses.replace(
                current,
                content_type=_pick(changes.content_type, current.content_type),
                tags=dict(changes.tags) if changes.tags is not None else current.tags,
                enabled=_pick(changes.enabled, current.enabled),
                not_before=_pick(changes.not_before, current.not_before),
                expires=_pick(changes.expires, current.expires),
                updated=now,
            )
            secret.versions[index] = updated
            self._save()
            return SecretView(secret.name, updated)

    def list_secrets(self) -> list[SecretView]:
        """Every active secret described by its latest version, ordered by lower-cased name."""
        with self._locked():
            return [
                SecretView(self._active[key].name, self._active[key].latest)
                for key in sorted(self._active)
            ]

    def list_versions(self, name: str) -> list[SecretView]:
        """Every version of an active secret in creation order; empty if there is no such secret."""
        with self._locked():
            secret = self._active.get(name.lower())
            if secret is None:
                return []
            return [SecretView(secret.name, version) for version in secret.versions]

    # -- soft delete ------------------------------------------------------------------------

    def delete_secret(self, name: str) -> DeletedSecretView:
        """Move all versions of an active secret to the deleted set."""
        with self._locked() as now:
            key = name.lower()
            secret = self._active.pop(key, None)
            if secret is None:
                raise secret_not_found(name)
            deleted = _Deleted(secret, now, now + RECOVERABLE_DAYS * 86400)
            self._deleted[key] = deleted
            self._save()
            return deleted.view()

    def get_deleted(self, name: str) -> DeletedSecretView:
        """A soft-deleted secret, or 404."""
        with self._locked():
            deleted = self._deleted.get(name.lower())
            if deleted is None:
                raise deleted_secret_not_found(name)
            return deleted.view()

    def list_deleted(self) -> list[DeletedSecretView]:
        """Every soft-deleted secret, ordered by lower-cased name."""
        with self._locked():
            return [self._deleted[key].view() for key in sorted(self._deleted)]

    def purge_deleted(self, name: str) -> None:
        """Forget a soft-deleted secret for good, freeing its name."""
        with self._locked():
            if self._deleted.pop(name.lower(), None) is None:
                raise deleted_secret_not_found(name)
            self._save()

    def recover_deleted(self, name: str) -> SecretView:
        """Move a soft-deleted secret back to the active set with all of its versions."""
        with self._locked():
            key = name.lower()
            deleted = self._deleted.pop(key, None)
            if deleted is None:
                raise deleted_secret_not_found(name)
            self._active[key] = deleted.secret
            self._save()
            return SecretView(deleted.secret.name, deleted.secret.latest)

    # -- internals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """Hold the state lock and yield "now", first dropping deleted secrets due for purge."""
        with self._lock:
            now = int(time.time())  # Key Vault's attributes are unix seconds
            expired = [k for k, d in self._deleted.items() if d.scheduled_purge_date <= now]
            for key in expired:
                del self._deleted[key]
            if expired:
                self._save()
            yield now

    def _find(self, name: str, version: str | None) -> tuple[_Secret, int]:
        secret = self._active.get(name.lower())
        if secret is None:
            raise secret_not_found(name)
        if not version:
            return secret, len(secret.versions) - 1
        index = secret.find(version)
        if index is None:
            raise secret_not_found(name, version)
        return secret, index

    def _acquire_dir_lock(self) -> None:
        try:
            self._lock_file = lock_dir(self._data_dir)
        except OSError as exc:
            raise StoreError(
                f"data dir {self._data_dir} is in use by another Key Vault stand-in"
            ) from exc

    def _load(self) -> None:
        try:
            raw = self._state_path.read_bytes()
        except FileNotFoundError:
            return
        try:
            state = json.loads(raw)
            if state.get("format") != _STATE_FORMAT:
                raise ValueError("unknown state format")
            for item in state["secrets"]:
                secret = _secret_from_json(item)
                self._active[secret.name.lower()] = secret
            for item in state["deleted"]:
                deleted = _Deleted(
                    _secret_from_json(item),
                    _int(item["deletedDate"]),
                    _int(item["scheduledPurgeDate"]),
                )
                self._deleted[deleted.secret.name.lower()] = deleted
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # The message names the file only: the content holds secret values.
            raise StoreError(f"state file {self._state_path} is not readable") from exc

    def _save(self) -> None:
        state = {
            "format": _STATE_FORMAT,
            "secrets": [_secret_to_json(s) for s in self._active.values()],
            "deleted": [
                {
                    **_secret_to_json(d.secret),
                    "deletedDate": d.deleted_date,
                    "scheduledPurgeDate": d.scheduled_purge_date,
                }
                for d in self._deleted.values()
            ],
        }
        atomic_write(self._state_path, json.dumps(state, indent=1).encode("utf-8"))


def _pick(new: _T | None, current: _T) -> _T:
    return current if new is None else new


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _secret_to_json(secret: _Secret) -> dict[str, Any]:
    return {
        "name": secret.name,
        "versions": [
            {
                "version": v.version,
                "value": v.value,
                "contentType": v.content_type,
                "tags": dict(v.tags) if v.tags is not None else None,
                "enabled": v.enabled,
                "nbf": v.not_before,
                "exp": v.expires,
                "created": v.created,
                "updated": v.updated,
            }
            for v in secret.versions
        ],
    }


def _secret_from_json(item: Mapping[str, Any]) -> _Secret:
    name = item["name"]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError("bad secret name")
    versions = []
    for raw in item["versions"]:
        tags = raw["tags"]
        if tags is not None and not (
            isinstance(tags, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        ):
            raise TypeError("bad tags")
        value = raw["value"]
        version = raw["version"]
        if not isinstance(value, str) or not isinstance(version, str):
            raise TypeError("bad version")
        if not isinstance(raw["enabled"], bool):
            raise TypeError("bad enabled flag")
        versions.append(
            SecretVersion(
                version=version,
                value=value,
                content_type=_optional_str(raw["contentType"]),
                tags=tags,
                enabled=raw["enabled"],
                not_before=_optional_int(raw["nbf"]),
                expires=_optional_int(raw["exp"]),
                created=_int(raw["created"]),
                updated=_int(raw["updated"]),
            )
        )
    if not versions:
        raise ValueError("secret without versions")
    return _Secret(name, versions)
