"""Access tokens: management (create, list, show, rotate, revoke), the request verifier, and the
rotation run behind the timer.

Each token is one Key Vault secret (`wvtoken-<name>`); its versions are the token's values over
time. Every version expires at creation + rotate-after + overlap, and the verifier accepts any
enabled, unexpired version, so during an overlap the old and the new value both work. A
companion secret (`wvindexurl-<name>`) holds the full index URL with the newest value, for
consumers that read their index URL from a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

from shared.adapters.secretstore import SecretStore, SecretVersion, VaultUnavailable
from shared.core.tokens import (
    TOKEN_SECRET_PREFIX,
    Policy,
    Scope,
    TokenFormatError,
    VersionState,
    expired,
    generation,
    index_url_secret_name,
    new_token,
    plan_rotation,
    secret_name,
    token_name,
    validate_name,
)

log = logging.getLogger("wheelvault.tokens")

TOKEN_CONTENT_TYPE = "application/vnd.wheelvault.token"  # noqa: S105 - a media type
INDEX_URL_CONTENT_TYPE = "text/uri-list"
MIN_REFRESH_SECONDS = 5.0
"""A value that matches none of a known token's cached versions forces a fresh vault read, at most
this often per token: a version created elsewhere (a rotation) is picked up on its first request,
and a flood of forged values costs the vault one listing per token name every few seconds, not one
per request. Names the vault does not know are re-read at most this long after their last read."""
VERIFY_SECONDS = 8.0
"""One request's token check ends within this, waiting for another request's read of the same
name included: past it the request fails (503) rather than wait, well within the 10 s promised to
clients even when many requests queue for one name while the vault hangs."""


class TokenError(Exception):
    """A management request that cannot be carried out (unknown token, name taken, ...)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def index_url(public_url: str, name: str, token: str) -> str:
    """`https://<name>:<token>@<host>/simple/` for the index at `public_url`."""
    parts = urlsplit(public_url)
    path = parts.path.rstrip("/") + "/simple/"
    netloc = f"{quote(name, safe='')}:{quote(token, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def presented_token(authorization: str | None) -> str | None:
    """The token in an Authorization header: Basic (password, or username if no password,
    as `https://TOKEN@host/` sends it) or Bearer. None for anything else."""
    if not authorization:
        return None
    kind, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if kind.lower() == "bearer":
        return credential or None
    if kind.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, _, password = decoded.partition(":")
    return password or user or None


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scope: str
    rotate_after: str
    overlap: str
    description: str
    current_since: datetime | None
    current_expires_on: datetime | None
    usable_versions: int
    revoked: bool


@dataclass
class RotationReport:
    rotated: list[str] = field(default_factory=list)
    index_urls_updated: list[str] = field(default_factory=list)
    disabled_versions: int = 0
    revoked_skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_log(self) -> dict[str, object]:
        return {
            "rotated": self.rotated,
            "index_urls_updated": self.index_urls_updated,
            "disabled_versions": self.disabled_versions,
            "revoked_skipped": self.revoked_skipped,
            "failed": self.failed,
        }


def _states(versions: list[SecretVersion]) -> list[VersionState]:
    return [
        VersionState(v.version, v.created_on, v.expires_on, v.enabled, generation(v.tags))
        for v in versions
    ]


def _order(version: SecretVersion) -> tuple[int, datetime]:
    return (generation(version.tags), version.created_on)


