"""Route templates of HTTP-trigger functions, matched the way the Functions host matches them.

The real host hands templates to ASP.NET Core routing. This module implements the subset our
functions (and reasonable future ones) use, and refuses anything else when the function is
loaded, so a template never silently means something different locally:

* literal segments, compared case-insensitively;
* ``{name}`` - one non-empty path segment, never containing the ``/`` separator;
* ``{name?}`` - optional; only trailing segments may be optional (as in ASP.NET Core);
* ``{*name}`` / ``{**name}`` - catch-all, last segment only, takes the rest of the path
  (``/`` included) and may be empty;
* constraints after the name, chained with ``:``: ``int``, ``long``, ``alpha``, ``bool``,
  ``guid`` (e.g. ``{id:int}``, ``{id:int?}``).

Paths are split on ``/`` before each segment is percent-decoded, so ``%2F`` can never create
a new segment; the decoded value (which may then hold ``/``, ``..`` or ``\\``) is passed to the
function as is and the function must refuse it. (ASP.NET Core instead keeps ``%2F`` encoded in
the value; decoding it here means a function that refuses ``/`` also refuses ``%2F``.) Literal
``.`` and ``..`` segments in the raw path are resolved before routing, as the real host
normalises paths; percent-encoded dots are not, so ``%2E%2E`` reaches the function as ``..``.
One trailing slash is ignored; empty segments (``a//b``) match only a catch-all. A segment that
does not decode as UTF-8 is a 400.

When several templates match a path, the most specific wins, as in ASP.NET Core: per segment,
literal before constrained parameter before parameter before optional before catch-all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import unquote_to_bytes


class RouteTemplateError(ValueError):
    """A route template this host cannot serve faithfully; the message names the problem."""


class PathError(ValueError):
    """A request path that cannot be decoded (percent-escapes that are not UTF-8)."""


class _Kind(IntEnum):
    """Segment kinds, in the order ASP.NET Core prefers them when several routes match."""

    LITERAL = 1
    CONSTRAINED = 2
    PARAMETER = 3
    OPTIONAL = 4
    CATCH_ALL = 5


_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ALPHA = re.compile(r"[A-Za-z]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _in_range(bounds: tuple[int, int]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        return bool(_INTEGER.fullmatch(value)) and bounds[0] <= int(value) <= bounds[1]

    return check


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _in_range(_INT32),
    "long": _in_range(_INT64),
    "alpha": lambda value: bool(_ALPHA.fullmatch(value)),
    "bool": lambda value: value.lower() in ("true", "false"),
    "guid": _is_guid,
}


@dataclass(frozen=True)
class Segment:
    """One ``/``-separated piece of a template: a literal or a parameter."""

    kind: _Kind
    text: str  # the literal, or the parameter's name
    constraints: tuple[str, ...] = ()

    def accepts(self, value: str) -> bool:
        return all(CONSTRAINTS[name](value) for name in self.constraints)

    def signature(self) -> str:
        """What the segment matches, ignoring parameter names (to spot duplicate routes)."""
        if self.kind is _Kind.LITERAL:
            return self.text.lower()
        return f"{{{self.kind.name}:{':'.join(self.constraints)}}}"


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed template; :meth:`match` turns decoded path segments into route parameters."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: lower sorts first and wins when several templates match one path."""
        return tuple(int(segment.kind) for segment in self.segments)

    @property
    def signature(self) -> str:
        return "/".join(segment.signature() for segment in self.segments)

    def match(self, path: Sequence[str]) -> dict[str, str] | None:
        """Route parameters if ``path`` (decoded segments) fits, else ``None``.

        Optional and catch-all parameters that received nothing are left out of the result (and
        so out of ``req.route_params``) rather than set to an empty string.
        """
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.kind is _Kind.CATCH_ALL:
                rest = "/".join(path[index:])
                if rest and not segment.accepts(rest):
                    return None
                if rest:
                    values[segment.text] = rest
                return values
            if index >= len(path):
                return values if segment.kind is _Kind.OPTIONAL else None
            if not _segment_matches(segment, path[index], values):
                return None
        return values if len(path) == len(self.segments) else None


def _segment_matches(segment: Segment, value: str, values: dict[str, str]) -> bool:
    if segment.kind is _Kind.LITERAL:
        return value.lower() == segment.text.lower()
    if not value or not segment.accepts(value):
        return False
    values[segment.text] = value
    return True


