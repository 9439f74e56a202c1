"""infra/smoke.sh, the smoke test of a deployment, run against the local stack (its URLs stand in
for the deployment's): once through, and once failing on purpose (SMOKE_FAIL_AT) to show the
cleanup runs either way. After each run nothing is left: the token revoked, both files (the wheel
twine sent, the sdist the blob trigger published) deleted, tombstoned, the project gone from the
index, the temporary directory removed, and no token value printed.

The environment is passed through as it is (the machine's PIP_* package sources included): the
script must isolate pip and uv itself, and the version it installs exists only in this index.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.stack import Stack
from devhost.stack.config import Ports
from tests.e2e.test_cli_stack import wheelvault  # the installed command, for this stack

pytestmark = pytest.mark.e2e

SMOKE = Path(__file__).resolve().parents[2] / "infra" / "smoke.sh"
STEPS = (
    "inputs",
    "health",
    "token",
    "build",
    "upload",
    "upload-blob",
    "index-url",
    "install-pip",
    "install-uv",
    "rotate",
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(
        tmp_path_factory.mktemp("stack"), ports=Ports(blob=0, vault=0, host=0, entra=0)
    ) as running:
        yield running


def smoke(stack: Stack, temp: Path, **knobs: str) -> subprocess.CompletedProcess[str]:
    """`infra/smoke.sh --local` for this stack, its temporary files under `temp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    env.update(SMOKE_STACK_ROOT=str(stack.paths.root), TMPDIR=str(temp), **knobs)
    temp.mkdir()
    return subprocess.run(
        ["bash", str(SMOKE), "--local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def shown(output: str, step: str) -> str:
    """What the step's `ok (...)` line says."""
    found = re.search(rf"^smoke: {step}: ok \((.*)\)$", output, re.MULTILINE)
    assert found, f"no ok line for {step}:\n{output}"
    return found.group(1)


def project_page_status(stack: Stack) -> int:
    """The project page's status for the stack's reader: 404 once the project is gone."""
    request = urllib.request.Request(f"{stack.public_url}/simple/wheelvault-smoke/")
    pair = f"reader:{stack.reader_token}".encode()
    request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def assert_nothing_left(stack: Stack, run: subprocess.CompletedProcess[str], temp: Path) -> None:
    output = run.stdout + run.stderr
    token = shown(output, "token").split(",")[0]
    files = shown(output, "build").split(", ")  # the wheel (twine) and the sdist (a blob)
    assert len(files) == 2
    listed = {t["name"]: t for t in json.loads(wheelvault(stack, "token", "list", "--json").stdout)}
    assert listed[token]["revoked"] is True
    assert listed[token]["usable_versions"] == 0
    assert f"smoke: cleanup: token {token} revoked" in output
    for file in files:
        status = wheelvault(stack, "status", file)
        assert status.stdout.startswith(f"{file}: deleted"), status.stdout + status.stderr
        assert f"smoke: cleanup: {file} deleted (tombstoned)" in output
    assert project_page_status(stack) == 404  # the project went with its only file
    assert list(temp.iterdir()) == [], "the temporary directory is left behind"
    assert "wvt_" not in output, "a token value was printed"


def test_a_full_run_passes_and_leaves_nothing(stack: Stack, tmp_path: Path) -> None:
    run = smoke(stack, tmp_path / "tmp")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert [line.split(":")[1].strip() for line in lines[: len(STEPS)]] == list(STEPS)
    assert all(": ok (" in line for line in lines[: len(STEPS)]), run.stdout
    assert lines[-1] == f"smoke: passed: {stack.public_url}"
    assert ":***@" in shown(run.stdout, "index-url")  # the URL is shown with its token masked
    assert_nothing_left(stack, run, tmp_path / "tmp")


def test_a_failing_step_is_named_and_the_cleanup_still_runs(stack: Stack, tmp_path: Path) -> None:
    run = smoke(stack, tmp_path / "tmp", SMOKE_FAIL_AT="install-pip")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "smoke: upload-blob: ok (" in run.stdout  # there were published files to clean up
    assert (
        "smoke: FAILED at install-pip: deliberate failure (SMOKE_FAIL_AT=install-pip)"
        in run.stdout.splitlines()
    )
    assert "smoke: install-uv" not in run.stdout  # no step runs after the failure
    assert "smoke: passed" not in run.stdout
    assert_nothing_left(stack, run, tmp_path / "tmp")
