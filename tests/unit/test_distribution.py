"""The one wheel-or-sdist dispatch: upload names, inspection, and published filenames."""

from __future__ import annotations

import io

import pytest
from packaging.version import Version

from devhost.wheels import build_sdist, build_wheel
from shared.core.distribution import (
    UploadName,
    check_upload_name,
    inspect_distribution,
    is_sdist,
    parse_filename,
)
from shared.core.errors import RejectCode, Rejection
from shared.core.sdist import SdistInfo, SdistLimits
from shared.core.wheel import Limits, WheelInfo


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", UploadName("", "demo-pkg", Version("1.0"), sdist=False)),
        ("demo_pkg-1.0.tar.gz", UploadName("", "demo-pkg", Version("1.0"), sdist=True)),
        (
            "demo_pkg-2!1.0.post1+local.tar.gz",
            UploadName("", "demo-pkg", Version("2!1.0.post1+local"), sdist=True),
        ),
    ],
)
def test_wheel_and_sdist_names_are_told_apart(name: str, parsed: UploadName) -> None:
    assert check_upload_name(name) == UploadName(
        name, parsed.project, parsed.version, sdist=parsed.sdist
    )
    assert parse_filename(name) == (parsed.project, parsed.version)
    assert is_sdist(name) is parsed.sdist


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # The blob-name rules come first, for either kind.
        ("../demo-1.0.tar.gz", RejectCode.BAD_FILENAME),
        ("demo-1.0.tar.gz\n", RejectCode.BAD_FILENAME),
        # Legacy sdist forms and eggs get the sdist rules' own codes, whatever the letter case.
        ("demo-1.0.zip", RejectCode.LEGACY_SDIST_FORMAT),
        ("demo-1.0.tar.bz2", RejectCode.LEGACY_SDIST_FORMAT),
        ("demo-1.0.TGZ", RejectCode.LEGACY_SDIST_FORMAT),
        ("demo-1.0-py3.11.egg", RejectCode.EGG_NOT_ACCEPTED),
        ("Demo-1.0.tar.gz", RejectCode.SDIST_NAME_NOT_NORMALIZED),
        ("demo-1.0.TAR.GZ", RejectCode.SDIST_NAME_NOT_NORMALIZED),
        ("demo.tar.gz", RejectCode.INVALID_SDIST_FILENAME),
        ("demo-1.0.whl", RejectCode.INVALID_WHEEL_FILENAME),
        ("README", RejectCode.NOT_A_WHEEL),
        ("demo-1.0.exe", RejectCode.NOT_A_WHEEL),
    ],
)
def test_what_is_neither_is_refused_with_its_code(name: str, code: RejectCode) -> None:
    with pytest.raises(Rejection) as caught:
        check_upload_name(name)
    assert caught.value.code is code, caught.value.message


def test_anything_else_is_told_what_the_index_takes() -> None:
    with pytest.raises(Rejection, match=r"only wheels \(\.whl\) and source distributions"):
        check_upload_name("notes.txt")


def test_a_published_name_of_neither_kind_is_a_value_error() -> None:
    for name in ("notes.txt", "demo-1.0.zip", "demo.whl", "Demo-1.0.tar.gz", "demo.tar.gz"):
        with pytest.raises(ValueError, match=r"wheel filename|sdist"):
            parse_filename(name)


def test_each_kind_goes_to_its_own_rules_and_limits() -> None:
    wheel, sdist = build_wheel("demo", "1.0"), build_sdist("demo", "1.0")
    inspected = inspect_distribution(wheel.filename, io.BytesIO(wheel.data))
    assert isinstance(inspected, WheelInfo)
    assert inspected.metadata == wheel.metadata
    inspected_sdist = inspect_distribution(sdist.filename, io.BytesIO(sdist.data))
    assert isinstance(inspected_sdist, SdistInfo)
    assert (inspected_sdist.metadata, inspected_sdist.metadata_sha256) == (None, None)
    with pytest.raises(Rejection) as caught:  # each kind's limits reach its own rules only
        inspect_distribution(
            sdist.filename,
            io.BytesIO(sdist.data),
            wheel_limits=Limits(max_members=1),
            sdist_limits=SdistLimits(max_members=1),
        )
    assert caught.value.code is RejectCode.SDIST_BOMB
    assert (
        inspect_distribution(
            wheel.filename, io.BytesIO(wheel.data), sdist_limits=SdistLimits(max_members=1)
        )
        == inspected
    )
