"""Validate an uploaded source distribution (sdist) before it is published.

The rule is the wheels' (:mod:`shared.core.wheel`): an sdist PyPI accepts is published
unless it is hostile. Strict where it protects users: the PEP 625 filename, a real gzip'd
tar read as a stream with bounded memory (never extracted), member paths, types and links
by the rules of tarfile's ``data`` filter, one top-level directory, caps on the total
work, and ``{top}/PKG-INFO`` by the same core-metadata rules as a wheel's METADATA (Name
and Version equal to the filename's). What is odd but harmless is published with a line in
``SdistInfo.warnings``.

Everything here is pure: no Azure, no I/O except reading the file object handed in. Every
problem with the upload is raised as a :class:`Rejection` carrying one :class:`RejectCode`;
an ``OSError`` from the file object is left alone so the caller can retry.

The checks live in one module each: ``names`` (the filename), ``stream`` (the gzip
stream, inflated on demand and counted), ``members`` (the tar: paths, types, links, the
top-level directory, PKG-INFO), with ``limits`` (the caps and the budget) under them, and
the content rules of PKG-INFO in :mod:`shared.core.coremetadata`.
"""

from __future__ import annotations

import io
import typing
from dataclasses import dataclass

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from shared.core.coremetadata import check_core_metadata
from shared.core.sdist.limits import SdistBudget, SdistLimits
from shared.core.sdist.members import SdistTree, read_tree
from shared.core.sdist.names import (
    LEGACY_SUFFIXES,
    SDIST_SUFFIX,
    SDIST_SUFFIXES,
    parse_sdist_name,
    pep625_name,
)
from shared.core.sdist.stream import GzipStream
from shared.core.text import bounded, show

__all__ = [
    "LEGACY_SUFFIXES",
    "SDIST_SUFFIX",
    "SDIST_SUFFIXES",
    "SdistInfo",
    "SdistLimits",
    "inspect_sdist",
    "parse_sdist_name",
    "pep625_name",
]

_DEFAULT_LIMITS = SdistLimits()  # frozen, so one shared default is safe


@dataclass(frozen=True)
class SdistInfo:
    """What publishing needs to know about an sdist that passed every check."""

    project: NormalizedName  # canonicalize_name of the filename's name
    name: str  # the Name exactly as PKG-INFO writes it (display name)
    version: str  # str(Version): PKG-INFO's Version, equal to the filename's (normalised)
    filename: str  # the upload's filename as given
    requires_python: str | None  # PKG-INFO Requires-Python, validated, as written (stripped)
    warnings: tuple[str, ...]  # odd but harmless findings, kept in the record
    # No PEP 658 core-metadata file: an sdist's PKG-INFO may mark fields Dynamic (PEP
    # 643), so installers build the metadata themselves rather than trust it.
    metadata: None = None
    metadata_sha256: None = None


def inspect_sdist(
    name: str, file: typing.BinaryIO, *, limits: SdistLimits = _DEFAULT_LIMITS
) -> SdistInfo:
    """Validate an uploaded sdist and return what publishing needs to know about it.

    ``file`` is a seekable binary file holding the whole upload; it is read once, in
    order, as a stream.
    """
    project, version = parse_sdist_name(name)
    budget = SdistBudget(limits, file.seek(0, io.SEEK_END))
    tree = read_tree(GzipStream(file, budget), budget, limits)
    display_name, requires_python, warnings = check_core_metadata(
        tree.pkg_info,
        project,
        version,
        label="PKG-INFO",
        license_file_missing=lambda path, _pep639: _license_file_missing(tree, path),
    )
    warnings = _top_level_findings(tree.top, project, version) + tree.warnings + warnings
    return SdistInfo(
        project=project,
        name=display_name,
        version=str(version),
        filename=name,
        requires_python=requires_python,
        warnings=bounded(warnings, limits.max_warnings),
    )


def _top_level_findings(top: str, project: NormalizedName, version: Version) -> list[str]:
    """The top-level directory's name, as a warning: no installer relies on it.

    pip unpacks an sdist and builds from its one top-level directory whatever its name,
    and PyPI does not look; old setuptools spelled it like the old filename
    (``PyYAML-6.0.1``), which the normalised comparison accepts.
    """
    name_part, _, version_part = top.rpartition("-")
    try:
        same = canonicalize_name(name_part) == project and Version(version_part) == version
    except InvalidVersion:
        same = False
    if same:
        return []
    expected = pep625_name(project, version).removesuffix(SDIST_SUFFIX)
    return [f"the top-level directory {show(top)} is not named like {expected!r}"]


def _license_file_missing(tree: SdistTree, path: str) -> str | None:
    """License-File paths are relative to the project root, the sdist's top directory."""
    if f"{tree.top}/{path}" in tree.files:
        return None
    return f"License-File {show(path)} is not in the sdist"
