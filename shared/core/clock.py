"""The one clock and the one timestamp format: UTC, written with a `Z`.

Every timestamp wheelvault writes (records, pages, quarantine reasons, tombstones, SAS expiries,
the local stack's state) is ISO 8601 in UTC with `Z` for the offset; `iso_z` is the only place
that spells it. Services take a `clock` argument defaulting to `utc_now`, so tests can pin time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Timespec = Literal["auto", "seconds", "microseconds"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime, timespec: Timespec = "auto") -> str:
    """`moment` in UTC as ISO 8601 with a `Z`: 2026-12-06T07:10:00.123456Z.

    `auto` leaves out a zero fraction (as `datetime.isoformat` does); `microseconds` always
    writes six digits (PEP 700's `upload-time`); `seconds` none (a human-facing time).
    """
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
