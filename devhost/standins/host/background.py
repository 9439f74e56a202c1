"""The host's non-HTTP side: blob watchers and timers, planned once, started and stopped together.

Planning happens when the host is built, after the settings file is in the environment, so a
function whose trigger cannot run (a missing ``%SETTING%``, no connection string, a bad
schedule, an unsupported trigger type) is reported as a problem next to the HTTP ones and the
rest of the host runs regardless, as Azure marks one function in error and runs the others.
Watchers and timers exist even when they are not started, so the admin API can run their
functions on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from shared.core.clock import iso_z

from .blobs import BLOB_TRIGGER, BlobFunction, BlobOptions, plan_blob
from .functions import HTTP_TRIGGER, FunctionInfo, FunctionProblem
from .invoke import EventLoopThread
from .timers import TIMER_TRIGGER, TimerFunction, TimerRunner, plan_timer
from .triggers import TriggerConfigError, TriggerRunner
from .watcher import BlobWatcher


class Background:
    """Every blob and timer function of one host, and the threads that run them."""

    def __init__(
        self,
        infos: Iterable[FunctionInfo],
        environ: Mapping[str, str],
        loop: EventLoopThread,
        blob_options: BlobOptions,
        *,
        blobs: bool,
        timers: bool,
    ) -> None:
        blob_functions: list[BlobFunction] = []
        timer_functions: list[TimerFunction] = []
        problems: list[FunctionProblem] = []
        for info in infos:
            kind = info.trigger_type.lower()
            try:
                if kind == HTTP_TRIGGER:
                    continue
                if kind == BLOB_TRIGGER:
                    blob_functions.append(plan_blob(info, environ))
                elif kind == TIMER_TRIGGER:
                    timer_functions.append(plan_timer(info, environ))
                else:
                    trigger = info.trigger_type or "a function without a trigger"
                    problems.append(FunctionProblem(info, f"{trigger} is not supported locally"))
            except TriggerConfigError as exc:
                problems.append(FunctionProblem(info, str(exc)))
        self.problems = tuple(problems)
        self.watchers = tuple(BlobWatcher(f, loop, blob_options) for f in blob_functions)
        self.timers = tuple(TimerRunner(f, loop) for f in timer_functions)
        self._watching, self._timing = blobs, timers

    def start(self) -> None:
        """Start the watchers and timers that are switched on."""
        for watcher in self.watchers if self._watching else ():
            watcher.start()
        for timer in self.timers if self._timing else ():
            timer.start()

    def stop(self) -> None:
        """Signal every thread, then wait: stopping takes the slowest one's time, not the sum."""
        runners: list[TriggerRunner] = [*self.timers, *self.watchers]
        for runner in runners:
            runner.request_stop()
        for runner in runners:
            runner.stop()

    def describe(self, info: FunctionInfo) -> str | None:
        """The listing line's text for a blob or timer function (as run once the host has
        started); None for any other function."""
        for watcher in self.watchers:
            if watcher.function.info is info:
                function = watcher.function
                state = (
                    f"watching container {function.container}"
                    if self._watching
                    else f"not watched: blob triggers are off; {_admin_hint(info)}"
                )
                return f"blobTrigger {function.path} ({state})"
        for timer in self.timers:
            if timer.function.info is info:
                schedule = f'timerTrigger schedule "{timer.function.schedule.text}" UTC'
                if not self._timing:
                    return f"{schedule} (not scheduled: timers are off; {_admin_hint(info)})"
                return f"{schedule} (next {_iso(timer.next_occurrence())})"
        return None


def _admin_hint(info: FunctionInfo) -> str:
    return f"POST /admin/functions/{info.name} runs it"


def _iso(moment: datetime | None) -> str:
    return "never" if moment is None else iso_z(moment)
