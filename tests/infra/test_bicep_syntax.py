"""Every Bicep file parses, and keeps to the syntax the offline tools read.

No Bicep CLI runs here, so pycep-parser stands in for `bicep build`. checkov parses with an older
pycep of its own (0.5.1 with checkov 3.3.30) that knows less syntax than the one in
requirements-dev.txt; these tests hold the files to the common subset, so a file that parses
here also parses for checkov (test_checkov.py then proves it). The exception is the Microsoft
Graph module (entra.bicep): its `extension` statement and `deployer()` are beyond checkov's
parser, so it is kept out of checkov's scan and held to its one extension here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.infra import bicep

FILES = bicep.bicep_files()

# Declarations the old parser knows: no `import`, `func`, `type` or `extension` (modules it
# reads: main.bicep deploys entra.bicep as one).
KNOWN_SECTIONS = {"globals", "parameters", "variables", "resources", "modules", "outputs"}
# The Microsoft Graph types' registry reference: v1.0 at its generally available version, which
# needs Bicep 0.36.1 or later.
GRAPH_TYPES = re.compile(
    r"br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:1\.\d+\.\d+"
)
# Decorators the old parser knows (it has a fixed list; @export, @sealed and others fail), as
# pycep names them (@minValue is "min_value").
KNOWN_DECORATORS = {
    "allowed",
    "batchSize",
    "description",
    "max_length",
    "max_value",
    "metadata",
    "min_length",
    "min_value",
    "secure",
}


def test_infra_has_the_three_templates() -> None:
    assert [p.name for p in FILES] == ["entra.bicep", "eventgrid.bicep", "main.bicep"]


def test_only_the_entra_module_uses_an_extension_and_only_microsoft_graph_v1() -> None:
    assert bicep.graph_files() == [bicep.ENTRA]
    assert set(bicep.parse(bicep.ENTRA)["extensions"]) == {bicep.GRAPH_EXTENSION}
    assert {r.type.split("/")[0] for r in bicep.resources(bicep.parse(bicep.ENTRA)).values()} == {
        "Microsoft.Graph"
    }


def test_bicepconfig_maps_the_extension_to_the_graph_v1_types() -> None:
    """Without bicepconfig.json next to the templates, `extension microsoftGraphV1` is unknown."""
    config = json.loads(bicep.BICEPCONFIG.read_text())
    assert list(config["extensions"]) == [bicep.GRAPH_EXTENSION]
    assert GRAPH_TYPES.fullmatch(config["extensions"][bicep.GRAPH_EXTENSION])


def test_modules_are_local_files_given_exactly_their_parameters() -> None:
    """Every module is a file in infra/; it gets every required parameter and no unknown one."""
    for path in FILES:
        for name, module in bicep.parse(path).get("modules", {}).items():
            assert module["type"] == "local", name
            target = bicep.INFRA / module["detail"]["path"]
            assert target in FILES, name
            declared = bicep.parse(target)["parameters"]
            config = module["config"].get("config", module["config"])  # under `if (...)`
            given = set(config["params"])
            required = {n for n, p in declared.items() if p["default"] is None}
            assert required <= given <= set(declared), name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_parses(path: Path) -> None:
    tree = bicep.parse(path)
    assert tree["resources"], f"{path.name} declares no resources"


@pytest.mark.parametrize("path", bicep.checkov_files(), ids=lambda p: p.name)
def test_uses_only_the_declarations_checkov_reads(path: Path) -> None:
    assert set(bicep.parse(path)) <= KNOWN_SECTIONS


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_types_are_plain_names_not_unions_or_typed_arrays(path: Path) -> None:
    """`@allowed([...])` instead of `'a' | 'b'`; `array` instead of `string[]`."""
    tree = bicep.parse(path)
    for section in ("parameters", "outputs"):
        for name, declaration in tree.get(section, {}).items():
            assert isinstance(declaration["type"], str), f"{section} {name}: {declaration['type']}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_decorators_are_ones_checkov_knows(path: Path) -> None:
    tree = bicep.parse(path)
    for section in ("parameters", "variables", "outputs", "resources"):
        for name, declaration in tree.get(section, {}).items():
            used = {d["type"] for d in declaration.get("decorators", [])}
            assert used <= KNOWN_DECORATORS, f"{section} {name}: {used - KNOWN_DECORATORS}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_child_resources_are_top_level_with_parent(path: Path) -> None:
    """A nested `resource` (or a 'parent/child' name) hides the child from some tools.

    pycep lifts nested children to the top level itself, without a `parent`, so a child
    type (more than one segment after the provider) without `parent:` was nested.
    """
    for resource in bicep.resources(bicep.parse(path)).values():
        _provider, *segments = resource.type.split("/")
        if len(segments) > 1 and not resource.existing:
            assert "parent" in resource.body, f"{resource.name} ({resource.type}) has no parent"
            assert "/" not in str(resource.body["name"]), f"{resource.name}: name with a '/'"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_resource_pins_an_api_version(path: Path) -> None:
    for resource in bicep.resources(bicep.parse(path)).values():
        assert resource.api_version, resource.name
        assert "preview" not in resource.api_version, f"{resource.name}: {resource.api_version}"
