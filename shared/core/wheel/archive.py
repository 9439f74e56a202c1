"""The zip structure of an upload, checked without decompressing anything.

The end record, the central directory and every local header must describe one
unambiguous archive (no bytes any tool could read as other members), and the members
must be plain files and directories with safe paths and sizes within the caps. Reading
members is done here too: bounded, and with zip damage turned into CORRUPT_ZIP.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import typing
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from shared.core.errors import RejectCode, Rejection, converting
from shared.core.text import is_control, show, show_list
from shared.core.wheel.limits import Budget, Limits

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
class CentralDirectory:
    """Where the end record puts the central directory, and the entries it declares."""

    offset: int
    size: int
    entries: int


def open_archive(
    data: typing.BinaryIO, max_members: int
) -> tuple[zipfile.ZipFile, CentralDirectory]:
    """Open the upload as a zip once its end record and central directory are unambiguous.

    The entries are counted first, so ``zipfile`` never builds an object for each of a
    million members.
    """
    directory = _locate_central_directory(data)
    _count_central_entries(data, directory, max_members)
    with converting_zip_errors():
        return zipfile.ZipFile(data), directory


def check_members(
    data: typing.BinaryIO, archive: zipfile.ZipFile, directory: CentralDirectory, limits: Limits
) -> Budget:
    """Check every member's encoding, path, type, uniqueness, size and local header.

    Returns the budget every later decompression spends from.
    """
    infos = archive.infolist()
    if archive.start_dir != directory.offset or len(infos) != directory.entries:
        raise Rejection(RejectCode.CORRUPT_ZIP, "the central directory cannot be read consistently")
    _check_member_encoding(infos)
    _check_member_paths(infos)
    _check_member_types(infos)
    _check_duplicates(infos)
    budget = _check_size_caps(infos, data.seek(0, io.SEEK_END), limits)
    _check_local_headers(data, infos, directory.offset)
    return budget


def _locate_central_directory(data: typing.BinaryIO) -> CentralDirectory:
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
    return CentralDirectory(offset=cd_offset, size=cd_size, entries=entries)


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


def _count_central_entries(data: typing.BinaryIO, directory: CentralDirectory, cap: int) -> None:
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
                f"member {show(info.orig_filename)} is encrypted or patched; wheels cannot be",
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                f"member {show(info.orig_filename)} uses compression method "
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
            raise Rejection(RejectCode.UNSAFE_PATH, f"member {show(info.orig_filename)} {problem}")


_DRIVE_LETTER = re.compile(r"[A-Za-z]:")


def _member_path_problem(name: str) -> str | None:
    if not name:
        return "has an empty name"
    if any(is_control(ch) for ch in name):
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
                f"directory entry {show(info.orig_filename)} holds data",
            )
        if kind == stat.S_IFLNK:
            raise Rejection(
                RejectCode.SYMLINK_MEMBER,
                f"member {show(info.orig_filename)} is a symbolic link; wheels hold only "
                "regular files",
            )
        if kind not in _PLAIN_TYPES:
            raise Rejection(
                RejectCode.SPECIAL_FILE_MEMBER,
                f"member {show(info.orig_filename)} has unix file type {kind:#o} (a device, "
                "fifo, socket or unknown type); wheels hold only regular files",
            )


def _check_duplicates(infos: Iterable[zipfile.ZipInfo]) -> None:
    """Refuse a name stored twice: tools disagree on which copy wins."""
    counts = Counter(info.orig_filename for info in infos)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise Rejection(
            RejectCode.DUPLICATE_MEMBER,
            f"the archive stores {show_list(duplicates)} more than once",
        )


def _check_size_caps(infos: list[zipfile.ZipInfo], archive_size: int, limits: Limits) -> Budget:
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
    return Budget(total)


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
                f"member {show(info.orig_filename)} overlaps another member or follows "
                "unaccounted bytes",
            )
        header = _read_at(data, info.header_offset, _LOCAL.size)
        if len(header) != _LOCAL.size or not header.startswith(_LOCAL_SIG):
            raise Rejection(
                RejectCode.CORRUPT_ZIP, f"member {show(info.orig_filename)} has no local header"
            )
        _, _, _, method, _, _, _, _, _, name_length, extra_length = _LOCAL.unpack(header)
        local_name = _read_at(data, info.header_offset + _LOCAL.size, name_length)
        if local_name != _raw_name(info) or method != info.compress_type:
            raise Rejection(
                RejectCode.CORRUPT_ZIP,
                f"the local header of member {show(info.orig_filename)} disagrees with the "
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


def _read_at(data: typing.BinaryIO, offset: int, length: int) -> bytes:
    if offset < 0 or length <= 0:
        return b""
    data.seek(offset)
    return data.read(length)


def read_limited(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: Budget
) -> bytes | None:
    """Read a member, or return None when it is over ``limit`` bytes.

    The declared size is checked first, and at most ``limit + 1`` bytes are ever
    decompressed, so a member whose header lies about its size cannot cost more.
    """
    if info.file_size > limit:
        return None
    with converting_zip_errors(), archive.open(info) as member:
        content = member.read(limit + 1)
    budget.spend(len(content))
    return None if len(content) > limit else content


def converting_zip_errors() -> AbstractContextManager[None]:
    """What zipfile and zlib raise on damaged data, as CORRUPT_ZIP."""
    return converting(_ZIP_ERRORS, RejectCode.CORRUPT_ZIP, "the archive is damaged")


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    UnicodeDecodeError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)
