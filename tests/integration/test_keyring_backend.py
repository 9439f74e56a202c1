"""The keyring backend as clients use it: the `keyring` command from .venv, with the package
installed there (make installs clients/keyring editable), finding it through its entry point,
and the real DefaultAzureCredential getting tokens from the Entra ID stand-in's managed-identity
endpoint. Every run has a clean environment: no PYTHON_KEYRING_BACKEND, no keyring config (HOME
is a fresh folder), no AZURE_* from the machine, so keyring's own choice of backend is tested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.oidc import OidcClient
from shared.core.entra import ROLE_READ, EntraConfig, parse_audiences
from shared.services.entra import EntraVerifier

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
KEYRING = VENV_BIN / "keyring"
INDEX_ORIGIN = "https://wheelvault.test"
"""Never contacted: the backend only decides whether this origin gets a token."""
INDEX_URL = f"{INDEX_ORIGIN}/simple/"
RUN_TIMEOUT_SECONDS = 60


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    """Only what a `keyring` run needs, plus ``settings``; nothing inherited from this machine."""
    return {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        **settings,
    }


def standin_env(standin: Any, home: Path, principal: str = "reader") -> dict[str, str]:
    """The App Service managed-identity settings, pointing at the stand-in, and the backend's."""
    return clean_env(
        home,
        WHEELVAULT_KEYRING_INDEXES=f"{INDEX_ORIGIN}={standin.scope}",
        IDENTITY_ENDPOINT=standin.identity_endpoint,
        IDENTITY_HEADER=standin.identity_header,
        AZURE_CLIENT_ID=standin.principals[principal].client_id,
        REQUESTS_CA_BUNDLE=str(standin.ca_path),
    )


def run(argv: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def verified(standin: Any, token: str) -> Any:
    """The principal behind ``token``, checked as the front door checks it (signature and all)."""
    config = EntraConfig(
        tenant_id=standin.tenant_id,
        audiences=parse_audiences(standin.audience),
        authority=standin.url,
        ca_bundle=str(standin.ca_path),
    )
    return EntraVerifier(config, OidcClient(str(standin.ca_path))).verify(token)


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def test_keyring_finds_the_backend_through_its_entry_point(home: Path) -> None:
    listed = run([str(KEYRING), "--list-backends"], clean_env(home))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "wheelvault_keyring.backend.WheelvaultKeyring (priority: 9.9)" in lines
    # keyring picks the chainer, which asks the backends in priority order: this one first
    assert "keyring.backends.chainer.ChainerBackend (priority: 10)" in lines


def test_keyring_get_prints_a_token_from_the_standin(entra_standin: Any, home: Path) -> None:
    got = run([str(KEYRING), "get", INDEX_URL, "entra"], standin_env(entra_standin, home))
    assert got.returncode == 0, got.stderr
    assert got.stderr == ""
    token = got.stdout.rstrip("\n")
    assert got.stdout == token + "\n"
    principal = verified(entra_standin, token)
    assert principal.object_id == entra_standin.principals["reader"].object_id
    assert principal.roles == frozenset({ROLE_READ})
    assert files_under(home) == []  # nothing written to disk


@pytest.mark.parametrize(
    ("client", "argv"),
    [
        ("pip --keyring-provider subprocess", ["--mode=creds", "--output=json", "get", INDEX_URL]),
        ("uv with a user in the index URL", ["get", "wheelvault.test", "entra"]),
        ("uv without a user (--mode creds)", ["get", INDEX_URL, "--mode", "creds"]),
        ("twine and uv publish", ["get", f"{INDEX_ORIGIN}/legacy/", "__token__"]),
    ],
)
def test_each_clients_keyring_call_gets_a_token(
    entra_standin: Any, home: Path, client: str, argv: list[str]
) -> None:
    got = run([str(KEYRING), *argv], standin_env(entra_standin, home))
    assert got.returncode == 0, f"{client}: {got.stderr}"
    if "--output=json" in argv:
        answer = json.loads(got.stdout)
        username, token = answer["username"], answer["password"]
    elif "creds" in argv:
        username, token = got.stdout.splitlines()
    else:
        username, token = argv[-1], got.stdout.rstrip("\n")
    assert username == ("__token__" if argv[-1] == "__token__" else "entra")
    assert verified(entra_standin, token).object_id == entra_standin.principals["reader"].object_id


@pytest.mark.parametrize(
    "service", ["https://pypi.org/simple/", "pypi.org", "wheelvault.test.evil.com"]
)
def test_other_hosts_get_nothing(entra_standin: Any, home: Path, service: str) -> None:
    got = run([str(KEYRING), "get", service, "entra"], standin_env(entra_standin, home))
    assert got.returncode == 1
    assert got.stdout == ""
    assert got.stderr == ""


def test_a_refused_sign_in_is_one_line_without_secrets(entra_standin: Any, home: Path) -> None:
    env = standin_env(entra_standin, home)
    env["IDENTITY_HEADER"] = "not-the-header"
    got = run([str(KEYRING), "get", INDEX_URL, "entra"], env)
    assert got.returncode == 1
    assert got.stdout == ""
    assert got.stderr.count("\n") == 1, got.stderr
    assert got.stderr.startswith(f"wheelvault-keyring: no Entra ID token for {INDEX_ORIGIN} ")
    assert entra_standin.identity_header not in got.stderr
    assert "not-the-header" not in got.stderr


def test_check_reports_the_match_and_the_token_without_showing_it(
    entra_standin: Any, home: Path
) -> None:
    argv = [sys.executable, "-m", "wheelvault_keyring", "check", INDEX_URL]
    checked = run(argv, standin_env(entra_standin, home))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(
        f"origin: {INDEX_ORIGIN}\nscope: {entra_standin.scope}\ntoken: obtained in "
    )
    assert "eyJ" not in checked.stdout + checked.stderr


def test_keyring_set_passes_over_the_read_only_backend(home: Path) -> None:
    """keyring's chainer reads the refusal as "not mine", so the next backend (keyrings.alt's
    plaintext file in .venv) stores the password and gives it back."""
    env = clean_env(home, WHEELVAULT_KEYRING_INDEXES=f"{INDEX_ORIGIN}=api://wheelvault/.default")
    stored = run([str(KEYRING), "set", "other.example", "me"], env, stdin="a password\n")
    assert stored.returncode == 0, stored.stderr
    got = run([str(KEYRING), "get", "other.example", "me"], env)
    assert (got.returncode, got.stdout) == (0, "a password\n")
