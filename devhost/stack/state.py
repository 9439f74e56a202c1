"""``.local/stack.json``: where a running stack's services are, for the `wheelvault` command.

The supervisor writes it once every child is ready, rewrites it after restarting a child and
removes it on a clean stop, always atomically (temp file + ``os.replace``): a reader sees the
old file or the new one, never half of one. It holds the well-known Azurite development key
(public, the same for every Azurite) and no token.

A supervisor that was killed outright leaves the file behind, so a reader checks it is live
with :func:`is_live`: the pid is alive, and on Linux it is the same process that wrote the
file (``boot`` is the kernel's boot id and ``pid_start`` the process start time in clock
ticks, from ``/proc``; a pid reused after a reboot or a restart of the supervisor differs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

VERSION = 1
FILE_NAME = "stack.json"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Replace `path` with `document` atomically (the temp file sits next to it): the stack's
    state, and the settings file it hands the host."""
    write_text(path, json.dumps(document, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def this_process() -> dict[str, Any]:
    """The fields that identify the writing process: pid, boot and pid_start."""
    pid = os.getpid()
    return {"version": VERSION, "pid": pid, "boot": boot_id(), "pid_start": start_ticks(pid)}


def read_live_state(local: Path) -> dict[str, Any] | None:
    """The state in ``local/stack.json`` when a live stack wrote it; None otherwise."""
    try:
        state = json.loads((local / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and is_live(state) else None


def is_live(state: Mapping[str, Any]) -> bool:
    """Whether the process that wrote `state` is still running (the file is not stale)."""
    pid = state.get("pid")
    if state.get("version") != VERSION or not isinstance(pid, int) or pid <= 0:
        return False
    if not _alive(pid):
        return False
    # Where /proc tells (Linux), the same pid must also be the same process.
    for field, current in (("boot", boot_id()), ("pid_start", start_ticks(pid))):
        written = state.get(field)
        if written is not None and current is not None and written != current:
            return False
    return True


def boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat``: when the process started, in clock ticks after boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and the start-time check decides
    return True
