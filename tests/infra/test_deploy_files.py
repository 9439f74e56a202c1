"""The files around the templates: main.parameters.json, azure.yaml and the deploy scripts
agree with main.bicep and with each other."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.infra import bicep
from tests.support.functions import registered

MAIN = bicep.parse(bicep.MAIN)
PARAMETERS = json.loads((bicep.INFRA / "main.parameters.json").read_text())["parameters"]
AZURE_YAML = (bicep.ROOT / "azure.yaml").read_text()
DEPLOY_SH = bicep.INFRA / "deploy.sh"
EVENTGRID_SH = bicep.INFRA / "eventgrid.sh"
VAULT_MODE_SH = bicep.INFRA / "vault-create-mode.sh"
# azd's `${VARIABLE}`, or `${VARIABLE=default}` (the value when the variable is unset).
AZD_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?:=([^}]*))?\}")


def placeholder_parameters() -> dict[str, str]:
    """Parameters whose value is an azd `${VARIABLE}`, with the variable's name."""
    found = {}
    for name, entry in PARAMETERS.items():
        match = AZD_PLACEHOLDER.fullmatch(str(entry["value"]))
        if match:
            found[name] = match.group(1)
    return found


def test_parameters_file_names_only_parameters_of_main_bicep() -> None:
    assert set(PARAMETERS) <= set(MAIN["parameters"])


def test_parameters_file_gives_every_required_parameter() -> None:
    required = {n for n, p in MAIN["parameters"].items() if p["default"] is None}
    assert required == {"environmentName"}
    assert required <= set(PARAMETERS)


def test_azd_fills_in_the_environment_location_and_signed_in_user() -> None:
    """azd sets AZURE_PRINCIPAL_TYPE (User, or ServicePrincipal in CI) since 1.17.1."""
    expected = {
        "environmentName": "AZURE_ENV_NAME",
        "location": "AZURE_LOCATION",
        "adminPrincipalId": "AZURE_PRINCIPAL_ID",
        "adminPrincipalType": "AZURE_PRINCIPAL_TYPE",
    }
    assert expected.items() <= placeholder_parameters().items()


def test_deploy_sh_overrides_only_parameters_of_main_bicep() -> None:
    """A misspelt name would reach az as an unknown parameter and fail the deployment."""
    call = DEPLOY_SH.read_text()
    call = call[call.index("--template-file infra/main.bicep") :]
    call = call[: call.index("--output none")]
    names = set(re.findall(r"^\s+(\w+)=", call, re.MULTILINE))
    assert {"adminPrincipalType", "vaultCreateMode"} <= names
    assert names <= set(MAIN["parameters"])


@pytest.mark.parametrize("name", sorted(set(PARAMETERS) - set(placeholder_parameters())), ids=str)
def test_literal_parameter_values_are_allowed_by_main_bicep(name: str) -> None:
    value: Any = PARAMETERS[name]["value"]
    rules = bicep.decorators(MAIN, "parameters", name)
    if "allowed" in rules:
        assert value in rules["allowed"]
    if "min_value" in rules:
        assert value >= rules["min_value"]
    if "max_value" in rules:
        assert value <= rules["max_value"]
    kinds = {"string": "str", "int": "int", "bool": "bool"}
    assert type(value).__name__ == kinds[MAIN["parameters"][name]["type"]]


def placeholder_defaults() -> dict[str, str]:
    """Parameters whose azd placeholder gives a default (`${VARIABLE=default}`), with it."""
    found = {}
    for name, entry in PARAMETERS.items():
        match = AZD_PLACEHOLDER.fullmatch(str(entry["value"]))
        if match and match.group(2) is not None:
            found[name] = match.group(2)
    return found


@pytest.mark.parametrize("name", sorted(placeholder_defaults()), ids=str)
def test_azd_placeholder_defaults_are_those_of_main_bicep(name: str) -> None:
    """azd's default (a string, converted for a bool parameter) is the Bicep default."""
    default = MAIN["parameters"][name]["default"]
    expected = str(default).lower() if isinstance(default, bool) else str(default)
    assert placeholder_defaults()[name] == expected


