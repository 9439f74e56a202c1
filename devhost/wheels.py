"""Build real wheels and sdists in code: for tests, benchmarks and `python -m devhost.sample`.

There are no binary fixtures: every wheel and sdist is made here, deterministically (fixed zip
timestamps and attributes, seeded payload), so the same arguments always give the same
bytes. The default output is a complete wheel that ``pip install`` accepts.

Typical use::

    wheel = build_wheel("demo", "1.0", requires_python=">=3.9")
    inspect_wheel(wheel.filename, io.BytesIO(wheel.data))

To make a broken variant, edit ``wheel.members`` and re-zip it, recomputing RECORD with
:func:`with_record` when the breakage should not be in RECORD itself::

    members = [m for m in wheel.members if not m[0].endswith("/WHEEL")]
    data = zip_bytes(with_record(members, wheel.dist_info))

Sdists the same way, as one of the layouts real build backends write::

    sdist = build_sdist("demo", "1.0", layout="hatchling")
    inspect_sdist(sdist.filename, io.BytesIO(sdist.data))
    data = tar_gz_bytes([*sdist.members, tar_member("../evil", b"x")])
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random
import re
import tarfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.tags import parse_tag
from packaging.utils import canonicalize_name

Member = tuple[str, bytes]

DEFAULT_TAG = "py3-none-any"
ZIP_DATE_TIME = (2020, 2, 2, 0, 0, 0)  # fixed, so archives are byte-for-byte reproducible
_PAYLOAD_SEED = 20240229


@dataclass(frozen=True)
class BuiltWheel:
    """A wheel built in memory."""

    filename: str  # e.g. "demo-1.0-py3-none-any.whl"
    data: bytes  # the archive
    sha256: str  # hex sha256 of `data`
    metadata: bytes  # the exact METADATA bytes inside the archive
    members: tuple[Member, ...]  # (path, content) in archive order, RECORD last
    dist_info: str  # e.g. "demo-1.0.dist-info"


def build_wheel(
    name: str = "demo",
    version: str = "1.0",
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    summary: str = "A test package",
    metadata_version: str = "2.1",
    extra_metadata: Sequence[tuple[str, str]] = (),
    description: str | None = None,
    tag: str = DEFAULT_TAG,
    build: str | None = None,
    modules: Mapping[str, bytes] | None = None,
    payload_bytes: int = 0,
    extra_files: Sequence[Member] = (),
    metadata_override: bytes | None = None,
    wheel_file_override: bytes | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> BuiltWheel:
    """Build a complete wheel with a correct RECORD.

    ``name`` is the display name written to METADATA; the filename and ``.dist-info``
    directory use its escaped form (``My.Pkg`` -> ``my_pkg``). ``version`` is written
    as given, so non-normalised spellings can be tested.

    ``modules`` are the importable files outside ``.dist-info`` (path -> content); the
    default is ``{module}/__init__.py`` defining ``__version__``. ``payload_bytes`` adds
    an incompressible ``{module}/_payload.bin`` of that size (for large benchmark
    wheels). ``extra_files`` are added as given (they may be inside ``.dist-info``) and
    are listed in RECORD. The overrides replace METADATA / WHEEL verbatim; RECORD still
    matches them.
    """
    escaped = escaped_name(name)
    dist_info = f"{escaped}-{version}.dist-info"
    if modules is None:
        modules = {f"{escaped}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    members: list[Member] = list(modules.items())
    if payload_bytes:
        members.append((f"{escaped}/_payload.bin", incompressible_bytes(payload_bytes)))
    members += extra_files
    metadata = metadata_override
    if metadata is None:
        metadata = make_metadata(
            name,
            version,
            metadata_version=metadata_version,
            summary=summary,
            requires_python=requires_python,
            requires_dist=requires_dist,
            extra_metadata=extra_metadata,
            description=description,
        )
    wheel_file = wheel_file_override
    if wheel_file is None:
        wheel_file = make_wheel_file(tag, build=build)
    members += [(f"{dist_info}/METADATA", metadata), (f"{dist_info}/WHEEL", wheel_file)]
    members = with_record(members, dist_info)
    data = zip_bytes(members, compression=compression)
    return BuiltWheel(
        filename=wheel_filename(name, version, tag=tag, build=build),
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        metadata=metadata,
        members=tuple(members),
        dist_info=dist_info,
    )


def escaped_name(name: str) -> str:
    """The project name as wheel filenames and ``.dist-info`` directories spell it."""
    return canonicalize_name(name).replace("-", "_")


def wheel_filename(
    name: str, version: str, *, tag: str = DEFAULT_TAG, build: str | None = None
) -> str:
    """``{escaped name}-{version}[-{build}]-{tag}.whl``."""
    build_part = f"-{build}" if build else ""
    return f"{escaped_name(name)}-{version}{build_part}-{tag}.whl"


def make_metadata(
    name: str,
    version: str,
    *,
    metadata_version: str = "2.1",
    summary: str | None = "A test package",
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    extra_metadata: Sequence[tuple[str, str]] = (),
    description: str | None = None,
) -> bytes:
    """METADATA as a build backend writes it; ``description`` becomes the body."""
    headers = [("Metadata-Version", metadata_version), ("Name", name), ("Version", version)]
    if summary is not None:
        headers.append(("Summary", summary))
    if requires_python is not None:
        headers.append(("Requires-Python", requires_python))
    headers += [("Requires-Dist", requirement) for requirement in requires_dist]
    headers += extra_metadata
    text = "".join(f"{key}: {value}\n" for key, value in headers)
    if description is not None:
        text += "\n" + description
    return text.encode("utf-8")


def make_wheel_file(tag: str = DEFAULT_TAG, *, build: str | None = None) -> bytes:
    """The ``.dist-info/WHEEL`` file, one ``Tag`` line per expanded tag."""
    tags = sorted(str(t) for t in parse_tag(tag))
    pure = all(t.endswith("-any") for t in tags)
    lines = [
        "Wheel-Version: 1.0",
        "Generator: wheelvault-tests",
        f"Root-Is-Purelib: {'true' if pure else 'false'}",
        *(f"Tag: {t}" for t in tags),
    ]
    if build:
        lines.append(f"Build: {build}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def record_hash(content: bytes, algorithm: str = "sha256") -> str:
    """A RECORD hash field: ``algo=`` + urlsafe base64 of the digest, no padding."""
    digest = hashlib.new(algorithm, content).digest()
    return f"{algorithm}=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def record_for(members: Sequence[Member], *, record_path: str | None = None) -> bytes:
    """RECORD text listing ``members`` (path, hash, size), plus ``record_path,,`` if given."""
    lines = [
        f"{_csv_field(path)},{record_hash(content)},{len(content)}" for path, content in members
    ]
    if record_path is not None:
        lines.append(f"{_csv_field(record_path)},,")
    return ("\n".join(lines) + "\n").encode("utf-8")


def with_record(members: Sequence[Member], dist_info: str) -> list[Member]:
    """``members`` without any old RECORD, followed by a freshly computed RECORD.

    Directory entries (paths ending in ``/``) stay in the archive but are not listed.
    """
    record_path = f"{dist_info}/RECORD"
    kept = [member for member in members if member[0] != record_path]
    files = [member for member in kept if not member[0].endswith("/")]
    return [*kept, (record_path, record_for(files, record_path=record_path))]


def zip_bytes(members: Sequence[Member], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of ``members`` in order; duplicates and hostile names are allowed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name" is what some tests want
        for path, content in members:
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE_TIME)
            info.compress_type = compression
            info.create_system = 3  # Unix, whatever the host: reproducible bytes
            info.external_attr = (0o40755 if path.endswith("/") else 0o100644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def incompressible_bytes(size: int, *, seed: int = _PAYLOAD_SEED) -> bytes:
    """Deterministic pseudo-random bytes: deflate cannot shrink them."""
    return random.Random(seed).randbytes(size)


_CSV_SPECIAL = re.compile(r'[",\r\n]')


def _csv_field(value: str) -> str:
    if _CSV_SPECIAL.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


# --------------------------------------------------------------------------- sdists

SdistMember = tuple[tarfile.TarInfo, bytes]
TAR_MTIME = 1580601600  # ZIP_DATE_TIME as a timestamp: archives are reproducible
SDIST_LAYOUTS = ("setuptools", "hatchling", "flit", "poetry", "maturin")


@dataclass(frozen=True)
class BuiltSdist:
    """An sdist built in memory."""

    filename: str  # e.g. "demo-1.0.tar.gz"
    data: bytes  # the gzip'd tar
    sha256: str  # hex sha256 of `data`
    pkg_info: bytes  # the exact PKG-INFO bytes inside the archive
    members: tuple[SdistMember, ...]  # in archive order
    top: str  # the top-level directory, e.g. "demo-1.0"


def build_sdist(
    name: str = "demo",
    version: str = "1.0",
    *,
    layout: str = "setuptools",
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    metadata_version: str = "2.1",
    extra_metadata: Sequence[tuple[str, str]] = (),
    pkg_info_override: bytes | None = None,
    top: str | None = None,
    extra_members: Sequence[SdistMember] = (),
) -> BuiltSdist:
    """Build an sdist laid out as ``layout``'s build backend writes one (SDIST_LAYOUTS).

    The filename is the PEP 625 one; ``top`` replaces the top-level directory (default
    ``{escaped name}-{version}``). ``extra_members`` are appended as given (their paths
    are not prefixed); ``pkg_info_override`` replaces PKG-INFO verbatim.
    """
    top = top if top is not None else f"{escaped_name(name)}-{version}"
    pkg_info = pkg_info_override
    if pkg_info is None:
        pkg_info = make_metadata(
            name,
            version,
            metadata_version=metadata_version,
            requires_python=requires_python,
            requires_dist=requires_dist,
            extra_metadata=extra_metadata,
        )
    files, directories, tar_format = _LAYOUTS[layout](escaped_name(name), version)
    members = [tar_member(f"{top}/{d}", type=tarfile.DIRTYPE) for d in directories]
    members += [tar_member(f"{top}/{path}", content) for path, content in files.items()]
    members += [tar_member(f"{top}/PKG-INFO", pkg_info), *extra_members]
    data = tar_gz_bytes(members, tar_format=tar_format)
    return BuiltSdist(
        filename=f"{escaped_name(name)}-{version}.tar.gz",
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        pkg_info=pkg_info,
        members=tuple(members),
        top=top,
    )


def tar_member(
    path: str,
    content: bytes = b"",
    *,
    type: bytes = tarfile.REGTYPE,
    linkname: str = "",
    mode: int | None = None,
    size: int | None = None,
) -> SdistMember:
    """One tar member; ``size`` overrides the header's size (for lying headers)."""
    info = tarfile.TarInfo(path)
    info.type = type
    info.linkname = linkname
    info.mtime = TAR_MTIME
    info.mode = mode if mode is not None else (0o755 if type == tarfile.DIRTYPE else 0o644)
    info.size = len(content) if size is None else size
    return info, content


