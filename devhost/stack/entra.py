"""The Entra ID stand-in as part of the stack: what the host is told, what stack.json says.

The stand-in runs as a child like the vault stand-in. Its ready line gives its URL and CA; the
tenant and app ids come from its data dir's ``entra.json`` (the stand-in's own reader), where the
principals' secrets also stay: stack.json names that file and the `wheelvault entra` commands
read the secrets from it, so neither the banner nor stack.json ever holds one.

Developers point DefaultAzureCredential at the stand-in with ``REQUESTS_CA_BUNDLE``. That variable
replaces the trusted roots for every requests-based tool in the shell, so the stack writes a
bundle of the public roots plus the stand-in's CA: pip and az keep reaching the internet.
"""

from __future__ import annotations

from pathlib import Path

import certifi

from devhost.stack.state import write_text
from devhost.standins.entra.addresses import EntraAddresses
from devhost.standins.entra.principals import STATE_FILE, Directory, read_directory

SETTINGS = (
    "WHEELVAULT_ENTRA_TENANT_ID",
    "WHEELVAULT_ENTRA_AUDIENCE",
    "WHEELVAULT_ENTRA_AUTHORITY",
    "WHEELVAULT_ENTRA_CA_BUNDLE",
)
"""The host's Entra settings (EntraAddresses.settings()); the stack owns them (STACK_OWNED)."""
TRUST_FILE = "trust.pem"


class EntraEndpoint(EntraAddresses):
    """The stand-in of this run: where it listens, and (EntraAddresses) its tenant, app, scope
    and the host's settings, from its entra.json."""

    def __init__(self, url: str, ca_path: Path, data_dir: Path) -> None:
        self._url = url
        self._ca_path = ca_path
        self.directory_file = data_dir / STATE_FILE
        """The principals with their secrets (never copied anywhere else)."""
        self._directory = read_directory(self.directory_file)
        self.trust = data_dir / TRUST_FILE
        """The public roots plus the stand-in's CA, for REQUESTS_CA_BUNDLE."""

    @property
    def url(self) -> str:
        return self._url

    @property
    def ca_path(self) -> Path:
        return self._ca_path

    @property
    def directory(self) -> Directory:
        return self._directory

    def state(self) -> dict[str, str]:
        """The "entra" entry of stack.json: no secret, only where to find them."""
        return {
            "url": self.url,
            "ca": str(self.ca_path.resolve()),
            "ca_bundle": str(self.trust.resolve()),
            "tenant_id": self.tenant_id,
            "audience": self.audience,
            "scope": self.scope,
            "identity_endpoint": self.identity_endpoint,
            "principals": str(self.directory_file.resolve()),
        }


def entra_endpoint(url: str, ca_path: Path, data_dir: Path) -> EntraEndpoint:
    """The running stand-in's endpoint, read from its data dir; writes the trust bundle."""
    endpoint = EntraEndpoint(url, ca_path, data_dir)
    public_roots = Path(certifi.where()).read_text(encoding="ascii")
    own = ca_path.read_text(encoding="ascii")
    write_text(endpoint.trust, public_roots.rstrip("\n") + "\n" + own)
    return endpoint
