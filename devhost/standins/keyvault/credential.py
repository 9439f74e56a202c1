"""A credential for talking to the local stand-in without Azure AD.

``SecretClient`` needs a ``TokenCredential`` and asks it for a token after the vault's 401
challenge. The stand-in accepts any non-empty bearer token, so this credential hands out one
fixed placeholder that expires far in the future; nothing about it is secret, and it must never
be used against a real vault (which would reject it anyway).

It is the only such credential: production code holds none, and `WHEELVAULT_VAULT_CREDENTIAL=local`
works where devhost supplies this one (`shared.services.wiring.use_local_vault_credential` for the
app, `secret_client_from_settings(..., local_credential=...)` for a client of its own).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

# A fixed, public placeholder; the stand-in only checks that a bearer token is present.
LOCAL_TOKEN = "wheelvault-local-keyvault-standin"  # noqa: S105
_LIFETIME_SECONDS = 10 * 365 * 24 * 3600


class LocalVaultCredential:
    """Implements azure-core's ``TokenCredential`` and ``SupportsTokenInfo`` protocols."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The placeholder token, whatever scope or tenant the vault's challenge named."""
        return AccessToken(LOCAL_TOKEN, int(time.time()) + _LIFETIME_SECONDS)

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        """Same token as :meth:`get_token`; the SDK prefers this method when it exists."""
        return AccessTokenInfo(LOCAL_TOKEN, int(time.time()) + _LIFETIME_SECONDS)

    def close(self) -> None:
        """Nothing to release; present because ``SupportsTokenInfo`` requires it."""

    def __enter__(self) -> LocalVaultCredential:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
