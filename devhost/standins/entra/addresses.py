"""What a client of the stand-in needs to know, derived in one place from its URL and tenant.

:class:`~.server.EntraStandin` (in-process) and the test fixture's process handle both expose
these; each supplies only ``url``, ``ca_path`` and the ``directory`` read from ``entra.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import requests

from .principals import Directory, LocalPrincipal


class EntraAddresses:
    """Ids, scope, managed-identity endpoint and wheelvault settings for one stand-in."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def ca_path(self) -> Path:
        raise NotImplementedError

    @property
    def directory(self) -> Directory:
        raise NotImplementedError

    @property
    def tenant_id(self) -> str:
        return self.directory.tenant_id

    @property
    def client_id(self) -> str:
        """wheelvault's app (the ``aud`` of the tokens it accepts)."""
        return self.directory.wheelvault.client_id

    @property
    def app_id_uri(self) -> str:
        return self.directory.wheelvault.app_id_uri

    @property
    def audience(self) -> str:
        """The value for ``WHEELVAULT_ENTRA_AUDIENCE``."""
        return f"{self.app_id_uri},{self.client_id}"

    @property
    def scope(self) -> str:
        """What a client asks a token for to call wheelvault."""
        return f"{self.app_id_uri}/.default"

    @property
    def identity_header(self) -> str:
        """The managed-identity endpoint's secret (``IDENTITY_HEADER``)."""
        return self.directory.identity_header

    @property
    def identity_endpoint(self) -> str:
        """The managed-identity endpoint (``IDENTITY_ENDPOINT``)."""
        return f"{self.url}/msi/token"

    @property
    def token_endpoint(self) -> str:
        """The v2 client-credentials endpoint (the one ``ClientSecretCredential`` asks)."""
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def principals(self) -> Mapping[str, LocalPrincipal]:
        return self.directory.principals

    def client_credentials_token(self, principal: str, scope: str | None = None) -> str:
        """An access token for `principal` from the token endpoint, as a client with its
        secret asks for one; `scope` defaults to wheelvault's."""
        who = self.principals[principal]
        reply = requests.post(
            self.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "client_id": who.client_id,
                "client_secret": who.client_secret,
                "scope": scope or self.scope,
            },
            verify=str(self.ca_path),
            timeout=30,
        )
        reply.raise_for_status()
        token: str = reply.json()["access_token"]
        return token

    def settings(self) -> dict[str, str]:
        """The four ``WHEELVAULT_ENTRA_*`` settings that point wheelvault at this stand-in."""
        return {
            "WHEELVAULT_ENTRA_TENANT_ID": self.tenant_id,
            "WHEELVAULT_ENTRA_AUDIENCE": self.audience,
            "WHEELVAULT_ENTRA_AUTHORITY": self.url,
            "WHEELVAULT_ENTRA_CA_BUNDLE": str(self.ca_path),
        }
