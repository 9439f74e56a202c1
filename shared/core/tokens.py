"""Access tokens: their format, how a request presents one, the index URL that carries one, and
the rotation policy. Pure: no vault, no clock of its own.

A token value looks like ``wvt_<name>_<secret><check>``:

- ``wvt_``: a fixed prefix, so secret scanners (GitHub custom patterns, gitleaks) can flag a leak;
- ``<name>``: the token's name (a Key Vault secret name suffix: letters, digits, ``-``), so the
  verifier fetches exactly one secret instead of scanning the vault;
- ``<secret>``: 43 base62 characters holding 256 bits from `secrets`;
- ``<check>``: 6 base62 characters of CRC-32 over the rest, so a mistyped or made-up token is
  refused without a vault round trip.

The whole value is URL-safe, so it can sit in ``https://name:TOKEN@host/simple/``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import TypeAdapter, ValidationError

PREFIX: Final = "wvt_"
SECRET_CHARS: Final = 43  # 62**43 > 2**256
CHECK_CHARS: Final = 6  # 62**6 > 2**32
ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$")
TOKEN_SECRET_PREFIX: Final = "wvtoken-"  # noqa: S105 - a secret *name* prefix
INDEX_URL_SECRET_PREFIX: Final = "wvindexurl-"  # noqa: S105 - a secret *name* prefix
DEFAULT_ROTATE_AFTER: Final = "P30D"
DEFAULT_OVERLAP: Final = "P7D"

_DURATION = TypeAdapter(timedelta)


class Scope(StrEnum):
    READ = "read"
    PUBLISH = "publish"

    def allows(self, wanted: Scope) -> bool:
        """`publish` implies `read`."""
        return self is wanted or (self is Scope.PUBLISH and wanted is Scope.READ)


class TokenFormatError(ValueError):
    """Not a wheelvault token. Deliberately says nothing about which part is wrong."""


class TokenError(Exception):
    """A management request that cannot be carried out (unknown token, name taken, ...)."""


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _check(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECK_CHARS)


def validate_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"token name {name[:80]!r} must be 1-64 letters, digits and inner hyphens")
    return name


def new_token(name: str, *, randbits: int | None = None) -> str:
    """A fresh token value for `name`. `randbits` is for tests; by default `secrets` is used."""
    validate_name(name)
    entropy = secrets.randbits(256) if randbits is None else randbits
    body = f"{PREFIX}{name}_{_base62(entropy, SECRET_CHARS)}"
    return body + _check(body)


def token_name(value: str) -> str:
    """The name a token value carries; raises TokenFormatError for anything malformed."""
    if not value.startswith(PREFIX) or len(value) > 200:
        raise TokenFormatError("not a wheelvault token")
    name, _, tail = value[len(PREFIX) :].rpartition("_")
    if (
        not name
        or not NAME_PATTERN.match(name)
        or len(tail) != SECRET_CHARS + CHECK_CHARS
        or any(c not in ALPHABET for c in tail)
        or not secrets.compare_digest(_check(value[:-CHECK_CHARS]), tail[SECRET_CHARS:])
    ):
        raise TokenFormatError("not a wheelvault token")
    return name


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


def index_url(public_url: str, name: str, token: str) -> str:
    """`https://<name>:<token>@<host>/simple/` for the index at `public_url`."""
    parts = urlsplit(public_url)
    path = parts.path.rstrip("/") + "/simple/"
    netloc = f"{quote(name, safe='')}:{quote(token, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def secret_name(name: str) -> str:
    """The Key Vault secret that holds token `name`."""
    return TOKEN_SECRET_PREFIX + validate_name(name)


def index_url_secret_name(name: str) -> str:
    """The companion secret with the ready-made index URL for token `name`."""
    return INDEX_URL_SECRET_PREFIX + validate_name(name)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration such as P30D, PT12H or P1W; must be positive."""
    try:
        value = _DURATION.validate_python(text)
    except ValidationError:
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 duration such as P30D") from None
    if not text.startswith("P") or value <= timedelta(0):
        raise ValueError(f"{text[:40]!r} is not a positive ISO 8601 duration such as P30D")
    return value


@dataclass(frozen=True)
class Policy:
    scope: Scope
    rotate_after: str = DEFAULT_ROTATE_AFTER
    overlap: str = DEFAULT_OVERLAP
    description: str = ""

    def __post_init__(self) -> None:
        parse_duration(self.rotate_after)
        parse_duration(self.overlap)

    @property
    def lifetime(self) -> timedelta:
        """How long one version stays valid: it is current for rotate-after, then overlaps."""
        return parse_duration(self.rotate_after) + parse_duration(self.overlap)

    def expires_on(self, created: datetime) -> datetime:
        return created + self.lifetime

    def to_tags(self) -> dict[str, str]:
        tags = {
            "wheelvault": "token",
            "scope": self.scope.value,
            "rotate-after": self.rotate_after,
            "overlap": self.overlap,
        }
        if self.description:
            tags["description"] = self.description[:256]
        return tags

    @classmethod
    def from_tags(cls, tags: dict[str, str] | None) -> Policy:
        tags = tags or {}
        return cls(
            scope=Scope(tags.get("scope", "")),
            rotate_after=tags.get("rotate-after", DEFAULT_ROTATE_AFTER),
            overlap=tags.get("overlap", DEFAULT_OVERLAP),
            description=tags.get("description", ""),
        )


def expired(expires_on: datetime | None, now: datetime) -> bool:
    """A version with no expiry never expires; one whose expiry has come is expired."""
    return expires_on is not None and expires_on <= now


@dataclass(frozen=True)
class VersionState:
    """What rotation needs to know about one version of a token secret."""

    version: str
    created_on: datetime
    expires_on: datetime | None
    enabled: bool
    generation: int = 0

    @property
    def order(self) -> tuple[int, datetime]:
        return (self.generation, self.created_on)

    def usable(self, now: datetime) -> bool:
        return self.enabled and not expired(self.expires_on, now)


def generation(tags: Mapping[str, str] | None) -> int:
    """A version's place in its token's history (tag `generation`).

    Key Vault stamps versions with whole seconds, so two versions made within one second (a
    create followed at once by a rotate) cannot be ordered by their creation time.
    """
    try:
        return int((tags or {}).get("generation", "0"))
    except ValueError:
        return 0


@dataclass(frozen=True)
class RotationPlan:
    create_version: bool
    disable: tuple[str, ...]
    revoked: bool


def plan_rotation(versions: list[VersionState], policy: Policy, now: datetime) -> RotationPlan:
    """Decide one token's rotation step.

    A new version is due when the newest enabled version is older than rotate-after (it has
    entered its overlap window), or when no
    enabled version is usable any more (rotation was down for longer than the overlap). Versions
    whose expiry has passed are disabled. A token whose versions are all disabled was revoked:
    rotation leaves it alone rather than bring it back.
    """
    enabled = [v for v in versions if v.enabled]
    if not enabled:
        return RotationPlan(create_version=False, disable=(), revoked=True)
    newest = max(enabled, key=lambda v: v.order)
    # Due once the newest version enters its overlap. Reckoned from the expiry we set (by our
    # clock) rather than the vault's creation stamp, so an injected clock moves both alike.
    if newest.expires_on is not None:
        due = now >= newest.expires_on - parse_duration(policy.overlap)
    else:
        due = now - newest.created_on >= parse_duration(policy.rotate_after)
    past_expiry = tuple(sorted(v.version for v in enabled if expired(v.expires_on, now)))
    return RotationPlan(
        create_version=due or not newest.usable(now), disable=past_expiry, revoked=False
    )
