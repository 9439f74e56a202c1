"""tests/tiers.py: collection fails on a test outside its tier, and passes on true tiers.

Each test writes a small test tree and collects it with pytester (in-process, nothing runs),
with the real tier plugin and the real service fixtures loaded.
"""

from __future__ import annotations

import importlib

import pytest

from tests.tiers import SERVICE_FIXTURES

PLUGINS = ["-p", "tests.tiers", "-p", "tests.fixtures.azurite", "-p", "tests.fixtures.vault"]
# --assert=plain: those plugins are already imported here, so pytest could not rewrite them.
COLLECT = [*PLUGINS, "--assert=plain", "--collect-only", "-q"]
FAST_TIER = ["-m", "not integration and not e2e"]


def source(*tests: str, marker: str | None = None) -> str:
    """A test module with ``tests`` (each "name(fixtures)") and, if given, its tier marker."""
    head = f"import pytest\npytestmark = pytest.mark.{marker}\n" if marker else ""
    return head + "".join(f"def {test}:\n    pass\n" for test in tests)


@pytest.fixture
def tree(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project root whose pytest.ini registers the tier markers, as pyproject.toml does."""
    pytester.makefile(".ini", pytest="[pytest]\nmarkers =\n    integration\n    e2e\n")
    return pytester


def write(tree: pytest.Pytester, path: str, text: str) -> None:
    target = tree.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def refused(tree: pytest.Pytester, *args: str) -> list[str]:
    """The problem lines of a collection that the tier check stopped."""
    result = tree.runpytest(*COLLECT, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "tests outside their tier" in result.stderr.str()
    return [line.strip() for line in result.stderr.lines if line.startswith("  tests/")]


def test_an_unmarked_file_in_tests_integration_is_refused_once(tree: pytest.Pytester) -> None:
    write(tree, "tests/integration/test_forgot.py", source("test_a()", "test_b()"))
    assert refused(tree) == ["tests/integration/test_forgot.py: not marked integration (2 tests)"]


def test_the_missing_marker_is_refused_in_the_fast_tier_run_it_would_slow(
    tree: pytest.Pytester,
) -> None:
    write(tree, "tests/integration/test_forgot.py", source("test_a()"))
    assert refused(tree, *FAST_TIER) == [
        "tests/integration/test_forgot.py: not marked integration (1 test)"
    ]


def test_a_file_in_tests_e2e_needs_e2e_not_just_integration(tree: pytest.Pytester) -> None:
    write(tree, "tests/e2e/test_wrong.py", source("test_a()", marker="integration"))
    assert refused(tree) == ["tests/e2e/test_wrong.py: not marked e2e (1 test)"]


def test_an_unmarked_test_using_a_service_fixture_is_refused_wherever_it_is(
    tree: pytest.Pytester,
) -> None:
    """``storage_env`` uses ``azurite``; the test file's own ``secrets`` uses ``vault_standin``."""
    write(tree, "tests/unit/test_sneaky.py", source("test_a(storage_env)"))
    own_fixture = "import pytest\n@pytest.fixture\ndef secrets(vault_standin):\n    pass\n"
    write(tree, "tests/infra/test_deep.py", own_fixture + source("test_b(secrets)", "test_c()"))
    assert refused(tree) == [
        "tests/infra/test_deep.py::test_b: uses vault_standin but is not marked integration or e2e",
        "tests/unit/test_sneaky.py::test_a: uses azurite but is not marked integration or e2e",
    ]


def test_true_tiers_collect_and_the_fast_tier_holds_only_unmarked_tests(
    tree: pytest.Pytester,
) -> None:
    write(tree, "tests/integration/test_i.py", source("test_i()", marker="integration"))
    write(tree, "tests/e2e/test_e.py", source("test_e(vault_standin)", marker="e2e"))
    write(tree, "tests/infra/test_tool.py", source("test_t(azurite)", marker="integration"))
    write(tree, "tests/unit/test_u.py", source("test_u(tmp_path)"))
    everything = tree.runpytest(*COLLECT)
    assert everything.ret == pytest.ExitCode.OK, everything.stderr.str()
    everything.stdout.fnmatch_lines(["4 tests collected*"])
    fast = tree.runpytest(*COLLECT, *FAST_TIER)
    assert fast.ret == pytest.ExitCode.OK, fast.stderr.str()
    assert [line for line in fast.stdout.lines if "::" in line] == ["tests/unit/test_u.py::test_u"]


@pytest.mark.parametrize("name", sorted(SERVICE_FIXTURES))
def test_each_service_fixture_is_still_defined_in_tests_fixtures(name: str) -> None:
    """A renamed service fixture would silently turn the check off for it."""
    modules = [
        importlib.import_module(f"tests.fixtures.{m}") for m in ("azurite", "entra", "vault")
    ]
    assert any(name in vars(module) for module in modules)
