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
"""

from __future__ import annotations

import base64
import csv
import email.parser
import email.policy
import hashlib
import io
import re
import stat
import string
import struct
import typing
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import packaging.tags
import packaging.utils
import packaging.version
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidName, InvalidWheelFilename, NormalizedName, canonicalize_name

from shared.core.errors import RejectCode, Rejection

MAX_BLOB_NAME_LENGTH: int = 255


@dataclass(frozen=True)
class Limits:
    """Caps that bound the work and memory one upload can cost us, and its installers.

    Decompression is bounded in total, not per member: one very compressible member is
    normal (onnx ships a 2.5 KB test tensor that inflates 1016x) while a bomb can be split
    over many members. Every file is decompressed once (to check its RECORD hash), and the
    bytes are counted as they are produced against the same totals.
    """

    max_uncompressed_bytes: int = 2 * 1024**3  # all members together, declared and produced
    # Total uncompressed / archive size, for totals over the floor. Real wheels reach 15.5x
    # (pymssql 2.4.6, 48 MiB), 10.1x over 64 MiB, 2.1x for torch; the split bomb 855x.
    max_overall_ratio: int = 40
    ratio_floor_bytes: int = 16 * 1024**2  # smaller totals may have any ratio: cheap anyway
    max_members: int = 100_000
    max_metadata_bytes: int = 4 * 1024**2  # METADATA is read whole with this byte limit
    max_dist_info_file_bytes: int = 32 * 1024**2  # WHEEL and RECORD, also read whole
    max_warnings: int = 20  # lines kept in WheelInfo.warnings; the rest are counted


@dataclass(frozen=True)
class WheelName:
    """A blob name that is a valid wheel filename, parsed."""

    filename: str
    project: packaging.utils.NormalizedName
    version: packaging.version.Version
    build: packaging.utils.BuildTag
    tags: frozenset[packaging.tags.Tag]


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


# --------------------------------------------------------------------------- upload name

# Every character any valid wheel filename can hold: the escaped name and tags are
# [A-Za-z0-9._], versions add "!" (epoch) and "+" (local), "-" separates the parts.
_WHEEL_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "._-+!")
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
_SHOW_LIMIT = 100


def check_upload_name(name: str) -> WheelName:
    """Check that a blob name is safe to use as a path and is a valid wheel filename.

    The name later becomes part of storage paths and index pages, so anything that could
    act as a path, hide in a listing or break a line is refused before it is looked at
    as a wheel name at all.
    """
    _check_blob_name(name)
    if not name.endswith(".whl"):
        raise Rejection(RejectCode.NOT_A_WHEEL, _not_a_wheel_message(name))
    try:
        project, version, build, tags = packaging.utils.parse_wheel_filename(name)
    except InvalidWheelFilename as exc:
        raise Rejection(
            RejectCode.INVALID_WHEEL_FILENAME,
            f"{_show(name)} is not a valid wheel filename: {_one_line(str(exc))}",
        ) from exc
    return WheelName(filename=name, project=project, version=version, build=build, tags=tags)


def _check_blob_name(name: str) -> None:
    """Refuse names that are not one bare, printable-ASCII path component."""
    problem = _blob_name_problem(name)
    if problem is not None:
        raise Rejection(RejectCode.BAD_FILENAME, problem)


def _blob_name_problem(name: str) -> str | None:
    if not name:
        return "the upload name is empty"
    if len(name) > MAX_BLOB_NAME_LENGTH:
        return (
            f"the upload name is {len(name)} characters long, over the limit of "
            f"{MAX_BLOB_NAME_LENGTH}: {_show(name)}"
        )
    if any(_is_control(ch) for ch in name):
        return f"the upload name contains a control character: {_show(name)}"
    if not name.isascii():
        return (
            f"the upload name contains non-ASCII characters (wheel names are ASCII): {_show(name)}"
        )
    if any(ch.isspace() for ch in name):
        return f"the upload name contains whitespace: {_show(name)}"
    if "/" in name or "\\" in name:
        return f"the upload name contains a path separator: {_show(name)}"
    if name.startswith("."):
        return f"the upload name starts with '.': {_show(name)}"
    if ".." in name:
        return f"the upload name contains '..': {_show(name)}"
    odd = "".join(sorted({ch for ch in name if ch not in _WHEEL_NAME_CHARS}))
    if odd:
        return f"the upload name contains characters no wheel filename has ({odd!r}): {_show(name)}"
    return None


def _not_a_wheel_message(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith(_SDIST_SUFFIXES):
        return (
            f"only wheels are published for now, and {_show(name)} looks like an sdist "
            "(source distribution); build a wheel (e.g. `python -m build --wheel`) and upload that"
        )
    if lowered.endswith(".egg"):
        return (
            f"only wheels are published for now, and {_show(name)} looks like an egg "
            "(a legacy format); build a wheel and upload that"
        )
    return f"only wheels (.whl files) are accepted, not {_show(name)}"


# --------------------------------------------------------------------------- the archive

_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL_SIG = b"PK\x01\x02"
_END_SIG = b"PK\x05\x06"
_END64_SIG = b"PK\x06\x06"
_END64_LOCATOR_SIG = b"PK\x06\x07"
_SPANNED_SIG = b"PK\x07\x08"
_ZIP_START_SIGS = (_LOCAL_SIG, _END_SIG, _SPANNED_SIG)

_END = struct.Struct("<4s4H2LH")  # signature, disks, entries, cd size/offset, comment length
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_END64_RECORD_REST = _END64.size - 12  # the record's own "size of the rest" field

_UTF8_NAME_FLAG = 0x800
_DATA_DESCRIPTOR_FLAG = 0x08
_ENCRYPTION_FLAGS = 0x01 | 0x40  # traditional and strong encryption
_PATCHED_DATA_FLAG = 0x20
_DESCRIPTOR_LENGTHS = frozenset({12, 16, 20, 24})  # with/without signature, 32/64-bit sizes
_UNICODE_PATH_EXTRA = 0x7075
# Unix file types in the high 16 bits of a member's external attributes. No type at all (0)
# is what Windows tools write; regular files and directories are what wheels hold.
_S_IFMT = 0o170000
_PLAIN_TYPES = frozenset({0, stat.S_IFREG, stat.S_IFDIR})


@dataclass(frozen=True)
class _CentralDirectory:
    offset: int
    size: int
    entries: int


def inspect_wheel(
    filename: str,
    data: typing.BinaryIO,
    *,
    limits: Limits = Limits(),
) -> WheelInfo:
    """Validate an uploaded wheel and return what publishing needs to know about it.

    ``filename`` must already have passed :func:`check_upload_name` (it is re-parsed
    here); ``data`` is a seekable binary file holding the whole upload.
    """
    wheel = check_upload_name(filename)
    directory = _locate_central_directory(data)
    _count_central_entries(data, directory, limits.max_members)
    with _converting_zip_errors():
        archive = zipfile.ZipFile(data)
    with archive:
        infos = archive.infolist()
        if archive.start_dir != directory.offset or len(infos) != directory.entries:
            raise Rejection(
                RejectCode.CORRUPT_ZIP, "the central directory cannot be read consistently"
            )
        _check_member_encoding(infos)
        _check_member_paths(infos)
        _check_member_types(infos)
        _check_duplicates(infos)
        budget = _check_size_caps(infos, data.seek(0, io.SEEK_END), limits)
        _check_local_headers(data, infos, directory.offset)
        return _inspect_contents(archive, infos, wheel, limits, budget)


def _locate_central_directory(data: typing.BinaryIO) -> _CentralDirectory:
    """Find the central directory from the end record, refusing ambiguous layouts.

    Anything before the first member, between the last member and the central directory,
    or after the end record is refused: such bytes are how polyglot files and zip
    parser differentials (one tool sees other files than another) are built.
    """
    size = data.seek(0, io.SEEK_END)
    head = _read_at(data, 0, 4)
    found = _find_end_record(data, size)
    if found is None:
        if head in _ZIP_START_SIGS:
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                "the upload starts like a zip archive but has no end-of-central-directory "
                "record: it is truncated or damaged",
            )
        raise Rejection(
            RejectCode.NOT_A_ZIP,
            "the upload is not a zip archive (a wheel must be one): "
            "no end-of-central-directory record",
        )
    end_offset, (_, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, _) = found
    cd_end = end_offset
    locator = _read_at(data, end_offset - _END64_LOCATOR.size, _END64_LOCATOR.size)
    if end_offset >= _END64_LOCATOR.size and locator.startswith(_END64_LOCATOR_SIG):
        _, locator_disk, record_offset, disks = _END64_LOCATOR.unpack(locator)
        cd_end = end_offset - _END64_LOCATOR.size - _END64.size
        record = _read_at(data, cd_end, _END64.size) if cd_end >= 0 else b""
        if (
            locator_disk != 0
            or disks > 1
            or record_offset != cd_end
            or len(record) != _END64.size
            or not record.startswith(_END64_SIG)
        ):
            raise Rejection(RejectCode.CORRUPT_ZIP, "the zip64 end record is damaged")
        fields = _END64.unpack(record)
        if fields[1] != _END64_RECORD_REST:
            raise Rejection(RejectCode.CORRUPT_ZIP, "the zip64 end record has unexpected data")
        disk, cd_disk, disk_entries, entries, cd_size, cd_offset = fields[4:]
    if disk != 0 or cd_disk != 0 or disk_entries != entries:
        raise Rejection(RejectCode.CORRUPT_ZIP, "multi-disk (spanned) archives are not supported")
    if cd_offset + cd_size != cd_end:
        raise Rejection(
            RejectCode.CORRUPT_ZIP,
            "the central directory is not where the end record says it is "
            "(extra bytes before the archive or around the central directory)",
        )
    return _CentralDirectory(offset=cd_offset, size=cd_size, entries=entries)


def _find_end_record(
    data: typing.BinaryIO, size: int
) -> tuple[int, tuple[bytes, int, int, int, int, int, int, int]] | None:
    """Return the offset and fields of the end record that ends exactly at end of file."""
    tail_start = max(0, size - _END.size - 0xFFFF)
    tail = _read_at(data, tail_start, size - tail_start)
    position = tail.rfind(_END_SIG)
    while position >= 0:
        if position + _END.size <= len(tail):
            fields = _END.unpack_from(tail, position)
            if position + _END.size + fields[7] == len(tail):
                return tail_start + position, fields
        position = tail.rfind(_END_SIG, 0, position)
    return None


def _count_central_entries(data: typing.BinaryIO, directory: _CentralDirectory, cap: int) -> None:
    """Count central directory entries before ``zipfile`` builds an object for each.

    The end record's entry count can lie, so walking the headers is the only way to
    refuse a million-entry directory without first spending memory on it.
    """
    if directory.entries > cap:
        raise Rejection(
            RejectCode.ZIP_BOMB,
            f"the archive has {directory.entries} members, over the cap of {cap}",
        )
    raw = _read_at(data, directory.offset, directory.size)
    position = count = 0
    while position < len(raw):
        if len(raw) - position < _CENTRAL.size or not raw.startswith(_CENTRAL_SIG, position):
            raise Rejection(RejectCode.CORRUPT_ZIP, "the central directory is damaged")
        name_length, extra_length, comment_length = struct.unpack_from("<3H", raw, position + 28)
        position += _CENTRAL.size + name_length + extra_length + comment_length
        count += 1
        if count > cap:
            raise Rejection(
                RejectCode.ZIP_BOMB, f"the archive has more than {cap} members, over the cap"
            )
    if position != len(raw) or count != directory.entries:
        raise Rejection(
            RejectCode.CORRUPT_ZIP,
            f"the end record declares {directory.entries} members but the central "
            f"directory holds {count}",
        )


def _check_member_encoding(infos: Iterable[zipfile.ZipInfo]) -> None:
    """Refuse encrypted members and compression methods other than stored and deflated.

    PyPI accepts only stored and deflated members; installers may not support others.
    """
    for info in infos:
        if info.flag_bits & (_ENCRYPTION_FLAGS | _PATCHED_DATA_FLAG):
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                f"member {_show(info.orig_filename)} is encrypted or patched; wheels cannot be",
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                f"member {_show(info.orig_filename)} uses compression method "
                f"{info.compress_type}; only stored (0) and deflated (8) are accepted",
            )


def _check_member_paths(infos: Iterable[zipfile.ZipInfo]) -> None:
    """Refuse member names an installer could turn into a write outside its target."""
    for info in infos:
        # orig_filename keeps what zipfile hides: text after a NUL, and backslashes on Windows.
        problem = _member_path_problem(info.orig_filename)
        unicode_name = _unicode_path_extra(info.extra)
        if problem is None and unicode_name is not None:
            problem = _member_path_problem(unicode_name)
        if problem is not None:
            raise Rejection(RejectCode.UNSAFE_PATH, f"member {_show(info.orig_filename)} {problem}")


_DRIVE_LETTER = re.compile(r"[A-Za-z]:")


def _member_path_problem(name: str) -> str | None:
    if not name:
        return "has an empty name"
    if any(_is_control(ch) for ch in name):
        return "contains a control character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        return "is an absolute path"
    parts = name.removesuffix("/").split("/")  # a trailing slash marks a directory entry
    if ".." in parts:
        return "has a '..' part"
    if "" in parts or "." in parts:
        # "a/./b" or "a//b" would extract onto "a/b": a duplicate in disguise.
        return "has an empty or '.' part"
    return None


def _unicode_path_extra(extra: bytes) -> str | None:
    """Return the Info-ZIP Unicode Path name, which some unzippers prefer to the real name."""
    position = 0
    while position + 4 <= len(extra):
        field_id, length = struct.unpack_from("<2H", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if field_id == _UNICODE_PATH_EXTRA and len(body) >= 5:
            return body[5:].decode("utf-8", "replace")
        position += 4 + length
    return None


_EMPTY_DEFLATE_SIZE = 2  # an empty deflate stream (b"\x03\x00"), as zipfile writes for a directory


def _check_member_types(infos: Iterable[zipfile.ZipInfo]) -> None:
    """Refuse members an unzipper would create as a link, a device, a fifo or a socket.

    The unix mode is read whatever ``create_system`` says: Info-ZIP's unzip honours it in
    archives made elsewhere too. pip writes a link member as a plain file holding the
    target, but unzip and other extractors create the link, and a later member written
    through it lands anywhere.
    """
    for info in infos:
        kind = (info.external_attr >> 16) & _S_IFMT
        if info.is_dir() and (info.file_size or info.compress_size > _EMPTY_DEFLATE_SIZE):
            # Extractors disagree on such an entry (skip it, or write a file named like a
            # directory), and nothing checks its bytes against RECORD.
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                f"directory entry {_show(info.orig_filename)} holds data",
            )
        if kind == stat.S_IFLNK:
            raise Rejection(
                RejectCode.SYMLINK_MEMBER,
                f"member {_show(info.orig_filename)} is a symbolic link; wheels hold only "
                "regular files",
            )
        if kind not in _PLAIN_TYPES:
            raise Rejection(
                RejectCode.SPECIAL_FILE_MEMBER,
                f"member {_show(info.orig_filename)} has unix file type {kind:#o} (a device, "
                "fifo, socket or unknown type); wheels hold only regular files",
            )


def _check_duplicates(infos: Iterable[zipfile.ZipInfo]) -> None:
    """Refuse a name stored twice: tools disagree on which copy wins."""
    counts = Counter(info.orig_filename for info in infos)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise Rejection(
            RejectCode.DUPLICATE_MEMBER,
            f"the archive stores {_show_list(duplicates)} more than once",
        )


def _check_size_caps(infos: list[zipfile.ZipInfo], archive_size: int, limits: Limits) -> _Budget:
    """Refuse archives whose declared sizes make extraction a decompression bomb.

    Returns the budget every later decompression spends from: the declared total, which
    the caps allow. The bytes actually produced are counted against it, so headers that
    understate the sizes cannot buy more work.
    """
    total = sum(info.file_size for info in infos)
    if total > limits.max_uncompressed_bytes:
        raise Rejection(
            RejectCode.ZIP_BOMB,
            f"the members declare {total} bytes uncompressed, over the cap of "
            f"{limits.max_uncompressed_bytes}",
        )
    ratio = total / max(archive_size, 1)
    if total > limits.ratio_floor_bytes and ratio > limits.max_overall_ratio:
        raise Rejection(
            RejectCode.ZIP_BOMB,
            f"the archive expands {ratio:.0f}x ({archive_size} -> {total} bytes), over the cap "
            f"of {limits.max_overall_ratio}x for wheels over {limits.ratio_floor_bytes} bytes "
            "uncompressed",
        )
    return _Budget(total)


class _Budget:
    """Decompressed bytes left to spend: counted as produced, not taken from headers."""

    def __init__(self, total: int) -> None:
        self.left = total

    def spend(self, produced: int) -> None:
        self.left -= produced
        if self.left < 0:
            raise Rejection(
                RejectCode.ZIP_BOMB,
                "the members decompress to more bytes than the archive declares",
            )


def _check_local_headers(
    data: typing.BinaryIO, infos: list[zipfile.ZipInfo], cd_offset: int
) -> None:
    """Check that the local headers agree with the central directory and tile the file.

    Installers read the central directory, streaming unzippers read local headers; when
    the two disagree (other names, overlapping or hidden members) different tools see
    different files, so every member must sit exactly after the previous one.
    """
    expected = 0
    previous_had_descriptor = False
    for info in sorted(infos, key=lambda member: member.header_offset):
        gap = info.header_offset - expected
        if gap and not (previous_had_descriptor and gap in _DESCRIPTOR_LENGTHS):
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                f"member {_show(info.orig_filename)} overlaps another member or follows "
                "unaccounted bytes",
            )
        header = _read_at(data, info.header_offset, _LOCAL.size)
        if len(header) != _LOCAL.size or not header.startswith(_LOCAL_SIG):
            raise Rejection(
                RejectCode.CORRUPT_ZIP, f"member {_show(info.orig_filename)} has no local header"
            )
        _, _, _, method, _, _, _, _, _, name_length, extra_length = _LOCAL.unpack(header)
        local_name = _read_at(data, info.header_offset + _LOCAL.size, name_length)
        if local_name != _raw_name(info) or method != info.compress_type:
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                f"the local header of member {_show(info.orig_filename)} disagrees with the "
                "central directory",
            )
        data_start = info.header_offset + _LOCAL.size + name_length + extra_length
        expected = data_start + info.compress_size
        previous_had_descriptor = bool(info.flag_bits & _DATA_DESCRIPTOR_FLAG)
    gap = cd_offset - expected
    if gap and not (previous_had_descriptor and gap in _DESCRIPTOR_LENGTHS):
        raise Rejection(
            RejectCode.CORRUPT_ZIP,
            "the members overlap the central directory or are followed by unaccounted bytes",
        )


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    encoding = "utf-8" if info.flag_bits & _UTF8_NAME_FLAG else "cp437"
    return info.orig_filename.encode(encoding)


# --------------------------------------------------------------------------- dist-info


def _inspect_contents(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    wheel: WheelName,
    limits: Limits,
    budget: _Budget,
) -> WheelInfo:
    files = {info.orig_filename: info for info in infos if not info.is_dir()}
    dist_info = _find_dist_info(infos, wheel)

    wheel_file = _required_file(files, f"{dist_info}/WHEEL", RejectCode.WHEEL_FILE_MISSING)
    wheel_bytes = _check_wheel_file(
        _read_limited(archive, wheel_file, limits.max_dist_info_file_bytes, budget),
        limits.max_dist_info_file_bytes,
    )

    metadata_file = _required_file(files, f"{dist_info}/METADATA", RejectCode.METADATA_MISSING)
    metadata = _read_limited(archive, metadata_file, limits.max_metadata_bytes, budget)
    if metadata is None:
        raise Rejection(
            RejectCode.METADATA_TOO_LARGE,
            f"METADATA is over the limit of {limits.max_metadata_bytes} bytes "
            f"(it declares {metadata_file.file_size})",
        )
    display_name, requires_python, warnings = _check_metadata(metadata, wheel, dist_info, files)

    record_path = f"{dist_info}/RECORD"
    record_file = _required_file(files, record_path, RejectCode.RECORD_MISSING)
    record_bytes = _read_limited(archive, record_file, limits.max_dist_info_file_bytes, budget)
    if record_bytes is None:
        raise Rejection(
            RejectCode.RECORD_INVALID,
            f"RECORD is over the limit of {limits.max_dist_info_file_bytes} bytes",
        )
    rows = _parse_record(record_bytes, record_path)
    warnings += _record_warnings(rows)
    _check_record_listing(rows, files, dist_info)
    already_read = {wheel_file.orig_filename: wheel_bytes, metadata_file.orig_filename: metadata}
    _check_record_hashes(archive, rows, files, already_read, budget)

    return WheelInfo(
        filename=wheel.filename,
        project=wheel.project,
        name=display_name,
        version=str(wheel.version),
        requires_python=requires_python,
        metadata=metadata,
        metadata_sha256=hashlib.sha256(metadata).hexdigest(),
        warnings=_bounded(warnings, limits.max_warnings),
    )


def _bounded(warnings: list[str], limit: int) -> tuple[str, ...]:
    """At most ``limit`` one-line warnings, then a count of the rest: they go into a record."""
    kept = [_one_line(text) for text in warnings[:limit]]
    if len(warnings) > limit:
        kept.append(f"... and {len(warnings) - limit} more warnings")
    return tuple(kept)


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
            f"the wheel has {len(tops)} .dist-info directories: {_show_list(tops)}",
        )
    (top,) = tops
    stem = top.removesuffix(".dist-info")
    if stem == top or stem.count("-") != 1:
        raise Rejection(
            RejectCode.DIST_INFO_MISSING,
            f"the .dist-info directory {_show(top)} is not named like {expected!r}",
        )
    name, version = stem.split("-")
    if canonicalize_name(name) != wheel.project:
        raise Rejection(
            RejectCode.NAME_MISMATCH,
            f"the .dist-info directory {_show(top)} names another project than the "
            f"filename ({wheel.project!r})",
        )
    if _parse_version(version) != wheel.version:
        raise Rejection(
            RejectCode.VERSION_MISMATCH,
            f"the .dist-info directory {_show(top)} names another version than the "
            f"filename ({str(wheel.version)!r})",
        )
    return top


def _required_file(
    files: Mapping[str, zipfile.ZipInfo], path: str, code: RejectCode
) -> zipfile.ZipInfo:
    info = files.get(path)
    if info is None:
        raise Rejection(code, f"the wheel has no {_show(path)}")
    return info


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
            f"WHEEL has Wheel-Version {_show(values[0])}; only 1.x is supported",
        )
    return content


# --------------------------------------------------------------------------- METADATA

# What Warehouse accepts. packaging has no "2.0" (never standardised, but emitted by old
# tools), so such files are validated by the 2.1 rules.
_SUPPORTED_METADATA_VERSIONS = ("1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5")
_SUMMARY_LIMIT = 512  # Warehouse's limit
_CONTENT_TYPES = "text/plain, text/x-rst or text/markdown (GFM or CommonMark), in UTF-8"
_MESSAGE_LIMIT = 500
# The fields installers and the index act on; a bad value in one refuses the wheel. Every
# other field only informs people, so what packaging finds wrong there (a License-File
# under Metadata-Version 2.1, an unknown Description-Content-Type, a repeated Summary...)
# is a warning: PyPI published 135 of 966 sampled wheels that packaging's strict
# validation refuses. Requires-Dist stays strict: resolvers read it from the index's
# .metadata file, pip (24.1 on) and uv refuse a distribution whose Requires-Dist does not
# parse, and a direct URL reference would make installs fetch code from outside the index.
_STRICT_FIELDS = frozenset(
    {"metadata-version", "name", "version", "requires-python", "requires-dist"}
)


def _check_metadata(
    content: bytes, wheel: WheelName, dist_info: str, files: Mapping[str, zipfile.ZipInfo]
) -> tuple[str, str | None, list[str]]:
    """Validate METADATA; return (display name, Requires-Python, warnings)."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection(
            RejectCode.METADATA_INVALID, f"METADATA is not valid UTF-8 (at byte {exc.start})"
        ) from exc
    try:
        raw, unparsed = parse_email(content)
    except (ValueError, LookupError, TypeError, AssertionError) as exc:
        raise Rejection(RejectCode.METADATA_INVALID, "METADATA cannot be parsed") from exc
    requires_python = _check_requires_python(raw, unparsed)
    name, version = _check_strict_fields(raw, unparsed)
    if canonicalize_name(name) != wheel.project:
        raise Rejection(
            RejectCode.NAME_MISMATCH,
            f"METADATA Name {_show(name)} does not match the filename's project {wheel.project!r}",
        )
    if version != wheel.version:
        raise Rejection(
            RejectCode.VERSION_MISMATCH,
            f"METADATA Version {str(version)!r} does not match the filename's "
            f"version {str(wheel.version)!r}",
        )
    warnings = _lenient_findings(raw, unparsed) + _warehouse_rules(raw, dist_info, files)
    return name, requires_python, [f"METADATA: {text}" for text in warnings]


