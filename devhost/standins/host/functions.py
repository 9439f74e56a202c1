"""Index the functions of a ``FunctionApp`` from their binding metadata, as the host does.

Everything is read from the same binding dictionaries the SDK writes into ``function.json``
(``Function.get_function_json()``), so the local host sees exactly what Azure would see.
Every function is indexed, whatever its trigger: the HTTP router uses the HTTP ones, and
trigger modules added later (blob, timer) pick theirs from the same list.

A function whose metadata this host cannot serve gets a ``problem`` instead of failing the
whole host, as the real host marks one function "in error" and keeps serving the others.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from .routes import RouteTemplate, RouteTemplateError, parse_template

logger = logging.getLogger("devhost.host")

HTTP_TRIGGER = "httptrigger"
HTTP_OUTPUT = "http"
RETURN_BINDING = "$return"
DEFAULT_ROUTE_PREFIX = "api"
RESERVED_PREFIX = "admin"  # the host's own API; Azure refuses routes that start with it


class HostConfigError(Exception):
    """host.json cannot be read or has a setting of the wrong type."""


class UnsupportedFunction(ValueError):
    """A function whose bindings or signature this local host cannot serve faithfully."""


@dataclass(frozen=True)
class FunctionInfo:
    """One registered function: its name, trigger binding, other bindings and the handler."""

    name: str
    trigger: Mapping[str, Any]
    bindings: tuple[Mapping[str, Any], ...]
    handler: Callable[..., Any]

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type", ""))


@dataclass(frozen=True)
class HttpFunction:
    """An HTTP-trigger function ready to route: template, methods, and its argument name."""

    info: FunctionInfo
    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    auth_level: str
    arg_name: str

    @property
    def name(self) -> str:
        return self.info.name

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods


@dataclass(frozen=True)
class FunctionProblem:
    """A function this host indexed but will not run, and why (shown at start-up)."""

    info: FunctionInfo
    reason: str


def index_functions(functions: Iterable[func.Function]) -> list[FunctionInfo]:
    """The functions as the host indexes them (``FunctionApp.get_functions()`` results)."""
    indexed = []
    for function in functions:
        metadata = json.loads(function.get_function_json())
        bindings = tuple(metadata.get("bindings", []))
        trigger: dict[str, Any] = next(
            (b for b in bindings if str(b.get("type", "")).endswith("Trigger")), {}
        )
        name = function.get_function_name()
        indexed.append(FunctionInfo(str(name), trigger, bindings, function.get_user_function()))
    return indexed


def route_prefix(host_json: Path | None) -> str:
    """``extensions.http.routePrefix`` from host.json; ``api`` when unset, as in Azure."""
    if host_json is None or not host_json.exists():
        return DEFAULT_ROUTE_PREFIX
    try:
        config = json.loads(host_json.read_text(encoding="utf-8"))
        prefix = config.get("extensions", {}).get("http", {}).get("routePrefix")
    except (OSError, ValueError, AttributeError) as exc:
        raise HostConfigError(f"cannot read {host_json}: {exc}") from None
    if prefix is None:
        return DEFAULT_ROUTE_PREFIX
    if not isinstance(prefix, str):
        raise HostConfigError(f"{host_json}: extensions.http.routePrefix must be a string")
    return prefix


def http_functions(
    infos: Iterable[FunctionInfo], prefix: str
) -> tuple[list[HttpFunction], list[FunctionProblem]]:
    """The HTTP-trigger functions that can be served, and the ones that cannot (with why)."""
    served: list[HttpFunction] = []
    problems: list[FunctionProblem] = []
    for info in infos:
        if info.trigger_type.lower() != HTTP_TRIGGER:
            continue
        try:
            served.append(_http_function(info, prefix))
        except (RouteTemplateError, UnsupportedFunction) as exc:
            problems.append(FunctionProblem(info, str(exc)))
    problems.extend(_duplicates(served))
    bad = {id(p.info) for p in problems}
    return [f for f in served if id(f.info) not in bad], problems


def _http_function(info: FunctionInfo, prefix: str) -> HttpFunction:
    trigger = info.trigger
    # Only a missing route means the function's name: an empty one is the prefix itself (the
    # site root when routePrefix is empty, where PyPI's upload API lives).
    route = info.name if trigger.get("route") is None else str(trigger["route"])
    if any(part.strip("/").lower().startswith(RESERVED_PREFIX) for part in (prefix, route)):
        raise UnsupportedFunction(
            f"route {route!r} conflicts with the host's built-in /{RESERVED_PREFIX} routes"
        )
    template = parse_template(route, prefix)
    arg_name = str(trigger.get("name", "req"))
    _check_bindings(info, arg_name)
    methods = trigger.get("methods")
    return HttpFunction(
        info=info,
        template=template,
        methods=frozenset(str(m).upper() for m in methods) if methods else None,
        auth_level=str(trigger.get("authLevel", "FUNCTION")).upper(),
        arg_name=arg_name,
    )


def _check_bindings(info: FunctionInfo, arg_name: str) -> None:
    """Refuse what this host would get wrong: other bindings, or arguments it cannot fill."""
    for binding in info.bindings:
        if binding is info.trigger:
            continue
        kind, name = str(binding.get("type", "")), str(binding.get("name", ""))
        if kind.lower() != HTTP_OUTPUT or name != RETURN_BINDING:
            raise UnsupportedFunction(
                f"binding {name!r} ({kind}) is not supported by the local host; "
                "return the HttpResponse instead"
            )
    try:
        parameters = inspect.signature(info.handler).parameters.values()
    except (TypeError, ValueError):
        return  # not introspectable (a C function?): call it and see
    for parameter in parameters:
        needs_value = parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )
        if parameter.name != arg_name and needs_value:
            raise UnsupportedFunction(
                f"parameter {parameter.name!r} has no binding this local host can fill"
            )


def _duplicates(served: list[HttpFunction]) -> list[FunctionProblem]:
    """A later function on the same route and method as an earlier one is refused, as in Azure."""
    problems = []
    for index, function in enumerate(served):
        for earlier in served[:index]:
            same_route = function.template.signature == earlier.template.signature
            if same_route and _methods_overlap(function.methods, earlier.methods):
                reason = f"route {function.template.text!r} is already served by {earlier.name!r}"
                problems.append(FunctionProblem(function.info, reason))
                break
    return problems


def _methods_overlap(first: frozenset[str] | None, second: frozenset[str] | None) -> bool:
    return first is None or second is None or bool(first & second)
