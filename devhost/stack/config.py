"""Where the stack keeps its data, and the settings file it hands the functions host.

Everything lives under ``ROOT/.local`` (git-ignored), so published packages, tokens and the
vault's CA survive a restart. The user's ``local.settings.json`` is created from the sample when
it is missing and never rewritten; the host instead gets ``.local/host.settings.json``: the
user's values with the endpoints of the children this run actually started (ports, the CA path
made absolute), so non-default ports and a data root elsewhere need no hand-editing.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devhost.listening import LOOPBACK
from devhost.stack.entra import SETTINGS as ENTRA_SETTINGS
from devhost.stack.entra import EntraEndpoint
from devhost.stack.state import FILE_NAME as STATE_FILE
from devhost.stack.state import write_json
from devhost.standins.azurite import API_VERSION, connection_string
from devhost.standins.host.settings import SAMPLE_SETTINGS_FILE, SETTINGS_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Ports:
    """The listening ports; 0 means "pick a free one" (tests)."""

    blob: int = 10000
    vault: int = 8443
    host: int = 7071
    entra: int = 8444


DEFAULT_PORTS = Ports()
"""As in local.settings.sample.json, which is what the `wheelvault` command reads by default."""

STACK_OWNED = (
    "AzureWebJobsStorage",
    "WHEELVAULT_STORAGE",
    "WHEELVAULT_STORAGE_API_VERSION",
    "WHEELVAULT_VAULT_URL",
    "WHEELVAULT_VAULT_CREDENTIAL",
    "WHEELVAULT_VAULT_CA_BUNDLE",
    "WHEELVAULT_PUBLIC_URL",
    *ENTRA_SETTINGS,
)
"""Settings that must point at this run's children, whatever the file or the shell says."""
_STACK_OWNED_PREFIXES = ("AzureWebJobsStorage__", "WHEELVAULT_STORAGE__")
"""Identity-based storage settings: they would conflict with the connection string."""


class StackPaths:
    """The files of one stack root (the repository by default, a temp dir in tests)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.user_settings = root / SETTINGS_FILE
        self.local = root / ".local"
        self.azurite_data = self.local / "azurite"
        self.vault_data = self.local / "keyvault"
        self.entra_data = self.local / "entra"
        self.logs = self.local / "logs"
        self.host_settings = self.local / "host.settings.json"
        self.pids = self.local / "stack.pids"
        self.lock = self.local / "stack.lock"
        self.state = self.local / STATE_FILE  # the running stack's endpoints, for the CLI

    def log(self, child: str) -> Path:
        return self.logs / f"{child}.log"

    def shown(self, path: Path) -> str:
        """`path` relative to the root when inside it: shorter in the banner."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


@dataclass(frozen=True)
class Endpoints:
    """Where this run's children listen, as the host's settings spell it."""

    blob_port: int
    vault_url: str
    vault_ca: Path
    public_url: str
    entra: EntraEndpoint

    @property
    def storage(self) -> str:
        return connection_string(LOOPBACK, self.blob_port)


def ensure_user_settings(paths: StackPaths) -> bool:
    """Copy the sample to local.settings.json if there is none; True when it was written."""
    if paths.user_settings.exists():
        return False
    paths.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / SAMPLE_SETTINGS_FILE, paths.user_settings)
    return True


def stack_values(endpoints: Endpoints) -> dict[str, str]:
    """The stack-owned settings (:data:`STACK_OWNED`), pointing at this run's children."""
    return {
        "AzureWebJobsStorage": endpoints.storage,
        "WHEELVAULT_STORAGE": endpoints.storage,
        "WHEELVAULT_STORAGE_API_VERSION": API_VERSION,
        "WHEELVAULT_VAULT_URL": endpoints.vault_url,
        "WHEELVAULT_VAULT_CREDENTIAL": "local",
        "WHEELVAULT_VAULT_CA_BUNDLE": str(endpoints.vault_ca.resolve()),
        "WHEELVAULT_PUBLIC_URL": endpoints.public_url,
        **endpoints.entra.settings(),
    }


def host_values(base: Mapping[str, str], endpoints: Endpoints) -> dict[str, str]:
    """The user's values, with every stack-owned setting pointing at this run's children."""
    values = {k: v for k, v in base.items() if not k.startswith(_STACK_OWNED_PREFIXES)}
    values.update(stack_values(endpoints))
    return values


def write_settings(path: Path, values: Mapping[str, str]) -> None:
    """Write a local.settings.json-shaped file atomically (a crash leaves the old one)."""
    write_json(path, {"IsEncrypted": False, "Values": dict(values)})


def as_the_host_sees_them(values: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """`values` with the children's environment applied over them, as the host does.

    The host only fills in variables that are not set yet (as Core Tools does), so a
    WHEELVAULT_PAGE_CACHE_SECONDS given to `make run` wins over local.settings.json; the
    stack validates what the host will really run with, not just the file.
    """
    return {
        **values,
        **{k: v for k, v in env.items() if k in values or k.startswith("WHEELVAULT_")},
    }


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The supervisor's environment without the stack-owned settings.

    The host lets a variable that is already set win over its settings file; a stale
    WHEELVAULT_VAULT_URL in the shell would otherwise point the host at another vault.
    """
    env = {
        k: v
        for k, v in environ.items()
        if k not in STACK_OWNED and not k.startswith(_STACK_OWNED_PREFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env
