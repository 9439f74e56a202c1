"""Where `wheelvault` sends a command (issue 10 §1): a flag, else WHEELVAULT_* variables, else
the running stack of its checkout (`.local/stack.json`, the supervisor's contract), else one
line saying so at once. Never a default port: that may be another checkout's stack."""

from __future__ import annotations

import json
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

from devhost.cli.main import ROOT, find_stack
from devhost.standins.azurite import API_VERSION, Azurite
from devhost.wheels import build_wheel
from shared.adapters.blobstore import BlobStore
from tests.fixtures.vault import VaultStandinProcess

pytestmark = pytest.mark.integration


def wheelvault(
    root: Path, *args: str, **env: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """The installed command, for the checkout `root`, with no WHEELVAULT_* but `env`."""
    command = shutil.which("wheelvault", path=str(Path(sys.executable).parent))
    assert command is not None, "make installs the wheelvault command into .venv"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    started = time.monotonic()
    result = subprocess.run(
        [command, "--root", str(root), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )
    return time.monotonic() - started, result


def write_stack_file(
    root: Path, *, storage: str, vault_url: str, vault_ca: Path, host_port: int, pid: int
) -> Path:
    """What the supervisor writes once every child is ready (the shared contract)."""
    host_url = f"http://127.0.0.1:{host_port}"
    document = {
        "version": 1,
        "pid": pid,
        "root": str(root),
        "host_url": host_url,
        "public_url": host_url,
        "storage": storage,
        "storage_api_version": API_VERSION,
        "vault_url": vault_url,
        "vault_ca": str(vault_ca),
        "ports": {"blob": 0, "vault": 0, "host": host_port},
        "started_at": "2026-12-02T19:00:00Z",
    }
    path = root / ".local" / "stack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port nothing listens on while the test runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    root.mkdir()
    return root


@pytest.fixture
def running(
    checkout: Path, azurite: Azurite, vault_standin: VaultStandinProcess, dead_port: int
) -> Path:
    """A stack file naming this test's Azurite and vault (alive: this process's pid); the
    host's port is dead, which only the front-door commands notice."""
    return write_stack_file(
        checkout,
        storage=azurite.connection_string,
        vault_url=vault_standin.url,
        vault_ca=vault_standin.ca_path,
        host_port=dead_port,
        pid=os.getpid(),
    )


@pytest.fixture
def wheel_file(tmp_path: Path) -> Path:
    wheel = build_wheel("discovery-demo", "1.0")
    path = tmp_path / "dist" / wheel.filename
    path.parent.mkdir()
    path.write_bytes(wheel.data)
    return path


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- nothing running, nothing configured ----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (("status", "demo-1.0-py3-none-any.whl"), "WHEELVAULT_STORAGE is not set"),
        (("yank", "demo", "--version", "1.0"), "WHEELVAULT_STORAGE is not set"),
        (("unyank", "demo", "--version", "1.0"), "WHEELVAULT_STORAGE is not set"),
        (("delete", "demo", "demo-1.0-py3-none-any.whl"), "WHEELVAULT_STORAGE is not set"),
        (("reindex",), "WHEELVAULT_STORAGE is not set (or pass --storage-url)"),
        (("upload", "--wait", "WHEEL"), "WHEELVAULT_STORAGE is not set"),
        (("upload", "--token", "t", "WHEEL"), "WHEELVAULT_PUBLIC_URL is not set (or pass --url)"),
        (("upload", "--url", "http://127.0.0.1:9", "WHEEL"), "WHEELVAULT_TOKEN is not set"),
        (("sas", "demo", "--token", "t"), "WHEELVAULT_PUBLIC_URL is not set"),
        (("token", "list"), "WHEELVAULT_VAULT_URL is not set (or pass --vault-url)"),
    ],
)
def test_with_nothing_running_or_set_it_says_so_at_once(
    checkout: Path, wheel_file: Path, command: tuple[str, ...], variable: str
) -> None:
    args = [str(wheel_file) if part == "WHEEL" else part for part in command]
    elapsed, result = wheelvault(checkout, *args)
    line = one_line(result)
    assert line.startswith(f"wheelvault: error: no local stack is running for {checkout}"), line
    assert "make run" in line
    assert variable in line
    assert elapsed < 5, f"took {elapsed:.1f} s"
    assert "uploaded" not in result.stderr  # upload --wait found no storage before uploading


