"""Route templates of HTTP-trigger functions, matched the way the Functions host matches them.

The real host hands templates to ASP.NET Core routing. This module implements only what the
app's routes need (``simple/{project}``, ``files/{project}/{filename}``, ``health``, the
upload API's root catch-all ``{*path}``, ...) and refuses anything else when the function is
loaded, so a template never silently means something different locally:

* literal segments, compared case-insensitively;
* ``{name}`` - one non-empty path segment, never containing the ``/`` separator;
* ``{*name}`` as the last segment - a catch-all: the rest of the path, zero or more
  non-empty segments joined with ``/`` (so ``{*path}`` alone also matches the root ``/``,
  with an empty value, as in ASP.NET Core).

Optional (``{name?}``), ``{**name}`` and constrained (``{id:int}``) parameters, a catch-all
before the last segment, defaults and segments mixing text and parameters are a
:class:`RouteTemplateError`. An empty template (with an empty ``routePrefix``) is the root
path ``/``.

Paths are split on ``/`` before each segment is percent-decoded, so ``%2F`` can never create
a new segment; the decoded value (which may then hold ``/``, ``..`` or ``\\``) is passed to the
function as is and the function must refuse it. (ASP.NET Core instead keeps ``%2F`` encoded in
the value; decoding it here means a function that refuses ``/`` also refuses ``%2F``.) Literal
``.`` and ``..`` segments in the raw path are resolved before routing, as the real host
normalises paths; percent-encoded dots are not, so ``%2E%2E`` reaches the function as ``..``.
One trailing slash is ignored; empty segments (``a//b``) match nothing. A segment that does
not decode as UTF-8 is a 400.

When several templates match a path, the most specific wins, as in ASP.NET Core: per segment,
a literal before a parameter, and a parameter before a catch-all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes


class RouteTemplateError(ValueError):
    """A route template this host cannot serve faithfully; the message names the problem."""


class PathError(ValueError):
    """A request path that cannot be decoded (percent-escapes that are not UTF-8)."""


_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)\}")
# Lower wins when several templates match one path.
_LITERAL_RANK, _PARAMETER_RANK, _CATCH_ALL_RANK = 1, 2, 3


@dataclass(frozen=True)
class Segment:
    """One ``/``-separated piece of a template: a literal, or the name of a parameter (a
    catch-all parameter takes the rest of the path)."""

    text: str
    is_parameter: bool
    catch_all: bool = False

    @property
    def rank(self) -> int:
        if self.catch_all:
            return _CATCH_ALL_RANK
        return _PARAMETER_RANK if self.is_parameter else _LITERAL_RANK

    def accepts(self, value: str) -> bool:
        """A parameter takes any non-empty segment; a literal only itself, in any case."""
        return bool(value) if self.is_parameter else value.lower() == self.text.lower()

    def signature(self) -> str:
        """What the segment matches, ignoring parameter names (to spot duplicate routes)."""
        if self.is_parameter:
            return "{*}" if self.catch_all else "{}"
        return self.text.lower()


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed template; :meth:`match` turns decoded path segments into route parameters."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: lower sorts first and wins when several templates match one path."""
        return tuple(segment.rank for segment in self.segments)

    @property
    def is_catch_all(self) -> bool:
        """Whether the template ends in a catch-all (and so matches paths of any length)."""
        return bool(self.segments) and self.segments[-1].catch_all

    @property
    def signature(self) -> str:
        return "/".join(segment.signature() for segment in self.segments)

    def match(self, path: Sequence[str]) -> dict[str, str] | None:
        """Route parameters if ``path`` (decoded segments) fits, else ``None``."""
        rest = self.segments[-1] if self.is_catch_all else None
        fixed = self.segments[:-1] if rest is not None else self.segments
        if len(path) < len(fixed) or (rest is None and len(path) != len(fixed)):
            return None
        values: dict[str, str] = {}
        for segment, value in zip(fixed, path, strict=False):
            if not segment.accepts(value):
                return None
            if segment.is_parameter:
                values[segment.text] = value
        if rest is not None:
            remainder = path[len(fixed) :]
            if not all(remainder):  # an empty segment (a//b) is no value, here as anywhere
                return None
            values[rest.text] = "/".join(remainder)
        return values


def parse_template(route: str, prefix: str = "") -> RouteTemplate:
    """Parse ``prefix/route`` (``host.json``'s routePrefix, then the function's route)."""
    text = "/".join(part.strip("/") for part in (prefix, route) if part.strip("/"))
    segments = tuple(_parse_segment(raw, text) for raw in (text.split("/") if text else []))
    if any(segment.catch_all for segment in segments[:-1]):
        raise RouteTemplateError(f"route {text!r}: a catch-all parameter must be the last segment")
    names = [s.text for s in segments if s.is_parameter]
    repeated = sorted({name.lower() for name in names if names.count(name) > 1})
    if repeated:
        raise RouteTemplateError(f"route {text!r} repeats parameter {repeated[0]!r}")
    return RouteTemplate(text=text, segments=segments)


def _parse_segment(raw: str, template: str) -> Segment:
    if not raw:
        raise RouteTemplateError(f"route {template!r} has an empty segment")
    parameter = _PARAMETER.fullmatch(raw)
    if parameter:
        return Segment(parameter[2], is_parameter=True, catch_all=bool(parameter[1]))
    if "{" in raw or "}" in raw:
        raise RouteTemplateError(
            f"route {template!r}: segment {raw!r} is not supported by the local host, which "
            "serves literal segments, {name} parameters and a last {*name} only"
        )
    return Segment(raw, is_parameter=False)


def split_path(raw_path: str) -> list[str]:
    """Decoded segments of a raw request path (as sent, percent-encoded, no query).

    ``raw_path`` is the request target as ``http.server`` gives it (bytes read as Latin-1), so
    encoding it back to Latin-1 recovers the bytes the client sent. Empty segments (``a//b``)
    are kept: they match no literal and no parameter.
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
