"""`wheelvault entra token|env` and the `--entra` sign-in's refusals, against the Entra ID stand-in
process (the session's `entra_standin`) named by a `.local/stack.json` as the supervisor writes
it. Tokens are checked by the front door's own EntraVerifier, not by reading their claims.

The whole flow with the real stack and clients is tests/e2e/test_entra.py."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from shared.adapters.oidc import OidcClient
from shared.core.entra import EntraPrincipal
from shared.services.entra import EntraVerifier
from shared.settings import Settings
from tests.fixtures.entra import EntraStandinProcess
from tests.integration.test_cli_discovery import wheelvault, write_stack_file

pytestmark = pytest.mark.integration


def stack_with_entra(root: Path, standin: EntraStandinProcess, host_port: int = 9) -> Path:
    """A live stack file (this process's pid) whose "entra" entry names the stand-in."""
    path = write_stack_file(
        root,
        storage="UseDevelopmentStorage=true",
        vault_url="https://127.0.0.1:9",
        vault_ca=root,
        host_port=host_port,
        pid=os.getpid(),
    )
    document = json.loads(path.read_text())
    document["entra"] = {
        "url": standin.url,
        "ca": str(standin.ca_path),
        "ca_bundle": str(standin.ca_path),
        "tenant_id": standin.tenant_id,
        "audience": standin.audience,
        "scope": standin.scope,
        "identity_endpoint": standin.identity_endpoint,
        "principals": str(standin.data_dir / "entra.json"),
    }
    path.write_text(json.dumps(document))
    return root


def verified(standin: EntraStandinProcess, token: str) -> EntraPrincipal:
    settings = Settings.model_validate({"WHEELVAULT_STORAGE": "x", **standin.settings()})
    assert settings.entra is not None
    return EntraVerifier(settings.entra, OidcClient(settings.entra.ca_bundle)).verify(token)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_entra_token_prints_a_token_the_front_door_accepts_with_the_role(
    tmp_path: Path, entra_standin: EntraStandinProcess
) -> None:
    root = stack_with_entra(tmp_path, entra_standin)
    for role, principal, roles in (
        ("read", "reader", {"Packages.Read"}),
        ("publish", "publisher", {"Packages.Publish"}),
    ):
        _, printed = wheelvault(root, "entra", "token", "--role", role)
        assert printed.returncode == 0, printed.stderr
        who = verified(entra_standin, printed.stdout.strip())
        assert who.object_id == entra_standin.principals[principal].object_id
        assert who.roles == roles
        assert f"principal '{principal}' ({', '.join(sorted(roles))})" in printed.stderr
        secret = entra_standin.principals[principal].client_secret
        assert secret not in printed.stdout + printed.stderr


def test_entra_env_makes_the_stand_in_the_managed_identity_of_default_azure_credential(
    tmp_path: Path, entra_standin: EntraStandinProcess
) -> None:
    """Evaluated in a shell where other Azure credentials are set, which it clears: the token
    DefaultAzureCredential then gets is the chosen principal's, from the stand-in."""
    root = stack_with_entra(tmp_path, entra_standin, host_port=7171)
    command = shlex.join(
        [str(Path(sys.executable).parent / "wheelvault"), "--root", str(root), "entra", "env"]
    )
    python = (
        "import os; from azure.identity import DefaultAzureCredential as D; "
        "print(D().get_token(os.environ['WHEELVAULT_ENTRA_SCOPE']).token)"
    )
    stray = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_SECRET": "s", "AZURE_TOKEN_CREDENTIALS": "dev"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WHEELVAULT_", "AZURE_"))}
    done = subprocess.run(
        [
            "bash",
            "-c",
            f'eval "$({command} --principal nobody)" && env && {sys.executable} -c "{python}"',
        ],
        env={**clean, **stray, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *environment, token = done.stdout.strip().splitlines()
    exported = dict(line.split("=", 1) for line in environment if "=" in line)
    nobody = entra_standin.principals["nobody"]
    assert exported["AZURE_CLIENT_ID"] == nobody.client_id
    assert exported["IDENTITY_ENDPOINT"] == entra_standin.identity_endpoint
    assert exported["WHEELVAULT_KEYRING_INDEXES"] == f"http://127.0.0.1:7171={entra_standin.scope}"
    assert not set(stray) & set(exported)
    who = verified(entra_standin, token)
    assert (who.object_id, who.roles) == (nobody.object_id, frozenset())


def test_entra_commands_without_a_stand_in_say_so_in_one_line(
    tmp_path: Path, entra_standin: EntraStandinProcess
) -> None:
    _, nothing = wheelvault(tmp_path, "entra", "token", "--role", "read")
    assert "no local stack is running" in one_line(nothing)
    older = write_stack_file(  # a stack file from before the stand-in: no "entra" entry
        tmp_path,
        storage="UseDevelopmentStorage=true",
        vault_url="https://127.0.0.1:9",
        vault_ca=tmp_path,
        host_port=9,
        pid=os.getpid(),
    )
    assert older.exists()
    _, stale = wheelvault(tmp_path, "entra", "env")
    assert "has no Entra ID stand-in: restart it with `make run`" in one_line(stale)
    root = stack_with_entra(tmp_path, entra_standin)
    _, ghost = wheelvault(root, "entra", "token", "--principal", "ghost")
    line = one_line(ghost)
    assert "no principal 'ghost' (developer, nobody, publisher, reader)" in line


def test_entra_sign_in_refusals_are_one_line(
    tmp_path: Path, entra_standin: EntraStandinProcess
) -> None:
    root = stack_with_entra(tmp_path, entra_standin)
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not sent")
    # Another front door than the stack's: its stand-in's principals are not for it.
    _, elsewhere = wheelvault(
        root, "upload", "--entra", "--url", "https://pkgs.example.com", str(wheel)
    )
    assert "--entra needs the index's scope: pass --entra-scope" in one_line(elsewhere)
    # A scope, and no Azure credential anywhere: DefaultAzureCredential's dozen lines are one.
    _, no_login = wheelvault(
        root, "sas", "--entra-scope", "api://wheelvault-x/.default", "demo", HOME=str(tmp_path)
    )
    line = one_line(no_login)
    assert "could not sign in with Entra ID for api://wheelvault-x/.default" in line
    assert "az login" in line
