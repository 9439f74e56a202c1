"""The upload's name: a safe blob name first, then a valid wheel filename, parsed."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import packaging.tags
import packaging.utils
import packaging.version
from packaging.utils import InvalidWheelFilename

from shared.core.errors import RejectCode, Rejection
from shared.core.text import is_control, one_line, show

MAX_BLOB_NAME_LENGTH: int = 255


@dataclass(frozen=True)
class WheelName:
    """A blob name that is a valid wheel filename, parsed."""

    filename: str
    project: packaging.utils.NormalizedName
    version: packaging.version.Version
    build: packaging.utils.BuildTag
    tags: frozenset[packaging.tags.Tag]


# Every character any valid wheel filename can hold: the escaped name and tags are
# [A-Za-z0-9._], versions add "!" (epoch) and "+" (local), "-" separates the parts.
_WHEEL_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "._-+!")
# One pass over the common case: a name made only of those characters, not starting with "."
# and without "..", passes every check of _blob_name_problem (upstream pages check thousands).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_+!-][A-Za-z0-9._+!-]*")
_SDIST_SUFFIXES = (
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
    ".tar.zst",
    ".tar.z",
    ".tar",
    ".zip",
)


def check_upload_name(name: str) -> WheelName:
    """Check that a blob name is safe to use as a path and is a valid wheel filename.

    The name later becomes part of storage paths and index pages, so anything that could
    act as a path, hide in a listing or break a line is refused before it is looked at
    as a wheel name at all.
    """
    check_blob_name(name)
    if not name.endswith(".whl"):
        raise Rejection(RejectCode.NOT_A_WHEEL, _not_a_wheel_message(name))
    try:
        project, version, build, tags = packaging.utils.parse_wheel_filename(name)
    except InvalidWheelFilename as exc:
        raise Rejection(
            RejectCode.INVALID_WHEEL_FILENAME,
            f"{show(name)} is not a valid wheel filename: {one_line(str(exc))}",
        ) from exc
    return WheelName(filename=name, project=project, version=version, build=build, tags=tags)


def check_blob_name(name: str) -> None:
    """Refuse names that are not one bare, printable-ASCII path component (the first check of
    every upload, wheel or sdist: `shared.core.distribution.check_upload_name`)."""
    problem = _blob_name_problem(name)
    if problem is not None:
        raise Rejection(RejectCode.BAD_FILENAME, problem)


def _blob_name_problem(name: str) -> str | None:
    if len(name) <= MAX_BLOB_NAME_LENGTH and _PLAIN_NAME.fullmatch(name) and ".." not in name:
        return None
    if not name:
        return "the upload name is empty"
    if len(name) > MAX_BLOB_NAME_LENGTH:
        return (
            f"the upload name is {len(name)} characters long, over the limit of "
            f"{MAX_BLOB_NAME_LENGTH}: {show(name)}"
        )
    if any(is_control(ch) for ch in name):
        return f"the upload name contains a control character: {show(name)}"
    if not name.isascii():
        return f"the upload name contains non-ASCII characters (filenames are ASCII): {show(name)}"
    if any(ch.isspace() for ch in name):
        return f"the upload name contains whitespace: {show(name)}"
    if "/" in name or "\\" in name:
        return f"the upload name contains a path separator: {show(name)}"
    if name.startswith("."):
        return f"the upload name starts with '.': {show(name)}"
    if ".." in name:
        return f"the upload name contains '..': {show(name)}"
    odd = "".join(sorted({ch for ch in name if ch not in _WHEEL_NAME_CHARS}))
    if odd:
        return (
            f"the upload name contains characters no wheel or sdist name has ({odd!r}): "
            f"{show(name)}"
        )
    return None


def _not_a_wheel_message(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith(_SDIST_SUFFIXES):
        return (
            f"only wheels are published for now, and {show(name)} looks like an sdist "
            "(source distribution); build a wheel (e.g. `python -m build --wheel`) and upload that"
        )
    if lowered.endswith(".egg"):
        return (
            f"only wheels are published for now, and {show(name)} looks like an egg "
            "(a legacy format); build a wheel and upload that"
        )
    return f"only wheels (.whl files) are accepted, not {show(name)}"


def parse_version(value: str) -> packaging.version.Version | None:
    """The version, or None when it does not parse: the caller says what was wrong."""
    try:
        return packaging.version.Version(value)
    except packaging.version.InvalidVersion:
        return None
