"""Which kind of distribution a file is, decided in one place: a wheel or a source distribution.

The index publishes wheels (`.whl`) and sdists (`.tar.gz` with a PEP 625 name). Everything that
meets a filename asks here: the publisher (`inspect_distribution`), the upload SAS
(`check_upload_name`), claims and tombstones, page order and yanks by version (`parse_filename`),
the command line. The rules for each kind live in `shared.core.wheel` and `shared.core.sdist`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Final, Protocol

from packaging.utils import NormalizedName, parse_wheel_filename
from packaging.version import Version

from shared.core.errors import RejectCode, Rejection
from shared.core.sdist import (
    SDIST_SUFFIX,
    SDIST_SUFFIXES,
    SdistLimits,
    inspect_sdist,
    parse_sdist_name,
)
from shared.core.text import show
from shared.core.wheel import Limits, inspect_wheel
from shared.core.wheel import check_upload_name as check_wheel_name
from shared.core.wheel.names import check_blob_name

__all__ = [
    "SDIST_SUFFIX",
    "WHEEL_SUFFIX",
    "DistributionInfo",
    "UploadName",
    "check_upload_name",
    "inspect_distribution",
    "is_sdist",
    "parse_filename",
]

WHEEL_SUFFIX: Final = ".whl"

_WHEEL_LIMITS = Limits()  # frozen, so one shared default is safe
_SDIST_LIMITS = SdistLimits()


class DistributionInfo(Protocol):
    """What publishing needs to know about a file that passed every check, of either kind."""

    @property
    def filename(self) -> str: ...
    @property
    def project(self) -> NormalizedName: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def requires_python(self) -> str | None: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...
    @property
    def metadata(self) -> bytes | None: ...  # a wheel's METADATA (PEP 658); an sdist has none
    @property
    def metadata_sha256(self) -> str | None: ...


@dataclass(frozen=True)
class UploadName:
    """A blob name that is a valid wheel or sdist filename, parsed as far as both kinds go."""

    filename: str
    project: NormalizedName
    version: Version
    sdist: bool


def is_sdist(filename: str) -> bool:
    """Whether a published (checked) filename is a source distribution."""
    return filename.endswith(SDIST_SUFFIX)


def check_upload_name(name: str) -> UploadName:
    """A safe blob name first, then a wheel filename (`.whl`), an sdist filename (`.tar.gz`,
    PEP 625), or a Rejection: legacy sdist forms and eggs with the sdist rules' codes,
    anything else `not-a-wheel`."""
    check_blob_name(name)
    if name.endswith(WHEEL_SUFFIX):
        wheel = check_wheel_name(name)
        return UploadName(name, wheel.project, wheel.version, sdist=False)
    if name.lower().endswith(SDIST_SUFFIXES):  # legacy forms too, for their own codes
        project, version = parse_sdist_name(name)
        return UploadName(name, project, version, sdist=True)
    raise Rejection(
        RejectCode.NOT_A_WHEEL,
        f"only wheels (.whl) and source distributions (.tar.gz) are published, not {show(name)}",
    )


def inspect_distribution(
    name: str,
    file: typing.BinaryIO,
    *,
    wheel_limits: Limits = _WHEEL_LIMITS,
    sdist_limits: SdistLimits = _SDIST_LIMITS,
) -> DistributionInfo:
    """Validate an upload of either kind; a Rejection for anything that cannot be published."""
    if check_upload_name(name).sdist:
        return inspect_sdist(name, file, limits=sdist_limits)
    return inspect_wheel(name, file, limits=wheel_limits)


def parse_filename(filename: str) -> tuple[NormalizedName, Version]:
    """(project, version) of a published file's name; ValueError for a name of neither kind.

    Cheaper than `check_upload_name` (no blob-name checks): published names passed them.
    """
    if is_sdist(filename):
        return parse_sdist_name(filename)
    project, version, _, _ = parse_wheel_filename(filename)
    return project, version