def _check_requires_python(raw: RawMetadata, unparsed: Mapping[str, list[str]]) -> str | None:
    """Validate Requires-Python on its own, so a bad one gets its own reject code."""
    if "requires-python" in unparsed:
        raise Rejection(
            RejectCode.REQUIRES_PYTHON_INVALID,
            "Requires-Python is given more than once: installers could read either",
        )
    value = raw.get("requires_python")
    if value is None or not value.strip():
        return None
    try:
        SpecifierSet(value)
    except ValueError as exc:
        raise Rejection(
            RejectCode.REQUIRES_PYTHON_INVALID,
            f"Requires-Python {_show(value)} is not a valid version specifier set",
        ) from exc
    return value.strip()


def _check_strict_fields(
    raw: RawMetadata, unparsed: Mapping[str, list[str]]
) -> tuple[str, packaging.version.Version]:
    """Refuse a bad Metadata-Version, Name, Version or Requires-Dist; return name and version.

    parse_email leaves a repeated (or unreadable) field out of ``raw`` and names it in
    ``unparsed``: an installer could read either value, so that is refused too.
    """
    repeated = _STRICT_FIELDS & set(unparsed)
    problems = [f"{field!r} is repeated or unreadable" for field in sorted(repeated)]
    metadata_version = raw.get("metadata_version")
    if metadata_version is None and "metadata-version" not in repeated:
        problems.append("'metadata-version' is missing")
    elif metadata_version is not None and metadata_version not in _SUPPORTED_METADATA_VERSIONS:
        problems.append(
            f"Metadata-Version {_show(metadata_version)} is not supported "
            f"(supported: {', '.join(_SUPPORTED_METADATA_VERSIONS)})"
        )
    name = raw.get("name") or ""
    if not _is_valid_name(name) and "name" not in repeated:
        problems.append(f"'name' {_show(name)} is missing or not a valid project name")
    version = _parse_version(raw.get("version") or "")
    if version is None and "version" not in repeated:
        problems.append(f"'version' {_show(raw.get('version') or '')} is missing or invalid")
    problems += [
        f"Requires-Dist {_show(value)} {problem}"
        for value in raw.get("requires_dist") or []
        if (problem := _requirement_problem(value)) is not None
    ]
    if problems or version is None:
        raise Rejection(RejectCode.METADATA_INVALID, _problem_list("METADATA is invalid", problems))
    return name, version


