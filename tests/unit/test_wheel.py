"""Unit tests for shared.core.wheel: every reject code it can raise, and the happy path."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name

from bench import compat
from devhost.wheels import (
    ZIP_DATE_TIME,
    BuiltWheel,
    Member,
    build_wheel,
    incompressible_bytes,
    make_metadata,
    record_for,
    record_hash,
    with_record,
    zip_bytes,
)
from shared.core.errors import RejectCode, Rejection
from shared.core.wheel import (
    MAX_BLOB_NAME_LENGTH,
    Limits,
    WheelInfo,
    check_upload_name,
    inspect_wheel,
)

DEMO = "demo-1.0-py3-none-any.whl"
DIST_INFO = "demo-1.0.dist-info"


# --------------------------------------------------------------------------- helpers


def inspect(data: bytes, filename: str = DEMO, *, limits: Limits | None = None) -> WheelInfo:
    return inspect_wheel(filename, io.BytesIO(data), limits=limits or Limits())


def rejected(
    code: RejectCode, data: bytes, filename: str = DEMO, *, limits: Limits | None = None
) -> Rejection:
    """Assert that inspecting ``data`` raises exactly ``code``; return the rejection."""
    with pytest.raises(Rejection) as caught:
        inspect(data, filename, limits=limits)
    assert caught.value.code is code, caught.value.message
    assert "\n" not in caught.value.message
    return caught.value


def name_rejected(code: RejectCode, name: str) -> Rejection:
    with pytest.raises(Rejection) as caught:
        check_upload_name(name)
    assert caught.value.code is code, caught.value.message
    return caught.value


def variant(
    wheel: BuiltWheel,
    *,
    drop: Sequence[str] = (),
    replace: Mapping[str, bytes] | None = None,
    add: Sequence[Member] = (),
    fix_record: bool = True,
) -> bytes:
    """Re-zip ``wheel`` with members dropped, replaced or added (paths as in the archive)."""
    replace = replace or {}
    members = [(path, replace.get(path, content)) for path, content in wheel.members]
    members = [member for member in members if member[0] not in drop] + list(add)
    if fix_record:
        members = with_record(members, wheel.dist_info)
    return zip_bytes(members)


def with_record_lines(wheel: BuiltWheel, lines: Sequence[str]) -> bytes:
    """Re-zip ``wheel`` with RECORD replaced verbatim by ``lines``."""
    record = ("\n".join(lines) + "\n").encode()
    return variant(wheel, replace={f"{wheel.dist_info}/RECORD": record}, fix_record=False)


def record_lines(wheel: BuiltWheel) -> list[str]:
    record = dict(wheel.members)[f"{wheel.dist_info}/RECORD"]
    return record.decode().splitlines()


def central_headers(data: bytes) -> dict[str, int]:
    """Offsets of each member's central directory header."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        position = archive.start_dir
    offsets = {}
    while data.startswith(b"PK\x01\x02", position):
        name_length, extra_length, comment_length = struct.unpack_from("<3H", data, position + 28)
        name = data[position + 46 : position + 46 + name_length].decode()
        offsets[name] = position
        position += 46 + name_length + extra_length + comment_length
    return offsets


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


def b64_digest(algorithm: str, content: bytes) -> str:
    digest = hashlib.new(algorithm, content).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --------------------------------------------------------------------------- upload names


@pytest.mark.parametrize(
    ("name", "project", "version", "build", "tags"),
    [
        (DEMO, "demo", "1.0", (), {Tag("py3", "none", "any")}),
        ("demo-1.0-7b-py3-none-any.whl", "demo", "1.0", (7, "b"), {Tag("py3", "none", "any")}),
        ("demo-1!2.0-py3-none-any.whl", "demo", "1!2.0", (), {Tag("py3", "none", "any")}),
        (
            "demo-1.0+cu118.x-py3-none-any.whl",
            "demo",
            "1.0+cu118.x",
            (),
            {Tag("py3", "none", "any")},
        ),
        (
            "my_pkg-1.0.0.alpha1-py2.py3-none-any.whl",
            "my-pkg",
            "1.0.0a1",
            (),
            {Tag("py2", "none", "any"), Tag("py3", "none", "any")},
        ),
        (
            "numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "numpy",
            "2.0.0",
            (),
            {
                Tag("cp312", "cp312", "manylinux_2_17_x86_64"),
                Tag("cp312", "cp312", "manylinux2014_x86_64"),
            },
        ),
        (
            "Zope.Interface-5.0-py3-none-any.whl",
            "zope-interface",
            "5.0",
            (),
            {Tag("py3", "none", "any")},
        ),
    ],
)
def test_valid_upload_names_parse(
    name: str, project: str, version: str, build: tuple[()] | tuple[int, str], tags: set[Tag]
) -> None:
    parsed = check_upload_name(name)
    assert parsed.filename == name
    assert parsed.project == project
    assert str(parsed.version) == version
    assert parsed.build == build
    assert parsed.tags == frozenset(tags)


def test_upload_name_at_the_length_limit_is_accepted() -> None:
    suffix = "-1.0-py3-none-any.whl"
    name = "a" * (MAX_BLOB_NAME_LENGTH - len(suffix)) + suffix
    assert len(name) == MAX_BLOB_NAME_LENGTH
    assert check_upload_name(name).project == "a" * (MAX_BLOB_NAME_LENGTH - len(suffix))
    name_rejected(RejectCode.BAD_FILENAME, "a" + name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 10_000 + ".whl",
        "dir/demo-1.0-py3-none-any.whl",
        "dir\\demo-1.0-py3-none-any.whl",
        "/demo-1.0-py3-none-any.whl",
        "..",
        ".",
        "../demo-1.0-py3-none-any.whl",
        "demo-1.0-py3-none-any.whl..",
        "demo..1.0-py3-none-any.whl",
        ".demo-1.0-py3-none-any.whl",
        "démo-1.0-py3-none-any.whl",
        "demo-1.0-py3-none-any.whl\u2028",
        "demo\uff0f1.0-py3-none-any.whl",  # fullwidth solidus
        "demo\n-1.0-py3-none-any.whl",
        "demo-1.0-py3-none-any.whl\r",
        "demo\x00-1.0-py3-none-any.whl",
        "demo\x1b[31m-1.0-py3-none-any.whl",
        "demo\x7f-1.0-py3-none-any.whl",
        "demo\x85-1.0-py3-none-any.whl",
        "demo 1.0-py3-none-any.whl",
        "demo\t1.0-py3-none-any.whl",
        "demo-1.0-py3-none-any.whl;rm",
        "demo-1.0-py3-none-any%2ewhl",
        "demo-1.0~1-py3-none-any.whl",
        "demo-1.0-py3-none-any.whl?x=1",
    ],
)
def test_unsafe_upload_names_are_bad_filenames(name: str) -> None:
    rejection = name_rejected(RejectCode.BAD_FILENAME, name)
    assert all(ch.isprintable() for ch in rejection.message)
    assert len(rejection.message) < 300


