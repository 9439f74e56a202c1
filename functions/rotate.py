"""Timer trigger: rotate the access tokens that are due and keep their index-URL secrets current."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.services.wiring import get_services

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves __init__ unannotated

SCHEDULE_SETTING = "WHEELVAULT_ROTATION_SCHEDULE"

log = logging.getLogger("wheelvault.rotate")


@bp.function_name("rotate_tokens")
@bp.timer_trigger(arg_name="timer", schedule=f"%{SCHEDULE_SETTING}%", run_on_startup=False)
def rotate_tokens(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("rotation timer is past due; running now")
    report = get_services().tokens.rotate_due()
    if report.failed:
        # Raising marks the invocation failed (alerts see it); every other token was handled.
        raise RuntimeError(f"rotation failed for {len(report.failed)} token(s); see the log")
