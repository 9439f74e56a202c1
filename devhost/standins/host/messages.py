"""Transport-neutral request and response types shared by the server and the endpoints.

The HTTP server (``server.py``) turns bytes on a socket into a :class:`HostRequest` and a
:class:`HostResponse` back into bytes; endpoints (the function router today, the admin endpoint
later) only ever see these two types, so they can be added without touching the transport.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class HostRequest:
    """One request with its body fully read.

    ``path`` and ``query`` are raw: exactly as the client sent them (percent-encoding kept),
    so routing decides how to decode and the function sees the URL that was requested.
    """

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    base_url: str  # scheme://host[:port] as the client addressed the host

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}" + (f"?{self.query}" if self.query else "")


@dataclass
class HostResponse:
    """What goes back to the client; ``function`` names who produced it, for the request log."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    function: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), if any."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


class Endpoint(Protocol):
    """Something that may answer a request; ``None`` means "not mine, ask the next one"."""

    def handle(self, request: HostRequest) -> HostResponse | None: ...


def error_response(
    status: int, code: str, message: str, *, headers: list[tuple[str, str]] | None = None
) -> HostResponse:
    """The host's own errors: a small JSON body, never an exception text or a traceback."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
    all_headers = [("Content-Type", "application/json; charset=utf-8"), *(headers or [])]
    return HostResponse(status=status, headers=all_headers, body=body)
