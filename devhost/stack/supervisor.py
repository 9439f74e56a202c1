"""`Stack`: Azurite, the Key Vault and Entra ID stand-ins and the functions host as one unit.

Used by ``python -m devhost.stack`` (``make run``) and by tests, which give it a temporary root
and free ports. ``start()`` returns once the host's ``/health`` answers 200, the containers exist
and both local tokens are known, then writes ``.local/stack.json`` (state.py); ``restart(name)``
brings one dead child back on its port and data; ``stop()`` stops every child and releases every
port.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from pydantic import ValidationError

from devhost.listening import LOOPBACK, StartStop, free_ports, port_free
from devhost.stack.children import (
    AlreadyRunning,
    Child,
    PortInUse,
    StackError,
    accepting,
    ready_line,
    spawn,
    wait_for,
)
from devhost.stack.config import (
    DEFAULT_PORTS,
    REPO_ROOT,
    Endpoints,
    Ports,
    StackPaths,
    as_the_host_sees_them,
    child_environment,
    ensure_user_settings,
    host_values,
    write_settings,
)
from devhost.stack.entra import EntraEndpoint, entra_endpoint
from devhost.stack.provision import PUBLISHER, READER, LocalToken, ensure_containers, ensure_tokens
from devhost.stack.state import this_process, write_json
from devhost.standins import azurite
from devhost.standins.azurite import API_VERSION
from devhost.standins.entra.__main__ import READY_PREFIX as ENTRA_READY
from devhost.standins.host.localhost import READY_PREFIX as HOST_READY
from devhost.standins.host.settings import SettingsFileError, read_values
from devhost.standins.keyvault.__main__ import READY_PREFIX as VAULT_READY
from shared.core.clock import iso_z, utc_now
from shared.core.tokens import index_url
from shared.settings import Settings, describe

T = TypeVar("T")

READY_TIMEOUT = 60.0  # seconds for a child to answer after it started
STOP_TIMEOUT = 10.0  # seconds for a child to exit after SIGTERM, before SIGKILL

VAULT_READY_LINE = re.compile(rf"^{re.escape(VAULT_READY)} url=(?P<url>\S+) ca=(?P<ca>.+)$", re.M)
ENTRA_READY_LINE = re.compile(rf"^{re.escape(ENTRA_READY)} url=(?P<url>\S+) ca=(?P<ca>.+)$", re.M)
HOST_READY_LINE = re.compile(rf"^{re.escape(HOST_READY)} url=(?P<url>\S+)$", re.M)
PORT_USERS = {
    "blob": ("--blob-port", "Azurite's blob service: another Azurite, or another `make run`?"),
    "vault": ("--vault-port", "the Key Vault stand-in: another `make run`?"),
    "host": ("--host-port", "the Functions host: `func start`, or another `make run`?"),
    "entra": ("--entra-port", "the Entra ID stand-in: another `make run`?"),
}
"""Per port: the option that moves it, and what normally listens there (for the error)."""


class Stack(StartStop):
    """The local system. Not thread-safe: one thread starts, supervises and stops it.

    On Linux the children get SIGTERM when the thread that started them ends (so a killed
    supervisor leaves nothing behind): start from a thread that outlives the stack.
    """

    def __init__(
        self,
        root: Path = REPO_ROOT,
        *,
        ports: Ports = DEFAULT_PORTS,
        cancel: threading.Event | None = None,
    ) -> None:
        self.paths = StackPaths(root.resolve())
        self.requested_ports = ports
        self.ports = ports
        self.cancel = cancel or threading.Event()
        self.children: dict[str, Child] = {}
        self.tokens: dict[str, LocalToken] = {}
        self.endpoints: Endpoints | None = None
        self.settings: Settings | None = None
        self.ready_at = ""
        self.wrote_user_settings = False
        self.started_in: float | None = None
        self._lock: IO[str] | None = None

    # -- what callers use ---------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.host}"

    @property
    def storage_connection_string(self) -> str:
        return _running(self.endpoints).storage

    @property
    def vault_url(self) -> str:
        return _running(self.endpoints).vault_url

    @property
    def vault_ca(self) -> Path:
        return _running(self.endpoints).vault_ca

    @property
    def entra(self) -> EntraEndpoint:
        return _running(self.endpoints).entra

    @property
    def reader_token(self) -> str | None:
        return self._token(READER)

    @property
    def publisher_token(self) -> str | None:
        return self._token(PUBLISHER)

    @property
    def index_url(self) -> str:
        """``http://local-reader:TOKEN@127.0.0.1:7071/simple/``: what pip is given."""
        token = self.reader_token
        if token is None:
            raise StackError(f"token {READER} has no usable value (revoked or expired)")
        return index_url(self.public_url, READER, token)

    @property
    def pids(self) -> dict[str, int]:
        return {name: child.pid for name, child in self.children.items()}

    @property
    def uses_default_ports(self) -> bool:
        return self.ports == DEFAULT_PORTS

    def start(self) -> Stack:
        """Start everything; on any failure (or a signal) stop what was started and raise."""
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> list[str]:
        """Host first (it uses the others while finishing requests), then the rest; idempotent.

        Returns what went wrong while stopping, one line per child that did not exit 0 (killed
        after STOP_TIMEOUT, say): it may not have saved its state, which is worth a warning.
        """
        running = [child for child in self.children.values() if not child.exited()]
        host = self.children.get("host")
        if host is not None:
            host.stop(STOP_TIMEOUT)
        others = [child for name, child in self.children.items() if name != "host"]
        for child in others:  # both at once: each waits only for itself
            child.terminate()
        for child in others:
            child.stop(STOP_TIMEOUT)
        if self.children:  # only then did this stack write these files (not a rival's)
            self.paths.state.unlink(missing_ok=True)
            self.paths.pids.unlink(missing_ok=True)
        self.children.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        return [
            f"{child.title} {child.exit_text()} while stopping; see {child.log_path}"
            for child in running
            if child.process.returncode != 0
        ]

    def restart(self, name: str) -> Child:
        """Start child `name` again, on the same port and data, and wait until it is ready.

        For the supervisor, once the child has exited. On failure the new child is stopped
        (so `dead_child` reports it again) and StackError (Cancelled on a signal) is raised.
        Rewrites `.local/stack.pids` and `.local/stack.json`.
        """
        try:
            self._restart(name)
        except BaseException:
            self.children[name].stop(STOP_TIMEOUT)
            raise
        self._write_state()
        return self.children[name]

    def dead_child(self) -> Child | None:
        """The first child that exited on its own (for the supervisor), or None."""
        return next((child for child in self.children.values() if child.exited()), None)

    # -- start-up steps -----------------------------------------------------------------------

    def _token(self, name: str) -> str | None:
        """The value, or None before start-up or when the token has no usable version."""
        token = self.tokens.get(name)
        return token.value if token is not None else None

    def _start(self) -> None:
        if self.children:
            raise RuntimeError("the stack is already running")
        if not azurite.installed():
            raise StackError("Azurite is not installed: run `make deps` (or `npm ci`)")
        self._lock_root()
        self.paths.state.unlink(missing_ok=True)  # left by a supervisor that was killed
        self.ports = self._claim_ports(self.requested_ports)
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        self.wrote_user_settings = ensure_user_settings(self.paths)
        base = self._user_values()
        env = child_environment(os.environ)
        blob = self._spawn_azurite(env)
        vault = self._spawn_vault(env)
        entra = self._spawn_entra(env)
        self._wait_azurite(blob)
        found = self._wait_vault(vault)
        self.endpoints = Endpoints(
            self.ports.blob,
            found["url"],
            Path(found["ca"].strip()),
            self.public_url,
            self._wait_entra(entra),
        )
        values = host_values(base, self.endpoints)
        write_settings(self.paths.host_settings, values)
        self.settings = _validated(as_the_host_sees_them(values, env), self.paths.host_settings)
        # Containers before the host, so its blob watcher finds `uploads` on its first look.
        ensure_containers(self.settings, self.cancel)
        host = self._spawn_host(env)
        self.tokens = ensure_tokens(self.settings, self.cancel)  # while the host imports the app
        self._wait_host(host)
        self.ready_at = iso_z(utc_now(), "seconds")
        self._write_state()

    def _restart(self, name: str) -> None:
        old = self.children[name]
        old.stop(STOP_TIMEOUT)  # reaps it, and kills anything it left in its group
        port = {
            "azurite": self.ports.blob,
            "keyvault": self.ports.vault,
            "entra": self.ports.entra,
            "host": self.ports.host,
        }
        if not _port_free(port[name]):
            raise StackError(f"port {port[name]} is no longer free (something else took it)")
        env = child_environment(os.environ)
        if name == "azurite":
            self._wait_azurite(self._spawn_azurite(env))
            # Azurite saves its metadata every 5 s: a kill may have lost a new container.
            ensure_containers(_running(self.settings), self.cancel)
        elif name == "keyvault":
            found = self._wait_vault(self._spawn_vault(env))
            if found["url"] != self.vault_url:
                raise StackError(f"the vault came back at {found['url']}, not {self.vault_url}")
            self.tokens = ensure_tokens(_running(self.settings), self.cancel)
        elif name == "entra":
            back = self._wait_entra(self._spawn_entra(env))
            if back.state() != self.entra.state():  # the host was told about the first one
                raise StackError(f"the Entra ID stand-in came back at {back.url}, not as before")
        else:
            self._wait_host(self._spawn_host(env))

    def _wait_azurite(self, child: Child) -> None:
        self._wait(child, accepting(LOOPBACK, self.ports.blob), "listening")

    def _wait_vault(self, vault: Child) -> re.Match[str]:
        return self._wait(vault, ready_line(vault, VAULT_READY_LINE), "ready")

    def _wait_entra(self, entra: Child) -> EntraEndpoint:
        found = self._wait(entra, ready_line(entra, ENTRA_READY_LINE), "ready")
        return entra_endpoint(found["url"], Path(found["ca"].strip()), self.paths.entra_data)

    def _wait_host(self, host: Child) -> None:
        self._wait(host, ready_line(host, HOST_READY_LINE), "ready")
        self._wait(host, self._healthy, "healthy (GET /health answering 200)")

    def _write_state(self) -> None:
        """`.local/stack.json` (see state.py): what the `wheelvault` command needs to find us."""
        state = {
            **this_process(),
            "root": str(self.paths.root),
            "host_url": self.public_url,
            "public_url": self.public_url,
            "storage": self.storage_connection_string,
            "storage_api_version": API_VERSION,
            "vault_url": self.vault_url,
            "vault_ca": str(self.vault_ca.resolve()),
            "ports": dataclasses.asdict(self.ports),
            "entra": self.entra.state(),
            "started_at": self.ready_at,
        }
        write_json(self.paths.state, state)

    def _lock_root(self) -> None:
        """One stack per root: a second Azurite on the same data would overwrite the first's
        database when it stops. The lock goes with the process, however it ends."""
        self.paths.local.mkdir(parents=True, exist_ok=True)
        lock = self.paths.lock.open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise AlreadyRunning(
                f"another devhost.stack is already running on {self.paths.root}"
                f"{_supervisor_of(self.paths)}; stop it first (Ctrl-C in its terminal)"
            ) from None
        self._lock = lock

    def _claim_ports(self, requested: Ports) -> Ports:
        """Resolve 0 to free ports and make sure every port is free before anything starts."""
        chosen = dataclasses.asdict(requested)
        picked = iter(free_ports(sum(1 for port in chosen.values() if port == 0)))
        chosen = {role: port or next(picked) for role, port in chosen.items()}
        if len(set(chosen.values())) != len(chosen):
            raise PortInUse(f"the ports must differ, got {chosen}")
        for role, port in chosen.items():
            if not _port_free(port):
                option, user = PORT_USERS[role]
                raise PortInUse(
                    f"port {port} on {LOOPBACK} is already in use (normally by {user}); "
                    f"stop that, or pick another port with {option}"
                )
        return Ports(**chosen)

    def _user_values(self) -> dict[str, str]:
        try:
            return read_values(self.paths.user_settings)
        except SettingsFileError as error:
            raise StackError(str(error)) from None

    def _wait(self, child: Child, probe: Callable[[], T | None], what: str) -> T:
        return wait_for(child, probe, what=what, timeout=READY_TIMEOUT, cancel=self.cancel)

    def _spawn(self, name: str, title: str, args: list[str], env: dict[str, str]) -> Child:
        child = spawn(name, title, args, log_path=self.paths.log(name), cwd=REPO_ROOT, env=env)
        self.children[name] = child
        self._write_pids()
        return child

    def _spawn_azurite(self, env: dict[str, str]) -> Child:
        self.paths.azurite_data.mkdir(parents=True, exist_ok=True)
        args = azurite.command(LOOPBACK, self.ports.blob, self.paths.azurite_data)
        # az, Storage Explorer and a plain SDK client speak newer API versions than Azurite
        # knows; the app pins one, people's tools do not.
        args.append("--skipApiVersionCheck")
        return self._spawn("azurite", "Azurite (blob storage)", args, env)

    def _spawn_vault(self, env: dict[str, str]) -> Child:
        data = ["--data-dir", str(self.paths.vault_data)]
        args = _python_server("devhost.standins.keyvault", self.ports.vault, data)
        return self._spawn("keyvault", "the Key Vault stand-in", args, env)

    def _spawn_entra(self, env: dict[str, str]) -> Child:
        data = ["--data-dir", str(self.paths.entra_data)]
        args = _python_server("devhost.standins.entra", self.ports.entra, data)
        return self._spawn("entra", "the Entra ID stand-in", args, env)

    def _spawn_host(self, env: dict[str, str]) -> Child:
        settings = ["--settings", str(self.paths.host_settings)]
        args = _python_server("devhost.standins.host", self.ports.host, settings)
        return self._spawn("host", "the functions host", args, env)

    def _write_pids(self) -> None:
        """`.local/stack.pids`: who to look for if something is left behind (tests check it)."""
        pids = {"supervisor": os.getpid(), **self.pids}
        self.paths.pids.write_text(json.dumps(pids) + "\n", encoding="utf-8")

    def _healthy(self) -> bool | None:
        return True if _get_status(f"{self.public_url}/health") == 200 else None


def _running(value: T | None) -> T:
    """What only a running stack has (its endpoints, its settings)."""
    if value is None:
        raise RuntimeError("the stack is not running")
    return value


def _supervisor_of(paths: StackPaths) -> str:
    """` (pid N)` from the running stack's pids file, when it can be read."""
    try:
        return f" (pid {json.loads(paths.pids.read_text())['supervisor']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _python_server(module: str, port: int, options: list[str]) -> list[str]:
    """``python -m module`` listening on loopback at ``port``."""
    return [sys.executable, "-m", module, "--host", LOOPBACK, "--port", str(port), *options]


def _port_free(port: int) -> bool:
    try:
        return port_free(LOOPBACK, port)
    except OSError as error:
        raise PortInUse(f"cannot use port {port} on {LOOPBACK}: {error.strerror}") from None


def _validated(values: dict[str, str], path: Path) -> Settings:
    try:
        return Settings.model_validate({k: v for k, v in values.items() if v != ""})
    except ValidationError as error:
        raise StackError(f"{path}: {describe(error)}") from None


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""No proxy: the host is on loopback, whatever http_proxy says."""


def _get_status(url: str) -> int | None:
    try:
        with _DIRECT.open(url, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None
