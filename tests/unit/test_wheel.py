"""Unit tests for shared.core.wheel: every reject code it can raise, and the happy path."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence

import pytest
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name

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
    inspect(build_wheel(metadata_version="2.0", extra_metadata=extra_ok).data)
    too_new = build_wheel(metadata_version="2.0", extra_metadata=[("Dynamic", "Requires-Dist")])
    rejection = rejected(RejectCode.METADATA_INVALID, too_new.data)
    assert "2.2" in rejection.message


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


def test_highly_compressed_large_member_is_a_zip_bomb() -> None:
    wheel = build_wheel(extra_files=[("demo/zeros.bin", bytes(20 * 1024**2))])
    rejection = rejected(RejectCode.ZIP_BOMB, wheel.data)
    assert "'demo/zeros.bin'" in rejection.message


def test_ratio_cap_applies_only_above_one_mebibyte() -> None:
    wheel = build_wheel(extra_files=[("demo/zeros.bin", bytes(1024**2))])
    assert inspect(wheel.data).name == "demo"


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


def test_oversized_dist_info_file_is_refused_before_hashing() -> None:
    wheel = build_wheel(extra_files=[(f"{DIST_INFO}/big.txt", b"x" * 3000)])
    record_size = len(dict(wheel.members)[f"{DIST_INFO}/RECORD"])
    limits = Limits(max_dist_info_file_bytes=max(record_size, 2000))
    rejection = rejected(RejectCode.ZIP_BOMB, wheel.data, limits=limits)
    assert "big.txt" in rejection.message


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
        (_metadata(*BASE, "Foo: bar"), "'foo'"),
        (_metadata(*BASE, "Summary: one", "Summary: two"), "'summary'"),
        (_metadata("Metadata-Version: 2.1", "Version: 1.0"), "'name'"),
        (_metadata("Metadata-Version: 2.1", "Name: demo"), "'version'"),
        (_metadata("Name: demo", "Version: 1.0"), "metadata-version"),
        (_metadata("Metadata-Version: 3.0", "Name: demo", "Version: 1.0"), "3.0"),
        (_metadata("Metadata-Version: 2.6", "Name: demo", "Version: 1.0"), "2.6"),
        (_metadata("Metadata-Version: 2", "Name: demo", "Version: 1.0"), "'2'"),
        (_metadata("Metadata-Version: 2.1", "Name: -demo-", "Version: 1.0"), "-demo-"),
        (_metadata("Metadata-Version: 2.1", "Name: demo", "Version: one"), "one"),
        (_metadata(*BASE, "Requires-Dist: foo >="), "foo >="),
        (_metadata(*BASE, "License-Expression: MIT"), "2.4"),
        (_metadata(*BASE, "Provides-Extra: -bad-"), "-bad-"),
        (_metadata(*BASE, "Description-Content-Type: text/html"), "text/html"),
        (_metadata(*BASE, "Summary: " + "s" * 513), "512"),
        (_metadata(*BASE, "Requires-Dist: foo @ https://example.com/foo.whl"), "direct"),
        (_metadata(*BASE, "Provides-Dist: OtherProject (3.4)"), "Provides-Dist"),
        (
            _metadata("Metadata-Version: 2.4", "Name: demo", "Version: 1.0", "License: MIT")
            + b"License-Expression: MIT\n",
            "mutually exclusive",
        ),
        (
            _metadata(
                "Metadata-Version: 2.4", "Name: demo", "Version: 1.0", "License-File: COPYING"
            ),
            "COPYING",
        ),
        (_metadata(*BASE, "Summary: caf\xe9").replace(b"\xc3\xa9", b"\xe9"), "UTF-8"),
    ],
)
def test_invalid_metadata(metadata: bytes, expected: str) -> None:
    rejection = rejected(RejectCode.METADATA_INVALID, build_wheel(metadata_override=metadata).data)
    assert expected in rejection.message


def test_metadata_problems_make_one_bounded_line() -> None:
    fields = [f"X-Field-{n}: value\nwith: junk" for n in range(200)]
    rejection = rejected(
        RejectCode.METADATA_INVALID, build_wheel(metadata_override=_metadata(*BASE, *fields)).data
    )
    assert len(rejection.message) <= 500
    assert all(ch.isprintable() for ch in rejection.message)


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
        (f"{METADATA_PATH},sha256={{hex}},{{size}}", "malformed"),
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