def tar_gz_bytes(
    members: Sequence[SdistMember],
    *,
    tar_format: int = tarfile.PAX_FORMAT,
    compresslevel: int = 9,
) -> bytes:
    """A gzip'd tar of ``members`` in order; hostile names, types and duplicates allowed."""
    return gzip.compress(tar_bytes(members, tar_format=tar_format), compresslevel, mtime=0)


def tar_bytes(members: Sequence[SdistMember], *, tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as archive:
        for info, content in members:
            archive.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


_Layout = tuple[dict[str, bytes], list[str], int]  # files, directory entries, tar format


def _setuptools_layout(module: str, version: str) -> _Layout:
    """setuptools: directory entries, setup.cfg, and an .egg-info copy of PKG-INFO."""
    files = {
        "setup.py": b"from setuptools import setup\nsetup()\n",
        "setup.cfg": b"[egg_info]\ntag_build = \ntag_date = 0\n",
        "pyproject.toml": b'[build-system]\nrequires = ["setuptools"]\n',
        f"src/{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"src/{module}.egg-info/SOURCES.txt": b"setup.py\n",
    }
    dirs = ["", "src", f"src/{module}", f"src/{module}.egg-info"]
    return files, dirs, tarfile.PAX_FORMAT


def _hatchling_layout(module: str, version: str) -> _Layout:
    """hatchling: files only (no directory entries), a .gitignore, the license."""
    files = {
        f"src/{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        ".gitignore": b"*.pyc\n",
        "LICENSE.txt": b"MIT\n",
        "pyproject.toml": b'[build-system]\nrequires = ["hatchling"]\n',
    }
    return files, [], tarfile.PAX_FORMAT


def _flit_layout(module: str, version: str) -> _Layout:
    files = {
        f"{module}/__init__.py": f'"""Demo."""\n__version__ = "{version}"\n'.encode(),
        "pyproject.toml": b'[build-system]\nrequires = ["flit_core"]\n',
    }
    return files, [], tarfile.PAX_FORMAT


def _poetry_layout(module: str, version: str) -> _Layout:
    files = {
        "README.md": b"# demo\n",
        "pyproject.toml": b'[build-system]\nrequires = ["poetry-core"]\n',
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    return files, [], tarfile.PAX_FORMAT


def _maturin_layout(module: str, version: str) -> _Layout:
    """maturin: a Rust crate beside the Python package, GNU tar with long names."""
    deep = "/".join(["vendor"] * 16) + "/lib.rs"  # over 100 bytes: a GNU long-name header
    files = {
        "Cargo.toml": f'[package]\nname = "{module}"\nversion = "{version}"\n'.encode(),
        "Cargo.lock": b"version = 3\n",
        "src/lib.rs": b"use pyo3::prelude::*;\n",
        deep: b"// vendored\n",
        f"python/{module}/__init__.py": f"from .{module} import *\n".encode(),
        "pyproject.toml": b'[build-system]\nrequires = ["maturin"]\n',
    }
    return files, [], tarfile.GNU_FORMAT


_LAYOUTS = {
    "setuptools": _setuptools_layout,
    "hatchling": _hatchling_layout,
    "flit": _flit_layout,
    "poetry": _poetry_layout,
    "maturin": _maturin_layout,
}
