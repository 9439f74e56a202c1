"""Checks that need the real Bicep compiler or Azure: skipped unless asked for.

    WHEELVAULT_ONLINE_TESTS=1 .venv/bin/pytest -m online tests/infra

`bicep build` (the Bicep CLI, or `az bicep`) compiles each file, which checks types, API
versions and property names far beyond what pycep-parser can. With
WHEELVAULT_ONLINE_RESOURCE_GROUP naming an existing resource group you may deploy to,
`az deployment group what-if` also validates main.bicep against Azure, and eventgrid.bicep too
once a deployment named wheelvault-main (infra/deploy.sh) exists in that group. With a
deployment's PUBLIC_URL, VAULT_URL and STORAGE_BLOB_ENDPOINT in the environment (or azd's
environment holding them), infra/smoke.sh runs against it and must pass and clean up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra import bicep

pytestmark = pytest.mark.online


def online_tools() -> tuple[list[str], str]:
    """(the command that compiles Bicep, the az CLI); skips when online checks are off."""
    if os.environ.get("WHEELVAULT_ONLINE_TESTS") != "1":
        pytest.skip("online check: set WHEELVAULT_ONLINE_TESTS=1 (needs bicep or az, and Azure)")
    az = shutil.which("az")
    compiler = shutil.which("bicep")
    if compiler is None and az is None:
        pytest.skip("online check: neither the bicep CLI nor az is installed")
    build = [compiler, "build"] if compiler else [str(az), "bicep", "build", "--file"]
    return build, str(az or "")


def resource_group() -> str:
    group = os.environ.get("WHEELVAULT_ONLINE_RESOURCE_GROUP", "")
    if not group:
        pytest.skip("what-if: set WHEELVAULT_ONLINE_RESOURCE_GROUP to a group you may deploy to")
    return group


def run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(command[:4])}...: {result.stderr}"
    return result.stdout


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: p.name)
def test_bicep_build(path: Path, tmp_path: Path) -> None:
    build, _ = online_tools()
    run([*build, str(path), "--outdir", str(tmp_path)])
    template = json.loads((tmp_path / f"{path.stem}.json").read_text())
    assert template["resources"]


def test_what_if_main() -> None:
    _, az = online_tools()
    if not az:
        pytest.skip("what-if: az is not installed")
    group = resource_group()
    location = run([az, "group", "show", "--name", group, "--query", "location", "-o", "tsv"])
    # As deploy.sh does: every azd ${...} placeholder in the parameters file gets a value.
    run(
        [
            az, "deployment", "group", "what-if",
            "--resource-group", group,
            "--template-file", str(bicep.MAIN),
            "--parameters", f"@{bicep.INFRA / 'main.parameters.json'}",
            "--parameters", "environmentName=wheelvault-what-if", f"location={location.strip()}",
            "adminPrincipalId=", "publicUrl=", "publisherPrincipalId=",
            "--no-pretty-print",
        ]
    )  # fmt: skip


def test_what_if_eventgrid() -> None:
    _, az = online_tools()
    if not az:
        pytest.skip("what-if: az is not installed")
    group = resource_group()
    shown = subprocess.run(
        [az, "deployment", "group", "show", "--resource-group", group, "--name", "wheelvault-main",
         "--query", "properties.outputs", "--output", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if shown.returncode != 0:
        pytest.skip("what-if for eventgrid.bicep needs a wheelvault-main deployment in the group")
    outputs = json.loads(shown.stdout)
    run(
        [
            az, "deployment", "group", "what-if",
            "--resource-group", group,
            "--template-file", str(bicep.EVENTGRID),
            "--parameters",
            f"functionAppName={outputs['AZURE_FUNCTION_APP_NAME']['value']}",
            f"storageAccountName={outputs['STORAGE_ACCOUNT_NAME']['value']}",
            f"systemTopicName={outputs['EVENT_GRID_SYSTEM_TOPIC_NAME']['value']}",
            "--no-pretty-print",
        ]
    )  # fmt: skip


def test_smoke_script() -> None:
    """infra/smoke.sh against the deployment, as the README's first deploy ends (it revokes its
    token and deletes its wheel whatever happens; tests/e2e/test_smoke_script.py proves that on
    the local stack)."""
    if os.environ.get("WHEELVAULT_ONLINE_TESTS") != "1":
        pytest.skip("smoke test: set WHEELVAULT_ONLINE_TESTS=1 (needs a deployment and az login)")
    if not os.environ.get("PUBLIC_URL") and shutil.which("azd") is None:
        pytest.skip(
            "smoke test: set PUBLIC_URL, VAULT_URL and STORAGE_BLOB_ENDPOINT to a deployment's "
            "outputs, or run where `azd env get-values` has them"
        )
    smoke = bicep.INFRA / "smoke.sh"
    result = subprocess.run(
        ["bash", str(smoke)], capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("smoke: passed: ")