@pytest.mark.parametrize("control", ["\x00", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9b"])
def test_control_characters_never_reach_the_message(control: str) -> None:
    rejection = name_rejected(RejectCode.BAD_FILENAME, f"demo{control}-1.0-py3-none-any.whl")
    assert control not in rejection.message
    assert control not in str(rejection)
    assert repr(control)[1:-1] in rejection.message  # shown escaped


@pytest.mark.parametrize(
    "name",
    ["demo-1.0.tar.gz", "demo-1.0.zip", "demo-1.0.tar.bz2", "demo-1.0.tar.xz", "Demo-1.0.TAR.GZ"],
)
def test_sdists_are_not_wheels(name: str) -> None:
    rejection = name_rejected(RejectCode.NOT_A_WHEEL, name)
    assert "sdist" in rejection.message
    assert "only wheels are published for now" in rejection.message
    assert repr(name) in rejection.message


def test_eggs_are_not_wheels() -> None:
    rejection = name_rejected(RejectCode.NOT_A_WHEEL, "demo-1.0-py3.11.egg")
    assert "only wheels are published for now" in rejection.message
    assert "egg" in rejection.message


@pytest.mark.parametrize(
    "name", ["README", "demo-1.0.exe", "demo-1.0-py3-none-any.WHL", "x.whl.txt"]
)
def test_other_files_are_not_wheels(name: str) -> None:
    rejection = name_rejected(RejectCode.NOT_A_WHEEL, name)
    assert "only wheels" in rejection.message
    assert "sdist" not in rejection.message


@pytest.mark.parametrize(
    "name",
    [
        "demo.whl",
        "demo-1.0.whl",
        "demo-1.0-py3-none.whl",
        "demo-1.0-1-2-py3-none-any.whl",
        "demo-not_a_version-py3-none-any.whl",
        "demo-1.0-b1-py3-none-any.whl",  # build tag must start with a digit
        "demo__x-1.0-py3-none-any.whl",
        "demo-1.0-py3-none-.whl",
    ],
)
def test_malformed_wheel_names_are_invalid_wheel_filenames(name: str) -> None:
    rejection = name_rejected(RejectCode.INVALID_WHEEL_FILENAME, name)
    assert isinstance(rejection.__cause__, InvalidWheelFilename)
    assert repr(name) in rejection.message


def test_inspect_wheel_checks_the_name_too() -> None:
    wheel = build_wheel()
    rejected(RejectCode.BAD_FILENAME, wheel.data, "../" + wheel.filename)
    rejected(RejectCode.NOT_A_WHEEL, wheel.data, "demo-1.0.tar.gz")


# --------------------------------------------------------------------------- valid wheels


def test_valid_wheel_gives_wheel_info() -> None:
    wheel = build_wheel("My.Pkg", "1.0.0.alpha1", requires_python=" >=3.9, <4 ")
    assert wheel.filename == "my_pkg-1.0.0.alpha1-py3-none-any.whl"

    info = inspect(wheel.data, wheel.filename)

    assert info == WheelInfo(
        filename="my_pkg-1.0.0.alpha1-py3-none-any.whl",
        project=canonicalize_name("my-pkg"),
        name="My.Pkg",
        version="1.0.0a1",
        requires_python=">=3.9, <4",
        metadata=wheel.metadata,
        metadata_sha256=hashlib.sha256(wheel.metadata).hexdigest(),
    )
    assert b"Version: 1.0.0.alpha1\n" in info.metadata
    assert b"Requires-Python:  >=3.9, <4 \n" in info.metadata  # unmodified bytes


def test_requires_python_is_none_when_absent_or_empty() -> None:
    assert inspect(build_wheel().data).requires_python is None
    assert inspect(build_wheel(requires_python="").data).requires_python is None


def test_rich_valid_wheel_passes() -> None:
    wheel = build_wheel(
        "demo",
        "1.0",
        metadata_version="2.4",
        requires_python=">=3.9",
        requires_dist=["idna>=2", 'tomli; python_version < "3.11"', "rich[jupyter]~=13.0"],
        extra_metadata=[
            ("Provides-Extra", "cli"),
            ("Project-URL", "Source, https://example.com/demo"),
            ("License-Expression", "MIT"),
            ("License-File", "LICENSE"),
            ("Classifier", "Programming Language :: Python :: 3"),
            ("Description-Content-Type", "text/markdown"),
        ],
        description="# Demo\n\nLong description with unicode: \u00e9\u4e2d.\n",
        tag="py2.py3-none-any",
        build="3",
        extra_files=[
            (f"{DIST_INFO}/licenses/LICENSE", b"MIT License\n"),
            (f"{DIST_INFO}/entry_points.txt", b"[console_scripts]\ndemo = demo:main\n"),
            ("demo/", b""),
            ("demo/data/", b""),
            ("demo/data/\u00e9t\u00e9.txt", b"unicode member names are fine\n"),
            ("demo/A.py", b""),
            ("demo/a.py", b""),  # differs from A.py only by case: not a duplicate
        ],
    )
    assert wheel.filename == "demo-1.0-3-py2.py3-none-any.whl"
    info = inspect(wheel.data, wheel.filename)
    assert info.name == "demo"
    assert info.requires_python == ">=3.9"


@pytest.mark.parametrize(
    "metadata_version", ["1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5"]
)
def test_supported_metadata_versions_are_accepted(metadata_version: str) -> None:
    wheel = build_wheel(metadata_version=metadata_version)
    info = inspect(wheel.data)
    assert info.metadata == wheel.metadata
    assert f"Metadata-Version: {metadata_version}\n".encode() in info.metadata


def test_metadata_2_0_is_validated_as_2_1() -> None:
    extra_ok = [("Provides-Extra", "cli"), ("Description-Content-Type", "text/plain")]
    assert inspect(build_wheel(metadata_version="2.0", extra_metadata=extra_ok).data).warnings == ()
    too_new = build_wheel(metadata_version="2.0", extra_metadata=[("Dynamic", "Requires-Dist")])
    assert inspect(too_new.data).warnings == (
        "METADATA: dynamic introduced in metadata version 2.2, not 2.1",
    )


def test_non_normalised_dist_info_name_and_equal_versions_are_accepted() -> None:
    wheel = build_wheel("Demo", "1.0", metadata_override=make_metadata("DEMO", "1.0.0"))
    renamed = [
        (path.replace("demo-1.0.dist-info", "Demo-1.00.dist-info"), content)
        for path, content in wheel.members
    ]
    data = zip_bytes(with_record(renamed, "Demo-1.00.dist-info"))
    info = inspect(data, wheel.filename)
    assert info.name == "DEMO"
    assert info.project == "demo"
    assert info.version == "1.0"


def test_archive_comment_and_zip64_end_record_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = build_wheel()
    commented = wheel.data[:-2] + struct.pack("<H", 7) + b"comment"
    inspect(commented)

    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # force zip64 end records
    data = zip_bytes(wheel.members)
    monkeypatch.undo()
    assert b"PK\x06\x06" in data
    assert b"PK\x06\x07" in data
    assert inspect(data).name == "demo"


def test_stored_members_are_accepted() -> None:
    wheel = build_wheel(compression=zipfile.ZIP_STORED)
    assert inspect(wheel.data).name == "demo"


def test_builder_is_deterministic() -> None:
    first = build_wheel("demo", "1.0", payload_bytes=1000)
    second = build_wheel("demo", "1.0", payload_bytes=1000)
    assert first.data == second.data
    assert first.sha256 == hashlib.sha256(first.data).hexdigest() == second.sha256
    assert build_wheel("demo", "1.1").data != first.data


def test_record_signatures_need_not_be_listed() -> None:
    wheel = build_wheel()
    signed = variant(wheel, add=[(f"{DIST_INFO}/RECORD.jws", b"{}")], fix_record=False)
    inspect(signed)


# --------------------------------------------------------------------------- not a zip / corrupt


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PK",
        b"hello, world\n" * 100,
        random.Random(7).randbytes(64 * 1024),
        zlib.compress(b"not a tarball but gzip-ish"),
        b"\x1f\x8b\x08\x00" + bytes(1000),
    ],
    ids=["empty", "two-bytes", "text", "random", "zlib", "gzip-header"],
)
def test_things_that_never_were_zips_are_not_zips(data: bytes) -> None:
    rejected(RejectCode.NOT_A_ZIP, data)


