"""Pytest plugin: every test sits in its true tier, checked when the tests are collected.

The tiers (markers are defined in pyproject.toml):

- unmarked: the fast tier (``make test-fast``): in-process, no service, no external tool;
- ``integration``: needs a local service or an external tool;
- ``e2e``: drives the whole local system as a user does.

A marker is easy to forget, and a forgotten one makes the fast tier start Azurite without
anyone noticing. So collection fails when a test in tests/integration or tests/e2e lacks its
folder's marker, or when a test with neither marker uses a fixture that starts a service
(``SERVICE_FIXTURES``), directly or through another fixture.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

SERVICE_FIXTURES = frozenset({"azurite", "entra_standin", "vault_standin"})
"""The fixtures (in tests/fixtures) that start a service process. A test's fixture names include
every fixture its fixtures use, so ``blob_service``, ``storage_env`` and a test file's own
fixtures built on these are caught too."""
SLOW_TIERS = ("integration", "e2e")
"""The markers of the slow tiers; each is also the name of the folder its tests live in."""
_EITHER = " or ".join(SLOW_TIERS)


def tier_problems(items: list[pytest.Item], root: Path, services: frozenset[str]) -> list[str]:
    """What is out of tier, as lines for the error; ``root`` is the folder holding tests/."""
    return _files_without_their_marker(items, root) + _service_users_unmarked(items, services)


def _files_without_their_marker(items: list[pytest.Item], root: Path) -> list[str]:
    """One line per file, not per test: the fix is one ``pytestmark`` line in the file."""
    counts: Counter[str] = Counter()
    for item in items:
        folder = _tier_folder(item.path, root)
        if folder is not None and item.get_closest_marker(folder) is None:
            counts[f"{item.path.relative_to(root)}: not marked {folder}"] += 1
    return [f"{line} ({_tests(count)})" for line, count in counts.items()]


def _tests(count: int) -> str:
    return "1 test" if count == 1 else f"{count} tests"


def _service_users_unmarked(items: list[pytest.Item], services: frozenset[str]) -> list[str]:
    problems = []
    for item in items:
        # Only test functions have fixtures (a doctest item, say, has none).
        used = sorted(services.intersection(getattr(item, "fixturenames", ())))
        if used and not any(item.get_closest_marker(tier) for tier in SLOW_TIERS):
            problems.append(f"{item.nodeid}: uses {', '.join(used)} but is not marked {_EITHER}")
    return problems


def _tier_folder(path: Path, root: Path) -> str | None:
    """``integration`` or ``e2e`` for a test under tests/integration or tests/e2e, else None."""
    for tier in SLOW_TIERS:
        if path.is_relative_to(root / "tests" / tier):
            return tier
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects: a missing marker is wrong in any run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = tier_problems(items, config.rootpath, SERVICE_FIXTURES)
    if problems:
        raise pytest.UsageError(
            "tests outside their tier (add `pytestmark = pytest.mark.integration` or "
            "`pytest.mark.e2e`; the tiers are described in tests/tiers.py):\n  "
            + "\n  ".join(problems)
        )
