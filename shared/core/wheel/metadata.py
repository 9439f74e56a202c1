"""METADATA: where a wheel keeps it and how it is read; the rules for its content are
:mod:`shared.core.coremetadata`'s, shared with an sdist's PKG-INFO."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from functools import partial

from shared.core.coremetadata import check_core_metadata
from shared.core.errors import RejectCode, Rejection
from shared.core.text import show
from shared.core.wheel.distinfo import DistInfo
from shared.core.wheel.names import WheelName


def read_metadata(dist: DistInfo, limit: int) -> tuple[zipfile.ZipInfo, bytes]:
    """The METADATA member and its bytes, read whole up to ``limit``."""
    metadata_file, metadata = dist.read("METADATA", RejectCode.METADATA_MISSING, limit)
    if metadata is None:
        raise Rejection(
            RejectCode.METADATA_TOO_LARGE,
            f"METADATA is over the limit of {limit} bytes (it declares {metadata_file.file_size})",
        )
    return metadata_file, metadata


def check_metadata(
    content: bytes, wheel: WheelName, dist_info: str, files: Mapping[str, zipfile.ZipInfo]
) -> tuple[str, str | None, list[str]]:
    """Validate METADATA; return (display name, Requires-Python, warnings)."""
    return check_core_metadata(
        content,
        wheel.project,
        wheel.version,
        label="METADATA",
        license_file_missing=partial(_license_file_missing, dist_info, files),
    )


def _license_file_missing(
    dist_info: str, files: Mapping[str, zipfile.ZipInfo], path: str, pep639: bool
) -> str | None:
    """A License-File entry the wheel does not hold, as a warning.

    Metadata-Version 2.4 (PEP 639) puts them under ``.dist-info/licenses/``. Before it,
    hatchling already did, while setuptools wrote License-File and bdist_wheel copied the
    file into ``.dist-info`` itself, under its relative path (or only its file name, in
    older versions of wheel).
    """
    places = [f"{dist_info}/licenses/{path}"]
    if not pep639:
        places += [f"{dist_info}/{path}", f"{dist_info}/{path.rsplit('/', 1)[-1]}"]
    if any(place in files for place in places):
        return None
    return f"License-File {show(path)} is not in the wheel at {show(places[0])}"