def test_truncated_wheels_are_corrupt_and_never_raise_anything_else() -> None:
    data = build_wheel().data
    for cut in range(len(data)):
        with pytest.raises(Rejection) as caught:
            inspect(data[:cut])
        expected = RejectCode.NOT_A_ZIP if cut < 4 else RejectCode.CORRUPT_ZIP
        assert caught.value.code is expected, (cut, caught.value.message)


def test_damaged_bytes_only_ever_raise_rejections() -> None:
    data = build_wheel().data
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        try:
            inspect(bytes(damaged))
        except Rejection:
            pass


def test_bytes_before_or_after_the_archive_are_corrupt() -> None:
    data = build_wheel().data
    rejected(RejectCode.CORRUPT_ZIP, b"MZ" + bytes(100) + data)  # zipfile itself accepts this
    rejected(RejectCode.CORRUPT_ZIP, data + b"trailing")


def test_bad_crc_in_a_member_that_is_read_is_corrupt() -> None:
    wheel = build_wheel(compression=zipfile.ZIP_STORED)
    position = wheel.data.index(b"Summary: A test package")
    damaged = wheel.data[:position] + b"s" + wheel.data[position + 1 :]
    rejection = rejected(RejectCode.CORRUPT_ZIP, damaged)
    assert "CRC" in rejection.message


def test_unsupported_compression_is_refused() -> None:
    wheel = build_wheel()
    rejection = rejected(
        RejectCode.CORRUPT_ZIP, zip_bytes(wheel.members, compression=zipfile.ZIP_BZIP2)
    )
    assert "compression method 12" in rejection.message


def test_encrypted_members_are_refused() -> None:
    data = build_wheel().data
    header = central_headers(data)["demo/__init__.py"]
    flags = struct.unpack_from("<H", data, header + 8)[0]
    rejection = rejected(RejectCode.CORRUPT_ZIP, patch(data, header + 8, "<H", flags | 1))
    assert "encrypted" in rejection.message


def test_local_header_disagreeing_with_central_directory_is_corrupt() -> None:
    data = build_wheel().data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        offset = archive.getinfo("demo/__init__.py").header_offset
    assert data[offset + 30 : offset + 46] == b"demo/__init__.py"
    # Only a streaming unzipper would see this name; zipfile never opens the member.
    spoofed = data[: offset + 30] + b"demo/__init__.pz" + data[offset + 46 :]
    rejection = rejected(RejectCode.CORRUPT_ZIP, spoofed)
    assert "disagrees" in rejection.message


def test_overlapping_members_are_corrupt() -> None:
    data = build_wheel().data
    headers = central_headers(data)
    overlapping = patch(data, headers[f"{DIST_INFO}/METADATA"] + 42, "<L", 0)
    rejection = rejected(RejectCode.CORRUPT_ZIP, overlapping)
    assert "overlaps" in rejection.message


def test_lying_end_record_count_is_corrupt() -> None:
    data = build_wheel().data
    end = len(data) - 22
    lying = patch(patch(data, end + 8, "<H", 2), end + 10, "<H", 2)
    rejected(RejectCode.CORRUPT_ZIP, lying)


def test_damaged_zip64_locator_is_corrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    data = zip_bytes(build_wheel().members)
    monkeypatch.undo()
    locator = len(data) - 22 - 20
    assert data.startswith(b"PK\x06\x07", locator)
    rejected(RejectCode.CORRUPT_ZIP, patch(data, locator + 8, "<Q", 0))


def test_lying_uncompressed_size_cannot_make_us_read_more() -> None:
    data = build_wheel().data
    header = central_headers(data)[f"{DIST_INFO}/METADATA"]
    lying = patch(data, header + 24, "<L", 10)  # declares 10 bytes; zipfile stops there
    rejection = rejected(RejectCode.CORRUPT_ZIP, lying)
    assert "CRC" in rejection.message


def test_os_errors_from_the_file_object_propagate() -> None:
    class BrokenFile(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        inspect_wheel(DEMO, BrokenFile(build_wheel().data))


# --------------------------------------------------------------------------- member paths


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "C:/Windows/evil.dll",
        "c:evil.py",
        "demo\\..\\..\\evil.py",
        "\\\\server\\share\\evil.py",
        "../evil.py",
        "demo/../../evil.py",
        "..",
        "demo/./__init__.py",
        "demo//evil.py",
        "",
        "demo/evil\n.py",
        "demo/evil\x1b.py",
        "demo/evil\x85.py",
    ],
)
def test_unsafe_member_paths_are_refused(path: str) -> None:
    wheel = build_wheel()
    rejection = rejected(RejectCode.UNSAFE_PATH, variant(wheel, add=[(path, b"x = 1\n")]))
    assert all(ch.isprintable() for ch in rejection.message)


def test_nul_in_member_name_is_unsafe() -> None:
    wheel = build_wheel()
    data = variant(wheel, add=[("demo/evil_.py", b"")])
    # zipfile cannot write a NUL and truncates names at one when reading: patch the bytes.
    rejected(RejectCode.UNSAFE_PATH, data.replace(b"demo/evil_.py", b"demo/evil\x00.py"))


