"""The endpoint that serves HTTP-trigger functions at their routes.

Matching picks the most specific template (see ``routes``); a path that some function serves,
but not with this method, is a 405 with ``Allow``, as ASP.NET Core answers. A catch-all
template is left out of that: it matches every path, and a 405 for every unknown URL would
claim a resource where there is none (a path only catch-alls of other methods match is a
404; Azure answers 404 to every method mismatch). A function that
raises, or returns something unsendable, is a 500 whose body says nothing about the error: the
traceback goes to the log only, because exception texts can carry tokens or storage URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .functions import HttpFunction
from .invoke import EventLoopThread, build_request, call, to_response
from .messages import HostRequest, HostResponse, error_response
from .routes import PathError, split_path

logger = logging.getLogger("devhost.host")


class FunctionRouter:
    """Answers requests whose path belongs to an HTTP-trigger function; ``None`` otherwise."""

    def __init__(self, functions: Iterable[HttpFunction], loop: EventLoopThread) -> None:
        # Stable sort: equally specific templates keep their registration order.
        self._functions = sorted(functions, key=lambda f: f.template.precedence)
        self._loop = loop

    def handle(self, request: HostRequest) -> HostResponse | None:
        try:
            path = split_path(request.path)
        except PathError as exc:
            return error_response(400, "bad-path", str(exc))
        matches = [
            (f, params) for f in self._functions if (params := f.template.match(path)) is not None
        ]
        if not matches:
            return None
        for function, params in matches:
            if function.allows(request.method):
                return self._invoke(function, params, request)
        matches = [(f, params) for f, params in matches if not f.template.is_catch_all]
        if not matches:
            return None
        allowed = sorted({m for f, _ in matches for m in f.methods or ()})
        response = error_response(
            405,
            "method-not-allowed",
            f"{request.method} is not allowed here",
            headers=[("Allow", ", ".join(allowed))],
        )
        response.function = matches[0][0].name
        return response

    def _invoke(
        self, function: HttpFunction, params: dict[str, str], request: HostRequest
    ) -> HostResponse:
        try:
            result = call(function, build_request(request, params), self._loop)
            return to_response(result, function.name)
        except Exception:
            logger.exception("function %s failed", function.name)
            response = error_response(500, "internal", "the function failed; see the host log")
            response.function = function.name
            return response
