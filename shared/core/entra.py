"""Entra ID sign-in, the pure part: app roles and the scopes they grant, the configuration, what
a presented credential that is a JWT looks like, and why one is refused. No I/O, no keys: the
signature and claim checks live in `shared.services.entra` (PyJWT does them).

An Entra ID access token is a JWS in compact form (``header.payload.signature``, base64url). A
wheelvault token never looks like one (it starts ``wvt_``), so the front door can tell them apart
before checking either.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from shared.core.text import one_line
from shared.core.tokens import Scope

ROLE_READ: Final = "Packages.Read"
ROLE_PUBLISH: Final = "Packages.Publish"
ROLES: Final = (ROLE_READ, ROLE_PUBLISH)
DEFAULT_AUTHORITY: Final = "https://login.microsoftonline.com"
MAX_TOKEN_CHARS: Final = 16 * 1024
"""Entra access tokens are a few KB (a user in very many groups gets an overage claim instead of
the list); anything longer is refused before it is decoded."""

# Three base64url segments; the header is a JSON object, so its encoding starts `eyJ` ('{"').
# The signature may be empty: an `alg: none` token must still reach the verifier to be refused
# with the reason, not mistaken for a wheelvault token.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_DISPLAY_CHARS = 120


def scope_for_roles(roles: Iterable[str]) -> Scope | None:
    """The scope a set of app roles grants: publish implies read; None without a wheelvault
    role. Roles other than ROLE_READ and ROLE_PUBLISH are ignored."""
    held = set(roles)
    if ROLE_PUBLISH in held:
        return Scope.PUBLISH
    if ROLE_READ in held:
        return Scope.READ
    return None


def looks_like_jwt(value: str) -> bool:
    """True for a compact JWS (three base64url segments, a JSON header): Entra's path, not the
    wheelvault token's. Says nothing about validity."""
    return _JWT.fullmatch(value) is not None


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a token that `looks_like_jwt`, not yet verified: only for choosing
    the algorithm and key (the signature check reads it again)."""
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):  # not base64, not UTF-8, not JSON
        raise EntraRefusal("malformed", "its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise EntraRefusal("malformed", "its header is not a JSON object")
    return header


@dataclass(frozen=True)
class EntraConfig:
    """Which tenant's tokens are accepted, for which audiences, from which authority."""

    tenant_id: str
    audiences: tuple[str, ...]
    authority: str = DEFAULT_AUTHORITY
    ca_bundle: str | None = None

    @property
    def v2_metadata_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/v2.0/.well-known/openid-configuration"

    @property
    def v1_metadata_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/.well-known/openid-configuration"


def parse_tenant_id(text: str) -> str:
    """The tenant's GUID in its canonical lower-case form (the `tid` claim's form). It becomes
    part of the metadata URLs, so nothing but a GUID is accepted."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise ValueError("must be the tenant's GUID (Directory (tenant) ID)") from None


def parse_audiences(text: str) -> tuple[str, ...]:
    """Accepted `aud` values, separated by commas and/or whitespace, in order, each once."""
    audiences = tuple(dict.fromkeys(part for part in re.split(r"[\s,]+", text) if part))
    if not audiences:
        raise ValueError("must name the Application ID URI and/or the client id")
    return audiences


def parse_authority(text: str) -> str:
    """An https origin (with an optional path), without a trailing slash."""
    parts = urlsplit(text.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https URL such as https://login.microsoftonline.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must be a plain https URL: no credentials, query or fragment")
    return text.strip().rstrip("/")


class EntraRefusal(Exception):
    """An Entra ID token that is not accepted: a stable `code` and a `message` that says why in
    words a client can act on. Neither ever holds the token or any part of it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def refuse_algorithm(alg: object) -> EntraRefusal:
    """The header's `alg` is attacker-chosen: shown only when it is a short plain name."""
    shown = alg if isinstance(alg, str) and re.fullmatch(r"[A-Za-z0-9]{1,16}", alg) else None
    what = f"alg {shown}" if shown else "an unsupported algorithm"
    return EntraRefusal("bad-algorithm", f"it is signed with {what}; only RS256 is accepted")


@dataclass(frozen=True)
class EntraPrincipal:
    """Who an accepted token speaks for, and what wheelvault lets them do."""

    object_id: str
    app_id: str
    display: str
    """For logs: the user's sign-in name, else the calling application's id."""
    roles: frozenset[str]
    """The wheelvault roles held (others are ignored)."""
    scope: Scope | None


def principal_from_claims(claims: Mapping[str, Any]) -> EntraPrincipal:
    """The principal of a token whose signature and claims have been checked. v2 tokens name
    the calling app in `azp`, v1 tokens in `appid`."""
    object_id = claims.get("oid")
    if not isinstance(object_id, str) or not object_id:
        raise EntraRefusal("malformed", "it has no oid (object id) claim")
    app_id = _text_claim(claims, "azp", "appid")
    display = _text_claim(claims, "upn", "preferred_username", "unique_name") or app_id
    granted = claims.get("roles")
    names = granted if isinstance(granted, list) else []
    roles = frozenset(r for r in names if isinstance(r, str) and r in ROLES)
    return EntraPrincipal(
        object_id=_shown(object_id),
        app_id=_shown(app_id),
        display=_shown(display or object_id),
        roles=roles,
        scope=scope_for_roles(roles),
    )


def _text_claim(claims: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _shown(value: str) -> str:
    """A claim as it may appear in logs and names: one bounded printable line (the common
    case, a GUID or a sign-in name, is checked without a walk through its characters)."""
    if len(value) <= _DISPLAY_CHARS and value.isprintable():
        return value
    return one_line(value, _DISPLAY_CHARS)
