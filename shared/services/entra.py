"""The Entra ID verifier: is this access token one of our tenant's, for this index, and valid now?

PyJWT checks the signature and the claims; this module decides which keys and issuers count and
keeps them. Keys and issuers come from the tenant's OpenID configuration: the v2 document gives
the v2 issuer and the key set's URL, the v1 document the v1 issuer (which tokens carry depends
on the app registration's `accessTokenAcceptedVersion`, so both are accepted).

Keys are parsed once per fetch and held until `keys_max_age_seconds`. A token signed with a key
the cache does not hold reloads the key set at once (a rotation is picked up on its first
request), but at most once per `unknown_key_refresh_seconds`: made-up `kid`s cannot make the
index hammer the tenant. Concurrent requests share one fetch, and none waits on more than one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from shared.adapters.oidc import EntraUnavailable
from shared.core.entra import (
    MAX_TOKEN_CHARS,
    EntraConfig,
    EntraPrincipal,
    EntraRefusal,
    looks_like_jwt,
    principal_from_claims,
    refuse_algorithm,
    unverified_header,
)

log = logging.getLogger("wheelvault.entra")

ALGORITHM = "RS256"
"""What Entra ID signs access tokens with; nothing else is accepted (no `none`, no HMAC)."""
MIN_RSA_BITS = 2048
FETCH_SECONDS = 8.0
"""One request's wait for the tenant's documents, a shared fetch included; past it, 503."""
STALE_RETRY_SECONDS = 60.0
"""Keys past their age whose reload failed are kept, and the reload retried this often."""


MAX_ACCEPTED = 4096
"""Tokens remembered as accepted (least recently used go first)."""


class JsonSource(Protocol):
    """What the verifier reads the tenant's documents with (`shared.adapters.oidc.OidcClient`)."""

    def get_json(self, url: str, *, timeout: float) -> dict[str, Any]: ...


@dataclass(frozen=True)
class _KeySet:
    keys: Mapping[str, RSAPublicKey]
    issuers: frozenset[str]
    jwks_uri: str
    reload_at: float
    """Monotonic time after which the documents are read again."""


@dataclass(frozen=True)
class _Accepted:
    """A token that passed every check, remembered by its sha256: until its validity ends
    (the same leeway), and while the key that signed it is the one held, a repeat of the
    same token is the same answer."""

    principal: EntraPrincipal
    key: RSAPublicKey
    kid: str
    valid_from: float
    valid_until: float

    def still_valid(self, now: float, keys: _KeySet) -> bool:
        return self.valid_from <= now < self.valid_until and keys.keys.get(self.kid) is self.key


@dataclass
class _Flight:
    """One fetch of the documents that every request needing it waits for."""

    done: threading.Event = field(default_factory=threading.Event)
    keys: _KeySet | None = None
    error: EntraUnavailable | None = None


