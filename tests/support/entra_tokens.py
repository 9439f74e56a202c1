"""An Entra ID tenant in-process, for tests and benchmarks that check tokens without a server:
real RSA keys (`cryptography`), real JWTs (PyJWT), the tenant's OpenID documents and key set
served through the same `get_json(url, *, timeout)` the verifier's `OidcClient` has, with every
fetch counted. (`devhost.standins.entra` is the same tenant over HTTPS, for the integration
and end-to-end tiers.)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.adapters.oidc import EntraUnavailable
from shared.core.entra import ROLE_PUBLISH, ROLE_READ, EntraConfig

AUTHORITY = "https://login.example.test"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
APP_ID_URI = "api://wheelvault-test"
CALLER_APP_ID = "99999999-8888-7777-6666-555555555555"
OTHER_APP_ID_URI = "api://other-app"


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def new(cls, kid: str | None = None, bits: int = 2048) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(kid or uuid.uuid4().hex[:16], key)

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private.public_key(), as_dict=True
        )
        return {**data, "kid": self.kid, "use": "sig"}


@dataclass
class FakeTenant:
    """The tenant's documents at the URLs Entra serves them from; `get_json` serves them."""

    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    authority: str = AUTHORITY
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.new()])
    fetches: Counter[str] = field(default_factory=Counter)
    fail: set[str] = field(default_factory=set)
    """URLs that answer with EntraUnavailable."""
    before_answer: Callable[[str], None] | None = None
    """Called (outside the lock) before each answer: a test slows or holds fetches with it."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def config(self) -> EntraConfig:
        return EntraConfig(self.tenant_id, (APP_ID_URI, CLIENT_ID), self.authority)

    @property
    def v2_issuer(self) -> str:
        return f"{self.authority}/{self.tenant_id}/v2.0"

    @property
    def v1_issuer(self) -> str:
        return f"https://sts.example.test/{self.tenant_id}/"

    @property
    def jwks_uri(self) -> str:
        return f"{self.authority}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def key_fetches(self) -> int:
        return self.fetches[self.jwks_uri]

    def documents(self) -> dict[str, dict[str, Any]]:
        config = self.config
        return {
            config.v2_metadata_url: {"issuer": self.v2_issuer, "jwks_uri": self.jwks_uri},
            config.v1_metadata_url: {
                "issuer": self.v1_issuer,
                "jwks_uri": f"{self.authority}/{self.tenant_id}/discovery/keys",
            },
            self.jwks_uri: {"keys": [key.jwk() for key in self.keys]},
        }

    def get_json(self, url: str, *, timeout: float) -> dict[str, Any]:
        assert timeout > 0
        with self._lock:
            self.fetches[url] += 1
        if self.before_answer is not None:
            self.before_answer(url)
        if url in self.fail:
            raise EntraUnavailable(f"HTTP 503 from {url}")
        try:
            return self.documents()[url]
        except KeyError:
            raise EntraUnavailable(f"HTTP 404 from {url}") from None

    def rotate(self, *, retire_previous: bool = False) -> SigningKey:
        """A new signing key, published first (new tokens are signed with it)."""
        key = SigningKey.new()
        self.keys = [key] + ([] if retire_previous else self.keys)
        return key

    # -- tokens -----------------------------------------------------------------------------

    def claims(self, *, v1: bool = False, **overrides: Any) -> dict[str, Any]:
        """A valid access token's claims (v2: the client id as aud; v1: the URI and sts
        issuer), one hour long; `overrides` replace claims, None removes one."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": APP_ID_URI if v1 else CLIENT_ID,
            "iss": self.v1_issuer if v1 else self.v2_issuer,
            "tid": self.tenant_id,
            "oid": str(uuid.uuid4()),
            "sub": "subject",
            ("appid" if v1 else "azp"): CALLER_APP_ID,
            "roles": [ROLE_READ, ROLE_PUBLISH],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "1.0" if v1 else "2.0",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        *,
        key: SigningKey | None = None,
        kid: str | None = None,
        v1: bool = False,
        **overrides: Any,
    ) -> str:
        """An RS256 token signed with `key` (the newest by default), `kid` in its header."""
        signer = key or self.keys[0]
        headers = {"kid": kid or signer.kid, "typ": "JWT"}
        return jwt.encode(
            self.claims(v1=v1, **overrides), signer.private, algorithm="RS256", headers=headers
        )