class Tokens:
    """Token management and rotation over one vault."""

    def __init__(
        self,
        store: SecretStore,
        *,
        public_url: str,
        clock: Callable[[], datetime] = utc_now,
        new_value: Callable[[str], str] = new_token,
    ) -> None:
        self.store = store
        self.public_url = public_url
        self.clock = clock
        self.new_value = new_value

    # -- management -------------------------------------------------------------------------

    def create(self, name: str, policy: Policy) -> str:
        """Create token `name`; returns its value, the only time it is handed out unasked."""
        validate_name(name)
        if self.store.versions(secret_name(name)):
            raise TokenError(f"token {name!r} exists already")
        value, created = self._new_version(name, policy, [])
        self._sync_index_url(name, [created], known={created.version: value})
        log.info("token created", extra={"wheelvault": {"token": name, "scope": policy.scope}})
        return value

    def list_tokens(self) -> list[TokenInfo]:
        infos = []
        for secret in self.store.names(TOKEN_SECRET_PREFIX):
            if secret.tags.get("wheelvault") != "token":
                continue
            name = secret.name[len(TOKEN_SECRET_PREFIX) :]
            infos.append(self.info(name))
        return sorted(infos, key=lambda i: i.name)

    def info(self, name: str) -> TokenInfo:
        versions = self._versions(name)
        now = self.clock()
        usable = [v for v in versions if self._usable(v, now)]
        newest = max(usable, key=_order) if usable else max(versions, key=_order)
        policy = Policy.from_tags(dict(newest.tags))
        return TokenInfo(
            name=name,
            scope=policy.scope.value,
            rotate_after=policy.rotate_after,
            overlap=policy.overlap,
            description=policy.description,
            current_since=newest.created_on if usable else None,
            current_expires_on=newest.expires_on if usable else None,
            usable_versions=len(usable),
            revoked=not any(v.enabled for v in versions),
        )

    def show(self, name: str) -> str:
        """The newest usable value of token `name`."""
        versions = self._versions(name)
        value = self._newest_value(name, versions)
        if value is None:
            raise TokenError(f"token {name!r} has no usable version (revoked or expired)")
        return value

    def index_url_of(self, name: str) -> str:
        """The ready-made index URL consumers read from the companion secret (kept current)."""
        versions = self._versions(name)
        self._sync_index_url(name, versions)
        enabled = [v for v in self.store.versions(index_url_secret_name(name)) if v.enabled]
        for version in sorted(enabled, key=_order, reverse=True):
            value = self.store.value(index_url_secret_name(name), version.version)
            if value is not None:
                return value
        raise TokenError(f"token {name!r} has no usable version (revoked or expired)")

    def rotate(self, name: str) -> str:
        """Create a new version now (the old ones keep working until they expire)."""
        versions = self._versions(name)
        if not any(v.enabled for v in versions):
            raise TokenError(f"token {name!r} is revoked")
        policy = Policy.from_tags(dict(max(versions, key=_order).tags))
        value, created = self._new_version(name, policy, versions)
        self._sync_index_url(name, [*versions, created], known={created.version: value})
        log.info("token rotated", extra={"wheelvault": {"token": name}})
        return value

    def revoke(self, name: str) -> int:
        """Disable every version of the token and of its index-URL secret; returns how many."""
        versions = self._versions(name)
        disabled = 0
        for secret, items in (
            (secret_name(name), versions),
            (index_url_secret_name(name), self.store.versions(index_url_secret_name(name))),
        ):
            for version in items:
                if version.enabled:
                    self.store.set_enabled(secret, version.version, False)
                    disabled += 1
        log.info("token revoked", extra={"wheelvault": {"token": name, "disabled": disabled}})
        return disabled

    # -- rotation (the timer) ---------------------------------------------------------------

    def rotate_due(self) -> RotationReport:
        """One rotation run over every token. Idempotent; one token's failure stops no other."""
        report = RotationReport()
        for secret in self.store.names(TOKEN_SECRET_PREFIX):
            if secret.tags.get("wheelvault") != "token":
                continue
            name = secret.name[len(TOKEN_SECRET_PREFIX) :]
            try:
                self._rotate_one(name, report)
            except Exception as error:
                report.failed.append({"token": name, "error": type(error).__name__})
        level = logging.WARNING if report.failed else logging.INFO
        log.log(level, "rotation run", extra={"wheelvault": report.as_log()})
        return report

    def _rotate_one(self, name: str, report: RotationReport) -> None:
        versions = self.store.versions(secret_name(name))
        now = self.clock()
        newest = max(versions, key=_order)
        policy = Policy.from_tags(dict(newest.tags))
        plan = plan_rotation(_states(versions), policy, now)
        if plan.revoked:
            report.revoked_skipped.append(name)
            return
        # Order matters for crash safety: new version, then the index URL, then disabling.
        known: dict[str, str] = {}
        if plan.create_version:
            value, created = self._new_version(name, policy, versions)
            versions, known = [*versions, created], {created.version: value}
            report.rotated.append(name)
        companion = self.store.versions(index_url_secret_name(name))
        if self._sync_index_url(name, versions, companion, known=known):
            report.index_urls_updated.append(name)
        for done_with in plan.disable:
            self.store.set_enabled(secret_name(name), done_with, False)
            report.disabled_versions += 1
        for version in companion:
            if version.enabled and expired(version.expires_on, now):
                self.store.set_enabled(index_url_secret_name(name), version.version, False)

    # -- helpers ----------------------------------------------------------------------------

    def _versions(self, name: str) -> list[SecretVersion]:
        versions = self.store.versions(secret_name(name))
        if not versions:
            raise TokenError(f"no token named {name!r}")
        return versions

    def _usable(self, version: SecretVersion, now: datetime) -> bool:
        return version.enabled and not expired(version.expires_on, now)

    def _newest_value(self, name: str, versions: list[SecretVersion]) -> str | None:
        now = self.clock()
        for version in sorted(versions, key=_order, reverse=True):
            if self._usable(version, now):
                value = self.store.value(secret_name(name), version.version)
                if value is not None:
                    return value
        return None

    def _new_version(
        self, name: str, policy: Policy, versions: list[SecretVersion]
    ) -> tuple[str, SecretVersion]:
        value = self.new_value(name)
        following = max((generation(v.tags) for v in versions), default=0) + 1
        created = self.store.set(
            secret_name(name),
            value,
            tags={**policy.to_tags(), "generation": str(following)},
            content_type=TOKEN_CONTENT_TYPE,
            expires_on=policy.expires_on(self.clock()),
        )
        return value, created

    def _sync_index_url(
        self,
        name: str,
        versions: list[SecretVersion] | None = None,
        companion: list[SecretVersion] | None = None,
        *,
        known: Mapping[str, str] | None = None,
    ) -> bool:
        """Make the companion secret hold the index URL with the newest value; True if written.

        The companion's tags name the token version and public URL its value was made from, so
        a run with nothing to do reads no secret values at all.
        """
        if versions is None:
            versions = self.store.versions(secret_name(name))
        now = self.clock()
        usable = [v for v in versions if self._usable(v, now)]
        if not usable:
            return False
        newest = max(usable, key=_order)
        if companion is None:
            companion = self.store.versions(index_url_secret_name(name))
        wanted_tags = {
            "wheelvault": "index-url",
            "token": name,
            "token-version": newest.version,
            "generation": str(generation(newest.tags)),
            "public-url": self.public_url,
        }
        current = [v for v in companion if v.enabled]
        if current and dict(max(current, key=_order).tags) == wanted_tags:
            return False
        value = (known or {}).get(newest.version) or self.store.value(
            secret_name(name), newest.version
        )
        if value is None:
            return False
        self.store.set(
            index_url_secret_name(name),
            index_url(self.public_url, name, value),
            tags=wanted_tags,
            content_type=INDEX_URL_CONTENT_TYPE,
            expires_on=newest.expires_on,
        )
        return True