def test_by_default_it_is_the_stack_of_the_checkout_it_is_installed_from(tmp_path: Path) -> None:
    """No --root, run from elsewhere: this repository's stack, never whatever has :10000."""
    if find_stack(ROOT)[0] is not None:
        pytest.skip(f"a stack of {ROOT} is running (make run); this checks the error without one")
    command = shutil.which("wheelvault", path=str(Path(sys.executable).parent))
    assert command is not None
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    result = subprocess.run(
        [command, "status", "--timeout", "0", "nothing_here-1.0-py3-none-any.whl"],
        capture_output=True,
        text=True,
        env=clean,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    line = one_line(result)
    assert f"no local stack is running for {ROOT}" in line
    assert "WHEELVAULT_STORAGE is not set" in line


def test_local_settings_json_gives_no_endpoints(checkout: Path, azurite: Azurite) -> None:
    """It configures the host; the supervisor replaces its endpoints with the real ports, so
    what it says about them is not where anything runs."""
    values = {"WHEELVAULT_STORAGE": azurite.connection_string, "WHEELVAULT_PUBLIC_URL": "x"}
    (checkout / "local.settings.json").write_text(json.dumps({"Values": values}))
    _, result = wheelvault(checkout, "reindex")
    assert "no local stack is running for" in one_line(result)


def test_a_stack_file_whose_supervisor_has_gone_is_not_used(
    checkout: Path, azurite: Azurite, vault_standin: VaultStandinProcess, dead_port: int
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    write_stack_file(
        checkout,
        storage=azurite.connection_string,
        vault_url=vault_standin.url,
        vault_ca=vault_standin.ca_path,
        host_port=dead_port,
        pid=gone.pid,
    )
    elapsed, result = wheelvault(checkout, "reindex")
    line = one_line(result)
    assert f"no local stack is running for {checkout}" in line
    assert f"pid {gone.pid}, which has exited" in line
    assert elapsed < 5


def test_a_copied_stack_file_is_not_used(checkout: Path, running: Path, tmp_path: Path) -> None:
    """A copy of a checkout carries the original's stack file: that stack is not the copy's."""
    copy = tmp_path / "copy"
    shutil.copytree(checkout, copy)
    _, result = wheelvault(copy, "reindex")
    line = one_line(result)
    assert f"no local stack is running for {copy}" in line
    assert f"belongs to {checkout}" in line


# -- the running stack of the checkout ------------------------------------------------------


def test_storage_commands_use_the_running_stack(running: Path, storage_env: BlobStore) -> None:
    checkout = running.parent.parent
    elapsed, status = wheelvault(checkout, "status", "never_uploaded-1.0-py3-none-any.whl")
    assert status.returncode == 1
    assert status.stdout.strip() == (
        "never_uploaded-1.0-py3-none-any.whl: not uploaded "
        "(nothing pending, published or quarantined under that name)"
    )
    assert elapsed < 5, f"a never-uploaded name waited {elapsed:.1f} s (its timeout is 60 s)"
    _, first = wheelvault(checkout, "reindex")  # empty containers: it writes the root page
    assert first.returncode == 0, first.stderr
    _, again = wheelvault(checkout, "reindex")
    assert again.stdout.strip() == "reindex: nothing to change"


def test_token_commands_use_the_running_stacks_vault_and_public_url(running: Path) -> None:
    checkout = running.parent.parent
    name = f"found-{uuid.uuid4().hex[:8]}"
    _, created = wheelvault(checkout, "token", "create", name, "--scope", "read")
    assert created.returncode == 0, created.stderr
    value = created.stdout.strip()
    _, url = wheelvault(checkout, "token", "url", name)
    host_url = json.loads(running.read_text())["public_url"]
    assert url.stdout.strip() == f"http://{name}:{value}@{host_url.removeprefix('http://')}/simple/"


def test_front_door_commands_use_the_running_stacks_host(
    running: Path, wheel_file: Path, dead_port: int
) -> None:
    """The host's port here is dead, which the error shows: the stack's, not :7071."""
    checkout = running.parent.parent
    _, result = wheelvault(checkout, "upload", "--token", "t", str(wheel_file))
    line = one_line(result)
    assert f"the front door at http://127.0.0.1:{dead_port} did not answer" in line


def test_the_local_publisher_token_comes_from_the_running_stacks_vault(
    running: Path, wheel_file: Path, vault_standin: VaultStandinProcess
) -> None:
    checkout = running.parent.parent
    _, result = wheelvault(checkout, "upload", str(wheel_file))
    reason = one_line(result)
    if "local-publisher" in reason:  # this session's vault has no such token yet
        assert "could not be read" in reason
        _, made = wheelvault(checkout, "token", "create", "local-publisher", "--scope", "publish")
        assert made.returncode == 0, made.stderr
        _, result = wheelvault(checkout, "upload", str(wheel_file))
        reason = one_line(result)
    assert "the front door at http://127.0.0.1:" in reason  # the token was found


# -- precedence: flags > WHEELVAULT_* > the running stack -----------------------------------


def test_the_environment_beats_the_running_stack(running: Path, dead_port: int) -> None:
    checkout = running.parent.parent
    storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{dead_port}/devstoreaccount1;"
    )
    _, result = wheelvault(checkout, "reindex", WHEELVAULT_STORAGE=storage)
    assert f"storage at http://127.0.0.1:{dead_port}/devstoreaccount1 did not answer" in (
        one_line(result)
    )
    vault = f"https://127.0.0.1:{dead_port}"
    _, listed = wheelvault(checkout, "token", "list", WHEELVAULT_VAULT_URL=vault)
    assert f"the vault at {vault} did not answer" in one_line(listed)


def test_flags_beat_the_environment(
    checkout: Path, vault_standin: VaultStandinProcess, dead_port: int
) -> None:
    _, listed = wheelvault(
        checkout,
        "--vault-url",
        vault_standin.url,
        "--vault-ca",
        str(vault_standin.ca_path),
        "token",
        "list",
        WHEELVAULT_VAULT_URL=f"https://127.0.0.1:{dead_port}",
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("NAME")


def test_another_vault_never_gets_the_local_stacks_public_url(
    running: Path, vault_standin: VaultStandinProcess
) -> None:
    """An index URL of this machine must not be written into a vault that is not the stack's."""
    checkout = running.parent.parent
    flags = ("--vault-url", vault_standin.url, "--vault-ca", str(vault_standin.ca_path))
    name = f"elsewhere-{uuid.uuid4().hex[:8]}"
    _, result = wheelvault(checkout, *flags, "token", "create", name, "--scope", "read")
    assert "pass --public-url or set WHEELVAULT_PUBLIC_URL" in one_line(result)
    _, given = wheelvault(
        checkout,
        *flags,
        "--public-url",
        "https://pkgs.example.com",
        "token",
        "create",
        name,
        "--scope",
        "read",
    )
    assert given.returncode == 0, given.stderr


# -- upload arguments -----------------------------------------------------------------------


def test_a_directory_uploads_its_wheels_and_sdists_and_notes_the_rest(
    running: Path, wheel_file: Path, dead_port: int
) -> None:
    checkout = running.parent.parent
    dist = wheel_file.parent
    (dist / "discovery_demo-1.0.zip").write_bytes(b"a legacy sdist")
    (dist / ".gitignore").write_text("*\n")
    _, result = wheelvault(checkout, "upload", "--token", "t", str(dist))
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        f"skipping {dist / 'discovery_demo-1.0.zip'}: not a wheel or an sdist "
        "(the index takes *.whl and *.tar.gz)"
    )
    assert f"the front door at http://127.0.0.1:{dead_port}" in lines[1]  # then the wheel
    assert len(lines) == 2
    (dist / wheel_file.name).unlink()
    (dist / "discovery_demo-1.0.tar.gz").write_bytes(b"an sdist")
    _, sdist = wheelvault(checkout, "upload", "--token", "t", str(dist))
    assert f"the front door at http://127.0.0.1:{dead_port}" in sdist.stderr  # tried it
    (dist / "discovery_demo-1.0.tar.gz").unlink()
    _, empty = wheelvault(checkout, "upload", "--token", "t", str(dist))
    assert f"{dist}: no wheels (*.whl) or sdists (*.tar.gz) in it" in empty.stderr
    _, missing = wheelvault(checkout, "upload", "--token", "t", str(dist / "nope.whl"))
    assert "nope.whl: no such file or directory" in one_line(missing)
