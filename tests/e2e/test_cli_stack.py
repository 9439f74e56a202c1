"""The `wheelvault` index commands against a running stack (`devhost.stack.Stack` in-process:
Azurite, the vault stand-in and the local host with its blob watcher), as a publisher and an
operator use them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.stack import Stack
from devhost.stack.config import Ports
from devhost.wheels import build_sdist, build_wheel
from tests.support import clients

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """On free ports, never the defaults: the CLI must find it, not guess :10000 and :7071."""
    with Stack(
        tmp_path_factory.mktemp("stack"), ports=Ports(blob=0, vault=0, host=0, entra=0)
    ) as running:
        assert running.paths.state.is_file(), "a ready stack writes .local/stack.json"
        yield running


def wheelvault(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command with no WHEELVAULT_* setting: it finds the stack of its checkout
    (`--root`, as the stack runs in a temporary directory rather than this repository)."""
    command = shutil.which("wheelvault", path=str(Path(sys.executable).parent))
    assert command is not None, "make installs the wheelvault command into .venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    return subprocess.run(
        [command, "--root", str(stack.paths.root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_upload_waits_until_published_and_installs(stack: Stack, tmp_path: Path) -> None:
    first = build_wheel("cli-demo", "1.0", payload_bytes=3 * 1024 * 1024)
    second = build_wheel("cli-demo", "1.1")
    for wheel in (first, second):
        (tmp_path / wheel.filename).write_bytes(wheel.data)
    files = [str(tmp_path / w.filename) for w in (first, second)]
    started = time.monotonic()
    result = wheelvault(stack, "upload", "--wait", "--progress", *files)  # local-publisher token
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    assert f"{first.filename}: published" in result.stdout
    assert f"{second.filename}: published" in result.stdout
    assert "100%" in result.stderr  # progress output
    assert stack.publisher_token not in result.stdout + result.stderr

    home = tmp_path / "home"
    python = clients.new_venv(tmp_path / "venv", home)
    installed = clients.pip(python, home, "install", "--index-url", stack.index_url, "cli-demo")
    assert installed.returncode == 0, installed.output
    assert clients.installed_version(python, "cli-demo", home) == "1.1"


def test_a_bad_upload_is_reported_quarantined(stack: Stack, tmp_path: Path) -> None:
    good = build_wheel("cli-broken", "1.0")
    path = tmp_path / good.filename
    path.write_bytes(good.data[: len(good.data) // 2])  # truncated on the way
    result = wheelvault(stack, "upload", "--wait", "--token", stack.publisher_token, str(path))
    assert result.returncode == 1
    assert f"{good.filename}: quarantined (corrupt-zip:" in result.stdout
    status = wheelvault(stack, "status", good.filename)
    assert status.returncode == 1
    assert "quarantined" in status.stdout


def test_upload_refusals_are_one_line(stack: Stack, tmp_path: Path) -> None:
    sdist = tmp_path / "demo-1.0.zip"
    sdist.write_bytes(b"a legacy sdist")
    result = wheelvault(stack, "upload", str(sdist))
    assert result.returncode == 1
    assert "legacy-sdist-format" in result.stderr
    assert "Traceback" not in result.stderr
    reader = wheelvault(stack, "upload", "--token", stack.reader_token, str(sdist))
    assert reader.returncode == 1
    assert "403 forbidden" in reader.stderr  # a valid token without publish scope


def test_sas_urls_install_with_pip(stack: Stack, tmp_path: Path) -> None:
    wheel = build_wheel("cli-sas", "2.0")
    (tmp_path / wheel.filename).write_bytes(wheel.data)
    assert wheelvault(stack, "upload", "--wait", str(tmp_path / wheel.filename)).returncode == 0
    printed = wheelvault(stack, "sas", "cli-sas>=2")
    assert printed.returncode == 0, printed.stderr
    (url,) = printed.stdout.split()
    home = tmp_path / "home"
    python = clients.new_venv(tmp_path / "venv", home)
    installed = clients.pip(python, home, "install", "--no-index", url)
    assert installed.returncode == 0, installed.output
    assert clients.installed_version(python, "cli-sas", home) == "2.0"
    as_json = json.loads(wheelvault(stack, "sas", "--json", "cli-sas==2.0").stdout)
    assert as_json["version"] == "2.0"


def test_yank_unyank_delete_reindex(stack: Stack, tmp_path: Path) -> None:
    wheels = [build_wheel("cli-admin", v) for v in ("1.0", "2.0")]
    for wheel in wheels:
        (tmp_path / wheel.filename).write_bytes(wheel.data)
    uploaded = wheelvault(stack, "upload", "--wait", *(str(tmp_path / w.filename) for w in wheels))
    assert uploaded.returncode == 0, uploaded.stderr

    yanked = wheelvault(stack, "yank", "cli-admin", "--version", "2.0", "--reason", "bad build")
    assert yanked.stdout.strip() == f"yanked {wheels[1].filename}"
    resolved = json.loads(wheelvault(stack, "sas", "--json", "cli-admin").stdout)
    assert resolved["version"] == "1.0"
    assert wheelvault(stack, "unyank", "cli-admin", "--file", wheels[1].filename).returncode == 0
    assert json.loads(wheelvault(stack, "sas", "--json", "cli-admin").stdout)["version"] == "2.0"

    deleted = wheelvault(stack, "delete", "cli-admin", wheels[1].filename)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(wheelvault(stack, "sas", "--json", "cli-admin").stdout)["version"] == "1.0"
    again = wheelvault(stack, "upload", str(tmp_path / wheels[1].filename))
    assert again.returncode == 1
    assert "filename-tombstoned" in again.stderr
    gone = wheelvault(stack, "status", wheels[1].filename)
    assert gone.returncode == 1
    assert gone.stdout.startswith(f"{wheels[1].filename}: deleted (deleted for good")

    assert wheelvault(stack, "reindex").stdout.strip() == "reindex: nothing to change"
    missing = wheelvault(stack, "yank", "cli-admin", "--version", "9.9")
    assert missing.returncode == 1
    assert "no files for version 9.9" in missing.stderr


def test_rotation_through_the_admin_endpoint_keeps_the_old_token_working(stack: Stack) -> None:
    """Run the timer function now, as Core Tools' admin API does, on a token that is due."""
    created = wheelvault(
        stack, "token", "create", "rotating-e2e", "--scope", "read", "--rotate-after", "PT1S"
    )
    assert created.returncode == 0, created.stderr
    old = created.stdout.strip()
    time.sleep(1.5)  # the token is now due (rotate-after one second, overlap the default 7 days)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    run = urllib.request.Request(
        f"{stack.public_url}/admin/functions/rotate_tokens", data=b"{}", method="POST"
    )
    with opener.open(run, timeout=30) as reply:
        assert reply.status == 202
    deadline = time.monotonic() + 30
    new = old
    while new == old and time.monotonic() < deadline:
        time.sleep(0.5)
        new = wheelvault(stack, "token", "show", "rotating-e2e").stdout.strip()
    assert new != old, "the rotation timer did not create a new value"

    def status_with(token: str) -> int:
        request = urllib.request.Request(f"{stack.public_url}/simple/")
        credential = base64.b64encode(f"x:{token}".encode()).decode()
        request.add_header("Authorization", f"Basic {credential}")
        try:
            with opener.open(request, timeout=30) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert status_with(old) == 200  # the overlap: the old value still works
    deadline = time.monotonic() + 15  # the host may have cached the token's versions briefly
    while status_with(new) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status_with(new) == 200
    url = wheelvault(stack, "token", "url", "rotating-e2e").stdout.strip()
    assert new in url  # the companion index-URL secret follows the new value


def test_skip_existing_passes_identical_files_only(stack: Stack, tmp_path: Path) -> None:
    wheel = build_wheel("cli-skip", "1.0")
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.data)
    assert wheelvault(stack, "upload", "--wait", str(path)).returncode == 0

    again = wheelvault(stack, "upload", str(path))
    assert again.returncode == 1
    assert "409 file-exists" in again.stderr
    skipped = wheelvault(stack, "upload", "--skip-existing", "--wait", str(path))
    assert skipped.returncode == 0, skipped.stderr
    assert f"skipped {wheel.filename}: already published, identical" in skipped.stderr
    assert "uploaded" not in skipped.stderr  # nothing was sent again
    assert f"{wheel.filename}: published" in skipped.stdout

    other = build_wheel("cli-skip", "1.0", payload_bytes=1000)  # same name, other bytes
    assert other.filename == wheel.filename
    path.write_bytes(other.data)
    refused = wheelvault(stack, "upload", "--skip-existing", str(path))
    assert refused.returncode == 1
    assert f"{wheel.filename} is already published with different contents" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_directory_uploads_its_wheels_and_sdists(stack: Stack, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    built = [build_wheel("cli-dir", v) for v in ("1.0", "1.1")] + [build_sdist("cli-dir", "1.1")]
    for each in built:
        (dist / each.filename).write_bytes(each.data)
    (dist / "cli_dir-1.1.zip").write_bytes(b"a legacy sdist")
    result = wheelvault(stack, "upload", "--wait", str(dist))
    assert result.returncode == 0, result.stderr
    assert f"skipping {dist / 'cli_dir-1.1.zip'}: not a wheel or an sdist" in result.stderr
    for each in built:
        assert f"{each.filename}: published" in result.stdout


def test_status_of_a_name_never_uploaded_answers_at_once(stack: Stack) -> None:
    started = time.monotonic()
    result = wheelvault(stack, "status", "cli_never-1.0-py3-none-any.whl")
    assert time.monotonic() - started < 10  # not its 60 s timeout
    assert result.returncode == 1
    assert "cli_never-1.0-py3-none-any.whl: not uploaded" in result.stdout
