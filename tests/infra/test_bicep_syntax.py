"""Every Bicep file parses, and keeps to the syntax the offline tools read.

No Bicep CLI runs here, so pycep-parser stands in for `bicep build`. checkov parses with an older
pycep of its own (0.5.1 with checkov 3.3.30) that knows less syntax than the one in
requirements-dev.txt; these tests hold the files to the common subset, so a file that parses
here also parses for checkov (test_checkov.py then proves it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra import bicep

FILES = bicep.bicep_files()

# Declarations the old parser knows: no `import`, `func`, `type`, `extension` or modules.
KNOWN_SECTIONS = {"globals", "parameters", "variables", "resources", "outputs"}
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


def test_infra_has_the_two_templates() -> None:
    assert [p.name for p in FILES] == ["eventgrid.bicep", "main.bicep"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_parses(path: Path) -> None:
    tree = bicep.parse(path)
    assert tree["resources"], f"{path.name} declares no resources"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
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
