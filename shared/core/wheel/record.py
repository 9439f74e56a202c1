"""RECORD: parsed strictly, matched against the archive's files, every hash checked."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

from shared.core.errors import RejectCode, Rejection
from shared.core.text import one_line, show, show_list
from shared.core.wheel.archive import converting_zip_errors
from shared.core.wheel.distinfo import DistInfo
from shared.core.wheel.limits import Budget

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


def check_record(dist: DistInfo, already_read: Mapping[str, bytes], limit: int) -> list[str]:
    """Check RECORD against the archive and every hash in it; return its warnings.

    ``already_read`` holds the files read whole before (WHEEL, METADATA), by path: they
    are hashed from those bytes instead of being decompressed again.
    """
    record_file, record_bytes = dist.read("RECORD", RejectCode.RECORD_MISSING, limit)
    if record_bytes is None:
        raise Rejection(RejectCode.RECORD_INVALID, f"RECORD is over the limit of {limit} bytes")
    rows = _parse_record(record_bytes, record_file.orig_filename)
    warnings = _record_warnings(rows)
    _check_record_listing(rows, dist.files, dist.path)
    _check_record_hashes(dist.archive, rows, dist.files, already_read, dist.budget)
    return warnings


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
                problem = f"lists {show(path)} twice"
            if problem is not None:
                raise Rejection(
                    RejectCode.RECORD_INVALID, f"RECORD line {reader.line_num} {problem}"
                )
            rows[path] = row
    except csv.Error as exc:
        raise Rejection(
            RejectCode.RECORD_INVALID, f"RECORD is not valid CSV: {one_line(str(exc))}"
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
            return f"has a size that is not an integer: {show(size_field)}", path, empty
        size = int(size_field)
    if not hash_field:
        if path in exempt:
            return None, path, _RecordRow(None, None, size)
        return f"has no hash for {show(path)}", path, empty
    algorithm, _, digest = hash_field.partition("=")
    if algorithm not in _RECORD_ALGORITHMS:
        return (
            f"uses hash algorithm {show(algorithm)} for {show(path)}; use sha256 or stronger",
            path,
            empty,
        )
    digest_size = hashlib.new(algorithm).digest_size
    if _HEX.fullmatch(digest) and len(digest) == 2 * digest_size:
        return None, path, _RecordRow(algorithm, bytes.fromhex(digest), size, hex=True)
    decoded = _b64_digest(digest, digest_size)
    if decoded is None:
        return f"has a malformed {algorithm} hash for {show(path)}", path, empty
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
            f"RECORD lists files that are not in the wheel: {show_list(not_in_wheel)}",
        )
    unlisted = sorted(path for path in files if path not in rows and path not in signatures)
    if unlisted:
        raise Rejection(
            RejectCode.RECORD_MISMATCH,
            f"RECORD does not list {show_list(unlisted)}",
        )
    wrong_size = sorted(
        path
        for path, row in rows.items()
        if row.size is not None and row.size != files[path].file_size
    )
    if wrong_size:
        raise Rejection(
            RejectCode.RECORD_MISMATCH,
            f"RECORD gives the wrong size for {show_list(wrong_size)}",
        )


def _check_record_hashes(
    archive: zipfile.ZipFile,
    rows: Mapping[str, _RecordRow],
    files: Mapping[str, zipfile.ZipInfo],
    already_read: Mapping[str, bytes],
    budget: Budget,
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
                f"{show(path)} does not match its RECORD hash or size",
            )


def _digest_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, algorithm: str, budget: Budget
) -> tuple[bytes, int]:
    hasher = hashlib.new(algorithm)
    size = 0
    with converting_zip_errors(), archive.open(info) as member:
        while chunk := member.read(_HASH_CHUNK):
            budget.spend(len(chunk))
            size += len(chunk)
            hasher.update(chunk)
    return hasher.digest(), size
