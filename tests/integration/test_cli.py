"""The `wheelvault` command against the Key Vault stand-in, as an operator runs it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.standins.azurite import API_VERSION, Azurite
from tests.fixtures.vault import VaultStandinProcess

pytestmark = pytest.mark.integration


def wheelvault(
    vault: VaultStandinProcess, *args: str, **overrides: str
) -> subprocess.CompletedProcess[str]:
    command = shutil.which("wheelvault", path=str(Path(sys.executable).parent))
    assert command is not None, "make installs the wheelvault command into .venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    env.update(
        {
            "WHEELVAULT_VAULT_URL": vault.url,
            "WHEELVAULT_VAULT_CREDENTIAL": "local",
            "WHEELVAULT_VAULT_CA_BUNDLE": str(vault.ca_path),
            "WHEELVAULT_PUBLIC_URL": "https://pkgs.example.com",
            **overrides,
        }
    )
    return subprocess.run(
        [command, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_token_lifecycle(vault_standin: VaultStandinProcess) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = wheelvault(
        vault_standin, "token", "create", name, "--scope", "publish", "--description", "CI"
    )
    assert created.returncode == 0, created.stderr
    value = created.stdout.strip()
    assert value.startswith(f"wvt_{name}_")
    assert value not in created.stderr

    listed = wheelvault(vault_standin, "token", "list")
    assert listed.returncode == 0
    line = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert line.split()[1:4] == ["publish", "P30D", "P7D"]
    assert value not in listed.stdout

    assert wheelvault(vault_standin, "token", "show", name).stdout.strip() == value
    url = wheelvault(vault_standin, "token", "url", name).stdout.strip()
    assert url == f"https://{name}:{value}@pkgs.example.com/simple/"

    rotated = wheelvault(vault_standin, "token", "rotate", name).stdout.strip()
    assert rotated.startswith(f"wvt_{name}_")
    assert rotated != value
    assert wheelvault(vault_standin, "token", "show", name).stdout.strip() == rotated

    revoked = wheelvault(vault_standin, "token", "revoke", name)
    assert revoked.returncode == 0
    shown = wheelvault(vault_standin, "token", "show", name)
    assert shown.returncode == 1
    assert "revoked or expired" in shown.stderr
    assert "Traceback" not in shown.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "usage:"),
        (("token",), 2, "usage:"),
        (("token", "create", "x"), 2, "--scope"),
        (("token", "create", "x", "--scope", "admin"), 2, "invalid choice"),
        (("token", "create", "bad_name", "--scope", "read"), 1, "token name"),
        (("token", "create", "x", "--scope", "read", "--overlap", "7 days"), 1, "ISO 8601"),
        (("token", "show", "no-such-token"), 1, "no token named"),
    ],
)
def test_user_errors_get_a_message_and_no_traceback(
    vault_standin: VaultStandinProcess, args: tuple[str, ...], code: int, message: str
) -> None:
    result = wheelvault(vault_standin, *args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_vault_is_one_line(vault_standin: VaultStandinProcess) -> None:
    result = wheelvault(
        vault_standin,
        "--vault-url",
        "https://127.0.0.1:9",
        "--vault-ca",
        str(vault_standin.ca_path),
        "token",
        "list",
    )
    assert result.returncode == 1
    assert "did not answer" in result.stderr
    assert "Traceback" not in result.stderr


# -- a backend that does not answer (issue 9 §4.3) ------------------------------------------

ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@pytest.fixture(params=["refused", "hung"])
def dead_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """A port where nothing listens (refused), or one that accepts into its backlog and never
    answers (hung: what a stopped process looks like)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        if request.param == "hung":
            listener.listen(64)
        yield listener.getsockname()[1]


def timed(
    vault: VaultStandinProcess, *args: str, **env: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    result = wheelvault(vault, *args, **env)
    return time.monotonic() - started, result


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert ACCOUNT_KEY not in result.stderr
    assert "AccountKey" not in result.stderr


@pytest.mark.parametrize("command", [("status", "demo_pkg-1.0-py3-none-any.whl"), ("reindex",)])
def test_storage_that_does_not_answer_fails_within_10_seconds_in_one_line(
    vault_standin: VaultStandinProcess, dead_port: int, command: tuple[str, ...]
) -> None:
    storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{dead_port}/devstoreaccount1;"
    )
    elapsed, result = timed(vault_standin, *command, WHEELVAULT_STORAGE=storage)
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert_one_line(
        result,
        f"http://127.0.0.1:{dead_port}/devstoreaccount1",
        "WHEELVAULT_STORAGE",
        "make run",
    )


def test_a_vault_that_does_not_answer_fails_within_10_seconds_in_one_line(
    vault_standin: VaultStandinProcess, dead_port: int
) -> None:
    url = f"https://127.0.0.1:{dead_port}"
    elapsed, result = timed(vault_standin, "token", "list", WHEELVAULT_VAULT_URL=url)
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert_one_line(result, url, "WHEELVAULT_VAULT_URL", "--vault-url", "make run")


def test_status_needs_no_vault(
    vault_standin: VaultStandinProcess, azurite: Azurite, storage_env: object
) -> None:
    """A missing local vault CA is no reason to refuse a storage-only command."""
    result = wheelvault(
        vault_standin,
        "status",
        "--timeout",
        "0",
        "nothing_here-1.0-py3-none-any.whl",
        WHEELVAULT_STORAGE=azurite.connection_string,
        WHEELVAULT_STORAGE_API_VERSION=API_VERSION,
        WHEELVAULT_VAULT_CA_BUNDLE="/nonexistent/ca.pem",
    )
    assert "not uploaded" in result.stdout, result.stderr


@pytest.mark.parametrize("dead_port", ["refused"], indirect=True)  # hung: FRONT_DOOR_TIMEOUT
def test_a_front_door_that_does_not_answer_is_one_line(
    vault_standin: VaultStandinProcess, dead_port: int
) -> None:
    elapsed, result = timed(
        vault_standin, "sas", "demo-pkg", "--url", f"http://127.0.0.1:{dead_port}", "--token", "t"
    )
    assert elapsed < 10
    assert_one_line(result, f"http://127.0.0.1:{dead_port}", "make run", "--url")
