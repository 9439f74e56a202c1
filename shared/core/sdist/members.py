"""The tar inside an sdist: its members' paths, types and links, and its one PKG-INFO.

The rules are those of tarfile's ``data`` filter (PEP 706), which pip applies when it
unpacks an sdist on Pythons that have it, decided rule by rule (the filter extracts what
it can; an index decides once, for every installer, including older ones without it):

- absolute member names: the filter strips the leading "/"; refused here, since
  extractors without the filter write them where they say;
- a leading "./" (what `tar czf x.tar.gz ./pkg-1.0` writes) is read as the same path
  without it, as PyPI and every extractor read it;
- ".." in a name, empty or "." parts, a backslash, a control character: refused (the
  filter refuses only what resolves outside; a real sdist has none of them, and on
  Windows a backslash is a separator);
- a link whose target is absolute, or resolves (through the archive's other symbolic
  links) outside the top-level directory: refused, as the filter does (it checks against
  the destination; the top-level directory is stricter and costs no real sdist);
- a member written through a symbolic link: refused (the filter refuses it when it
  leads outside; inside, it is only a way to hide where a file lands);
- devices, fifos, sparse and unknown member types: refused, as the filter does;
- setuid and setgid bits on files: the filter strips them, so they only warn; owners,
  other mode bits and directories' modes are ignored, as the filter ignores or resets them.

The archive is read once, in order, as tarfile reads it (so the index sees what pip
sees); every extended header is checked before tarfile reads it whole.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from shared.core.errors import RejectCode, Rejection, converting
from shared.core.sdist.limits import SdistBudget, SdistLimits
from shared.core.sdist.stream import GzipStream
from shared.core.text import one_line, show

_EXTENDED_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)
# A member has at most a global and a member PAX header, a long name and a long link
# name before it; tarfile reads a run of them recursively.
_MAX_EXTENDED_RUN = 4
_MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS
_SPECIAL_BITS = 0o6000  # setuid, setgid
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # as shared.core.text.is_control
_CHUNK = 64 * 1024
_HIGH_BYTES = bytes(range(0x80, 0x100))


@dataclass
class SdistTree:
    """What the checks after the walk need: the top directory, PKG-INFO, the file names."""

    top: str
    pkg_info: bytes
    files: frozenset[str]  # regular files' names
    warnings: list[str] = field(default_factory=list)


def read_tree(stream: GzipStream, budget: SdistBudget, limits: SdistLimits) -> SdistTree:
    """Walk every member of the tar in ``stream``, check it, and read ``{top}/PKG-INFO``."""
    walk = _Walk(budget, limits)
    with _open_tar(stream, limits) as tar, _converting_tar_errors():
        for info in tar:
            walk.add(tar, info)
        _check_the_end(stream, tar.offset)
    return walk.finish()


def _open_tar(stream: GzipStream, limits: SdistLimits) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream, mode="r:", tarinfo=_checked_tarinfo(stream, limits))
    except tarfile.ReadError as exc:
        raise Rejection(
            RejectCode.NOT_A_TAR,
            f"the gzip stream does not hold a tar archive ({one_line(str(exc))})",
        ) from exc


def _checked_tarinfo(stream: GzipStream, limits: SdistLimits) -> type[tarfile.TarInfo]:
    """A TarInfo that checks each header block before tarfile reads what it announces."""
    run = 0

    class CheckedTarInfo(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tarfile: tarfile.TarFile) -> CheckedTarInfo:
            nonlocal run
            run = _check_next_header(stream, limits, run)
            return super().fromtarfile(tarfile)

    return CheckedTarInfo


def _check_next_header(stream: GzipStream, limits: SdistLimits, run: int) -> int:
    """Check the header block ahead; return how many extended headers precede it in a row.

    A PAX or GNU long-name header is read whole (and in a run, recursively), so its size
    and the run are capped here. The plain name field of a header is checked too: tools
    that ignore PAX headers extract the member under that name. Only the fields needed
    are read (tarfile parses the block fully next); a block that is not a valid header
    is left to tarfile, and to _check_the_end.
    """
    header = _RawHeader.peek(stream)
    if header is None:
        return 0
    if header.kind == tarfile.GNUTYPE_SPARSE:
        raise _special(header.name, "a sparse file")
    if header.kind not in _EXTENDED_TYPES:
        if _escapes(header.name):
            raise Rejection(
                RejectCode.UNSAFE_PATH, f"a header names the member {show(header.name)}"
            )
        return 0
    if header.size > limits.max_extended_header_bytes or run >= _MAX_EXTENDED_RUN:
        raise Rejection(
            RejectCode.SDIST_BOMB,
            f"an extended (PAX or GNU) header of {header.size} bytes, after {run} others, is "
            f"over the caps ({limits.max_extended_header_bytes} bytes, {_MAX_EXTENDED_RUN} "
            "in a row)",
        )
    if b"GNU.sparse." in stream.peek(tarfile.BLOCKSIZE + header.size):
        raise _special(header.name, "a sparse file (PAX)")
    return run + 1


@dataclass(frozen=True)
class _RawHeader:
    """The fields of a tar header block the checks need, as the block spells them."""

    kind: bytes
    size: int
    name: str  # the plain name field (with the ustar prefix), before any PAX or GNU name

    @classmethod
    def peek(cls, stream: GzipStream) -> _RawHeader | None:
        block = stream.peek(tarfile.BLOCKSIZE)
        size = _number(block[124:136]) if len(block) == tarfile.BLOCKSIZE else None
        stored = _number(block[148:156])
        if size is None or stored is None or not _checksum_matches(block, stored):
            return None  # the end of the archive, or damage
        name = block[:100].split(b"\0", 1)[0]
        if block[257:263] == b"ustar\0" and block[345] != 0:
            name = block[345:500].split(b"\0", 1)[0] + b"/" + name
        return cls(block[156:157], size, name.decode("utf-8", "surrogateescape"))


def _number(field: bytes) -> int | None:
    """A header number: octal digits, or base-256 when the high bit is set (GNU)."""
    if field[:1] and field[0] & 0x80:
        return int.from_bytes(field[1:], "big") if field[0] == 0x80 else None
    digits = field.split(b"\0", 1)[0].strip()
    try:
        return int(digits or b"0", 8)
    except ValueError:
        return None


def _checksum_matches(block: bytes, stored: int) -> bool:
    """The header checksum (the bytes summed, the field itself read as spaces), unsigned or
    signed as tarfile accepts; an all-zero block (the end marker) never matches."""
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * 0x20
    if stored == unsigned:
        return any(rest)
    high = len(rest) - len(rest.translate(None, _HIGH_BYTES))  # signed: each is 256 less
    return stored == unsigned - 256 * high


def _check_the_end(stream: GzipStream, offset: int) -> None:
    """tarfile stops at the first block that is not a header: it must be the end marker,
    and only zeros may follow it (other tools read on past a damaged block)."""
    if stream.last_read.strip(b"\0"):
        raise Rejection(
            RejectCode.CORRUPT_SDIST, f"the tar archive has a damaged header at byte {offset}"
        )
    while chunk := stream.read(_CHUNK):
        if chunk.strip(b"\0"):
            raise Rejection(RejectCode.CORRUPT_SDIST, "data follows the end of the tar archive")


class _Walk:
    """The members seen so far, in archive order, and what they imply."""

    def __init__(self, budget: SdistBudget, limits: SdistLimits) -> None:
        self.budget = budget
        self.limits = limits
        self.top: str | None = None
        self.kinds: dict[str, str] = {}  # name -> "dir", "file" or "link"
        self.symlinks: dict[str, str] = {}  # name -> target, relative to the link's folder
        self.hardlinks: dict[str, str] = {}  # name -> target, relative to the archive root
        self.pkg_info: bytes | None = None
        self.special_bits: list[str] = []
        self.members = 0  # every header counts, a repeated directory entry too

    def add(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise Rejection(
                RejectCode.SDIST_BOMB,
                f"the archive has more than {self.limits.max_members} members, over the cap",
            )
        name = member_name(info.name)
        problem = path_problem(name, self.limits.max_path_length)
        if problem is not None:
            raise Rejection(RejectCode.UNSAFE_PATH, f"member {show(name)} {problem}")
        if info.size < 0:
            raise Rejection(RejectCode.CORRUPT_SDIST, f"member {show(name)} has a negative size")
        self.budget.check_declared(info.size, show(name))
        self._place(name, _kind(info))
        if info.issym():
            self.symlinks[name] = self._link_target(name, info.linkname, symbolic=True)
        elif info.islnk():
            target = member_name(info.linkname)  # a hard link names another member
            self.hardlinks[name] = self._link_target(name, target, symbolic=False)
        if info.isreg() and info.mode & _SPECIAL_BITS:  # on directories they only mean
            self.special_bits.append(name)  # inherit the group, and the filter ignores them
        if self.top is not None and name == f"{self.top}/PKG-INFO":
            self.pkg_info = self._read_pkg_info(tar, info)

    def _place(self, name: str, kind: str) -> None:
        """One top-level directory holds every member; no name is stored twice."""
        top, _, rest = name.partition("/")
        if self.top is None:
            self.top = top
        if top != self.top:
            raise Rejection(
                RejectCode.SDIST_TOP_LEVEL_INVALID,
                f"the archive has more than one top-level entry ({show(self.top)} and "
                f"{show(top)}): an sdist holds one {{name}}-{{version}} directory",
            )
        if not rest and kind != "dir":
            raise Rejection(
                RejectCode.SDIST_TOP_LEVEL_INVALID,
                f"the archive's top-level entry {show(name)} is not a directory",
            )
        if self.kinds.get(name, "dir") != "dir" or (name in self.kinds and kind != "dir"):
            raise Rejection(
                RejectCode.DUPLICATE_MEMBER,
                f"the archive stores {show(name)} more than once (tools disagree on which wins)",
            )
        self.kinds[name] = kind

    def _link_target(self, name: str, target: str, *, symbolic: bool) -> str:
        kind = "symbolic" if symbolic else "hard"
        problem = path_problem(target, self.limits.max_path_length, link=symbolic)
        if problem is not None:
            raise Rejection(
                RejectCode.UNSAFE_LINK,
                f"{kind} link {show(name)} -> {show(target)}: the target {problem}",
            )
        return target

    def _read_pkg_info(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
        limit = self.limits.max_pkg_info_bytes
        if not info.isreg():
            raise Rejection(RejectCode.PKG_INFO_MISSING, f"{show(info.name)} is not a regular file")
        if info.size > limit:
            raise Rejection(
                RejectCode.METADATA_TOO_LARGE,
                f"PKG-INFO is over the limit of {limit} bytes (it declares {info.size})",
            )
        member = tar.extractfile(info)
        return member.read(limit + 1) if member is not None else b""

    def finish(self) -> SdistTree:
        if self.top is None:
            raise Rejection(RejectCode.SDIST_TOP_LEVEL_INVALID, "the tar archive is empty")
        self._check_links(self.top)
        if self.pkg_info is None:
            raise Rejection(
                RejectCode.PKG_INFO_MISSING,
                f"the sdist has no {show(self.top + '/PKG-INFO')} (core metadata, which every "
                "sdist carries in its top-level directory)",
            )
        files = frozenset(name for name, kind in self.kinds.items() if kind == "file")
        return SdistTree(self.top, self.pkg_info, files, self._warnings())

    def _check_links(self, top: str) -> None:
        """Every link resolves inside the top directory, and nothing is written through one.

        Checked once every link is known, so the order of the members cannot matter.
        """
        targets = [(name, f"{posixpath.dirname(name)}/{t}") for name, t in self.symlinks.items()]
        targets += self.hardlinks.items()
        for name, target in targets:
            real = resolve(target, self.symlinks)
            if real is None or real[:1] != [top]:
                raise Rejection(
                    RejectCode.UNSAFE_LINK,
                    f"link {show(name)} points outside the top-level directory {show(top)}",
                )
        for name in self.kinds:
            parents = name.split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                if (parent := "/".join(parents[:depth])) in self.symlinks:
                    raise Rejection(
                        RejectCode.UNSAFE_LINK,
                        f"member {show(name)} would be written through the symbolic link "
                        f"{show(parent)}",
                    )

    def _warnings(self) -> list[str]:
        if not self.special_bits:
            return []
        return [
            f"{len(self.special_bits)} members have setuid or setgid bits (installers strip "
            f"them), e.g. {show(self.special_bits[0])}"
        ]


def member_name(name: str) -> str:
    """`name` without leading "./" parts: the same path, and the name the rules below see."""
    while name.startswith("./"):
        name = name[2:]
    return name


def path_problem(name: str, max_length: int, *, link: bool = False) -> str | None:
    """What makes a member name (or link target) unsafe to extract; None when nothing.

    A symbolic link's target may have ".." parts: where it leads is checked once all
    links are known.
    """
    if not name:
        return "is empty"
    if len(name) > max_length:
        return f"is {len(name)} characters long, over the limit of {max_length}"
    if _CONTROL.search(name):
        return "contains a control character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        return "is an absolute path"
    parts = name.split("/")
    if not link and ".." in parts:
        return "has a '..' part"
    if not link and ("" in parts or "." in parts):
        return "has an empty or '.' part"
    return None


def _escapes(name: str) -> bool:
    return name.startswith("/") or bool(_DRIVE_LETTER.match(name)) or ".." in name.split("/")


def resolve(path: str, symlinks: dict[str, str]) -> list[str] | None:
    """``path``'s parts once every symbolic link in it is followed, as realpath would on
    the extracted tree; None when it climbs above the extraction folder or loops."""
    pending = path.split("/")[::-1]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        target = symlinks.get("/".join(resolved))
        if target is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                return None
            resolved.pop()
            pending += target.split("/")[::-1]
    return resolved


def _kind(info: tarfile.TarInfo) -> str:
    if info.isdir():
        return "dir"
    if info.issym() or info.islnk():
        return "link"
    if info.isreg() and not info.issparse():
        return "file"
    if info.ischr() or info.isblk():
        raise _special(info.name, "a device")
    if info.isfifo():
        raise _special(info.name, "a fifo")
    raise _special(info.name, f"of unknown type {info.type!r}")


def _special(name: str, what: str) -> Rejection:
    return Rejection(
        RejectCode.SPECIAL_FILE_MEMBER,
        f"member {show(name)} is {what}; an sdist holds only files, directories and links",
    )


def _converting_tar_errors() -> AbstractContextManager[None]:
    """What tarfile raises on damaged data, as CORRUPT_SDIST."""
    errors = (tarfile.TarError, EOFError, ValueError, RecursionError)
    return converting(errors, RejectCode.CORRUPT_SDIST, "the tar archive is damaged")