class EntraVerifier:
    """Checks Entra ID access tokens for one tenant and audience. Thread-safe."""

    def __init__(
        self,
        config: EntraConfig,
        client: JsonSource,
        *,
        leeway_seconds: float = 60,
        unknown_key_refresh_seconds: float = 300,
        keys_max_age_seconds: float = 86400,
        monotonic: Callable[[], float] = time.monotonic,
        fetch_seconds: float = FETCH_SECONDS,
    ) -> None:
        self.config = config
        self.client = client
        self.leeway_seconds = leeway_seconds
        self.unknown_key_refresh_seconds = unknown_key_refresh_seconds
        self.keys_max_age_seconds = keys_max_age_seconds
        self.monotonic = monotonic
        self.fetch_seconds = fetch_seconds
        self._lock = threading.Lock()
        self._keys: _KeySet | None = None
        self._flight: _Flight | None = None
        self._forced_at = float("-inf")
        """When an unknown `kid` last made the key set reload (the rate limit)."""
        self._accepted: OrderedDict[bytes, _Accepted] = OrderedDict()

    def verify(self, token: str) -> EntraPrincipal:
        """The principal `token` speaks for; EntraRefusal saying why not, or EntraUnavailable
        when the tenant's keys cannot be read."""
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._remembered(digest)
        if remembered is not None:
            return remembered
        kid = _checked_header(token)
        deadline = time.monotonic() + self.fetch_seconds  # real time, whatever self.monotonic is
        keys, fetched = self._key_set(deadline)
        key = keys.keys.get(kid)
        if key is None and not fetched:  # a request never waits on a second fetch
            key = self._reloaded_for(keys, deadline).keys.get(kid)
        if key is None:
            raise EntraRefusal("unknown-key", "it is signed with a key the tenant does not publish")
        claims = self._decode(token, key, keys.issuers)
        if str(claims.get("tid", "")).lower() != self.config.tenant_id:
            raise EntraRefusal("wrong-tenant", "it was issued for another tenant (tid)")
        principal = principal_from_claims(claims)
        self._remember(digest, _Accepted(principal, key, kid, *self._validity(claims)))
        return principal

    # -- tokens accepted before -------------------------------------------------------------

    def _remembered(self, digest: bytes) -> EntraPrincipal | None:
        """The principal of a token accepted before and valid still, by PyJWT's rules for
        `exp`/`nbf`/`iat` with the same leeway; None when it must be checked in full (never
        seen, lapsed, its key no longer held, or the key set due to be read again)."""
        now = time.time()  # PyJWT's clock
        with self._lock:
            accepted, keys = self._accepted.get(digest), self._keys
            if accepted is None or keys is None or self.monotonic() >= keys.reload_at:
                return None
            if not accepted.still_valid(now, keys):
                del self._accepted[digest]
                return None
            self._accepted.move_to_end(digest)
            return accepted.principal

    def _remember(self, digest: bytes, accepted: _Accepted) -> None:
        with self._lock:
            self._accepted[digest] = accepted
            self._accepted.move_to_end(digest)
            while len(self._accepted) > MAX_ACCEPTED:
                self._accepted.popitem(last=False)

    def _validity(self, claims: Mapping[str, Any]) -> tuple[float, float]:
        """When a checked token is valid, leeway included, as PyJWT decides it: from its
        `nbf`/`iat` (the later) to its `exp` (both integral there too)."""
        starts = [int(claims[name]) for name in ("nbf", "iat") if name in claims]
        valid_from = max(starts) - self.leeway_seconds if starts else float("-inf")
        return valid_from, int(claims["exp"]) + self.leeway_seconds

    def _decode(self, token: str, key: RSAPublicKey, issuers: frozenset[str]) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.config.audiences,
                issuer=issuers,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise _refusal(error) from None
        return claims

    # -- the key set ------------------------------------------------------------------------

    def _key_set(self, deadline: float) -> tuple[_KeySet, bool]:
        """The cached key set, and whether this request waited on a fetch for it: read first
        if there is none, reloaded when past its age. A reload of a key set that still works
        is waited on only by the request that started it; if it fails, the held keys stay."""
        with self._lock:
            held, flight = self._keys, self._flight
            if held is not None and (flight is not None or self.monotonic() < held.reload_at):
                return held, False
            lead = flight is None
            flight = self._board(flight)
        try:
            return self._await(flight, lead, held, deadline, full=True), True
        except EntraUnavailable as error:
            if held is None:
                raise
            log.warning("Entra ID keys not reloaded, keeping the ones held: %s", error.reason)
            self._retry_later(held)
            return held, True

    def _reloaded_for(self, seen: _KeySet, deadline: float) -> _KeySet:
        """For a `kid` not in `seen`: the key set reloaded (one fetch, shared with whoever needs
        it too), or as it stands if a fetch has ended since `seen` was taken or one was forced
        lately (no fetch then)."""
        with self._lock:
            held, flight = self._keys or seen, self._flight
            if held is not seen:
                return held
            if flight is None:
                if self.monotonic() - self._forced_at < self.unknown_key_refresh_seconds:
                    return held
                self._forced_at = self.monotonic()
            lead = flight is None
            flight = self._board(flight)
        return self._await(flight, lead, held, deadline, full=False)

    def _board(self, flight: _Flight | None) -> _Flight:
        """The fetch under way, or a new one (caller holds the lock and leads a new one)."""
        if flight is None:
            flight = self._flight = _Flight()
        return flight

    def _await(
        self, flight: _Flight, lead: bool, previous: _KeySet | None, deadline: float, *, full: bool
    ) -> _KeySet:
        """Make the fetch (as its leader) or wait for it, within the deadline."""
        if lead:
            self._lead(flight, previous, deadline, full)
        elif not flight.done.wait(max(0.0, deadline - time.monotonic())):
            raise EntraUnavailable("timed out waiting for the tenant's keys")
        if flight.keys is None:
            raise flight.error or EntraUnavailable("the tenant's keys could not be read")
        return flight.keys

    def _lead(self, flight: _Flight, previous: _KeySet | None, deadline: float, full: bool) -> None:
        try:
            if full or previous is None:
                flight.keys = self._read_all(deadline)
            else:
                flight.keys = self._read_keys(previous, deadline)
        except EntraUnavailable as error:
            flight.error = error
        finally:
            with self._lock:
                if flight.keys is not None:
                    self._keys = flight.keys
                self._flight = None
            flight.done.set()

    def _retry_later(self, held: _KeySet) -> None:
        retry = _KeySet(
            held.keys, held.issuers, held.jwks_uri, self.monotonic() + STALE_RETRY_SECONDS
        )
        with self._lock:
            if self._keys is held:
                self._keys = retry

    def _read_all(self, deadline: float) -> _KeySet:
        """Both OpenID documents and the key set. Without the v1 document only v2 tokens are
        accepted, and the documents are read again sooner."""
        v2 = self._get(self.config.v2_metadata_url, deadline)
        issuer, jwks_uri = v2.get("issuer"), v2.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_uri, str):
            raise EntraUnavailable(f"no issuer or jwks_uri in {self.config.v2_metadata_url}")
        if not jwks_uri.startswith("https://"):
            raise EntraUnavailable(f"jwks_uri in {self.config.v2_metadata_url} is not https")
        keys = self._parse_keys(self._get(jwks_uri, deadline), jwks_uri)
        issuers, age = {issuer}, self.keys_max_age_seconds
        try:
            v1_issuer = self._get(self.config.v1_metadata_url, deadline).get("issuer")
        except EntraUnavailable as error:
            v1_issuer = None
            log.warning("Entra ID v1 issuer not loaded (v1 tokens refused): %s", error.reason)
        if isinstance(v1_issuer, str):
            issuers.add(v1_issuer)
        else:
            age = min(age, self.unknown_key_refresh_seconds)
        return _KeySet(keys, frozenset(issuers), jwks_uri, self.monotonic() + age)

    def _read_keys(self, previous: _KeySet, deadline: float) -> _KeySet:
        keys = self._parse_keys(self._get(previous.jwks_uri, deadline), previous.jwks_uri)
        return _KeySet(keys, previous.issuers, previous.jwks_uri, previous.reload_at)

    def _get(self, url: str, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise EntraUnavailable(f"no time left to read {url}")
        return self.client.get_json(url, timeout=remaining)

    @staticmethod
    def _parse_keys(jwks: Mapping[str, Any], url: str) -> dict[str, RSAPublicKey]:
        """The RSA signing keys of a JWKS, by kid, parsed once here rather than per request.
        Keys of other kinds or uses, or too short, are left out; none left is a failure."""
        entries = jwks.get("keys")
        keys = {}
        for entry in entries if isinstance(entries, list) else []:
            key = _signing_key(entry)
            if key is not None:
                keys[entry["kid"]] = key
        if not keys:
            raise EntraUnavailable(f"no RSA signing keys at {url}")
        return keys


def _signing_key(entry: object) -> RSAPublicKey | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
        return None
    if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
        return None
    if entry.get("alg", ALGORITHM) != ALGORITHM:
        return None
    try:
        key = jwt.PyJWK(entry, ALGORITHM).key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        return None
    return key


def _checked_header(token: str) -> str:
    """The `kid` of a well-formed RS256 token; the algorithm is refused before any key is
    looked up, so `none` and HMAC tokens never reach a key."""
    if len(token) > MAX_TOKEN_CHARS or not looks_like_jwt(token):
        raise EntraRefusal("malformed", "it is not a well-formed JWT")
    header = unverified_header(token)
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise refuse_algorithm(alg)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise EntraRefusal("malformed", "its header names no key (kid)")
    return kid


def _refusal(error: jwt.PyJWTError) -> EntraRefusal:
    """PyJWT's verdict in our words (its messages are not shown: some quote claim values)."""
    if isinstance(error, jwt.ExpiredSignatureError):
        return EntraRefusal("expired", "it has expired")
    if isinstance(error, jwt.ImmatureSignatureError):
        return EntraRefusal("not-yet-valid", "it is not valid yet (nbf or iat in the future)")
    if isinstance(error, jwt.InvalidAudienceError):
        return EntraRefusal("wrong-audience", "it was issued for another application (aud)")
    if isinstance(error, jwt.InvalidIssuerError):
        return EntraRefusal("wrong-issuer", "it was not issued by this index's tenant (iss)")
    if isinstance(error, jwt.InvalidSignatureError):
        return EntraRefusal("bad-signature", "its signature does not match the tenant's key")
    if isinstance(error, jwt.InvalidAlgorithmError):
        return EntraRefusal("bad-algorithm", "only RS256 is accepted")
    if isinstance(error, jwt.MissingRequiredClaimError):
        return EntraRefusal("malformed", f"it has no {error.claim} claim")
    return EntraRefusal("malformed", "it is not a well-formed JWT")