def parse_template(route: str, prefix: str = "") -> RouteTemplate:
    """Parse ``prefix/route`` (``host.json``'s routePrefix, then the function's route)."""
    text = "/".join(part.strip("/") for part in (prefix, route) if part.strip("/"))
    raw_segments = text.split("/") if text else []
    segments = tuple(_parse_segment(raw, text) for raw in raw_segments)
    _check_order(segments, text)
    names = [s.text for s in segments if s.kind is not _Kind.LITERAL]
    duplicates = sorted({name.lower() for name in names if names.count(name) > 1})
    if duplicates:
        raise RouteTemplateError(f"route {text!r} repeats parameter {duplicates[0]!r}")
    return RouteTemplate(text=text, segments=segments)


def _parse_segment(raw: str, template: str) -> Segment:
    if not raw:
        raise RouteTemplateError(f"route {template!r} has an empty segment")
    if not (raw.startswith("{") and raw.endswith("}")):
        if "{" in raw or "}" in raw:
            raise RouteTemplateError(
                f"route {template!r}: segment {raw!r} mixes text and parameters, "
                "which this local host does not support"
            )
        return Segment(_Kind.LITERAL, raw)
    return _parse_parameter(raw[1:-1], template)


def _parse_parameter(body: str, template: str) -> Segment:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    body = body.removesuffix("?")
    name, *named = body.split(":")
    constraints = [c.lower() for c in named]  # constraint names are case-insensitive
    if "=" in name:
        raise RouteTemplateError(f"route {template!r}: default values are not supported")
    if not _NAME.fullmatch(name):
        raise RouteTemplateError(f"route {template!r}: {name!r} is not a parameter name")
    unknown = [c for c in constraints if c not in CONSTRAINTS]
    if unknown:
        supported = ", ".join(sorted(CONSTRAINTS))
        raise RouteTemplateError(
            f"route {template!r}: constraint {unknown[0]!r} is not supported "
            f"(supported: {supported})"
        )
    if catch_all and optional:
        raise RouteTemplateError(f"route {template!r}: a catch-all parameter cannot be optional")
    kind = _parameter_kind(catch_all, optional, bool(constraints))
    return Segment(kind, name, tuple(constraints))


def _parameter_kind(catch_all: bool, optional: bool, constrained: bool) -> _Kind:
    if catch_all:
        return _Kind.CATCH_ALL
    if optional:
        return _Kind.OPTIONAL
    return _Kind.CONSTRAINED if constrained else _Kind.PARAMETER


def _check_order(segments: Sequence[Segment], template: str) -> None:
    """Catch-all only last; once a segment is optional, every later one must be too."""
    seen_optional = False
    for index, segment in enumerate(segments):
        if segment.kind is _Kind.CATCH_ALL and index != len(segments) - 1:
            raise RouteTemplateError(f"route {template!r}: a catch-all must be the last segment")
        if seen_optional and segment.kind not in (_Kind.OPTIONAL, _Kind.CATCH_ALL):
            raise RouteTemplateError(f"route {template!r}: only trailing segments may be optional")
        seen_optional = seen_optional or segment.kind is _Kind.OPTIONAL


def split_path(raw_path: str) -> list[str]:
    """Decoded segments of a raw request path (as sent, percent-encoded, no query).

    ``raw_path`` is the request target as ``http.server`` gives it (bytes read as Latin-1), so
    encoding it back to Latin-1 recovers the bytes the client sent. Empty segments (``a//b``)
    are kept: they match no literal and no parameter, only a catch-all.
    """
    raw_segments = _remove_dot_segments(raw_path.removeprefix("/").split("/"))
    if raw_segments and raw_segments[-1] == "":
        raw_segments.pop()  # one trailing slash is not significant
    try:
        return [unquote_to_bytes(s.encode("latin-1")).decode("utf-8") for s in raw_segments]
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        raise PathError("the request path is not valid percent-encoded UTF-8") from exc


def _remove_dot_segments(parts: Sequence[str]) -> list[str]:
    """Resolve literal ``.`` and ``..`` segments; percent-encoded dots are left for the function.

    ``..`` never climbs above the root, as in RFC 3986 section 5.2.4.
    """
    segments: list[str] = []
    for part in parts:
        if part == "..":
            if segments:
                segments.pop()
        elif part != ".":
            segments.append(part)
    return segments
