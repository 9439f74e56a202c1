"""Access tokens: management (create, list, show, rotate, revoke) and the rotation run behind
the timer. The request verifier is `shared.services.verifier`.

Each token is one Key Vault secret (`wvtoken-<name>`); its versions are the token's values over
time. Every version expires at creation + rotate-after + overlap, and the verifier accepts any
enabled, unexpired version, so during an overlap the old and the new value both work. A
companion secret (`wvindexurl-<name>`) holds the full index URL with the newest value, for
consumers that read their index URL from a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.adapters.secretstore import SecretStore, SecretVersion
from shared.core.clock import utc_now
from shared.core.tokens import (
    TOKEN_SECRET_PREFIX,
    Policy,
    TokenError,
    VersionState,
    expired,
    generation,
    index_url,
    index_url_secret_name,
    new_token,
    plan_rotation,
    secret_name,
    validate_name,
)

log = logging.getLogger("wheelvault.tokens")

TOKEN_CONTENT_TYPE = "application/vnd.wheelvault.token"  # noqa: S105 - a media type
INDEX_URL_CONTENT_TYPE = "text/uri-list"


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


def version_state(version: SecretVersion) -> VersionState:
    """What rotation and the verifier reckon with about one vault version of a token."""
    return VersionState(
        version.version,
        version.created_on,
        version.expires_on,
        version.enabled,
        generation(version.tags),
    )


def _order(version: SecretVersion) -> tuple[int, datetime]:
    return version_state(version).order


def _usable(version: SecretVersion, now: datetime) -> bool:
    return version_state(version).usable(now)


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
        return sorted((self.info(name) for name in self._names()), key=lambda i: i.name)

    def info(self, name: str) -> TokenInfo:
        versions = self._versions(name)
        now = self.clock()
        usable = [v for v in versions if _usable(v, now)]
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
                    self.store.set_enabled(secret, version.version, enabled=False)
                    disabled += 1
        log.info("token revoked", extra={"wheelvault": {"token": name, "disabled": disabled}})
        return disabled

    # -- rotation (the timer) ---------------------------------------------------------------

    def rotate_due(self) -> RotationReport:
        """One rotation run over every token. Idempotent; one token's failure stops no other."""
        report = RotationReport()
        for name in self._names():
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
        plan = plan_rotation([version_state(v) for v in versions], policy, now)
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
            self.store.set_enabled(secret_name(name), done_with, enabled=False)
            report.disabled_versions += 1
        for version in companion:
            if version.enabled and expired(version.expires_on, now):
                self.store.set_enabled(index_url_secret_name(name), version.version, enabled=False)

    # -- helpers ----------------------------------------------------------------------------

    def _names(self) -> Iterator[str]:
        """Every token in the vault (secrets with our prefix that are tagged as tokens)."""
        for secret in self.store.latest_versions(TOKEN_SECRET_PREFIX):
            if secret.tags.get("wheelvault") == "token":
                yield secret.name[len(TOKEN_SECRET_PREFIX) :]

    def _versions(self, name: str) -> list[SecretVersion]:
        versions = self.store.versions(secret_name(name))
        if not versions:
            raise TokenError(f"no token named {name!r}")
        return versions

    def _newest_value(self, name: str, versions: list[SecretVersion]) -> str | None:
        now = self.clock()
        for version in sorted(versions, key=_order, reverse=True):
            if _usable(version, now):
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
        usable = [v for v in versions if _usable(v, now)]
        if not usable:
            return False
        newest = max(usable, key=_order)
        if companion is None:
            companion = self.store.versions(index_url_secret_name(name))
        wanted_tags = self._companion_tags(name, newest)
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

    def _companion_tags(self, name: str, newest: SecretVersion) -> dict[str, str]:
        """What a companion value is made from: the token's version and the public URL."""
        return {
            "wheelvault": "index-url",
            "token": name,
            "token-version": newest.version,
            "generation": str(generation(newest.tags)),
            "public-url": self.public_url,
        }
