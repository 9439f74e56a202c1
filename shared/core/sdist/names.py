"""An sdist's filename: ``{name}-{version}.tar.gz`` exactly as PEP 625 spells it.

PyPI's upload endpoint (warehouse ``forklift/legacy.py``) now refuses every new sdist whose
filename is not ``{canonical name with "_" for "-"}-{str(Version)}.tar.gz`` ("Filename '…'
is invalid, should be '…'", seen in 2026; warning e-mails only from November 2024), and with
it ``.zip`` sdists; ``.tar.bz2``, ``.tgz`` and the rest went with PEP 527, eggs with PEP 715.
This index follows: each legacy form is refused with its own code and a message saying what
to upload instead. Files PyPI took before keep their old names there; renaming one is enough
here, as the archive inside is not checked against the filename's spelling.
"""

from __future__ import annotations

from packaging.utils import InvalidName, NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from shared.core.errors import RejectCode, Rejection
from shared.core.text import show

SDIST_SUFFIX = ".tar.gz"
# Archive suffixes sdists were uploaded with before PEP 527 and PEP 625 (matched in lower
# case); ".tar.gz" in other letter cases is a naming problem, not a format one.
LEGACY_SDIST_SUFFIXES = (
    ".zip",
    ".tgz",
    ".tar.bz2",
    ".tbz",
    ".tbz2",
    ".tar.xz",
    ".txz",
    ".tar.zst",
    ".tar.lz",
    ".tar.lzma",
    ".tar.z",
    ".tar",
)
EGG_SUFFIX = ".egg"
LEGACY_SUFFIXES = (*LEGACY_SDIST_SUFFIXES, EGG_SUFFIX)
"""Every legacy form the sdist rules refuse with their own code (eggs included)."""
SDIST_SUFFIXES = (SDIST_SUFFIX, *LEGACY_SUFFIXES)
"""Every name the sdist rules speak for: lower-case the name before matching."""


def parse_sdist_name(name: str) -> tuple[NormalizedName, Version]:
    """The project and version of a PEP 625 sdist filename, or a Rejection saying why not."""
    lowered = name.lower()
    if lowered.endswith(EGG_SUFFIX):
        raise Rejection(
            RejectCode.EGG_NOT_ACCEPTED,
            f"{show(name)} is an egg, a legacy format PyPI no longer accepts (PEP 715); "
            "build a wheel (`python -m build --wheel`) and upload that",
        )
    if not lowered.endswith(SDIST_SUFFIX) and lowered.endswith(LEGACY_SDIST_SUFFIXES):
        raise Rejection(
            RejectCode.LEGACY_SDIST_FORMAT,
            f"{show(name)} is an sdist in a legacy format: sdists are gzip'd tar archives "
            "named {name}-{version}.tar.gz (PEP 625); build one with `python -m build --sdist`",
        )
    project, version = _parse(name, lowered)
    expected = pep625_name(project, version)
    if name != expected:
        raise Rejection(
            RejectCode.SDIST_NAME_NOT_NORMALIZED,
            f"{show(name)} is not spelled as PEP 625 requires: rename it to "
            f"{' or '.join(repr(n) for n in _renames(name, expected))} (PyPI refuses the other "
            "spelling too; the archive inside may stay as it is)",
        )
    return project, version


def pep625_name(project: str, version: Version) -> str:
    """The one filename PEP 625 (and PyPI) allows for this project and version."""
    return f"{canonicalize_name(project).replace('-', '_')}-{version}{SDIST_SUFFIX}"


def _renames(name: str, expected: str) -> list[str]:
    """The PEP 625 name, and another when the version itself held a "-" (old "1.0-1")."""
    stem = name[: -len(SDIST_SUFFIX)]
    name_part, _, rest = stem.rpartition("-")
    head, dash, tail = name_part.rpartition("-")
    try:
        other = pep625_name(canonicalize_name(head, validate=True), Version(f"{tail}-{rest}"))
    except (InvalidName, InvalidVersion):
        return [expected]
    return [expected, other] if dash and other != expected else [expected]


def _parse(name: str, lowered: str) -> tuple[NormalizedName, Version]:
    """Split at the last "-": escaped names have none, and normalised versions neither.

    Without a "-" the name part is empty, which is not a valid project name.
    """
    if not lowered.endswith(SDIST_SUFFIX):
        raise Rejection(
            RejectCode.INVALID_SDIST_FILENAME,
            f"{show(name)} is not an sdist filename ({{name}}-{{version}}.tar.gz)",
        )
    stem = name[: -len(SDIST_SUFFIX)]
    name_part, _, version_part = stem.rpartition("-")
    try:
        project = canonicalize_name(name_part, validate=True)
        version = Version(version_part)
    except (InvalidName, InvalidVersion) as exc:
        raise Rejection(
            RejectCode.INVALID_SDIST_FILENAME,
            f"{show(name)} is not {{name}}-{{version}}.tar.gz with a valid project name and "
            "PEP 440 version",
        ) from exc
    return project, version
