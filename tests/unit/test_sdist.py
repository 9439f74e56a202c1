"""Unit tests for shared.core.sdist: every reject code it can raise, and what it accepts.

Every archive is built here, in code (devhost.wheels.build_sdist and tar_member): hostile
ones by hand, valid ones as the common build backends lay them out.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from bench import compat
from devhost.wheels import (
    SDIST_LAYOUTS,
    BuiltSdist,
    SdistMember,
    build_sdist,
    build_wheel,
    incompressible_bytes,
    make_metadata,
    tar_bytes,
    tar_gz_bytes,
    tar_member,
)
from shared.core.errors import RejectCode, Rejection
from shared.core.sdist import SdistInfo, SdistLimits, inspect_sdist, parse_sdist_name
from tests.support.rejections import assert_rejected

DEMO = "demo-1.0.tar.gz"
TOP = "demo-1.0"

# --------------------------------------------------------------------------- helpers


def inspect(data: bytes, filename: str = DEMO, *, limits: SdistLimits | None = None) -> SdistInfo:
    return inspect_sdist(filename, io.BytesIO(data), limits=limits or SdistLimits())


def rejected(
    code: RejectCode, data: bytes, filename: str = DEMO, *, limits: SdistLimits | None = None
) -> Rejection:
    return assert_rejected(code, lambda: inspect(data, filename, limits=limits))


def name_rejected(code: RejectCode, name: str) -> Rejection:
    return assert_rejected(code, lambda: parse_sdist_name(name))


def with_members(*extra: SdistMember, sdist: BuiltSdist | None = None) -> bytes:
    """The demo sdist with ``extra`` members appended."""
    sdist = sdist or build_sdist()
    return tar_gz_bytes([*sdist.members, *extra])


def without(path: str, sdist: BuiltSdist | None = None) -> list[SdistMember]:
    sdist = sdist or build_sdist()
    return [member for member in sdist.members if member[0].name != path]


def symlink(path: str, target: str) -> SdistMember:
    return tar_member(path, type=tarfile.SYMTYPE, linkname=target)


def hardlink(path: str, target: str) -> SdistMember:
    return tar_member(path, type=tarfile.LNKTYPE, linkname=target)


# --------------------------------------------------------------------------- filenames


@pytest.mark.parametrize(
    ("name", "project", "version"),
    [
        (DEMO, "demo", "1.0"),
        ("my_pkg-2.0.tar.gz", "my-pkg", "2.0"),
        ("zope_interface-7.2.tar.gz", "zope-interface", "7.2"),
        ("demo-1!2.0rc1.post3.dev4+local.7.tar.gz", "demo", "1!2.0rc1.post3.dev4+local.7"),
    ],
)
def test_pep625_names_parse(name: str, project: str, version: str) -> None:
    assert parse_sdist_name(name) == (project, Version(version))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Demo-1.0.tar.gz", "demo-1.0.tar.gz"),
        ("my-pkg-2.0.tar.gz", "my_pkg-2.0.tar.gz"),
        ("zope.interface-7.2.tar.gz", "zope_interface-7.2.tar.gz"),
        ("PyYAML-6.0.1.tar.gz", "pyyaml-6.0.1.tar.gz"),
        ("demo-01.0.tar.gz", "demo-1.0.tar.gz"),
        ("demo-1.0-1.tar.gz", "demo-1.0.post1.tar.gz"),  # the version held a "-"
        ("demo-1.0.TAR.GZ", "demo-1.0.tar.gz"),
    ],
)
def test_names_pypi_would_refuse_are_refused_with_the_name_to_use(name: str, expected: str) -> None:
    rejection = name_rejected(RejectCode.SDIST_NAME_NOT_NORMALIZED, name)
    assert repr(expected) in rejection.message


@pytest.mark.parametrize(
    "name",
    [
        "demo-1.0.zip",
        "demo-1.0.tar.bz2",
        "demo-1.0.tar.xz",
        "demo-1.0.tgz",
        "demo-1.0.tar",
        "demo-1.0.tbz2",
        "demo-1.0.tar.zst",
        "Demo-1.0.ZIP",
    ],
)
def test_legacy_sdist_formats_have_their_own_code(name: str) -> None:
    assert ".tar.gz" in name_rejected(RejectCode.LEGACY_SDIST_FORMAT, name).message


def test_eggs_have_their_own_code() -> None:
    rejection = name_rejected(RejectCode.EGG_NOT_ACCEPTED, "demo-1.0-py3.11.egg")
    assert "wheel" in rejection.message


@pytest.mark.parametrize(
    "name",
    ["demo.tar.gz", "-1.0.tar.gz", "demo-notaversion.tar.gz", "de mo-1.0.tar.gz", "demo-.tar.gz"],
)
def test_unparseable_names_are_invalid(name: str) -> None:
    name_rejected(RejectCode.INVALID_SDIST_FILENAME, name)


def test_inspect_checks_the_name_first() -> None:
    rejected(RejectCode.SDIST_NAME_NOT_NORMALIZED, b"not even gzip", "Demo-1.0.tar.gz")


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("layout", SDIST_LAYOUTS)
def test_each_build_backends_layout_is_accepted(layout: str) -> None:
    sdist = build_sdist("My.Pkg", "2.0", layout=layout, requires_python=" >=3.9 ")
    info = inspect(sdist.data, sdist.filename)
    assert info == SdistInfo(
        project=canonicalize_name("my-pkg"),
        name="My.Pkg",
        version="2.0",
        filename="my_pkg-2.0.tar.gz",
        requires_python=">=3.9",
        warnings=(),
    )
    assert info.metadata is None
    assert info.metadata_sha256 is None


def test_the_maturin_layout_uses_gnu_long_names() -> None:
    """The GNU long-name header path is exercised, not only PAX."""
    data = gzip.decompress(build_sdist(layout="maturin").data)
    assert b"././@LongLink" in data


def test_an_old_setuptools_top_directory_spelling_is_accepted_silently() -> None:
    """setuptools before PEP 625 named the directory like the old filename."""
    sdist = build_sdist("My.Pkg", "2.0", top="My.Pkg-2.0")
    assert inspect(sdist.data, sdist.filename).warnings == ()


def test_a_leading_dot_slash_names_the_same_paths() -> None:
    """`tar czf demo-1.0.tar.gz ./demo-1.0` writes "./demo-1.0/…"; PyPI and pip accept it."""
    sdist = build_sdist(
        top="./demo-1.0", extra_members=[hardlink("./demo-1.0/h", "./demo-1.0/setup.py")]
    )
    info = inspect(sdist.data)
    assert (info.project, info.version, info.warnings) == ("demo", "1.0", ())


def test_an_odd_top_directory_only_warns() -> None:
    """pip builds from the one top-level directory whatever its name; PyPI does not look."""
    sdist = build_sdist(top="source")
    (warning,) = inspect(sdist.data).warnings
    assert "'source'" in warning
    assert "'demo-1.0'" in warning


def test_the_version_is_compared_normalised() -> None:
    sdist = build_sdist(pkg_info_override=make_metadata("demo", "1.00"))
    assert inspect(sdist.data).version == "1.0"


@pytest.mark.parametrize(
    "links",
    [
        [symlink(f"{TOP}/docs", "src")],
        [symlink(f"{TOP}/src/demo/readme", "../../README")],
        [symlink(f"{TOP}/here", ".")],
        [symlink(f"{TOP}/a", "b"), symlink(f"{TOP}/b", "src/demo")],
        [hardlink(f"{TOP}/setup2.py", f"{TOP}/setup.py")],
    ],
    ids=["sibling", "dot-dot-inside", "itself", "chain", "hardlink"],
)
def test_links_that_stay_inside_are_accepted(links: list[SdistMember]) -> None:
    inspect(with_members(*links))


def test_setuid_bits_only_warn() -> None:
    """tarfile's data filter strips them; pip resets modes anyway."""
    info = inspect(with_members(tar_member(f"{TOP}/run.sh", b"#!/bin/sh\n", mode=0o4755)))
    assert any("setuid" in warning for warning in info.warnings)


