"""Timer-trigger functions, run on their NCRONTAB schedule from one thread each.

A function gets a real ``azure.functions.TimerRequest``. ``past_due`` is true when the run
starts more than ``PAST_DUE_AFTER_SECONDS`` (1 s) after its scheduled time: after the process
was paused, the machine slept, or the previous run overran. Occurrences missed meanwhile are
not caught up one by one; as in Azure, there is one late run and the schedule carries on.
Runs of one function never overlap (Azure holds a singleton lock for the same reason).
``runOnStartup`` runs the function once when the host starts.

The thread sleeps in short slices and re-reads the wall clock each time, so a paused process
or a clock that jumps still runs the function promptly when it wakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import azure.functions as func

from shared.core.clock import iso_z, utc_now

from . import ncrontab
from .functions import FunctionInfo
from .invoke import EventLoopThread
from .triggers import (
    TriggerConfigError,
    TriggerRunner,
    call_function,
    check_single_binding,
    failed,
    log_invocation,
    resolve_settings,
)

logger = logging.getLogger("devhost.host")

TIMER_TRIGGER = "timertrigger"
PAST_DUE_AFTER_SECONDS = 1.0
MAX_SLEEP_SECONDS = 0.5

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class TimerFunction:
    """A timer function ready to schedule: the resolved, parsed schedule and its argument."""

    info: FunctionInfo
    arg_name: str
    schedule: ncrontab.CronSchedule
    run_on_startup: bool

    @property
    def name(self) -> str:
        return self.info.name


def plan_timer(info: FunctionInfo, environ: Mapping[str, str]) -> TimerFunction:
    """Resolve ``%SETTING%`` in the schedule and parse it; :class:`TriggerConfigError` if not."""
    arg_name = check_single_binding(info)
    text = resolve_settings(str(info.trigger.get("schedule", "")), environ)
    if ":" in text:
        raise TriggerConfigError(
            f"schedule {text!r} is a TimeSpan; the local host runs NCRONTAB schedules only"
        )
    try:
        schedule = ncrontab.parse(text)
    except ncrontab.CronError as exc:
        raise TriggerConfigError(f"schedule {text!r}: {exc}") from None
    return TimerFunction(info, arg_name, schedule, bool(info.trigger.get("runOnStartup", False)))


class TimerRunner(TriggerRunner):
    """Runs one timer function on schedule (after :meth:`start`) or now (:meth:`run_now`)."""

    def __init__(
        self,
        function: TimerFunction,
        loop: EventLoopThread,
        *,
        clock: Clock = utc_now,
        max_sleep: float = MAX_SLEEP_SECONDS,
    ) -> None:
        name = function.name
        super().__init__(f"devhost-timer-{name}", f"the timer of {name}")
        self.function = function
        self._loop = loop
        self._clock = clock
        self._max_sleep = max_sleep
        self._last: datetime | None = None

    def next_occurrence(self) -> datetime | None:
        return self.function.schedule.next_after(self._clock())

    def run_now(self) -> None:
        """One run outside the schedule, never past due (the admin API's run)."""
        self._invoke("admin", scheduled=None, past_due=False)

    def _run(self) -> None:
        if self.function.run_on_startup:
            self._invoke("timer", scheduled=None, past_due=False)
        due = self.function.schedule.next_after(self._clock())
        while due is not None and self._sleep_until(due):
            late = (self._clock() - due).total_seconds()
            self._invoke("timer", scheduled=due, past_due=late > PAST_DUE_AFTER_SECONDS)
            self._last = due
            due = self.function.schedule.next_after(max(self._clock(), due))
        if due is None:
            logger.warning("timer %s: the schedule has no further occurrence", self.function.name)

    def _sleep_until(self, due: datetime) -> bool:
        """Wait for ``due``; False when the runner is stopped first."""
        while (remaining := (due - self._clock()).total_seconds()) > 0:
            if self._stop.wait(min(remaining, self._max_sleep)):
                return False
        return not self._stop.is_set()

    def _invoke(self, trigger: str, *, scheduled: datetime | None, past_due: bool) -> None:
        now = self._clock()
        status = {"LastUpdated": iso_z(now)}
        following = self.function.schedule.next_after(scheduled or now)
        if following is not None:
            status["Next"] = iso_z(following)
        if self._last is not None:
            status["Last"] = iso_z(self._last)
        request = func.timer.TimerRequest(
            past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
        )
        outcome = call_function(self.function.info, self.function.arg_name, request, self._loop)
        log_invocation(self.function.name, trigger, outcome, failed(outcome))
