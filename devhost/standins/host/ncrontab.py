"""NCRONTAB schedules, as the Functions timer trigger reads them, and their next occurrence.

Six fields, ``second minute hour day month day-of-week``, each a comma list of ``*``, ``n``,
``a-b``, ``*/s``, ``a-b/s`` or ``a/s`` (from ``a`` to the field's maximum). Months and days of the
week may be written as English names (``JAN``-``DEC``, ``SUN``-``SAT``, any case); Sunday is 0.

Two choices follow the NCrontab library the host uses rather than Unix cron: the five-field form
is refused (Azure requires the seconds field), and when both day and day-of-week are
restricted a time must match *both* (cron would accept either). Times are UTC, the host's
default when ``WEBSITE_TIME_ZONE`` is not set.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CronError", "CronSchedule", "parse"]

MONTH_NAMES = {name.upper(): n for n, name in enumerate(calendar.month_abbr) if name}
DAY_NAMES = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
SEARCH_YEARS = 50
"""How far ahead :meth:`CronSchedule.next_after` looks: Feb 29 on a given weekday recurs
within 40 years (28, or more across a non-leap century year), so every schedule that can match
at all matches within this window."""


class CronError(ValueError):
    """The schedule is not a valid six-field NCRONTAB expression; the message says where."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("second", 0, 59, {}),
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day", 1, 31, {}),
    _Field("month", 1, 12, MONTH_NAMES),
    _Field("day-of-week", 0, 6, DAY_NAMES),
)


@dataclass(frozen=True)
class CronSchedule:
    """The parsed schedule: the allowed values of each field."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def matches(self, moment: datetime) -> bool:
        return (
            moment.second in self.seconds
            and moment.minute in self.minutes
            and moment.hour in self.hours
            and self._day_matches(moment)
        )

    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after ``moment`` (whole seconds, same tzinfo).

        Walks forward field by field (a month that does not match skips to the next month,
        and so on), so even a yearly schedule takes a few hundred steps. ``None`` when nothing
        matches within :data:`SEARCH_YEARS`, which :func:`parse` makes rare: it refuses
        schedules whose day and month never meet (``0 0 0 30 2 *``).
        """
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = moment.year + SEARCH_YEARS
        while candidate.year <= limit:
            if candidate.month not in self.months:
                candidate = _start_of_next_month(candidate)
            elif not self._day_matches(candidate):
                candidate = _start_of_day(candidate) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0, second=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate = candidate.replace(second=0) + timedelta(minutes=1)
            elif candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
            else:
                return candidate
        return None

    def _day_matches(self, moment: datetime) -> bool:
        weekday = (moment.weekday() + 1) % 7  # Python's Monday = 0 → cron's Sunday = 0
        return moment.month in self.months and moment.day in self.days and weekday in self.weekdays


def parse(text: str) -> CronSchedule:
    """Parse a six-field NCRONTAB expression; :class:`CronError` names the bad field."""
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise CronError(
            f"expected 6 fields (second minute hour day month day-of-week), got {len(parts)}"
        )
    values = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    seconds, minutes, hours, days, months, weekdays = values
    if not any(day <= _longest_month(month) for month in months for day in days):
        raise CronError("the day and month fields never match a real date")
    return CronSchedule(" ".join(parts), seconds, minutes, hours, days, months, weekdays)


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, spec))
    return frozenset(values)


def _parse_item(item: str, spec: _Field) -> range:
    where = f"{spec.name} field {item!r}"
    if not item:
        raise CronError(f"{spec.name} field has an empty list item")
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        step = _number(step_text, where, "step")
        if step < 1:
            raise CronError(f"{where}: the step must be at least 1")
    if base == "*":
        low, high = spec.low, spec.high
    elif "-" in base:
        start, _, end = base.partition("-")
        low, high = _value(start, spec, where), _value(end, spec, where)
        if low > high:
            raise CronError(f"{where}: the range runs backwards")
    else:
        low = _value(base, spec, where)
        high = spec.high if slash else low  # "a/s": from a to the end, every s
    return range(low, high + 1, step)


def _value(text: str, spec: _Field, where: str) -> int:
    named = spec.names.get(text.upper())
    value = named if named is not None else _number(text, where, "value")
    if not spec.low <= value <= spec.high:
        raise CronError(f"{where}: {value} is outside {spec.low}-{spec.high}")
    return value


def _number(text: str, where: str, kind: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise CronError(f"{where}: {text!r} is not a valid {kind}")
    return int(text)


def _longest_month(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _start_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0)


def _start_of_next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