def test_a_missing_license_file_only_warns() -> None:
    licensed = [("License-File", "LICENSE.txt")]
    present = build_sdist(layout="hatchling", extra_metadata=licensed, metadata_version="2.4")
    assert inspect(present.data).warnings == ()
    missing = build_sdist(layout="flit", extra_metadata=licensed, metadata_version="2.4")
    assert any("'LICENSE.txt'" in warning for warning in inspect(missing.data).warnings)


def test_warnings_are_bounded() -> None:
    fields = [(f"X-Odd-Field-{n}", "x") for n in range(30)]
    info = inspect(build_sdist(extra_metadata=fields).data, limits=SdistLimits(max_warnings=5))
    assert len(info.warnings) == 6
    assert info.warnings[-1] == "... and 25 more warnings"


def test_a_multi_member_gzip_and_zero_padding_are_accepted() -> None:
    """gzip.GzipFile (under pip's tarfile) reads both."""
    raw = tar_bytes(build_sdist().members)
    inspect(gzip.compress(raw[:1024], mtime=0) + gzip.compress(raw[1024:], mtime=0))
    inspect(gzip.compress(raw, mtime=0) + bytes(4096))


def test_a_tar_without_the_end_marker_is_accepted() -> None:
    """tarfile (pip, PyPI) reads one; nothing can hide after the end of the stream."""
    raw = tar_bytes(build_sdist().members)
    body = raw.rstrip(b"\0")
    body += bytes(-len(body) % tarfile.BLOCKSIZE)
    inspect(gzip.compress(body, mtime=0))


