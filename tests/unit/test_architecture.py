"""Architecture rules that must not rot: a pure core, and an import-safe function app."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
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


CORE_FILES = sorted((ROOT / "shared" / "core").glob("*.py"))


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_imports_nothing_from_azure_or_the_adapters(path: Path) -> None:
    bad = {
        m
        for m in imported_modules(path)
        if m.split(".")[0] == "azure" or m.startswith(("shared.adapters", "shared.services"))
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


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