def _is_valid_name(name: str) -> bool:
    try:
        canonicalize_name(name, validate=True)
    except InvalidName:
        return False
    return True


def _lenient_findings(raw: RawMetadata, unparsed: Mapping[str, list[str]]) -> list[str]:
    """What packaging's full validation finds outside the strict fields, as warnings.

    The strict fields passed already, so whatever packaging still says about one of them
    is only that it was introduced in a later Metadata-Version, which installers ignore.
    """
    findings = [
        f"field {field!r} is unknown, repeated or unreadable (ignored)"
        for field in sorted(set(unparsed) - _STRICT_FIELDS)
    ]
    validated = raw.copy()
    if validated.get("metadata_version") == "2.0":
        validated["metadata_version"] = "2.1"
    try:
        Metadata.from_raw(validated, validate=True)
    except ExceptionGroup as group:
        findings += sorted(_describe(exc, raw) for exc in _flatten(group))  # set order varies
    except (ValueError, TypeError, LookupError) as exc:
        findings.append(f"could not be fully validated: {exc}")
    return findings


def _warehouse_rules(
    raw: RawMetadata, dist_info: str, files: Mapping[str, zipfile.ZipInfo]
) -> list[str]:
    """Warehouse's checks on top of packaging's that need no third-party data, as warnings.

    Classifier, e-mail and URL checks are left out (they need trove-classifiers,
    email-validator and rfc3986), and so is the ban on local versions, which a private
    index relies on. Direct URL Requires-Dist is a strict field's problem, found earlier.
    """
    findings: list[str] = []
    summary = raw.get("summary")
    if summary is not None and len(summary) > _SUMMARY_LIMIT:
        findings.append(f"Summary is over {_SUMMARY_LIMIT} characters ({len(summary)})")
    if raw.get("license") and raw.get("license_expression"):
        findings.append("License and License-Expression are both given (they exclude each other)")
    for field, values in (
        ("Provides-Dist", raw.get("provides_dist")),
        ("Obsoletes-Dist", raw.get("obsoletes_dist")),
    ):
        for value in values or []:
            problem = _requirement_problem(value)
            if problem is not None:
                findings.append(f"{field} {_show(value)} {problem}")
    return findings + _license_file_findings(raw, dist_info, files)