def test_the_upload_is_read_once_as_a_stream() -> None:
    """No member is extracted or read twice: the file is read front to back, once."""
    sdist = build_sdist(extra_members=[tar_member(f"{TOP}/big.bin", incompressible_bytes(300_000))])

    class Counting(io.BytesIO):
        bytes_read = 0

        def read(self, size: int | None = -1, /) -> bytes:
            chunk = super().read(size)
            self.bytes_read += len(chunk)
            return chunk

    upload = Counting(sdist.data)
    inspect_sdist(sdist.filename, upload)
    assert upload.bytes_read <= len(sdist.data) + 2  # the gzip magic is peeked once


def test_an_oserror_from_the_file_is_not_a_rejection() -> None:
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell() > 100:
                raise OSError("disk on fire")
            return super().read(size)

    with pytest.raises(OSError, match="disk on fire"):
        inspect_sdist(DEMO, Failing(build_sdist().data))


# --------------------------------------------------------------------------- not a gzip'd tar


@pytest.mark.parametrize(
    "data",
    [b"", b"\x1f", tar_bytes(build_sdist().members), b"PK\x03\x04" + bytes(100), b"BZh91AY&SY"],
    ids=["empty", "one-byte", "plain-tar", "zip", "bzip2"],
)
def test_not_gzip_is_refused(data: bytes) -> None:
    rejected(RejectCode.NOT_GZIP, data)


@pytest.mark.parametrize(
    "payload",
    [b"hello " * 1000, b"PK\x03\x04" + bytes(600), incompressible_bytes(2048)],
    ids=["text", "zip-inside", "random"],
)
def test_gzip_of_something_else_is_not_a_tar(payload: bytes) -> None:
    rejected(RejectCode.NOT_A_TAR, gzip.compress(payload, mtime=0))


@pytest.mark.parametrize("cut", [10, 30, 200, 2000])
def test_a_truncated_upload_is_corrupt(cut: int) -> None:
    data = build_sdist(extra_members=[tar_member(f"{TOP}/r.bin", incompressible_bytes(4000))]).data
    rejected(RejectCode.CORRUPT_SDIST, data[:-cut])


def test_a_bad_crc_is_corrupt() -> None:
    data = bytearray(build_sdist().data)
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    rejected(RejectCode.CORRUPT_SDIST, bytes(data))


