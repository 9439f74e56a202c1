"""Which index origins get an Entra ID token, and for which scope: ``WHEELVAULT_KEYRING_INDEXES``.

The value is a list of ``ORIGIN=SCOPE`` entries separated by commas or whitespace, e.g.
``https://wheelvault-x.azurewebsites.net=api://wheelvault-x/.default``. An origin is a scheme,
a host and an optional port; nothing else (no path, no user, no query).

The service strings that clients hand to keyring are matched against those origins here:
pip asks for the index URL and then for the bare netloc (``host`` or ``host:port``), uv for the
request URL and then ``host[:port]``, twine for its repository URL. A token goes only to a
configured origin: any other host, port or scheme matches nothing, so the next backend answers.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

ENV_INDEXES = "WHEELVAULT_KEYRING_INDEXES"
DEFAULT_PORTS = {"https": 443, "http": 80}
_ENTRY_SEPARATORS = re.compile(r"[,\s]+")
# Control characters and spaces never belong in a URL; urlsplit would silently drop some
# (tab, CR, LF), so a service string holding one is refused rather than "cleaned" into a match.
# A backslash is refused too: browsers and the URL parser in uv read it as "/" (so
# https://evil.com\@host/ goes to evil.com) while urlsplit reads host as the host.
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class Origin:
    """Scheme, lower-case host (IPv6 without brackets) and port: what a token is bound to."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class IndexEntry:
    """One configured index: its origin and the Entra ID scope its tokens are requested for."""

    origin: Origin
    scope: str


@dataclass(frozen=True)
class KeyringConfig:
    """The parsed setting: the usable entries, and one line per entry that was refused."""

    entries: tuple[IndexEntry, ...] = ()
    problems: tuple[str, ...] = ()

    def match(self, service: str) -> IndexEntry | None:
        """The entry whose origin ``service`` (a URL or a bare ``host[:port]``) names, if any."""
        target = _service_target(service)
        if target is None:
            return None
        scheme, host, port = target
        for entry in self.entries:
            if _same_origin(entry.origin, scheme, host, port):
                return entry
        return None


def config_from_env(environ: Mapping[str, str] | None = None) -> KeyringConfig:
    """The configuration in ``environ`` (default: this process's environment)."""
    source = os.environ if environ is None else environ
    return parse_indexes(source.get(ENV_INDEXES, ""))


def parse_indexes(text: str) -> KeyringConfig:
    """Parse the setting; a malformed entry is left out and described in ``problems``."""
    entries: list[IndexEntry] = []
    problems: list[str] = []
    for raw in _ENTRY_SEPARATORS.split(text.strip()):
        if not raw:
            continue
        try:
            entry = _parse_entry(raw)
        except ValueError as refused:
            problems.append(f"{ENV_INDEXES}: entry {raw!r} ignored: {refused}")
            continue
        if any(known.origin == entry.origin for known in entries):
            problems.append(f"{ENV_INDEXES}: entry {raw!r} ignored: {entry.origin} is listed twice")
            continue
        entries.append(entry)
    return KeyringConfig(tuple(entries), tuple(problems))


def _parse_entry(raw: str) -> IndexEntry:
    origin_text, equals, scope = raw.partition("=")
    if not equals:
        raise ValueError("expected ORIGIN=SCOPE, e.g. https://host=api://app/.default")
    if not scope:
        raise ValueError("the scope after '=' is empty")
    return IndexEntry(_parse_origin(origin_text), scope)


def _parse_origin(text: str) -> Origin:
    if _UNSAFE_CHARACTERS.search(text):
        raise ValueError("the origin holds a space, a control character or a backslash")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as bad:
        raise ValueError(f"the origin is not a URL ({bad})") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port == 0:
        raise ValueError("the origin must be https://host or https://host:port")
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the origin is scheme://host[:port] only (no user, path or query)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("http:// sends the token in the clear; only loopback hosts may use it")
    return Origin(parts.scheme, parts.hostname, _port_or_default(port, parts.scheme))


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _service_target(service: str) -> tuple[str | None, str, int | None] | None:
    """(scheme or None for a bare netloc, host, port or None) named by a service string."""
    if not service or _UNSAFE_CHARACTERS.search(service):
        return None
    # A bare netloc ("host", "host:port", "[::1]:8443") has no "//"; parsed after "//" it is
    # split exactly as a URL's authority is, userinfo and IPv6 brackets included.
    try:
        parts = urlsplit(service if "//" in service else f"//{service}")
    except ValueError:  # an unclosed IPv6 bracket, characters that NFKC turns into '@' or '/'
        return None
    if parts.scheme and parts.scheme not in DEFAULT_PORTS:
        return None
    return _authority(parts)


def _authority(parts: SplitResult) -> tuple[str | None, str, int | None] | None:
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        return None
    if not parts.hostname:
        return None
    return (parts.scheme or None), parts.hostname, port


def _same_origin(origin: Origin, scheme: str | None, host: str, port: int | None) -> bool:
    if host != origin.host:
        return False
    if scheme is not None:
        return scheme == origin.scheme and _port_or_default(port, scheme) == origin.port
    # A bare netloc carries no scheme: without a port it means the scheme's default port
    # (pip passes "host" for https://host/ and http://host/ alike), with one, that port.
    if port is None:
        return origin.port == DEFAULT_PORTS[origin.scheme]
    return port == origin.port


def _port_or_default(port: int | None, scheme: str) -> int:
    return DEFAULT_PORTS[scheme] if port is None else port
