"""Access tokens as Entra issues them for an app-only sign-in: v2 claims, RS256, signed by PyJWT.

A client-credentials or managed-identity token names the service principal twice (``oid`` and
``sub``; app-only tokens have no user), the calling client in ``azp``, and the app roles
assigned to it in ``roles`` — only when the token is for wheelvault's app and there are any,
as Entra leaves the claim out otherwise.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import jwt

from .keys import SigningKey
from .principals import LocalApp, LocalPrincipal

LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_on: int
    """Epoch seconds."""
    lifetime: int


def issue_access_token(
    key: SigningKey,
    *,
    issuer: str,
    tenant_id: str,
    app: LocalApp,
    principal: LocalPrincipal,
    roles_for_app: bool,
    now: int,
) -> IssuedToken:
    """A token for ``principal`` to call ``app``; ``roles_for_app``: the app defines roles."""
    expires_on = now + LIFETIME_SECONDS
    claims: dict[str, object] = {
        "aud": app.client_id,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": expires_on,
        "azp": principal.client_id,
        "oid": principal.object_id,
        "sub": principal.object_id,
        "tid": tenant_id,
        "uti": _unique_token_id(),
        "ver": "2.0",
    }
    if roles_for_app and principal.roles:
        claims["roles"] = list(principal.roles)
    token = jwt.encode(
        claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"}
    )
    return IssuedToken(token, expires_on, LIFETIME_SECONDS)


def _unique_token_id() -> str:
    """Entra's ``uti``: a random id, 16 bytes in base64url (22 characters)."""
    return secrets.token_urlsafe(16)
