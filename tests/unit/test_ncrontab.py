"""NCRONTAB schedules as the local host's timer triggers read them: fields, errors, next run."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from devhost.standins.host import ncrontab


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("* * * * * *", "seconds", set(range(60))),
        ("*/15 * * * * *", "seconds", {0, 15, 30, 45}),
        ("5-20/5 * * * * *", "seconds", {5, 10, 15, 20}),
        ("10/20 * * * * *", "seconds", {10, 30, 50}),
        ("1,2,3-5 * * * * *", "seconds", {1, 2, 3, 4, 5}),
        ("0 0,30 * * * *", "minutes", {0, 30}),
        ("0 0 9-17 * * *", "hours", set(range(9, 18))),
        ("0 0 */6 * * *", "hours", {0, 6, 12, 18}),
        ("0 0 0 1,15 * *", "days", {1, 15}),
        ("0 0 0 * JAN,mar-May *", "months", {1, 3, 4, 5}),
        ("0 0 0 * */3 *", "months", {1, 4, 7, 10}),
        ("0 0 0 * * MON-FRI", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 0 * * sun,Sat", "weekdays", {0, 6}),
        ("0 0 0 * * 0", "weekdays", {0}),
        ("  0   0 0 * *  *  ", "seconds", {0}),
    ],
)
def test_ncrontab_fields(text: str, field: str, expected: set[int]) -> None:
    assert getattr(ncrontab.parse(text), field) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected 6 fields"),
        ("0 */5 * * *", "expected 6 fields"),  # Unix cron's five fields
        ("0 0 * * * * 2024", "expected 6 fields"),
        ("60 * * * * *", "60 is outside 0-59"),
        ("* 60 * * * *", "outside 0-59"),
        ("* * 24 * * *", "outside 0-23"),
        ("* * * 0 * *", "outside 1-31"),
        ("* * * 32 * *", "outside 1-31"),
        ("* * * * 13 *", "outside 1-12"),
        ("* * * * * 7", "outside 0-6"),
        ("*/0 * * * * *", "at least 1"),
        ("*/x * * * * *", "not a valid step"),
        ("10-5 * * * * *", "runs backwards"),
        ("1,,2 * * * * *", "empty list item"),
        ("a * * * * *", "not a valid value"),
        ("* * * * FOO *", "not a valid value"),
        ("* * * * * MONDAY", "not a valid value"),
        ("? * * * * *", "not a valid value"),
        ("-1 * * * * *", "not a valid value"),
        ("1-2-3 * * * * *", "not a valid value"),
        ("０ * * * * *", "not a valid value"),  # a full-width digit
        ("0 0 0 30 2 *", "never match"),
        ("0 0 0 31 4,6,9,11 *", "never match"),
    ],
)
def test_ncrontab_refuses_invalid_schedules(text: str, message: str) -> None:
    with pytest.raises(ncrontab.CronError, match=re.escape(message)):
        ncrontab.parse(text)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("* * * * * *", "2024-01-01T00:00:00.500", "2024-01-01T00:00:01"),
        ("*/1 * * * * *", "2024-01-01T00:00:01", "2024-01-01T00:00:02"),
        ("0 */5 * * * *", "2024-01-01T10:07:30", "2024-01-01T10:10:00"),
        ("0 0 * * * *", "2024-01-01T23:59:59", "2024-01-02T00:00:00"),
        ("30 15 9 * * *", "2024-01-01T09:15:30", "2024-01-02T09:15:30"),
        ("0 30 9 * * MON-FRI", "2024-06-07T10:00:00", "2024-06-10T09:30:00"),  # Fri → Mon
        ("0 0 0 1 1 *", "2024-03-01T00:00:00", "2025-01-01T00:00:00"),
        ("0 0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"),
        ("0 0 12 29 2 *", "2024-03-01T00:00:00", "2028-02-29T12:00:00"),
        ("0 0 0 13 * FRI", "2024-01-01T00:00:00", "2024-09-13T00:00:00"),  # both must match
        ("0 0 0 * DEC SUN", "2024-12-30T00:00:00", "2025-12-07T00:00:00"),
        ("59 59 23 31 12 *", "2024-12-31T23:59:58", "2024-12-31T23:59:59"),
        ("59 59 23 31 12 *", "2024-12-31T23:59:59", "2025-12-31T23:59:59"),
    ],
)
def test_ncrontab_next_occurrence(schedule: str, after: str, expected: str) -> None:
    parsed = ncrontab.parse(schedule)
    found = parsed.next_after(at(after))
    assert found == at(expected)
    assert parsed.matches(found)


def test_ncrontab_finds_rare_schedules_decades_apart() -> None:
    moment = at("2024-03-01T00:00:00")
    for _ in range(10):  # 2044, 2072, 2112 (2100 is no leap year), ...
        found = ncrontab.parse("0 0 0 29 2 MON").next_after(moment)
        assert found is not None
        assert found.weekday() == 0
        moment = found
    assert moment.year > 2200