def _license_file_findings(
    raw: RawMetadata, dist_info: str, files: Mapping[str, zipfile.ZipInfo]
) -> list[str]:
    """License-File entries the wheel does not hold: odd, harmless, so only noted.

    Metadata-Version 2.4 (PEP 639) puts them under ``.dist-info/licenses/``. Before it,
    hatchling already did, while setuptools wrote License-File and bdist_wheel copied the
    file into ``.dist-info`` itself, under its relative path (or only its file name, in
    older versions of wheel).
    """
    # Only a supported Metadata-Version gets this far: the tuple is in order.
    order = _SUPPORTED_METADATA_VERSIONS.index
    pep639 = order(raw.get("metadata_version") or "1.0") >= order("2.4")
    findings = []
    for path in raw.get("license_files") or []:
        places = [f"{dist_info}/licenses/{path}"]
        if not pep639:
            places += [f"{dist_info}/{path}", f"{dist_info}/{path.rsplit('/', 1)[-1]}"]
        if not any(place in files for place in places):
            findings.append(f"License-File {_show(path)} is not in the wheel at {_show(places[0])}")
    return findings


def _requirement_problem(value: str) -> str | None:
    try:
        requirement = Requirement(value)
    except InvalidRequirement:
        return "is not a valid requirement"
    return None if requirement.url is None else "is a direct (URL) reference"


