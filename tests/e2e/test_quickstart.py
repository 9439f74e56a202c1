"""The README's quickstart, line for line, in a fresh clone: `make run` from nothing, a demo
wheel uploaded and published, and installed with pip from the private index.

It runs on free ports, so a `make run` of your own (or anything else on 7071, 10000, 8443, 8444)
does not stop it: the ports go to `make run` as HOST_PORT, BLOB_PORT, VAULT_PORT and ENTRA_PORT in
the environment, the one health-check URL gets the host's port, and the `wheelvault` command finds
the stack by itself through the clone's `.local/stack.json`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOST = "127.0.0.1:7071"


def quickstart_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- quickstart:.*?-->\n```sh\n(.*?)```\n<!-- /quickstart -->", readme, re.S
    )
    assert block, "README.md lost its quickstart block"
    return [line for line in block[1].splitlines() if line.strip()]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_quickstart_is_short() -> None:
    assert len(quickstart_lines()) < 10


def free_ports() -> dict[str, int]:
    """Four distinct free ports, as `make run` variables."""
    sockets = [socket.socket() for _ in range(4)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    names = ("HOST_PORT", "BLOB_PORT", "VAULT_PORT", "ENTRA_PORT")
    return dict(zip(names, ports, strict=True))


def uncommitted_changes() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def on_host_port(lines: list[str], host_port: int) -> list[str]:
    """The quickstart with its host URL on `host_port` (make run gets it as HOST_PORT)."""
    return [line.replace(DEFAULT_HOST, f"127.0.0.1:{host_port}") for line in lines]


def test_the_quickstart_waits_on_the_host_port_only() -> None:
    """Free ports work only while the default ports appear nowhere else in the quickstart."""
    moved = on_host_port(quickstart_lines(), 1)
    commands = [line.split("#", 1)[0] for line in moved]
    assert not [c for c in commands if re.search(r"\b(7071|10000|8443|8444)\b", c)], commands
    assert any("127.0.0.1:1/" in c for c in commands), "no health check on the host port"


def test_the_quickstart_works_from_a_fresh_clone(tmp_path: Path) -> None:
    if uncommitted_changes():
        pytest.skip("uncommitted changes: the quickstart is checked on a clone of the last commit")
    clone = tmp_path / "wheelvault"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    ports = free_ports()
    lines = on_host_port(quickstart_lines(), ports["HOST_PORT"])
    script = "set -e\n" + "\n".join(lines) + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "WHEELVAULT_"))}
    env.update({name: str(port) for name, port in ports.items()})
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip has extra local sources: keep them out
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = (clone / "run.log").read_text() if (clone / "run.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n--- run.log\n{log}"
    assert result.stdout.strip().endswith("hello from your private index"), result.stdout
    assert "hello_wheelvault-1.0.0-py3-none-any.whl: published" in result.stdout
    state = clone / ".local" / "stack.json"
    deadline = time.monotonic() + 15  # the supervisor removes stack.json after its children exit
    while (any(listening(p) for p in ports.values()) or state.exists()) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not any(listening(p) for p in ports.values()), "kill %1 left a service listening"
    assert not state.exists(), "kill %1 left .local/stack.json"
    untracked = subprocess.run(
        ["git", "-C", str(clone), "status", "--porcelain"], capture_output=True, text=True
    ).stdout
    assert untracked.strip() == "", f"the quickstart left files git does not ignore:\n{untracked}"
