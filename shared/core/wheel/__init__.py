"""Validate an uploaded wheel before it is published.

The rule: a wheel PyPI accepted is published unless it is hostile. What protects users and
the index is strict — the zip structure, member paths and types, the name and version
against the filename, Requires-Python, Requires-Dist, the RECORD hash of every file, and
caps on the total work; the rest of METADATA is checked as leniently as PyPI and pip are,
and what is odd but harmless is published with a line in ``WheelInfo.warnings``.

Everything here is pure: no Azure, no I/O except reading the file object handed in. Every
problem with the upload itself is raised as a :class:`Rejection` carrying one
:class:`RejectCode`; an ``OSError`` from the file object is not the upload's fault and is
left alone so the caller can retry.

The checks run cheapest and most fundamental first: the blob name, then the zip structure
(end record, central directory, local headers), member paths, types and size caps — all
without decompressing anything — then the ``.dist-info`` layout and files, and last the
hash of every file, streamed and counted against the caps as it is decompressed.

The checks live in one module each: ``names`` (the upload name), ``archive`` (the zip
structure and reading members), ``distinfo`` (the ``.dist-info`` layout and WHEEL),
``metadata`` (METADATA), ``record`` (RECORD and the hashes), with ``limits`` (the caps
and the decompression budget) and ``text`` (how hostile values are shown) under them.
This module only runs them in order; nothing in the package imports it.
"""

from __future__ import annotations

import hashlib
import typing
import zipfile
from dataclasses import dataclass

from packaging.utils import NormalizedName

from shared.core.text import bounded
from shared.core.wheel.archive import check_members, open_archive
from shared.core.wheel.distinfo import open_dist_info, read_wheel_file
from shared.core.wheel.limits import Budget, Limits
from shared.core.wheel.metadata import check_metadata, read_metadata
from shared.core.wheel.names import MAX_BLOB_NAME_LENGTH, WheelName, check_upload_name
from shared.core.wheel.record import check_record

__all__ = ["MAX_BLOB_NAME_LENGTH", "Limits", "WheelInfo", "check_upload_name", "inspect_wheel"]

_DEFAULT_LIMITS = Limits()  # frozen, so one shared default is safe


@dataclass(frozen=True)
class WheelInfo:
    """What publishing needs to know about a wheel that passed every check."""

    filename: str
    project: NormalizedName  # canonicalize_name of the filename's name
    name: str  # the Name exactly as METADATA writes it (display name)
    version: str  # str(Version) from the filename (normalised)
    requires_python: str | None  # METADATA Requires-Python, validated, as written (stripped)
    metadata: bytes  # the exact METADATA bytes, unmodified
    metadata_sha256: str  # hex sha256 of `metadata`
    warnings: tuple[str, ...] = ()  # odd but harmless findings, kept in the record


def inspect_wheel(
    filename: str,
    data: typing.BinaryIO,
    *,
    limits: Limits = _DEFAULT_LIMITS,
) -> WheelInfo:
    """Validate an uploaded wheel and return what publishing needs to know about it.

    ``filename`` must already have passed :func:`check_upload_name` (it is re-parsed
    here); ``data`` is a seekable binary file holding the whole upload.
    """
    wheel = check_upload_name(filename)
    archive, directory = open_archive(data, limits.max_members)
    with archive:
        budget = check_members(data, archive, directory, limits)
        return _inspect_contents(archive, archive.infolist(), wheel, limits, budget)


def _inspect_contents(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    wheel: WheelName,
    limits: Limits,
    budget: Budget,
) -> WheelInfo:
    dist = open_dist_info(archive, infos, wheel, budget)
    wheel_file, wheel_bytes = read_wheel_file(dist, limits.max_dist_info_file_bytes)
    metadata_file, metadata = read_metadata(dist, limits.max_metadata_bytes)
    display_name, requires_python, warnings = check_metadata(metadata, wheel, dist.path, dist.files)
    already_read = {wheel_file.orig_filename: wheel_bytes, metadata_file.orig_filename: metadata}
    warnings += check_record(dist, already_read, limits.max_dist_info_file_bytes)

    return WheelInfo(
        filename=wheel.filename,
        project=wheel.project,
        name=display_name,
        version=str(wheel.version),
        requires_python=requires_python,
        metadata=metadata,
        metadata_sha256=hashlib.sha256(metadata).hexdigest(),
        warnings=bounded(warnings, limits.max_warnings),
    )
