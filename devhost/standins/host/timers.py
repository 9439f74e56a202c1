"""Timer-trigger functions, run on their NCRONTAB schedule from one thread each.

A function gets a real ``azure.functions.TimerRequest``. ``past_due`` is true when the run
starts more than ``past_due_after`` seconds (1 s) after its scheduled time: after the process
was paused, the machine slept, or the previous run overran. Occurrences missed meanwhile are
not caught up one by one; as in Azure, there is one late run and the schedule carries on.
Runs of one function never overlap (Azure holds a singleton lock for the same reason).
``runOnStartup`` runs the function once when the host starts.

The thread sleeps in short slices and re-reads the wall clock each time, so a paused process
or a clock that jumps still runs the function promptly when it wakes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import azure.functions as func

from . import ncrontab
from .functions import FunctionInfo
from .invoke import EventLoopThread
from .triggers import (
    Outcome,
    TriggerConfigError,
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


def utc_now() -> datetime:
    return datetime.now(UTC)


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


class TimerRunner:
    """Runs one timer function on schedule (after :meth:`start`) or now (:meth:`run_now`)."""

    def __init__(
        self,
        function: TimerFunction,
        loop: EventLoopThread,
        *,
        clock: Clock = utc_now,
        past_due_after: float = PAST_DUE_AFTER_SECONDS,
        max_sleep: float = MAX_SLEEP_SECONDS,
    ) -> None:
        self.function = function
        self._loop = loop
        self._clock = clock
        self._past_due_after = past_due_after
        self._max_sleep = max_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: datetime | None = None

    def next_occurrence(self) -> datetime | None:
        return self.function.schedule.next_after(self._clock())

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"the timer of {self.function.name} is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"devhost-timer-{self.function.name}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to end without waiting for it (:meth:`stop` waits)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop scheduling; a run in progress finishes first (the thread is joined)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def run_now(self, trigger: str = "admin") -> Outcome:
        """One run outside the schedule, never past due (the admin API's run)."""
        return self._invoke(trigger, scheduled=None, past_due=False)

    def _run(self) -> None:
        if self.function.run_on_startup:
            self._invoke("timer", scheduled=None, past_due=False)
        due = self.function.schedule.next_after(self._clock())
        while due is not None and self._sleep_until(due):
            late = (self._clock() - due).total_seconds()
            self._invoke("timer", scheduled=due, past_due=late > self._past_due_after)
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

    def _invoke(self, trigger: str, *, scheduled: datetime | None, past_due: bool) -> Outcome:
        now = self._clock()
        status = {"LastUpdated": _iso(now)}
        following = self.function.schedule.next_after(scheduled or now)
        if following is not None:
            status["Next"] = _iso(following)
        if self._last is not None:
            status["Last"] = _iso(self._last)
        request = func.timer.TimerRequest(
            past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
        )
        outcome = call_function(self.function.info, self.function.arg_name, request, self._loop)
        log_invocation(self.function.name, trigger, outcome, failed(outcome))
        return outcome


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