def test_bytes_after_the_gzip_stream_are_corrupt() -> None:
    rejected(RejectCode.CORRUPT_SDIST, build_sdist().data + b"hidden payload")


def test_data_after_the_tar_end_is_corrupt() -> None:
    raw = tar_bytes(build_sdist().members)
    rejected(RejectCode.CORRUPT_SDIST, gzip.compress(raw + b"hidden".ljust(512, b"\0"), mtime=0))


def test_a_damaged_header_after_the_first_is_corrupt() -> None:
    """tarfile silently stops at it; GNU tar and others read on, so it is refused."""
    raw = tar_bytes(build_sdist().members)
    damaged = raw[:512] + b"\xff" * 512 + raw[1024:]
    rejected(RejectCode.CORRUPT_SDIST, gzip.compress(damaged, mtime=0))


def test_random_damage_never_escapes_as_another_exception() -> None:
    data = build_sdist(layout="maturin").data
    chooser = random.Random(20240229)
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(chooser.randrange(1, 4)):
            damaged[chooser.randrange(len(damaged))] = chooser.randrange(256)
        try:
            inspect(bytes(damaged))
        except Rejection:
            pass


def test_damage_inside_the_tar_is_caught() -> None:
    """Flipped bytes in the tar itself (under a valid gzip stream) give a clean rejection."""
    raw = tar_bytes(build_sdist(layout="maturin").members)
    chooser = random.Random(7)
    codes = set()
    for _ in range(200):
        damaged = bytearray(raw)
        damaged[chooser.randrange(len(damaged) // 2)] = chooser.randrange(256)
        try:
            inspect(gzip.compress(bytes(damaged), mtime=0))
        except Rejection as rejection:
            codes.add(rejection.code)
    assert RejectCode.CORRUPT_SDIST in codes or RejectCode.NOT_A_TAR in codes


# --------------------------------------------------------------------------- member paths


@pytest.mark.parametrize(
    "path",
    [
        "../evil.py",
        f"{TOP}/../../evil.py",
        f"{TOP}/src/../../evil.py",
        "/etc/passwd",
        f"/{TOP}/setup.py",
        "C:/evil.py",
        f"{TOP}\\..\\evil.py",
        f"{TOP}/bad\x01name",
        f"{TOP}/new\nline",
        f"{TOP}/./setup2.py",
        f"{TOP}//twice.py",
    ],
    ids=[
        "dot-dot",
        "dot-dot-from-top",
        "dot-dot-deeper",
        "absolute",
        "absolute-top",
        "drive-letter",
        "backslash",
        "control",
        "newline",
        "dot-part",
        "empty-part",
    ],
)
def test_unsafe_member_paths_are_refused(path: str) -> None:
    rejected(RejectCode.UNSAFE_PATH, with_members(tar_member(path, b"x")))


def test_an_over_long_path_is_refused() -> None:
    long_path = f"{TOP}/" + "d/" * 600 + "f.py"
    rejected(RejectCode.UNSAFE_PATH, with_members(tar_member(long_path, b"x")))


def test_a_ustar_name_hidden_behind_a_pax_path_is_checked_too() -> None:
    """Tools that ignore PAX headers extract the member under its plain header name."""
    info, content = tar_member("../evil.py", b"x")
    info.pax_headers = {"path": f"{TOP}/fine.py"}
    rejected(RejectCode.UNSAFE_PATH, with_members((info, content)))


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize(
    "links",
    [
        [symlink(f"{TOP}/out", "../../etc")],
        [symlink(f"{TOP}/up", "..")],
        [symlink(f"{TOP}/abs", "/etc/passwd")],
        [symlink(f"{TOP}/empty", "")],
        [symlink(f"{TOP}/c", "."), symlink(f"{TOP}/b", "c/..")],  # lexically inside
        [symlink(f"{TOP}/b", "c/.."), symlink(f"{TOP}/c", ".")],  # the same, other order
        [symlink(f"{TOP}/a", "b"), symlink(f"{TOP}/b", "a")],
        [hardlink(f"{TOP}/h", "../outside")],
        [hardlink(f"{TOP}/h", "/etc/passwd")],
        [hardlink(f"{TOP}/h", "other-1.0/setup.py")],
        [symlink(f"{TOP}/l", "src"), hardlink(f"{TOP}/h", f"{TOP}/l/../..")],
    ],
    ids=[
        "symlink-out",
        "symlink-to-parent",
        "absolute-target",
        "empty-target",
        "chain-out",
        "chain-out-reordered",
        "loop",
        "hardlink-out",
        "hardlink-absolute",
        "hardlink-other-top",
        "hardlink-through-symlink",
    ],
)
def test_links_that_leave_the_top_directory_are_refused(links: list[SdistMember]) -> None:
    rejected(RejectCode.UNSAFE_LINK, with_members(*links))


def test_a_member_written_through_a_symlink_is_refused() -> None:
    data = with_members(symlink(f"{TOP}/l", "src"), tar_member(f"{TOP}/l/evil.py", b"x"))
    rejected(RejectCode.UNSAFE_LINK, data)


# --------------------------------------------------------------------------- member types


@pytest.mark.parametrize(
    "kind",
    [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, b"V"],
    ids=["char-device", "block-device", "fifo", "unknown"],
)
def test_special_files_are_refused(kind: bytes) -> None:
    rejected(RejectCode.SPECIAL_FILE_MEMBER, with_members(tar_member(f"{TOP}/dev", type=kind)))


def test_a_sparse_file_is_refused() -> None:
    info, content = tar_member(f"{TOP}/sparse", type=tarfile.GNUTYPE_SPARSE)
    data = tar_gz_bytes([*build_sdist().members, (info, content)], tar_format=tarfile.GNU_FORMAT)
    rejected(RejectCode.SPECIAL_FILE_MEMBER, data)


def test_a_duplicate_member_is_refused() -> None:
    """Extractors keep the last copy, tarfile.getmember too, some tools the first."""
    sdist = build_sdist()
    pkg_info = [member for member in sdist.members if member[0].name == f"{TOP}/PKG-INFO"]
    rejected(RejectCode.DUPLICATE_MEMBER, with_members(*pkg_info))


def test_a_repeated_directory_entry_is_fine() -> None:
    inspect(with_members(tar_member(f"{TOP}/src", type=tarfile.DIRTYPE)))


# --------------------------------------------------------------------------- the top directory


@pytest.mark.parametrize(
    "extra",
    [
        tar_member("other-1.0/setup.py", b"x"),
        tar_member("setup.py", b"x"),
        tar_member("other", type=tarfile.DIRTYPE),
    ],
    ids=["second-directory", "file-at-top", "second-empty-directory"],
)
def test_a_second_top_level_entry_is_refused(extra: SdistMember) -> None:
    rejected(RejectCode.SDIST_TOP_LEVEL_INVALID, with_members(extra))


def test_a_single_file_archive_is_refused() -> None:
    data = tar_gz_bytes([tar_member("PKG-INFO", make_metadata("demo", "1.0"))])
    rejected(RejectCode.SDIST_TOP_LEVEL_INVALID, data)


def test_an_empty_tar_is_refused() -> None:
    rejected(RejectCode.SDIST_TOP_LEVEL_INVALID, tar_gz_bytes([]))


# --------------------------------------------------------------------------- PKG-INFO


def test_a_missing_pkg_info_is_refused() -> None:
    rejected(RejectCode.PKG_INFO_MISSING, tar_gz_bytes(without(f"{TOP}/PKG-INFO")))


def test_pkg_info_only_in_egg_info_is_refused() -> None:
    """PyPI and pip look at {top}/PKG-INFO, nowhere else."""
    members = without(f"{TOP}/PKG-INFO")
    members.append(tar_member(f"{TOP}/src/demo.egg-info/PKG-INFO", make_metadata("demo", "1.0")))
    rejected(RejectCode.PKG_INFO_MISSING, tar_gz_bytes(members))


def test_pkg_info_as_a_link_is_refused() -> None:
    members = without(f"{TOP}/PKG-INFO")
    members.append(tar_member(f"{TOP}/real", make_metadata("demo", "1.0")))
    members.append(symlink(f"{TOP}/PKG-INFO", "real"))
    rejected(RejectCode.PKG_INFO_MISSING, tar_gz_bytes(members))


def test_pkg_info_over_the_limit_is_refused() -> None:
    sdist = build_sdist()
    limits = SdistLimits(max_pkg_info_bytes=len(sdist.pkg_info) - 1)
    rejected(RejectCode.METADATA_TOO_LARGE, sdist.data, limits=limits)
    inspect(sdist.data, limits=SdistLimits(max_pkg_info_bytes=len(sdist.pkg_info)))


@pytest.mark.parametrize(
    ("pkg_info", "code"),
    [
        (make_metadata("other", "1.0"), RejectCode.NAME_MISMATCH),
        (make_metadata("demo", "1.1"), RejectCode.VERSION_MISMATCH),
        (
            make_metadata("demo", "1.0", requires_python=">=3.9,<"),
            RejectCode.REQUIRES_PYTHON_INVALID,
        ),
        (make_metadata("demo", "1.0", requires_dist=["bad req ("]), RejectCode.METADATA_INVALID),
        (make_metadata("demo", "1.0", metadata_version="9.9"), RejectCode.METADATA_INVALID),
        (
            b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: \xff\n",
            RejectCode.METADATA_INVALID,
        ),
    ],
    ids=["name", "version", "requires-python", "requires-dist", "metadata-version", "not-utf8"],
)
def test_pkg_info_is_held_to_the_core_metadata_rules(pkg_info: bytes, code: RejectCode) -> None:
    rejected(code, build_sdist(pkg_info_override=pkg_info).data)


def test_messages_name_pkg_info() -> None:
    pkg_info = make_metadata("other", "1.0")
    rejection = rejected(RejectCode.NAME_MISMATCH, build_sdist(pkg_info_override=pkg_info).data)
    assert rejection.message.startswith("PKG-INFO Name 'other'")


def test_a_direct_url_requirement_is_refused() -> None:
    pkg_info = make_metadata("demo", "1.0", requires_dist=["evil @ https://example.com/e.whl"])
    rejected(RejectCode.METADATA_INVALID, build_sdist(pkg_info_override=pkg_info).data)


# --------------------------------------------------------------------------- bombs


def test_a_member_declaring_more_than_the_cap_is_refused_before_inflating() -> None:
    """64 MiB of zeros: 65 KB compressed, refused by its header (ratio over the floor)."""
    zeros = tar_member(f"{TOP}/zeros.bin", bytes(64 * 1024**2))
    data = with_members(zeros)
    assert len(data) < 100_000
    rejection = rejected(RejectCode.SDIST_BOMB, data)
    assert "declares" in rejection.message


def test_the_total_cap_applies_whatever_the_ratio() -> None:
    member = tar_member(f"{TOP}/noise.bin", incompressible_bytes(200_000))
    limits = SdistLimits(max_uncompressed_bytes=100_000, ratio_floor_bytes=10)
    rejected(RejectCode.SDIST_BOMB, with_members(member), limits=limits)


def test_inflated_bytes_are_counted_not_only_declared_sizes() -> None:
    """Zero padding after the tar's end declares nothing, and is still counted."""
    raw = tar_bytes(build_sdist().members) + bytes(64 * 1024**2)
    rejection = rejected(RejectCode.SDIST_BOMB, gzip.compress(raw, mtime=0))
    assert "declares" not in rejection.message


def test_many_members_are_refused_at_the_cap() -> None:
    members = [tar_member(f"{TOP}/m/{n}.py", b"") for n in range(60)]
    limits = SdistLimits(max_members=50)
    rejected(RejectCode.SDIST_BOMB, with_members(*members), limits=limits)
    inspect(with_members(*members[:40]), limits=limits)


def test_millions_of_tiny_members_stop_at_the_ratio() -> None:
    """Tiny members are 512-byte headers of zeros mostly: they deflate very well."""
    members = [tar_member(f"{TOP}/m/{n:06d}", b"") for n in range(40_000)]
    rejected(RejectCode.SDIST_BOMB, with_members(*members), limits=SdistLimits(ratio_floor_bytes=0))


def test_a_huge_pax_header_is_refused_before_it_is_read() -> None:
    info, content = tar_member(f"{TOP}/x.py", b"x")
    info.pax_headers = {"comment": "x" * 100_000}
    rejection = rejected(RejectCode.SDIST_BOMB, with_members((info, content)))
    assert "extended" in rejection.message


def test_a_huge_gnu_long_name_is_refused_before_it_is_read() -> None:
    info, content = tar_member(f"{TOP}/" + "n" * 70_000, b"x")
    data = tar_gz_bytes([*build_sdist().members, (info, content)], tar_format=tarfile.GNU_FORMAT)
    rejected(RejectCode.SDIST_BOMB, data)


def test_a_run_of_extended_headers_is_refused() -> None:
    """tarfile reads a run of extended headers recursively."""
    raw = tar_bytes(build_sdist().members)
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    record = b"18 comment=hello\n"
    pax.size = len(record)
    header = pax.tobuf(tarfile.USTAR_FORMAT) + record.ljust(512, b"\0")
    rejected(RejectCode.SDIST_BOMB, gzip.compress(header * 10 + raw, mtime=0))


def test_a_zlib_bomb_stream_is_stopped_by_produced_bytes() -> None:
    """A raw deflate stream of zeros inflates ~1000x; only the budget stops it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    raw = tar_bytes(build_sdist().members)[:-1024]  # no end marker: zeros follow as blocks
    chunks: Sequence[bytes] = [compressor.compress(raw)]
    zeros = bytes(1024**2)
    chunks = [*chunks, *(compressor.compress(zeros) for _ in range(64)), compressor.flush()]
    rejected(RejectCode.SDIST_BOMB, b"".join(chunks))


# --------------------------------------------------------------------------- bench/compat.py


def test_compat_benchmark_covers_sdists_beside_wheels(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sdist = build_sdist()
    (corpus / sdist.filename).write_bytes(sdist.data)
    (corpus / "Demo-1.0.tar.gz").write_bytes(sdist.data)
    (corpus / "demo-1.0.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (corpus / "odd-2.0.tar.gz").write_bytes(build_sdist("odd", "2.0", top="src").data)
    wheel = build_wheel()
    (corpus / wheel.filename).write_bytes(wheel.data)
    out = tmp_path / "compat.json"
    assert compat.main([str(corpus), "--label", "test", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["runs"]["test"]["wheels"] == 1
    run = document["sdist_runs"]["test"]
    assert (run["sdists"], run["accepted"], run["accepted_with_warnings"]) == (4, 2, 1)
    assert run["rejected_by_code"]["sdist-name-not-normalized"]["count"] == 1
    assert run["rejected_by_code"]["legacy-sdist-format"]["count"] == 1
    assert document["sdist_corpus"]["sdists"] == 4
    assert run["shapes"]["members"][0][1] > 0


def test_setgid_directories_are_not_noise() -> None:
    """Directories inherit setgid from where the sdist was built; the filter ignores it."""
    group_dir = tar_member(f"{TOP}/shared", type=tarfile.DIRTYPE, mode=0o2775)
    assert inspect(with_members(group_dir)).warnings == ()


def test_repeated_directory_entries_count_as_members() -> None:
    """tarfile keeps every header it reads: a repeated entry costs memory like a new one."""
    repeated = [tar_member(f"{TOP}/src", type=tarfile.DIRTYPE) for _ in range(60)]
    rejected(RejectCode.SDIST_BOMB, with_members(*repeated), limits=SdistLimits(max_members=50))
