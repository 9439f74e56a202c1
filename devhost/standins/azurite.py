"""Start and stop Azurite (blob service only) from the pinned npm install in node_modules.

Azurite 3.37 needs node 22; the npm package `node` (pinned in package.json) carries that binary,
so nothing outside the npm registry is needed. Used by the test fixtures and by `make run`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devhost.listening import free_port, port_accepts

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node_modules" / "node" / "bin" / "node"
AZURITE_BLOB = ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"

ACCOUNT = "devstoreaccount1"
# Azurite's fixed, publicly documented development key: not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
API_VERSION = "2026-06-06"
"""Newest Blob REST version Azurite 3.37 knows; the SDK's default is newer, so clients pin it."""


class AzuriteError(RuntimeError):
    pass


def installed() -> bool:
    return NODE.exists() and AZURITE_BLOB.exists()


def command(host: str, port: int, data_dir: Path) -> list[str]:
    """Azurite's blob service on host:port with its data in `data_dir`, quiet, no telemetry."""
    return [
        str(NODE),
        str(AZURITE_BLOB),
        "--blobHost",
        host,
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        "--disableTelemetry",
        "--silent",
    ]


def connection_string(host: str, port: int, *, https: bool = False) -> str:
    scheme = "https" if https else "http"
    return (
        f"DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={scheme}://{host}:{port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    """A running Azurite blob service. Stop it with `stop()` (idempotent)."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    https: bool = False
    _stopped: bool = field(default=False, repr=False)

    @property
    def blob_endpoint(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.host}:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.port, https=self.https)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL if it lingers; reap it either way."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


def start_azurite(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    oauth: bool = False,
    ready_timeout: float = 30.0,
) -> Azurite:
    """Start Azurite's blob service with its data in `data_dir`; waits until it answers."""
    if not installed():
        raise AzuriteError("Azurite is not installed: run `npm ci` (make does this for you)")
    port = port or free_port(host)
    if port_accepts(host, port):
        raise AzuriteError(f"port {port} on {host} is already in use (Azurite blob service)")
    data_dir.mkdir(parents=True, exist_ok=True)
    args = command(host, port, data_dir)
    if cert is not None and key is not None:
        args += ["--cert", str(cert), "--key", str(key)]
    if oauth:
        args += ["--oauth", "basic"]
    log_path = data_dir / "azurite.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=data_dir
        )
    azurite = Azurite(process, host, port, https=cert is not None)
    deadline = time.monotonic() + ready_timeout
    while not port_accepts(host, port):
        if process.poll() is not None:
            raise AzuriteError(f"Azurite exited with code {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            azurite.stop()
            raise AzuriteError(f"Azurite did not listen on {host}:{port} within {ready_timeout}s")
        time.sleep(0.05)
    return azurite