@dataclass(frozen=True)
class _Known:
    version: str
    digest: bytes
    scope: Scope
    expires_on: datetime | None


@dataclass(frozen=True)
class _Entry:
    fetched_at: float
    versions: tuple[_Known, ...]
    forced_at: float = float("-inf")
    """When an unseen value last forced a re-read of this name (the per-name rate limit)."""


class _MissBudget:
    """A token bucket for vault reads of token names not in the cache.

    The checksum in a token is public, so anyone can mint well-formed values for endless made-up
    names, each costing a vault read. Past this budget such names are refused without one, so a
    flood cannot exhaust the vault's request quota (and with it the real tokens' refreshes).
    """

    def __init__(self, rate: float, burst: float, monotonic: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self.monotonic = monotonic
        self.tokens = burst
        self.updated = monotonic()

    def take(self) -> bool:
        now = self.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class TokenVerifier:
    """Checks the credential of an HTTP request against the vault, with a short cache.

    Only sha256 digests of token values are kept in memory, and they are compared in constant
    time. Unknown, malformed, disabled, expired and wrong-scope tokens are all refused the same
    way: `verify` returns None and says nothing about why. The cache is bounded (least recently
    used names go first); concurrent misses for one name share a single vault read, and reads
    for names not cached, or cached as unknown to the vault, are rate-limited (`_MissBudget`).
    Even with `cache_seconds=0`, calls within half a second of a read share it, so a burst
    never multiplies vault requests.
    """

    MAX_ENTRIES = 10_000
    MAX_UNKNOWN = 1_024
    GATES = 64
    NEW_NAME_READS_PER_SECOND = 20.0
    NEW_NAME_BURST = 100.0

    def __init__(
        self,
        store: SecretStore,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        new_name_reads_per_second: float = NEW_NAME_READS_PER_SECOND,
        new_name_burst: float = NEW_NAME_BURST,
        verify_seconds: float = VERIFY_SECONDS,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.verify_seconds = verify_seconds
        self.clock = clock
        self.monotonic = monotonic
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._gates = [threading.Lock() for _ in range(self.GATES)]
        # Names the vault does not know are kept apart, so made-up names cannot evict real ones.
        self._unknown: OrderedDict[str, _Entry] = OrderedDict()
        self._misses = _MissBudget(new_name_reads_per_second, new_name_burst, monotonic)

    def verify(self, authorization: str | None, scope: Scope) -> str | None:
        """The token's name if the request may act with `scope`, else None."""
        value = presented_token(authorization)
        if value is None:
            return None
        try:
            name = token_name(value)
        except TokenFormatError:
            return None
        digest = hashlib.sha256(value.encode()).digest()
        deadline = time.monotonic() + self.verify_seconds  # real time, whatever self.monotonic is
        entry = self._entry(name, max_age=self.cache_seconds, deadline=deadline)
        if entry is None:
            return None
        granted = self._match(entry, digest)
        if granted is None:
            fresh = self._reread(name, entry, deadline)
            granted = self._match(fresh, digest) if fresh is not None else None
        return name if granted is not None and granted.allows(scope) else None

    def forget(self, name: str | None = None) -> None:
        """Drop cached versions (all, or one token's): after a revoke in this process."""
        with self._lock:
            if name is None:
                self._cache.clear()
                self._unknown.clear()
            else:
                self._cache.pop(name, None)
                self._unknown.pop(name, None)

    def _match(self, entry: _Entry, digest: bytes) -> Scope | None:
        now = self.clock()
        granted = None
        for known in entry.versions:
            if hmac.compare_digest(known.digest, digest) and not expired(known.expires_on, now):
                granted = known.scope
        return granted

    def _reread(self, name: str, entry: _Entry, deadline: float) -> _Entry | None:
        """A value `entry` does not know: read the name again, unless that was done lately.

        For a known name the limit counts only re-reads forced this way, so a rotation's new value
        works on its first request however recently the cache was filled.
        """
        now = self.monotonic()
        last = entry.forced_at if entry.versions else entry.fetched_at
        if now - last < MIN_REFRESH_SECONDS:
            return None
        return self._entry(name, max_age=0.0, deadline=deadline, newer_than=now)

    def _entry(
        self, name: str, *, max_age: float, deadline: float, newer_than: float | None = None
    ) -> _Entry | None:
        """The cached versions of `name`, read from the vault when older than `max_age`
        (or, with `newer_than`, unless read after that instant: a forced re-read).

        None when `name` is not cached and the budget for new names is spent.
        """
        with self._lock:
            cached = self._cached(name)
            if cached is not None and self.monotonic() - cached.fetched_at < max_age:
                return cached
            # A name the vault did not know costs from the budget on every read, not only the
            # first: otherwise the same made-up names, repeated past each re-read interval,
            # would read the vault once per name per interval.
            if (cached is None or not cached.versions) and not self._misses.take():
                return None
        gate = self._gates[hash(name) % self.GATES]
        # Concurrent misses for one name share one vault read; waiting for it counts against
        # this request's deadline, so requests queued behind a hung read fail in time too.
        if not gate.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise VaultUnavailable("timed out")
        try:
            with self._lock:
                cached = self._cached(name)
                if cached is not None and (
                    cached.fetched_at > newer_than
                    if newer_than is not None
                    else self.monotonic() - cached.fetched_at < max(max_age, 0.5)
                ):
                    return cached
            fetched_at = self.monotonic()
            forced_at = newer_than
            if forced_at is None:
                forced_at = cached.forced_at if cached is not None else float("-inf")
            with self.store.within(max(0.0, deadline - time.monotonic())):
                versions = self._fetch(name, cached)
            entry = _Entry(fetched_at, versions, forced_at)
            with self._lock:
                self._remember(name, entry)
            return entry
        finally:
            gate.release()

    def _cached(self, name: str) -> _Entry | None:
        """Look `name` up (caller holds the lock), marking it recently used."""
        for table in (self._cache, self._unknown):
            entry = table.get(name)
            if entry is not None:
                table.move_to_end(name)
                return entry
        return None

    def _remember(self, name: str, entry: _Entry) -> None:
        """Store a read (caller holds the lock) in the table its outcome belongs to."""
        known = bool(entry.versions)
        table = self._cache if known else self._unknown
        other = self._unknown if known else self._cache
        other.pop(name, None)
        table[name] = entry
        table.move_to_end(name)
        while len(table) > (self.MAX_ENTRIES if known else self.MAX_UNKNOWN):
            table.popitem(last=False)

    def _fetch(self, name: str, previous: _Entry | None) -> tuple[_Known, ...]:
        """The usable versions of `name`. A version's value never changes, so only versions not
        seen before cost a value read."""
        digests = {k.version: k.digest for k in previous.versions} if previous else {}
        now = self.clock()
        known = []
        for version in self.store.versions(secret_name(name)):
            if not version.enabled or expired(version.expires_on, now):
                continue
            if version.tags.get("wheelvault") != "token":
                continue
            try:
                scope = Scope(version.tags.get("scope", ""))
            except ValueError:
                continue
            digest = digests.get(version.version) or self._digest(name, version.version)
            if digest is not None:
                known.append(_Known(version.version, digest, scope, version.expires_on))
        return tuple(known)

    def _digest(self, name: str, version: str) -> bytes | None:
        value = self.store.value(secret_name(name), version)
        return None if value is None else hashlib.sha256(value.encode()).digest()