def _describe(exc: BaseException, raw: RawMetadata) -> str:
    """packaging's message, prefixed with the field when the message does not name it."""
    message = str(exc)
    field = exc.field if isinstance(exc, InvalidMetadata) else None
    if field == "description-content-type":  # packaging lists the choices in set order
        value = _show(raw.get("description_content_type") or "")
        return f"Description-Content-Type {value} is not {_CONTENT_TYPES} (ignored)"
    if field and field.lower() not in message.lower():
        return f"{field}: {message}"
    return message


def _flatten(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _flatten(exc)
        else:
            yield exc


# --------------------------------------------------------------------------- RECORD

# sha256 or stronger, fixed length; md5 and sha1 are refused as PyPI and pip refuse them.
_RECORD_ALGORITHMS = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}
)
_B64_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")
# Some build tools (gmsh 4.15.2) write hex digests; pip does not check RECORD, PyPI took it.
_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGITS = re.compile(r"[0-9]+")
_SIGNATURE_FILES = ("RECORD.jws", "RECORD.p7s")
_HASH_CHUNK = 1024**2  # files are hashed streaming, this many bytes at a time


@dataclass(frozen=True)
class _RecordRow:
    algorithm: str | None
    digest: bytes | None  # decoded from urlsafe base64 without padding, or from hex
    size: int | None
    hex: bool = False  # the digest was written in hex (accepted with a warning)


