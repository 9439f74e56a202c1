"""The README's quickstart, line for line, in a fresh clone: `make run` from nothing, a demo
wheel uploaded and published, and installed with pip from the private index."""

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
PORTS = (10000, 8443, 7071)  # the quickstart uses make run's default ports


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


def test_the_quickstart_works_from_a_fresh_clone(tmp_path: Path) -> None:
    busy = [p for p in PORTS if listening(p)]
    if busy:
        pytest.skip(
            f"ports {busy} are in use (a `make run` of your own?); the quickstart needs them"
        )
    if subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip():
        pytest.skip("uncommitted changes: the quickstart is checked on a clone of the last commit")
    clone = tmp_path / "wheelvault"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    script = "set -e\n" + "\n".join(quickstart_lines()) + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "WHEELVAULT_"))}
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
    deadline = time.monotonic() + 15
    while any(listening(p) for p in PORTS) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(listening(p) for p in PORTS), "kill %1 left a service listening"
