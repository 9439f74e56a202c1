"""The request verifier: is this Authorization header a token that may act with this scope?

It answers from a short in-memory cache of sha256 digests of each token's usable versions, and
reads the vault only for names it has not seen lately or values it does not know. Reads of names
it does not hold are rate-limited (`_MissBudget`), so made-up tokens cannot spend the vault's
request quota. Token management and rotation live in `shared.services.tokens`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.secretstore import SecretStore, VaultUnavailable
from shared.core.clock import utc_now
from shared.core.tokens import (
    Scope,
    TokenFormatError,
    expired,
    presented_token,
    secret_name,
    token_name,
)
from shared.services.tokens import version_state

MIN_REFRESH_SECONDS = 5.0
"""A value that matches none of a known token's cached versions forces a fresh vault read, at most
this often per token: a version created elsewhere (a rotation) is picked up on its first request,
and a flood of forged values costs the vault one listing per token name every few seconds, not one
per request. Names the vault does not know are re-read at most this long after their last read."""
VERIFY_SECONDS = 8.0
"""One request's token check ends within this, waiting for another request's read of the same
name included: past it the request fails (503) rather than wait, well within the 10 s promised to
clients even when many requests queue for one name while the vault hangs."""


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
            return self._read(name, max_age=max_age, deadline=deadline, newer_than=newer_than)
        finally:
            gate.release()

    def _read(
        self, name: str, *, max_age: float, deadline: float, newer_than: float | None
    ) -> _Entry:
        """Under the name's gate: what another request read while this one waited, if that
        answers it too; else a vault read, remembered."""
        with self._lock:
            cached = self._cached(name)
            if cached is not None and self._shared(cached, max_age, newer_than):
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

    def _shared(self, cached: _Entry, max_age: float, newer_than: float | None) -> bool:
        """A forced re-read is answered only by a read made after it was asked for; any other
        by a read younger than `max_age`, or than half a second (a burst shares one read)."""
        if newer_than is not None:
            return cached.fetched_at > newer_than
        return self.monotonic() - cached.fetched_at < max(max_age, 0.5)

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
            if not version_state(version).usable(now) or version.tags.get("wheelvault") != "token":
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
