"""How tests assert a refusal: exactly the one code expected, and a one-line message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.core.errors import RejectCode, Rejection


def assert_rejected(code: RejectCode, call: Callable[[], object]) -> Rejection:
    """Assert that ``call`` raises a Rejection with ``code``; return the rejection."""
    with pytest.raises(Rejection) as caught:
        call()
    assert caught.value.code is code, caught.value.message
    assert "\n" not in caught.value.message  # messages go into logs and records
    return caught.value
