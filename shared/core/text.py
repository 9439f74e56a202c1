"""How upload checks show hostile values in messages: one bounded, printable line.

Every name, path and header value in a message comes from the upload, so it is shown
through these and never as is: a message goes into logs, HTTP responses and records.
"""

from __future__ import annotations

_SHOW_LIMIT = 100
_MESSAGE_LIMIT = 500


def is_control(ch: str) -> bool:
    """C0 controls, DEL and C1 controls."""
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


def show(value: str) -> str:
    """repr() of a possibly hostile value, cut short: always one bounded printable line."""
    shown = repr(value[:_SHOW_LIMIT])
    return shown if len(value) <= _SHOW_LIMIT else f"{shown}... ({len(value)} characters)"


def show_list(values: list[str], limit: int = 5) -> str:
    shown = ", ".join(show(value) for value in values[:limit])
    return shown if len(values) <= limit else f"{shown} and {len(values) - limit} more"


def one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """Escape anything non-printable and cut to ``limit`` characters."""
    escaped = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


def problem_list(prefix: str, problems: list[str]) -> str:
    return one_line(f"{prefix}: " + "; ".join(problems))


def bounded(lines: list[str], limit: int) -> tuple[str, ...]:
    """At most ``limit`` lines, each one bounded line, then a count of the rest: for the
    warnings that go into a record."""
    kept = [one_line(text) for text in lines[:limit]]
    if len(lines) > limit:
        kept.append(f"... and {len(lines) - limit} more warnings")
    return tuple(kept)
