"""Architecture rules that must not rot: a pure core, no import cycles in shared, Azure SDKs
only in the adapters, and an import-safe function app."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


CORE = ROOT / "shared" / "core"
CORE_FILES = sorted(CORE.rglob("*.py"))  # rglob: core's packages (core/wheel/) are core too


def test_core_files_include_its_packages() -> None:
    assert CORE / "wheel" / "archive.py" in CORE_FILES


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_nothing_from_azure_or_the_adapters(path: Path) -> None:
    bad = {
        m
        for m in imported_modules(path)
        if m.split(".")[0] == "azure" or m.startswith(("shared.adapters", "shared.services"))
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from azure.storage.blob import BlobClient\nimport os\n")
    assert "azure.storage.blob" in imported_modules(sample)


def test_only_adapters_import_azure_sdks_in_shared() -> None:
    offenders = []
    for path in (ROOT / "shared").rglob("*.py"):
        if "adapters" in path.parts:
            continue
        azure = {m for m in imported_modules(path) if m.split(".")[0] == "azure"}
        if azure:
            offenders.append((str(path.relative_to(ROOT)), sorted(azure)))
    assert offenders == []


def module_name(path: Path, root: Path) -> str:
    """The dotted name ``path`` is imported by when ``root`` is on sys.path."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_targets(path: Path, name: str) -> set[str]:
    """Every dotted name an import in ``path`` (module ``name``) may load, lazy ones included.

    ``from package import x`` may load the module ``package.x``, so both are listed; callers
    keep the names that are modules. Relative imports are resolved against ``name``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (a folder under ``root``): the package's modules it imports."""
    paths = {module_name(path, root): path for path in (root / package).rglob("*.py")}
    return {
        name: {target for target in import_targets(path, name) if target in paths} - {name}
        for name, path in paths.items()
    }


def find_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when the graph has none."""
    finished: set[str] = set()

    def visit(node: str, trail: list[str]) -> list[str]:
        if node in trail:
            return [*trail[trail.index(node) :], node]
        if node in finished:
            return []
        for target in sorted(graph.get(node, ())):
            if cycle := visit(target, [*trail, node]):
                return cycle
        finished.add(node)
        return []

    for node in sorted(graph):
        if cycle := visit(node, []):
            return cycle
    return []


def test_shared_has_no_import_cycles() -> None:
    """A cycle makes import order matter, and means two modules own one concept between them."""
    graph = import_graph(ROOT, "shared")
    assert "shared.core.wheel.archive" in graph["shared.core.wheel"]  # the graph sees packages
    assert find_cycle(graph) == []


def test_the_cycle_rule_sees_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from planted import b\n")
    (package / "b.py").write_text("def later():\n    import planted.c\n")
    (package / "c.py").write_text("from .a import thing\nimport os\n")
    (package / "d.py").write_text("from planted.a import thing\n")  # on no cycle
    graph = import_graph(tmp_path, "planted")
    assert graph["planted.d"] == {"planted.a"}
    assert find_cycle(graph) == ["planted.a", "planted.b", "planted.c", "planted.a"]
    (package / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(tmp_path, "planted")) == []


def test_function_app_imports_with_no_settings_and_no_network() -> None:
    """The host indexes functions by importing function_app: that must never need settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network used at import')\n"
        "socket.socket.connect = refuse\n"
        "import function_app\n"
        "names = sorted(f.get_function_name() for f in function_app.app.get_functions())\n"
        "print(','.join(names))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "publish_upload" in result.stdout.split(",") or "publish_upload" in result.stdout
