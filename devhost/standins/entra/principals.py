"""Who exists in the stand-in's tenant: wheelvault's app, another app, and named principals.

Everything here is made once, written to ``entra.json`` in the data dir and read back on every
later start, so the tenant id, the client ids and the secrets handed to developers (and to the
host's settings) stay valid across restarts.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devhost.standins.keyvault._files import atomic_write, ensure_private_dir
from shared.core.entra import ROLE_PUBLISH, ROLE_READ

STATE_FILE = "entra.json"
_STATE_FORMAT = 1

WHEELVAULT_APP_ID_URI = "api://wheelvault-local"
OTHER_APP_ID_URI = "api://other-app"
DEFAULT_ROLES: Mapping[str, tuple[str, ...]] = {
    "developer": (ROLE_READ, ROLE_PUBLISH),
    "reader": (ROLE_READ,),
    "publisher": (ROLE_PUBLISH,),
    "nobody": (),
}
"""The principals every new tenant gets, and the wheelvault app roles assigned to each."""
DEFAULT_PRINCIPAL = "developer"
"""Whom the managed-identity endpoint answers for when the request names no client id."""


class DirectoryError(Exception):
    """``entra.json`` exists but cannot be read as the stand-in's state."""


@dataclass(frozen=True)
class LocalPrincipal:
    """A service principal with a client secret, as a workload or a developer signs in."""

    name: str
    client_id: str
    client_secret: str
    object_id: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class LocalApp:
    """An app registration tokens can be requested for (its ``aud`` is the client id)."""

    client_id: str
    app_id_uri: str

    def names(self, resource: str) -> bool:
        """Whether ``resource`` (an Application ID URI or a client id) is this app."""
        return resource in (self.app_id_uri, self.client_id)


@dataclass(frozen=True)
class Directory:
    """The tenant as the stand-in serves it."""

    tenant_id: str
    wheelvault: LocalApp
    other_app: LocalApp
    principals: Mapping[str, LocalPrincipal]
    identity_header: str

    def app_for(self, resource: str) -> LocalApp | None:
        """The app a scope's resource part names, if any."""
        for app in (self.wheelvault, self.other_app):
            if app.names(resource):
                return app
        return None

    def principal_by_client_id(self, client_id: str) -> LocalPrincipal | None:
        for principal in self.principals.values():
            if principal.client_id == client_id:
                return principal
        return None

    def principal_by_object_id(self, object_id: str) -> LocalPrincipal | None:
        for principal in self.principals.values():
            if principal.object_id == object_id:
                return principal
        return None


def load_or_create(data_dir: Path) -> Directory:
    """The tenant kept in ``data_dir``, made (and written) on the first start."""
    path = data_dir / STATE_FILE
    if path.exists():
        return read_directory(path)
    ensure_private_dir(data_dir)
    directory = _new_directory()
    atomic_write(path, json.dumps(_to_json(directory), indent=2).encode("utf-8"))
    return directory


def read_directory(path: Path) -> Directory:
    """Read ``entra.json`` (also how test fixtures learn the ids of a stand-in process)."""
    try:
        state = json.loads(path.read_bytes())
        if state.get("format") != _STATE_FORMAT:
            raise ValueError("unknown state format")
        return _from_json(state)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DirectoryError(f"cannot read the Entra stand-in's state in {path}: {exc}") from exc


def _new_directory() -> Directory:
    principals = {
        name: LocalPrincipal(
            name=name,
            client_id=str(uuid.uuid4()),
            client_secret=secrets.token_urlsafe(30),
            object_id=str(uuid.uuid4()),
            roles=roles,
        )
        for name, roles in DEFAULT_ROLES.items()
    }
    return Directory(
        tenant_id=str(uuid.uuid4()),
        wheelvault=LocalApp(str(uuid.uuid4()), WHEELVAULT_APP_ID_URI),
        other_app=LocalApp(str(uuid.uuid4()), OTHER_APP_ID_URI),
        principals=principals,
        identity_header=secrets.token_urlsafe(24),
    )


def _to_json(directory: Directory) -> dict[str, Any]:
    return {
        "format": _STATE_FORMAT,
        "tenant_id": directory.tenant_id,
        "apps": {
            "wheelvault": asdict(directory.wheelvault),
            "other": asdict(directory.other_app),
        },
        "principals": {name: asdict(p) for name, p in directory.principals.items()},
        "identity_header": directory.identity_header,
    }


def _from_json(state: Mapping[str, Any]) -> Directory:
    principals = {
        name: LocalPrincipal(**{**fields, "roles": tuple(fields["roles"])})
        for name, fields in state["principals"].items()
    }
    return Directory(
        tenant_id=str(state["tenant_id"]),
        wheelvault=LocalApp(**state["apps"]["wheelvault"]),
        other_app=LocalApp(**state["apps"]["other"]),
        principals=principals,
        identity_header=str(state["identity_header"]),
    )
