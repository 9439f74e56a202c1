"""Shared pytest configuration: service fixtures live in tests/fixtures/; tests/tiers.py checks
that each test carries its tier's marker; pytester lets tests/unit/test_tiers.py run that check
on tests written for the occasion."""

pytest_plugins = [
    "tests.fixtures.azurite",
    "tests.fixtures.entra",
    "tests.fixtures.vault",
    "tests.tiers",
    "pytester",
]
