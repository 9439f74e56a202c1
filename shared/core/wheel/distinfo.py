"""The ``.dist-info`` directory: exactly one, named for this wheel, with a valid WHEEL file."""

from __future__ import annotations

import email.parser
import email.policy
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from shared.core.errors import RejectCode, Rejection
from shared.core.text import show, show_list
from shared.core.wheel.archive import read_limited
from shared.core.wheel.limits import Budget
from shared.core.wheel.names import WheelName, parse_version


def _find_dist_info(infos: Iterable[zipfile.ZipInfo], wheel: WheelName) -> str:
    """Return the one top-level ``{name}-{version}.dist-info`` directory of this wheel."""
    expected = f"{wheel.project.replace('-', '_')}-{wheel.version}.dist-info"
    tops = sorted(
        {
            top
            for info in infos
            if "/" in info.orig_filename
            and (top := info.orig_filename.split("/", 1)[0]).lower().endswith(".dist-info")
        }
    )
    if not tops:
        raise Rejection(
            RejectCode.DIST_INFO_MISSING,
            f"the wheel has no .dist-info directory (expected {expected!r})",
        )
    if len(tops) > 1:
        raise Rejection(
            RejectCode.DIST_INFO_MULTIPLE,
            f"the wheel has {len(tops)} .dist-info directories: {show_list(tops)}",
        )
    (top,) = tops
    stem = top.removesuffix(".dist-info")
    if stem == top or stem.count("-") != 1:
        raise Rejection(
            RejectCode.DIST_INFO_MISSING,
            f"the .dist-info directory {show(top)} is not named like {expected!r}",
        )
    name, version = stem.split("-")
    if canonicalize_name(name) != wheel.project:
        raise Rejection(
            RejectCode.NAME_MISMATCH,
            f"the .dist-info directory {show(top)} names another project than the "
            f"filename ({wheel.project!r})",
        )
    if parse_version(version) != wheel.version:
        raise Rejection(
            RejectCode.VERSION_MISMATCH,
            f"the .dist-info directory {show(top)} names another version than the "
            f"filename ({str(wheel.version)!r})",
        )
    return top


@dataclass(frozen=True)
class DistInfo:
    """The wheel's one ``.dist-info`` directory, and what reading its files needs."""

    path: str  # "{name}-{version}.dist-info", as the archive spells it
    archive: zipfile.ZipFile
    files: Mapping[str, zipfile.ZipInfo]  # every member that is not a directory, by name
    budget: Budget

    def read(
        self, name: str, missing: RejectCode, limit: int
    ) -> tuple[zipfile.ZipInfo, bytes | None]:
        """A file of the directory, read whole: None for the bytes when it is over ``limit``."""
        path = f"{self.path}/{name}"
        info = self.files.get(path)
        if info is None:
            raise Rejection(missing, f"the wheel has no {show(path)}")
        return info, read_limited(self.archive, info, limit, self.budget)


def open_dist_info(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], wheel: WheelName, budget: Budget
) -> DistInfo:
    files = {info.orig_filename: info for info in infos if not info.is_dir()}
    return DistInfo(_find_dist_info(infos, wheel), archive, files, budget)


def read_wheel_file(dist: DistInfo, limit: int) -> tuple[zipfile.ZipInfo, bytes]:
    """The WHEEL member and its bytes, read whole up to ``limit`` and checked."""
    wheel_file, content = dist.read("WHEEL", RejectCode.WHEEL_FILE_MISSING, limit)
    return wheel_file, _check_wheel_file(content, limit)


_WHEEL_VERSION = re.compile(r"1\.[0-9]+")


def _check_wheel_file(content: bytes | None, limit: int) -> bytes:
    """Refuse a WHEEL file installers would refuse: its Wheel-Version must be 1.x."""
    if content is None:
        raise Rejection(RejectCode.WHEEL_FILE_INVALID, f"WHEEL is over the limit of {limit} bytes")
    try:
        text = content.decode("utf-8")
        message = email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=True)
    except (UnicodeDecodeError, ValueError, LookupError, TypeError) as exc:
        raise Rejection(RejectCode.WHEEL_FILE_INVALID, "WHEEL is not UTF-8 email headers") from exc
    values = [str(value).strip() for value in message.get_all("Wheel-Version") or []]
    if len(values) != 1:
        raise Rejection(
            RejectCode.WHEEL_FILE_INVALID,
            f"WHEEL must have exactly one Wheel-Version header, it has {len(values)}",
        )
    if not _WHEEL_VERSION.fullmatch(values[0]):
        raise Rejection(
            RejectCode.WHEEL_FILE_INVALID,
            f"WHEEL has Wheel-Version {show(values[0])}; only 1.x is supported",
        )
    return content