def _parse_record(content: bytes, record_path: str) -> dict[str, _RecordRow]:
    """Parse RECORD strictly: UTF-8 CSV of path,hash,size with one row per path."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection(RejectCode.RECORD_INVALID, "RECORD is not valid UTF-8") from exc
    exempt = _record_exempt(record_path.removesuffix("/RECORD"))
    rows: dict[str, _RecordRow] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for fields in reader:
            if not fields:
                continue
            problem, path, row = _parse_record_row(fields, exempt)
            if problem is None and path in rows:
                problem = f"lists {_show(path)} twice"
            if problem is not None:
                raise Rejection(
                    RejectCode.RECORD_INVALID, f"RECORD line {reader.line_num} {problem}"
                )
            rows[path] = row
    except csv.Error as exc:
        raise Rejection(
            RejectCode.RECORD_INVALID, f"RECORD is not valid CSV: {_one_line(str(exc))}"
        ) from exc
    if record_path not in rows:
        raise Rejection(RejectCode.RECORD_MISMATCH, "RECORD does not list itself")
    if rows[record_path] != _RecordRow(None, None, None):
        raise Rejection(RejectCode.RECORD_INVALID, "RECORD's own row must have no hash and no size")
    return rows


def _parse_record_row(
    fields: list[str], exempt: frozenset[str]
) -> tuple[str | None, str, _RecordRow]:
    """Return (problem or None, path, row) for one CSV row."""
    empty = _RecordRow(None, None, None)
    if len(fields) != 3:
        return f"has {len(fields)} fields, not 3 (path,hash,size)", "", empty
    path, hash_field, size_field = fields
    if not path:
        return "has an empty path", path, empty
    size: int | None = None
    if size_field:
        if not _DIGITS.fullmatch(size_field):
            return f"has a size that is not an integer: {_show(size_field)}", path, empty
        size = int(size_field)
    if not hash_field:
        if path in exempt:
            return None, path, _RecordRow(None, None, size)
        return f"has no hash for {_show(path)}", path, empty
    algorithm, _, digest = hash_field.partition("=")
    if algorithm not in _RECORD_ALGORITHMS:
        return (
            f"uses hash algorithm {_show(algorithm)} for {_show(path)}; use sha256 or stronger",
            path,
            empty,
        )
    digest_size = hashlib.new(algorithm).digest_size
    if _HEX.fullmatch(digest) and len(digest) == 2 * digest_size:
        return None, path, _RecordRow(algorithm, bytes.fromhex(digest), size, hex=True)
    decoded = _b64_digest(digest, digest_size)
    if decoded is None:
        return f"has a malformed {algorithm} hash for {_show(path)}", path, empty
    return None, path, _RecordRow(algorithm, decoded, size)


def _record_exempt(dist_info: str) -> frozenset[str]:
    """Paths that may be listed without a hash: RECORD itself and its signatures."""
    return frozenset({f"{dist_info}/RECORD", *(f"{dist_info}/{s}" for s in _SIGNATURE_FILES)})


def _b64_digest(value: str, digest_size: int) -> bytes | None:
    """The digest an unpadded urlsafe base64 value encodes, or None when it is malformed.

    Lengths differ (base64 takes 4/3 of a byte per character, hex 2), so no value can be
    read both ways.
    """
    if not _B64_URLSAFE.fullmatch(value) or len(value) != (4 * digest_size + 2) // 3:
        return None
    decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    canonical = base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii")
    return decoded if canonical == value else None  # refuses non-canonical trailing bits


def _record_warnings(rows: Mapping[str, _RecordRow]) -> list[str]:
    hex_rows = sum(row.hex for row in rows.values())
    if not hex_rows:
        return []
    return [
        f"RECORD writes {hex_rows} of its {len(rows)} hashes in hex, not urlsafe base64 as the "
        "wheel format says; they were checked as hex and match"
    ]


def _check_record_listing(
    rows: Mapping[str, _RecordRow], files: Mapping[str, zipfile.ZipInfo], dist_info: str
) -> None:
    """RECORD and the archive must name the same files, with the same declared sizes.

    Sizes come from the central directory, so this costs no decompression even for
    members outside ``.dist-info``.
    """
    signatures = {f"{dist_info}/{name}" for name in _SIGNATURE_FILES}
    not_in_wheel = sorted(path for path in rows if path not in files)
    if not_in_wheel:
        raise Rejection(
            RejectCode.RECORD_MISMATCH,
            f"RECORD lists files that are not in the wheel: {_show_list(not_in_wheel)}",
        )
    unlisted = sorted(path for path in files if path not in rows and path not in signatures)
    if unlisted:
        raise Rejection(
            RejectCode.RECORD_MISMATCH,
            f"RECORD does not list {_show_list(unlisted)}",
        )
    wrong_size = sorted(
        path
        for path, row in rows.items()
        if row.size is not None and row.size != files[path].file_size
    )
    if wrong_size:
        raise Rejection(
            RejectCode.RECORD_MISMATCH,
            f"RECORD gives the wrong size for {_show_list(wrong_size)}",
        )


def _check_record_hashes(
    archive: zipfile.ZipFile,
    rows: Mapping[str, _RecordRow],
    files: Mapping[str, zipfile.ZipInfo],
    already_read: Mapping[str, bytes],
    budget: _Budget,
) -> None:
    """Every file RECORD gives a hash for must match it, whatever directory it is in.

    Only RECORD itself and its signatures have no hash (_parse_record_row refuses any
    other hashless row). Members are read in archive order, streaming, and every byte
    produced is spent from ``budget``: the caps bound this work, and no hash failed in
    any of the 783 real wheels bench/compat.py was run on.
    """
    for info in sorted(files.values(), key=lambda member: member.header_offset):
        path = info.orig_filename
        row = rows.get(path)
        if row is None or row.algorithm is None:
            continue
        content = already_read.get(path)
        if content is not None:
            digest, size = hashlib.new(row.algorithm, content).digest(), len(content)
        else:
            digest, size = _digest_member(archive, info, row.algorithm, budget)
        if digest != row.digest or (row.size is not None and size != row.size):
            raise Rejection(
                RejectCode.RECORD_MISMATCH,
                f"{_show(path)} does not match its RECORD hash or size",
            )


def _digest_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, algorithm: str, budget: _Budget
) -> tuple[bytes, int]:
    hasher = hashlib.new(algorithm)
    size = 0
    with _converting_zip_errors(), archive.open(info) as member:
        while chunk := member.read(_HASH_CHUNK):
            budget.spend(len(chunk))
            size += len(chunk)
            hasher.update(chunk)
    return hasher.digest(), size


# --------------------------------------------------------------------------- helpers


def _read_at(data: typing.BinaryIO, offset: int, length: int) -> bytes:
    if offset < 0 or length <= 0:
        return b""
    data.seek(offset)
    return data.read(length)


def _read_limited(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: _Budget
) -> bytes | None:
    """Read a member, or return None when it is over ``limit`` bytes.

    The declared size is checked first, and at most ``limit + 1`` bytes are ever
    decompressed, so a member whose header lies about its size cannot cost more.
    """
    if info.file_size > limit:
        return None
    with _converting_zip_errors(), archive.open(info) as member:
        content = member.read(limit + 1)
    budget.spend(len(content))
    return None if len(content) > limit else content


@contextmanager
def _converting_zip_errors() -> Iterator[None]:
    """Turn what zipfile and zlib raise on damaged data into CORRUPT_ZIP.

    OSError is not caught: it comes from the file object, not from the upload.
    """
    try:
        yield
    except Rejection:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        UnicodeDecodeError,
        NotImplementedError,
        RuntimeError,
        ValueError,
        struct.error,
    ) as exc:
        raise Rejection(
            RejectCode.CORRUPT_ZIP, f"the archive is damaged: {_one_line(str(exc))}"
        ) from exc


def _parse_version(value: str) -> packaging.version.Version | None:
    try:
        return packaging.version.Version(value)
    except packaging.version.InvalidVersion:
        return None


def _is_control(ch: str) -> bool:
    """C0 controls, DEL and C1 controls."""
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _show(value: str) -> str:
    """repr() of a possibly hostile value, cut short: always one bounded printable line."""
    shown = repr(value[:_SHOW_LIMIT])
    return shown if len(value) <= _SHOW_LIMIT else f"{shown}... ({len(value)} characters)"


def _show_list(values: list[str], limit: int = 5) -> str:
    shown = ", ".join(_show(value) for value in values[:limit])
    return shown if len(values) <= limit else f"{shown} and {len(values) - limit} more"


def _one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """Escape anything non-printable and cut to ``limit`` characters."""
    escaped = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


def _problem_list(prefix: str, problems: list[str]) -> str:
    return _one_line(f"{prefix}: " + "; ".join(problems))