def test_unsafe_unicode_path_extra_field_is_refused() -> None:
    wheel = build_wheel()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in wheel.members:
            archive.writestr(zipfile.ZipInfo(path, ZIP_DATE_TIME), content)
        info = zipfile.ZipInfo("demo/harmless.py", ZIP_DATE_TIME)
        unicode_name = b"../../evil.py"
        crc = zlib.crc32(b"demo/harmless.py")
        info.extra = struct.pack("<2HBL", 0x7075, 5 + len(unicode_name), 1, crc) + unicode_name
        archive.writestr(info, b"")
    rejected(RejectCode.UNSAFE_PATH, buffer.getvalue())


def test_paths_are_checked_before_the_dist_info_layout() -> None:
    rejected(RejectCode.UNSAFE_PATH, zip_bytes([("../evil.py", b"")]))


# --------------------------------------------------------------------------- member types


def zip_with_modes(members: Sequence[Member], modes: Mapping[str, tuple[int, int]]) -> bytes:
    """Like zip_bytes, with (create_system, external_attr) set for the members named."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, content in members:
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system, info.external_attr = modes.get(path, (3, 0o100644 << 16))
            archive.writestr(info, content)
    return buffer.getvalue()


def test_symlink_member_is_refused() -> None:
    link = ("demo/link", b"/etc")  # unzip would create demo/link -> /etc
    members = with_record([*build_wheel().members, link], DIST_INFO)
    data = zip_with_modes(members, {"demo/link": (3, 0o120777 << 16)})
    rejection = rejected(RejectCode.SYMLINK_MEMBER, data)
    assert "'demo/link'" in rejection.message
    # Info-ZIP honours the unix mode whatever the creating system says.
    rejected(RejectCode.SYMLINK_MEMBER, zip_with_modes(members, {"demo/link": (0, 0xA1FF0020)}))


@pytest.mark.parametrize(
    "kind", [0o020000, 0o060000, 0o010000, 0o140000, 0o130000], ids=oct
)  # char device, block device, fifo, socket, no such type
def test_special_file_members_are_refused(kind: int) -> None:
    members = with_record([*build_wheel().members, ("demo/dev", b"")], DIST_INFO)
    data = zip_with_modes(members, {"demo/dev": (3, (kind | 0o644) << 16)})
    rejection = rejected(RejectCode.SPECIAL_FILE_MEMBER, data)
    assert oct(kind) in rejection.message


def test_windows_made_members_without_unix_mode_are_fine() -> None:
    wheel = build_wheel()
    dos = {path: (0, 0x20) for path, _ in wheel.members}  # FAT "archive" attribute only
    assert inspect(zip_with_modes(wheel.members, dos)).name == "demo"
    windows_python = {path: (0, 0o100666 << 16) for path, _ in wheel.members}
    assert inspect(zip_with_modes(wheel.members, windows_python)).name == "demo"


def test_directory_entries_are_fine() -> None:
    wheel = build_wheel()
    with_dirs = with_record([("demo/", b""), *wheel.members], DIST_INFO)
    assert inspect(zip_with_modes(with_dirs, {"demo/": (3, (0o40755 << 16) | 0x10)})).name == "demo"


def test_directory_entries_holding_data_are_corrupt() -> None:
    wheel = build_wheel()
    with_dirs = with_record([("demo/", b"hidden"), *wheel.members], DIST_INFO)
    rejection = rejected(RejectCode.CORRUPT_ZIP, zip_with_modes(with_dirs, {}))
    assert "'demo/'" in rejection.message


# --------------------------------------------------------------------------- duplicates


def test_duplicate_members_are_refused() -> None:
    wheel = build_wheel()
    duplicated = zip_bytes([*wheel.members, ("demo/__init__.py", b"evil = True\n")])
    rejection = rejected(RejectCode.DUPLICATE_MEMBER, duplicated)
    assert "'demo/__init__.py'" in rejection.message


def test_duplicate_metadata_is_refused() -> None:
    wheel = build_wheel()
    other = make_metadata("demo", "1.0", requires_python=">=3.13")
    duplicated = zip_bytes([*wheel.members, (f"{DIST_INFO}/METADATA", other)])
    rejected(RejectCode.DUPLICATE_MEMBER, duplicated)


# --------------------------------------------------------------------------- zip bombs


def test_one_highly_compressed_member_is_not_a_bomb() -> None:
    # Like onnx 1.23.1's test tensor (2.5 KB -> 2.5 MB); was refused by a per-member ratio.
    wheel = build_wheel(extra_files=[("demo/data/input_0.pb", bytes(2_560_015))])
    member = zipfile.ZipFile(io.BytesIO(wheel.data)).getinfo("demo/data/input_0.pb")
    assert member.file_size / member.compress_size > 1000
    assert inspect(wheel.data).warnings == ()


def split_bomb(members: int, member_bytes: int = 1024**2) -> bytes:
    """A valid wheel with ``members`` files of zeros, RECORD right: small, expands hugely."""
    zeros = bytes(member_bytes)
    hashed = record_hash(zeros)
    files = [(f"demo/zeros/{n}.bin", zeros) for n in range(members)]
    wheel = build_wheel()
    record = b"".join(f"{path},{hashed},{member_bytes}\n".encode() for path, _ in files)
    record += dict(wheel.members)[f"{DIST_INFO}/RECORD"]
    members_out = [*files, *wheel.members[:-1], (f"{DIST_INFO}/RECORD", record)]
    return zip_bytes(members_out)


def test_split_bomb_is_refused_by_the_overall_ratio() -> None:
    # 64 x 64 KiB of zeros: 4 MiB from ~70 KB; no single member is large.
    data = split_bomb(64, 64 * 1024)
    limits = Limits(max_overall_ratio=20, ratio_floor_bytes=1024**2)
    rejection = rejected(RejectCode.ZIP_BOMB, data, limits=limits)
    assert "over the cap of 20x" in rejection.message
    assert inspect(data, limits=Limits(max_overall_ratio=20, ratio_floor_bytes=8 * 1024**2))


def test_split_bomb_is_refused_at_the_default_caps() -> None:
    # 600 x 1 MiB of zeros: a 0.7 MB wheel expanding to 600 MiB; passed the per-member ratio.
    data = split_bomb(600)
    assert len(data) < 1024**2
    rejection = rejected(RejectCode.ZIP_BOMB, data)
    ratio = re.search(r"expands (\d+)x", rejection.message)
    assert ratio is not None
    assert int(ratio.group(1)) > 800


def test_decompressed_bytes_are_counted_as_produced(monkeypatch: pytest.MonkeyPatch) -> None:
    # zipfile stops at the declared size today; the count does not rely on it.
    wheel = build_wheel(extra_files=[("demo/data.bin", bytes(5000))])
    read = zipfile.ZipExtFile.read

    def overproducing(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        chunk = read(self, n)
        return chunk + chunk if self.name == "demo/data.bin" else chunk

    monkeypatch.setattr(zipfile.ZipExtFile, "read", overproducing)
    rejection = rejected(RejectCode.ZIP_BOMB, wheel.data)
    assert "more bytes than the archive declares" in rejection.message


def test_large_incompressible_wheel_passes() -> None:
    wheel = build_wheel(payload_bytes=10 * 1024**2)
    assert len(wheel.data) > 10 * 1024**2
    assert inspect(wheel.data).name == "demo"


def test_total_uncompressed_size_cap() -> None:
    wheel = build_wheel(payload_bytes=5000)
    rejection = rejected(
        RejectCode.ZIP_BOMB, wheel.data, limits=Limits(max_uncompressed_bytes=5000)
    )
    assert "over the cap of 5000" in rejection.message
    inspect(wheel.data, limits=Limits(max_uncompressed_bytes=6000))


def test_member_count_cap() -> None:
    wheel = build_wheel()
    assert len(wheel.members) == 4
    rejected(RejectCode.ZIP_BOMB, wheel.data, limits=Limits(max_members=3))
    inspect(wheel.data, limits=Limits(max_members=4))


def test_member_count_cap_does_not_trust_the_end_record() -> None:
    data = build_wheel().data
    end = len(data) - 22
    lying = patch(patch(data, end + 8, "<H", 1), end + 10, "<H", 1)
    rejection = rejected(RejectCode.ZIP_BOMB, lying, limits=Limits(max_members=3))
    assert "more than 3" in rejection.message


def test_dist_info_files_other_than_wheel_and_record_are_streamed_not_capped() -> None:
    # Hashing streams every file within the total caps; only files read whole have a cap.
    wheel = build_wheel(extra_files=[(f"{DIST_INFO}/licenses/big.txt", b"x" * 3000)])
    record_size = len(dict(wheel.members)[f"{DIST_INFO}/RECORD"])
    inspect(wheel.data, limits=Limits(max_dist_info_file_bytes=max(record_size, 2000)))


# --------------------------------------------------------------------------- dist-info layout


def test_missing_dist_info_directory() -> None:
    wheel = build_wheel()
    modules_only = [member for member in wheel.members if not member[0].startswith(DIST_INFO)]
    rejected(RejectCode.DIST_INFO_MISSING, zip_bytes(modules_only))


@pytest.mark.parametrize(
    "directory", ["demo.dist-info", "demo-1.0-x.dist-info", "demo-1.0.DIST-INFO"]
)
def test_misnamed_dist_info_directory(directory: str) -> None:
    wheel = build_wheel()
    renamed = [(path.replace(DIST_INFO, directory), content) for path, content in wheel.members]
    rejected(RejectCode.DIST_INFO_MISSING, zip_bytes(with_record(renamed, directory)))


@pytest.mark.parametrize("other", ["other-1.0.dist-info", "Demo-1.0.dist-info"])
def test_more_than_one_dist_info_directory(other: str) -> None:
    wheel = build_wheel()
    rejection = rejected(
        RejectCode.DIST_INFO_MULTIPLE, variant(wheel, add=[(f"{other}/METADATA", wheel.metadata)])
    )
    assert repr(other) in rejection.message


@pytest.mark.parametrize(
    ("directory", "code"),
    [
        ("other-1.0.dist-info", RejectCode.NAME_MISMATCH),
        ("demo-2.0.dist-info", RejectCode.VERSION_MISMATCH),
        ("demo-latest.dist-info", RejectCode.VERSION_MISMATCH),
    ],
)
def test_dist_info_directory_must_match_the_filename(directory: str, code: RejectCode) -> None:
    wheel = build_wheel()
    renamed = [(path.replace(DIST_INFO, directory), content) for path, content in wheel.members]
    rejected(code, zip_bytes(with_record(renamed, directory)))


# --------------------------------------------------------------------------- WHEEL


def test_missing_wheel_file() -> None:
    wheel = build_wheel()
    rejected(RejectCode.WHEEL_FILE_MISSING, variant(wheel, drop=[f"{DIST_INFO}/WHEEL"]))


@pytest.mark.parametrize(
    "content",
    [
        b"Generator: x\nRoot-Is-Purelib: true\n",
        b"Wheel-Version: 2.0\n",
        b"Wheel-Version: 0.9\n",
        b"Wheel-Version: 1\n",
        b"Wheel-Version: one\n",
        b"Wheel-Version: 1.0\nWheel-Version: 1.0\n",
        b"Wheel-Version: 1.0\xff\n",
        b"",
    ],
)
def test_invalid_wheel_file(content: bytes) -> None:
    rejected(RejectCode.WHEEL_FILE_INVALID, build_wheel(wheel_file_override=content).data)


def test_newer_minor_wheel_version_is_accepted() -> None:
    inspect(build_wheel(wheel_file_override=b"Wheel-Version: 1.9\nRoot-Is-Purelib: true\n").data)


# --------------------------------------------------------------------------- METADATA


def test_missing_metadata() -> None:
    wheel = build_wheel()
    rejected(RejectCode.METADATA_MISSING, variant(wheel, drop=[f"{DIST_INFO}/METADATA"]))


def test_metadata_over_the_limit() -> None:
    wheel = build_wheel(description="x" * 2000)
    limit = len(wheel.metadata) - 1
    rejection = rejected(
        RejectCode.METADATA_TOO_LARGE, wheel.data, limits=Limits(max_metadata_bytes=limit)
    )
    assert str(limit) in rejection.message
    inspect(wheel.data, limits=Limits(max_metadata_bytes=len(wheel.metadata)))


def test_metadata_over_the_limit_is_refused_without_reading_it() -> None:
    description = base64.b64encode(incompressible_bytes(1024**2)).decode()
    wheel = build_wheel(description=description)

    class CountingFile(io.BytesIO):
        bytes_read = 0

        def read(self, size: int | None = -1, /) -> bytes:
            chunk = super().read(size)
            self.bytes_read += len(chunk)
            return chunk

    upload = CountingFile(wheel.data)
    with pytest.raises(Rejection) as caught:
        inspect_wheel(wheel.filename, upload, limits=Limits(max_metadata_bytes=4096))
    assert caught.value.code is RejectCode.METADATA_TOO_LARGE
    assert upload.bytes_read < len(wheel.metadata) // 4


def _metadata(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


BASE = ("Metadata-Version: 2.1", "Name: demo", "Version: 1.0")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (_metadata("Metadata-Version: 2.1", "Version: 1.0"), "'name'"),
        (_metadata(*BASE, "Name: other"), "'name' is repeated"),
        (_metadata(*BASE, "Version: 1.1"), "'version' is repeated"),
        (_metadata(*BASE, "Metadata-Version: 2.2"), "'metadata-version' is repeated"),
        (_metadata("Metadata-Version: 2.1", "Name: demo"), "'version'"),
        (_metadata("Name: demo", "Version: 1.0"), "metadata-version"),
        (_metadata("Metadata-Version: 3.0", "Name: demo", "Version: 1.0"), "3.0"),
        (_metadata("Metadata-Version: 2.6", "Name: demo", "Version: 1.0"), "2.6"),
        (_metadata("Metadata-Version: 2", "Name: demo", "Version: 1.0"), "'2'"),
        (_metadata("Metadata-Version: 2.1", "Name: -demo-", "Version: 1.0"), "-demo-"),
        (_metadata("Metadata-Version: 2.1", "Name: demo", "Version: one"), "one"),
        (_metadata(*BASE, "Requires-Dist: foo >="), "foo >="),
        (_metadata(*BASE, "Requires-Dist: foo @ https://example.com/foo.whl"), "direct"),
        (_metadata(*BASE, "Summary: caf\xe9").replace(b"\xc3\xa9", b"\xe9"), "UTF-8"),
    ],
)
def test_invalid_metadata(metadata: bytes, expected: str) -> None:
    """The fields installers and the index act on stay strict."""
    rejection = rejected(RejectCode.METADATA_INVALID, build_wheel(metadata_override=metadata).data)
    assert expected in rejection.message


def test_metadata_problems_make_one_bounded_line() -> None:
    fields = [f"Requires-Dist: bad{n} >=\nwith: junk" for n in range(200)]
    rejection = rejected(
        RejectCode.METADATA_INVALID, build_wheel(metadata_override=_metadata(*BASE, *fields)).data
    )
    assert len(rejection.message) <= 500
    assert all(ch.isprintable() for ch in rejection.message)


def _v(version: str, *lines: str) -> bytes:
    return _metadata(f"Metadata-Version: {version}", "Name: demo", "Version: 1.0", *lines)


def _dct(shown: str) -> str:
    # Not packaging's message: it lists the allowed values in set order, which varies by run.
    return (
        f"Description-Content-Type {shown} is not text/plain, text/x-rst or text/markdown "
        "(GFM or CommonMark), in UTF-8 (ignored)"
    )


# PyPI published wheels with each of these (six 1.17.0, black 22.12.0, Cython 0.29.37,
# Deprecated 1.2.18, ply 3.11...): harmless to installers, so published with a warning.
@pytest.mark.parametrize(
    ("metadata", "warnings"),
    [
        (
            _v("2.1", "License-File: LICENSE"),
            ["license-file introduced in metadata version 2.4, not 2.1"],
        ),
        (
            _v("2.2", "License-File: LICENSE"),
            ["license-file introduced in metadata version 2.4, not 2.2"],
        ),
        (
            _v("2.3", "License-File: LICENSE"),
            ["license-file introduced in metadata version 2.4, not 2.3"],
        ),
        (
            _v("2.2", "License-Expression: MIT"),
            ["license-expression introduced in metadata version 2.4, not 2.2"],
        ),
        (_v("2.0", "Description-Content-Type: UNKNOWN"), [_dct("'UNKNOWN'")]),  # ply 3.11
        (
            _v("2.1", "Description-Content-Type: text/plain; charset=latin-1"),
            [_dct("'text/plain; charset=latin-1'")],
        ),
        (
            _v("2.1", "Description-Content-Type: text/markdown; variant=Markdown"),
            [_dct("'text/markdown; variant=Markdown'")],
        ),
        (_v("2.1", "Description-Content-Type: text/html"), [_dct("'text/html'")]),
        (_v("2.1", "Foo: bar"), ["field 'foo' is unknown, repeated or unreadable (ignored)"]),
        (
            _v("2.1", "Summary: one", "Summary: two"),
            ["field 'summary' is unknown, repeated or unreadable (ignored)"],
        ),
        (_v("2.1", "Provides-Extra: -bad-"), ["'-bad-' is invalid for 'provides-extra'"]),
        (_v("2.1", "Summary: " + "s" * 513), ["Summary is over 512 characters (513)"]),
        (
            _v("2.1", "Provides-Dist: OtherProject (3.4)"),
            ["Provides-Dist 'OtherProject (3.4)' is not a valid requirement"],
        ),
        (
            _v("2.4", "License: MIT", "License-Expression: MIT"),
            ["License and License-Expression are both given (they exclude each other)"],
        ),
        (
            _v("1.0", "Requires-Python: >=3", "Requires-Dist: foo"),
            [
                "requires-dist introduced in metadata version 1.2, not 1.0",
                "requires-python introduced in metadata version 1.2, not 1.0",
            ],
        ),
    ],
)
def test_harmless_metadata_problems_are_warnings(metadata: bytes, warnings: list[str]) -> None:
    info = inspect(build_wheel(metadata_override=metadata, extra_files=_LICENSE).data)
    assert info.warnings == tuple(f"METADATA: {text}" for text in warnings)


# Where bdist_wheel put License-File before Metadata-Version 2.4: in .dist-info itself.
_LICENSE = [(f"{DIST_INFO}/LICENSE", b"MIT License\n")]


@pytest.mark.parametrize(
    ("version", "path", "stored", "warnings"),
    [
        ("2.1", "LICENSE", f"{DIST_INFO}/LICENSE", []),
        ("2.1", "LICENSES/MIT.txt", f"{DIST_INFO}/LICENSES/MIT.txt", []),
        ("2.1", "LICENSES/MIT.txt", f"{DIST_INFO}/MIT.txt", []),  # older versions of wheel
        ("2.4", "LICENSE", f"{DIST_INFO}/licenses/LICENSE", []),
        (
            "2.4",
            "LICENSE",
            f"{DIST_INFO}/LICENSE",
            ["License-File 'LICENSE' is not in the wheel at 'demo-1.0.dist-info/licenses/LICENSE'"],
        ),
        (
            "2.1",
            "COPYING",
            f"{DIST_INFO}/LICENSE",
            ["License-File 'COPYING' is not in the wheel at 'demo-1.0.dist-info/licenses/COPYING'"],
        ),
    ],
)
def test_license_files_are_looked_for_where_their_metadata_version_puts_them(
    version: str, path: str, stored: str, warnings: list[str]
) -> None:
    metadata = _v(version, f"License-File: {path}")
    wheel = build_wheel(metadata_override=metadata, extra_files=[(stored, b"license text\n")])
    found = [w for w in inspect(wheel.data).warnings if "introduced in" not in w]
    assert found == [f"METADATA: {text}" for text in warnings]


def test_repeated_requires_python_is_refused() -> None:
    metadata = _metadata(*BASE, "Requires-Python: >=3.8", "Requires-Python: <3")
    rejection = rejected(
        RejectCode.REQUIRES_PYTHON_INVALID, build_wheel(metadata_override=metadata).data
    )
    assert "more than once" in rejection.message


def test_warnings_are_bounded_lines() -> None:
    fields = [f"X-Field-{n}: value\nwith: junk" for n in range(200)]
    info = inspect(build_wheel(metadata_override=_metadata(*BASE, *fields)).data)
    assert len(info.warnings) == 21
    assert info.warnings[-1] == "... and 181 more warnings"
    assert all(len(w) <= 500 and w.isprintable() for w in info.warnings)


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        (
            _metadata("Metadata-Version: 2.1", "Name: other", "Version: 1.0"),
            RejectCode.NAME_MISMATCH,
        ),
        (
            _metadata("Metadata-Version: 2.1", "Name: demo", "Version: 1.1"),
            RejectCode.VERSION_MISMATCH,
        ),
        (
            _metadata("Metadata-Version: 2.1", "Name: demo", "Version: 1.0.post1"),
            RejectCode.VERSION_MISMATCH,
        ),
    ],
)
def test_metadata_must_match_the_filename(metadata: bytes, code: RejectCode) -> None:
    rejected(code, build_wheel(metadata_override=metadata).data)


@pytest.mark.parametrize("specifier", [">=3.9,<", "python3", ">= 3.x", "3.9", "~=3"])
def test_invalid_requires_python_has_its_own_code(specifier: str) -> None:
    wheel = build_wheel(requires_python=specifier)
    rejection = rejected(RejectCode.REQUIRES_PYTHON_INVALID, wheel.data)
    assert repr(specifier) in rejection.message


# --------------------------------------------------------------------------- RECORD


def test_missing_record() -> None:
    wheel = build_wheel()
    data = variant(wheel, drop=[f"{DIST_INFO}/RECORD"], fix_record=False)
    rejected(RejectCode.RECORD_MISSING, data)


def _replace_row(wheel: BuiltWheel, path: str, row: str) -> bytes:
    lines = [row if line.startswith(f"{path},") else line for line in record_lines(wheel)]
    assert row in lines
    return with_record_lines(wheel, lines)


METADATA_PATH = f"{DIST_INFO}/METADATA"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (f"{METADATA_PATH},md5={{md5}},{{size}}", "'md5'"),
        (f"{METADATA_PATH},sha1={{sha1}},{{size}}", "'sha1'"),
        (f"{METADATA_PATH},sha224={{sha224}},{{size}}", "'sha224'"),
        (f"{METADATA_PATH},SHA256={{sha256}},{{size}}", "'SHA256'"),
        (f"{METADATA_PATH},{{sha256}},{{size}}", "hash algorithm"),
        (f"{METADATA_PATH},sha256={{sha256}}=,{{size}}", "malformed"),
        (f"{METADATA_PATH},sha256={{sha256}}A,{{size}}", "malformed"),
        (f"{METADATA_PATH},sha256={{hex}}0,{{size}}", "malformed"),
        (f"{METADATA_PATH},sha512={{hex}},{{size}}", "malformed"),
        (f"{METADATA_PATH},,{{size}}", "no hash"),
        (f"{METADATA_PATH},sha256={{sha256}},12a", "not an integer"),
        (f"{METADATA_PATH},sha256={{sha256}},-1", "not an integer"),
        (f"{METADATA_PATH},sha256={{sha256}}, {{size}}", "not an integer"),
        (f"{METADATA_PATH},sha256={{sha256}}", "2 fields"),
        (f"{METADATA_PATH},sha256={{sha256}},{{size}},extra", "4 fields"),
        (",sha256={sha256},{size}", "empty path"),
    ],
)
def test_invalid_record_rows(row: str, expected: str) -> None:
    wheel = build_wheel()
    row = row.format(
        md5=b64_digest("md5", wheel.metadata),
        sha1=b64_digest("sha1", wheel.metadata),
        sha224=b64_digest("sha224", wheel.metadata),
        sha256=b64_digest("sha256", wheel.metadata),
        hex=hashlib.sha256(wheel.metadata).hexdigest(),
        size=len(wheel.metadata),
    )
    rejection = rejected(RejectCode.RECORD_INVALID, _replace_row(wheel, METADATA_PATH, row))
    assert expected in rejection.message


def test_record_with_a_strong_non_sha256_hash_is_valid() -> None:
    wheel = build_wheel()
    row = f"{METADATA_PATH},{record_hash(wheel.metadata, 'sha512')},{len(wheel.metadata)}"
    inspect(_replace_row(wheel, METADATA_PATH, row))
    row = f"{METADATA_PATH},{record_hash(wheel.metadata, 'blake2b')},"  # size is optional
    inspect(_replace_row(wheel, METADATA_PATH, row))


def test_invalid_record_files() -> None:
    wheel = build_wheel()
    lines = record_lines(wheel)
    record_path = f"{DIST_INFO}/RECORD"
    rejected(RejectCode.RECORD_INVALID, with_record_lines(wheel, [*lines, lines[0]]))
    self_hashed = [line for line in lines if not line.startswith(record_path)]
    self_hashed.append(f"{record_path},sha256={b64_digest('sha256', b'')},0")
    rejected(RejectCode.RECORD_INVALID, with_record_lines(wheel, self_hashed))
    unterminated = [*lines[:-1], '"' + lines[-1]]
    rejected(RejectCode.RECORD_INVALID, with_record_lines(wheel, unterminated))
    latin1 = variant(
        wheel,
        replace={record_path: "\n".join([*lines, "caf\xe9,,"]).encode("latin-1")},
        fix_record=False,
    )
    rejected(RejectCode.RECORD_INVALID, latin1)


def test_record_over_the_limit_is_invalid() -> None:
    wheel = build_wheel()
    files = dict(wheel.members)
    limit = len(files[f"{DIST_INFO}/RECORD"]) - 1
    assert len(files[f"{DIST_INFO}/WHEEL"]) <= limit
    rejected(RejectCode.RECORD_INVALID, wheel.data, limits=Limits(max_dist_info_file_bytes=limit))


def test_hex_record_hashes_are_checked_as_hex_and_warned_about() -> None:
    # gmsh 4.15.2 writes every RECORD hash in hex; the digests are right.
    wheel = build_wheel(extra_files=[("demo/data.txt", b"data\n")])
    lines = [_hex_row(line) for line in record_lines(wheel)]
    assert lines[0].startswith("demo/__init__.py,sha256=")
    assert len(lines[0].split(",")[1]) == len("sha256=") + 64
    info = inspect(with_record_lines(wheel, lines))
    assert info.warnings == (
        "RECORD writes 4 of its 5 hashes in hex, not urlsafe base64 as the wheel format says; "
        "they were checked as hex and match",
    )
    path, hash_field, size = lines[0].split(",")
    upper = f"{path},sha256={hash_field.removeprefix('sha256=').upper()},{size}"
    assert len(inspect(with_record_lines(wheel, [upper, *lines[1:]])).warnings) == 1


def test_wrong_hex_record_hash_is_a_mismatch() -> None:
    wheel = build_wheel(extra_files=[("demo/data.txt", b"data\n")])
    lines = [_hex_row(line) for line in record_lines(wheel)]
    wrong = f"demo/data.txt,sha256={hashlib.sha256(b'other').hexdigest()},5"
    lines = [wrong if line.startswith("demo/data.txt,") else line for line in lines]
    rejection = rejected(RejectCode.RECORD_MISMATCH, with_record_lines(wheel, lines))
    assert "'demo/data.txt'" in rejection.message


def _hex_row(line: str) -> str:
    """A RECORD row with its base64 digest rewritten in hex, as gmsh writes them."""
    path, hash_field, size = line.split(",")
    if not hash_field:
        return line
    algorithm, _, digest = hash_field.partition("=")
    raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
    return f"{path},{algorithm}={raw.hex()},{size}"


def test_hash_mismatch_outside_dist_info_is_refused() -> None:
    # Only .dist-info files were hashed before, though the README promised every file.
    wheel = build_wheel(extra_files=[("demo/data.txt", b"data\n")])
    data = variant(wheel, replace={"demo/data.txt": b"DATA\n"}, fix_record=False)
    rejection = rejected(RejectCode.RECORD_MISMATCH, data)
    assert "'demo/data.txt'" in rejection.message


def test_vendored_dist_info_with_its_own_record_is_just_files() -> None:
    # setuptools, bleach, py and ray vendor packages with their own *.dist-info/RECORD:
    # only the top-level {name}-{version}.dist-info is the wheel's own.
    vendored = "demo/_vendor/six-1.16.0.dist-info"
    nested = [
        ("demo/_vendor/six.py", b"# six\n"),
        (f"{vendored}/METADATA", make_metadata("six", "1.16.0")),
        (f"{vendored}/RECORD", b"six.py,sha256=AAAA,6\nsix-1.16.0.dist-info/RECORD,,\n"),
    ]
    info = inspect(build_wheel(extra_files=nested).data)
    assert info.name == "demo"
    assert info.warnings == ()
    tampered = variant(
        build_wheel(extra_files=nested),
        replace={f"{vendored}/RECORD": dict(nested)[f"{vendored}/RECORD"].replace(b"A", b"B")},
        fix_record=False,
    )
    rejection = rejected(RejectCode.RECORD_MISMATCH, tampered)
    assert f"'{vendored}/RECORD'" in rejection.message


def test_record_hash_mismatch() -> None:
    wheel = build_wheel()
    row = f"{METADATA_PATH},{record_hash(b'other')},{len(wheel.metadata)}"
    rejection = rejected(RejectCode.RECORD_MISMATCH, _replace_row(wheel, METADATA_PATH, row))
    assert repr(METADATA_PATH) in rejection.message


def test_record_size_mismatch() -> None:
    wheel = build_wheel()
    row = f"{METADATA_PATH},{record_hash(wheel.metadata)},{len(wheel.metadata) + 1}"
    rejected(RejectCode.RECORD_MISMATCH, _replace_row(wheel, METADATA_PATH, row))


def test_record_size_mismatch_outside_dist_info_is_found_without_decompressing() -> None:
    wheel = build_wheel()
    content = dict(wheel.members)["demo/__init__.py"]
    row = f"demo/__init__.py,{record_hash(content)},{len(content) + 1}"
    rejected(RejectCode.RECORD_MISMATCH, _replace_row(wheel, "demo/__init__.py", row))


def test_hash_mismatch_of_other_dist_info_file() -> None:
    wheel = build_wheel(extra_files=[(f"{DIST_INFO}/entry_points.txt", b"[console_scripts]\n")])
    path = f"{DIST_INFO}/entry_points.txt"
    data = variant(wheel, replace={path: b"[console_scripts]\nx=y\n"}, fix_record=False)
    rejection = rejected(RejectCode.RECORD_MISMATCH, data)
    assert repr(path) in rejection.message


def test_dist_info_file_missing_from_record() -> None:
    wheel = build_wheel()
    data = variant(wheel, add=[(f"{DIST_INFO}/entry_points.txt", b"")], fix_record=False)
    rejection = rejected(RejectCode.RECORD_MISMATCH, data)
    assert "entry_points.txt" in rejection.message


def test_module_missing_from_record() -> None:
    wheel = build_wheel()
    data = variant(wheel, add=[("demo/extra.py", b"")], fix_record=False)
    rejected(RejectCode.RECORD_MISMATCH, data)


def test_record_naming_a_missing_path() -> None:
    wheel = build_wheel()
    ghost = f"demo/ghost.py,{record_hash(b'')},0"
    rejection = rejected(
        RejectCode.RECORD_MISMATCH, with_record_lines(wheel, [*record_lines(wheel), ghost])
    )
    assert "'demo/ghost.py'" in rejection.message


def test_record_must_list_itself() -> None:
    wheel = build_wheel()
    members = [member for member in wheel.members if not member[0].endswith("/RECORD")]
    record = record_for(members)  # no RECORD row
    rejected(RejectCode.RECORD_MISMATCH, zip_bytes([*members, (f"{DIST_INFO}/RECORD", record)]))


# --------------------------------------------------------------------------- bench/compat.py


def test_compat_benchmark_counts_accepted_rejected_and_warnings(tmp_path: Path) -> None:
    wheel = build_wheel(extra_files=[("demo/data.txt", b"data\n")])
    hexed = with_record_lines(wheel, [_hex_row(line) for line in record_lines(wheel)])
    link = with_record([*wheel.members, ("demo/link", b"/etc")], DIST_INFO)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / wheel.filename).write_bytes(wheel.data)
    (corpus / "demo-1.0-py2-none-any.whl").write_bytes(hexed)
    (corpus / "demo-1.0-py3-none-linux_x86_64.whl").write_bytes(
        zip_with_modes(link, {"demo/link": (3, 0o120777 << 16)})
    )
    out = tmp_path / "compat.json"
    assert compat.main([str(corpus), "--label", "test", "--out", str(out)]) == 0
    run = json.loads(out.read_text())["runs"]["test"]
    assert (run["wheels"], run["accepted"], run["accepted_with_warnings"]) == (3, 2, 1)
    assert run["rejected_by_code"]["symlink-member"]["count"] == 1
    [kind] = run["warnings_by_kind"]
    assert kind.startswith("RECORD writes N of its N hashes in hex")
