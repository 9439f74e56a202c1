"""The one timestamp format: UTC with a Z, at the precision asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from shared.core.clock import iso_z, utc_now


def test_iso_z_writes_utc_with_a_z_at_each_precision() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 123, tzinfo=UTC)
    assert iso_z(moment) == "2026-01-02T03:04:05.000123Z"
    assert iso_z(moment, "microseconds") == "2026-01-02T03:04:05.000123Z"
    assert iso_z(moment, "seconds") == "2026-01-02T03:04:05Z"
    whole = moment.replace(microsecond=0)
    assert iso_z(whole) == "2026-01-02T03:04:05Z"
    assert iso_z(whole, "microseconds") == "2026-01-02T03:04:05.000000Z"


def test_iso_z_converts_other_offsets_to_utc() -> None:
    east = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert iso_z(east) == "2026-01-02T03:04:05Z"


def test_utc_now_is_aware_and_utc() -> None:
    assert utc_now().utcoffset() == timedelta(0)