@pytest.mark.parametrize("name", sorted(placeholder_parameters()), ids=str)
def test_deploy_sh_gives_every_azd_placeholder_a_value(name: str) -> None:
    """az does not expand azd's `${...}`: deploy.sh must override each such parameter."""
    assert re.search(rf"^\s+{name}=\S", DEPLOY_SH.read_text(), re.MULTILINE), name


def test_azure_yaml_deploys_the_repository_root_as_a_python_function_app() -> None:
    assert "  api:\n    project: .\n    language: python\n    host: function\n" in AZURE_YAML
    assert "infra:\n  provider: bicep\n  path: infra\n  module: main\n" in AZURE_YAML


def test_azd_finds_the_app_by_its_service_tag() -> None:
    """azd deploys service `api` to the resource tagged azd-service-name=api."""
    tags = bicep.only(MAIN, "Microsoft.Web/sites").body["tags"]
    call = bicep.function(tags)
    assert call is not None
    assert call[0] == "union"
    assert {"'azd-service-name'": "api"} in call[1].values()  # a quoted key keeps its quotes


def test_azure_yaml_runs_the_event_grid_step_after_deploying_the_code() -> None:
    hooks = AZURE_YAML[AZURE_YAML.index("\nhooks:\n") :]
    assert "  postdeploy:\n" in hooks
    assert "run: bash infra/eventgrid.sh" in hooks


@pytest.mark.parametrize("script", [DEPLOY_SH, EVENTGRID_SH, VAULT_MODE_SH], ids=lambda p: p.name)
def test_scripts_are_strict_executable_bash(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_deploy_sh_runs_the_steps_in_order() -> None:
    text = DEPLOY_SH.read_text()
    steps = [
        "az group create",
        "--template-file infra/main.bicep",
        "az functionapp deployment source config-zip",
        "infra/eventgrid.sh\n",
        "token create",
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)


def test_deploy_sh_package_holds_the_app_and_imports_on_its_own(tmp_path: Path) -> None:
    """Build the zip with deploy.sh's own snippet, unpack it and import function_app from it."""
    snippet = re.search(r"<<'PY'\n(.*?)\nPY\n", DEPLOY_SH.read_text(), re.DOTALL)
    assert snippet is not None, "deploy.sh builds the zip in a python3 here-document"
    package = tmp_path / "app.zip"
    build = [sys.executable, "-c", snippet.group(1), str(package)]
    subprocess.run(build, cwd=bicep.ROOT, check=True, timeout=60)
    with zipfile.ZipFile(package) as bundle:
        names = set(bundle.namelist())
        bundle.extractall(tmp_path / "app")
    assert {"function_app.py", "host.json", "requirements.txt"} <= names
    assert {n.split("/")[0] for n in names} == {
        "function_app.py",
        "host.json",
        "requirements.txt",
        "shared",
        "functions",
    }
    assert not [n for n in names if "__pycache__" in n]
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import function_app, shared; "
        "assert function_app.__file__.startswith(sys.argv[1]), function_app.__file__; "
        "assert shared.__file__.startswith(sys.argv[1]), shared.__file__; "
        "print(len(function_app.app.get_functions()))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "app")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(registered())


def test_deploy_notes_point_at_files_that_exist() -> None:
    """Every infra/ path the README's deployment section mentions is there."""
    readme = (bicep.ROOT / "README.md").read_text()
    notes = readme[readme.index("## Deploying to Azure") :]
    paths = set(re.findall(r"(?<![\w/])infra/[\w./-]+\w", notes))  # not tests/infra/…
    assert paths
    for path in paths:
        assert (bicep.ROOT / path).exists(), path


def test_funcignore_keeps_the_deployment_package_to_the_app() -> None:
    """azd zips the project root: only the app itself may go to Azure."""
    ignored = set((bicep.ROOT / ".funcignore").read_text().split())
    for local_only in (
        ".venv*",
        "node_modules",
        ".local",
        "tests",
        "devhost",
        "local.settings*.json",
    ):
        assert local_only in ignored, local_only
    for needed in ("function_app.py", "functions", "shared", "host.json", "requirements.txt"):
        assert needed not in ignored, needed
