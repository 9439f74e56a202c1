"""The keyring backend: an Entra ID access token as the password for a configured wheelvault index.

keyring imports this module through the ``keyring.backends`` entry point; defining
``WheelvaultKeyring`` registers it. For any service string that names no configured origin it
answers None, so keyring's chainer moves on to the next backend (pypi.org keeps its own
credentials). It stores nothing: set and delete are refused, and tokens live only in memory.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from typing import TYPE_CHECKING, Callable

from keyring.backend import KeyringBackend
from keyring.credentials import Credential, SimpleCredential
from keyring.errors import PasswordDeleteError, PasswordSetError

from wheelvault_keyring.config import IndexEntry, KeyringConfig, config_from_env

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

DEFAULT_USERNAME = "entra"
"""The username returned when the client gave none; wheelvault accepts any username."""
PRIORITY = 9.9
"""Above the platform keyrings (5) so a configured index is answered here first; below the
chainer (10), which asks every backend in priority order."""
REFRESH_MARGIN_SECONDS = 300
"""A held token is used only while it has more than this left, so a long pip run never sends
one that expires on the way."""
FAILURE_PAUSE_SECONDS = 30
"""After a failed sign-in, the same scope is not tried again for this long: pip asks for every
page twice (index URL, then host), and each DefaultAzureCredential attempt can take seconds."""
MESSAGE_PREFIX = "wheelvault-keyring:"
_JWT_LIKE = re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*")
_MAX_REASON_CHARS = 300


class ReadOnlyError(PasswordSetError, PasswordDeleteError, NotImplementedError):
    """Raised by set and delete. Also a NotImplementedError, which keyring's chainer reads as
    "ask the next backend", so ``keyring set`` still reaches the system keyring."""


class TokenSource:
    """Access tokens for scopes from one credential, held in memory until shortly before expiry.

    ``credential_factory`` runs once, on the first token request (building a
    DefaultAzureCredential costs tens of milliseconds; a lookup for pypi.org never pays it).
    """

    def __init__(
        self,
        credential_factory: Callable[[], TokenCredential],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = credential_factory
        self._credential: TokenCredential | None = None
        self._clock = clock
        self._held: dict[str, tuple[str, float]] = {}  # scope → (token, expires_on)
        self._failed_at: dict[str, float] = {}
        self.last_failure: str | None = None
        """The whole message of the latest failure (token-like text cut), for ``check``."""
        self._lock = threading.Lock()

    def token(self, entry: IndexEntry) -> str | None:
        """A token for ``entry.scope``, or None (the reason went to stderr, once per attempt)."""
        with self._lock:
            now = self._clock()
            held = self._held.get(entry.scope)
            if held is not None and held[1] - REFRESH_MARGIN_SECONDS > now:
                return held[0]
            failed_at = self._failed_at.get(entry.scope)
            if failed_at is not None and now - failed_at < FAILURE_PAUSE_SECONDS:
                return None
            return self._fetch(entry, now)

    def _fetch(self, entry: IndexEntry, now: float) -> str | None:
        try:
            if self._credential is None:
                self._credential = self._factory()
            access = self._credential.get_token(entry.scope)
        except Exception as failure:  # any failure: the client goes on without this backend
            self._failed_at[entry.scope] = now
            self.last_failure = redact(str(failure).strip())
            report(
                f"no Entra ID token for {entry.origin} (scope {entry.scope}): {describe(failure)}"
                f"; `python -m wheelvault_keyring check {entry.origin}` lists what was tried"
            )
            return None
        self._failed_at.pop(entry.scope, None)
        self._held[entry.scope] = (access.token, float(access.expires_on))
        return access.token


def default_credential() -> TokenCredential:
    """The credential chain: environment, workload identity, managed identity, az, azd, ...

    Imported here, not at module level: keyring loads this module for every lookup, and
    azure.identity takes a noticeable fraction of a second to import.
    """
    from azure.identity import DefaultAzureCredential

    # On failure azure.identity logs a many-line warning. In a process that set up no logging
    # (the `keyring` command that pip and uv run) Python would print it to stderr through its
    # last-resort handler, beside the one line this backend writes; a NullHandler stops that,
    # while an application's own log handlers (on the root logger) still receive it.
    logging.getLogger("azure.identity").addHandler(logging.NullHandler())
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


_process_source: TokenSource | None = None
_process_source_lock = threading.Lock()


def process_token_source() -> TokenSource:
    """The one TokenSource (and so the one DefaultAzureCredential) of this process."""
    global _process_source
    with _process_source_lock:
        if _process_source is None:
            _process_source = TokenSource(default_credential)
        return _process_source


class WheelvaultKeyring(KeyringBackend):
    """Entra ID access tokens for the origins in ``WHEELVAULT_KEYRING_INDEXES``; read-only.

    keyring builds it with no arguments. ``config`` and ``credential`` (anything with
    azure-core's ``get_token``) replace the environment and DefaultAzureCredential.
    """

    priority = PRIORITY

    def __init__(
        self,
        *,
        config: KeyringConfig | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's __init__ is unannotated
        self._config = config
        self._config_lock = threading.Lock()
        self._tokens = None if credential is None else TokenSource(lambda: credential)

    def _indexes(self) -> KeyringConfig:
        """The configuration, read from the environment on first use; problems reported once.

        A method, not a property: keyring sets an attribute on every backend for each
        KEYRING_PROPERTY_* variable, and a property without a setter would make that fail.
        """
        with self._config_lock:
            if self._config is None:
                self._config = config_from_env()
                for problem in self._config.problems:
                    report(problem)
            return self._config

    def get_password(self, service: str, username: str) -> str | None:
        entry = self._indexes().match(service)
        if entry is None:
            return None
        tokens = self._tokens if self._tokens is not None else process_token_source()
        return tokens.token(entry)

    def get_credential(self, service: str, username: str | None) -> Credential | None:
        password = self.get_password(service, username or DEFAULT_USERNAME)
        if password is None:
            return None
        return SimpleCredential(username or DEFAULT_USERNAME, password)

    def set_password(self, service: str, username: str, password: str) -> None:
        raise ReadOnlyError(
            "wheelvault-keyring stores nothing: it signs in with Entra ID on each use"
        )

    def delete_password(self, service: str, username: str) -> None:
        raise ReadOnlyError("wheelvault-keyring stores nothing, so there is nothing to delete")


def describe(failure: BaseException) -> str:
    """One line about a failure: its type and first line, bounded, with anything token-like cut.

    azure-identity's messages name the credentials it tried and why each failed; they hold no
    token, but a message is never trusted to stay that way.
    """
    lines = str(failure).strip().splitlines()
    reason = redact(lines[0] if lines else "")
    if len(reason) > _MAX_REASON_CHARS:
        reason = reason[: _MAX_REASON_CHARS - 3] + "..."
    return f"{type(failure).__name__}: {reason}" if reason else type(failure).__name__


def redact(text: str) -> str:
    """``text`` with anything shaped like a JWT replaced."""
    return _JWT_LIKE.sub("[token removed]", text)


def report(line: str) -> None:
    """One line to stderr: clients show it, and stdout is where ``keyring get`` prints a token.

    Written as ASCII (other characters escaped), so no console encoding can turn the message
    into an error of its own."""
    text = f"{MESSAGE_PREFIX} {line}".encode("ascii", "backslashreplace").decode("ascii")
    print(text, file=sys.stderr, flush=True)
