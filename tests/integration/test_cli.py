"""The `wheelvault` command against the Key Vault stand-in, as an operator runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.fixtures.vault import VaultStandinProcess

pytestmark = pytest.mark.integration


def wheelvault(vault: VaultStandinProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("wheelvault", path=str(Path(sys.executable).parent))
    assert command is not None, "make installs the wheelvault command into .venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    env.update(
        {
            "WHEELVAULT_VAULT_URL": vault.url,
            "WHEELVAULT_VAULT_CREDENTIAL": "local",
            "WHEELVAULT_VAULT_CA_BUNDLE": str(vault.ca_path),
            "WHEELVAULT_PUBLIC_URL": "https://pkgs.example.com",
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
