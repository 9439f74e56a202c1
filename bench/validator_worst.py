"""Validator worst cases: the time and peak memory of ``inspect_wheel`` on hostile shapes.

Builds, at the default ``Limits``, the wheels that cost the validator the most and times one
``inspect_wheel`` of each in a fresh subprocess, reading its peak resident memory
(``ru_maxrss``) before and after:

- ``split-bomb``: 600 members of 1 MiB of zeros (a 0.7 MB wheel, 600 MiB expanded);
  refused by the overall ratio before anything is decompressed.
- ``largest-allowed``: as close to the caps as a wheel can be and still pass: 2 GiB
  uncompressed just under the overall-ratio cap, every file decompressed and hashed.
- ``largest-text``: 2 GiB of text that deflates about 2x, like real code and binaries
  (slower to inflate per byte than the above); needs an upload limit of 1 GB or more.
- ``largest-at-upload-cap``: the slowest 2 GiB that fits the default 100 MiB upload cap:
  members of that text padded with zeros, so the archive is just under 100 MiB.
- ``largest-upload``: 100 MiB of incompressible files (about the default upload cap), all hashed.
- ``most-members``: the member cap (100,000), all small files, all hashed.
- ``sdist-split-bomb``, ``sdist-largest-allowed``, ``sdist-most-members``: the same shapes as
  an sdist (a gzip'd tar, inspected by ``inspect_sdist``; every byte of the stream inflated);
  ``sdist-tiny-members``: 100,000 near-empty files, refused by the ratio cap.

    .venv/bin/python -m bench.validator_worst [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost.wheels import (
    ZIP_DATE_TIME,
    incompressible_bytes,
    make_metadata,
    make_wheel_file,
    tar_member,
)
from shared.core.errors import Rejection
from shared.core.sdist import inspect_sdist
from shared.core.wheel import Limits, inspect_wheel

RESULTS = Path(__file__).parent / "results" / "validator_worst.json"
MiB = 1024**2
NAME, VERSION = "worst", "1.0"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
FILENAME = f"{NAME}-{VERSION}-py3-none-any.whl"
SDIST_FILENAME = f"{NAME}-{VERSION}.tar.gz"

Chunks = Callable[[], Iterator[bytes]]


def write_wheel(path: Path, files: Iterator[tuple[str, Chunks]]) -> dict[str, int]:
    """Stream a wheel with a correct RECORD to ``path``; return its shape."""
    rows, total, members = [], 0, 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        extra = [
            (f"{DIST_INFO}/METADATA", make_metadata(NAME, VERSION)),
            (f"{DIST_INFO}/WHEEL", make_wheel_file()),
        ]
        for name, chunks in [*files, *((n, _once(c)) for n, c in extra)]:
            hasher, size = hashlib.sha256(), 0
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                for chunk in chunks():
                    member.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
            digest = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
            rows.append(f"{name},sha256={digest},{size}")
            total += size
            members += 1
        rows.append(f"{DIST_INFO}/RECORD,,")
        record = ("\n".join(rows) + "\n").encode()
        archive.writestr(zipfile.ZipInfo(f"{DIST_INFO}/RECORD", ZIP_DATE_TIME), record)
    return {
        "archive_bytes": path.stat().st_size,
        "uncompressed_bytes": total + len(record),
        "members": members + 1,
    }


def write_sdist(path: Path, files: Iterator[tuple[str, Chunks]]) -> dict[str, int]:
    """Stream an sdist (PKG-INFO first, then ``files`` under the top directory) to ``path``."""
    total = members = 0
    pkg_info = ("PKG-INFO", _once(make_metadata(NAME, VERSION)))
    with tarfile.open(path, "w:gz") as archive:
        for name, chunks in [pkg_info, *files]:
            content = b"".join(chunks())
            info, _ = tar_member(f"{NAME}-{VERSION}/{name}", size=len(content))
            archive.addfile(info, io.BytesIO(content))
            total, members = total + len(content), members + 1
    return {"archive_bytes": path.stat().st_size, "uncompressed_bytes": total, "members": members}


def _once(content: bytes) -> Chunks:
    return lambda: iter([content])


def split_bomb() -> Iterator[tuple[str, Chunks]]:
    zeros = bytes(MiB)
    for n in range(600):
        yield f"{NAME}/zeros/{n}.bin", _once(zeros)


def largest_allowed(limits: Limits) -> Iterator[tuple[str, Chunks]]:
    """1 MiB members that deflate just under the overall-ratio cap, up to the total cap."""
    noise = incompressible_bytes(MiB // limits.max_overall_ratio + 1024)
    member = noise + bytes(MiB - len(noise))
    for n in range(limits.max_uncompressed_bytes // MiB - 1):
        yield f"{NAME}/data/{n}.bin", _once(member)


def text_blocks(size: int) -> list[bytes]:
    """Blocks of random words: deflate about 2x (torch: 2.1x) and inflate slowly."""
    words = [f"{word:x}" for word in incompressible_bytes(4096)]
    blocks = []
    for seed in range(16):
        chooser = random.Random(seed)
        pieces = (chooser.choice(words) + str(chooser.randrange(999)) for _ in range(size // 5))
        blocks.append(" ".join(pieces).encode()[:size])
    return blocks


def largest_text(limits: Limits, text_share: float = 1.0) -> Iterator[tuple[str, Chunks]]:
    """1 MiB members, ``text_share`` of each slow-inflating text, the rest zeros."""
    blocks = text_blocks(int(MiB * text_share))
    for n in range(limits.max_uncompressed_bytes // MiB - 1):
        block = blocks[n % len(blocks)]
        yield f"{NAME}/text/{n}.txt", _once(block + bytes(MiB - len(block)))


def largest_upload() -> Iterator[tuple[str, Chunks]]:
    for n in range(100):
        yield f"{NAME}/blobs/{n}.bin", _once(incompressible_bytes(MiB, seed=n))


def most_members(limits: Limits) -> Iterator[tuple[str, Chunks]]:
    for n in range(limits.max_members - 3):  # METADATA, WHEEL and RECORD make the cap
        yield f"{NAME}/m/{n:06d}.py", _once(f"VALUE = {n}\n".encode())


def most_members_sdist(limits: Limits) -> Iterator[tuple[str, Chunks]]:
    """The member cap with 300 random bytes each: tiny files of zeros would be refused by the
    ratio cap (a tar header per member deflates to almost nothing)."""
    for n in range(limits.max_members - 1):  # with PKG-INFO, exactly the cap
        yield f"{NAME}/m/{n:06d}.py", _once(incompressible_bytes(300, seed=n))


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM), in KiB.

    Not ru_maxrss: on Linux a child keeps the parent's ru_maxrss across fork and exec, and
    the parent has just built a large wheel in memory.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def measure(path: Path) -> dict[str, Any]:
    """Run in the subprocess: one inspect_wheel, timed, with peak RSS around it."""
    before = peak_rss_kib()
    started = time.perf_counter()
    try:
        with path.open("rb") as data:
            sdist = path.name.endswith(".tar.gz")
            info = inspect_sdist(SDIST_FILENAME, data) if sdist else inspect_wheel(FILENAME, data)
        outcome = f"accepted ({len(info.warnings)} warnings)"
    except Rejection as rejection:
        outcome = f"{rejection.code.value}: {rejection.message}"
    seconds = time.perf_counter() - started
    after = peak_rss_kib()
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(after / 1024, 1),
        "rss_growth_mib": round((after - before) / 1024, 1),
        "outcome": outcome,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="where the wheels are built")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="+", help="run only these (the file keeps the others)")
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    limits = Limits()
    # A tar header per 1 MiB member: a member less keeps the sdist's stream under the cap.
    sdist_limits = replace(limits, max_uncompressed_bytes=limits.max_uncompressed_bytes - MiB)
    cases: dict[str, Callable[[], Iterator[tuple[str, Chunks]]]] = {
        "split-bomb": split_bomb,
        "largest-allowed": lambda: largest_allowed(limits),
        "largest-text": lambda: largest_text(limits),
        "largest-at-upload-cap": lambda: largest_text(limits, text_share=0.088),
        "largest-upload": largest_upload,
        "most-members": lambda: most_members(limits),
        "sdist-split-bomb": split_bomb,
        "sdist-largest-allowed": lambda: largest_allowed(sdist_limits),
        "sdist-tiny-members": lambda: most_members(limits),
        "sdist-most-members": lambda: most_members_sdist(limits),
    }
    if args.cases:
        cases = {case: files for case, files in cases.items() if case in args.cases}
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        for case, files in cases.items():
            sdist = case.startswith("sdist-")
            path = Path(work) / f"{case}{'.tar.gz' if sdist else '.whl'}"
            built = time.perf_counter()
            shape = (write_sdist if sdist else write_wheel)(path, files())
            build_seconds = time.perf_counter() - built
            result = subprocess.run(
                [sys.executable, "-m", "bench.validator_worst", "--measure", str(path)],
                check=True,
                capture_output=True,
                text=True,
                cwd=Path(__file__).parent.parent,
            )
            row = {"case": case, **shape, **json.loads(result.stdout)}
            rows.append(row)
            print(f"{case}: {row} (built in {build_seconds:.1f} s)")
            path.unlink()
    document = {
        "benchmark": "validator_worst",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "limits": {
            "max_uncompressed_bytes": limits.max_uncompressed_bytes,
            "max_overall_ratio": limits.max_overall_ratio,
            "ratio_floor_bytes": limits.ratio_floor_bytes,
            "max_members": limits.max_members,
        },
        "note": "one inspect_wheel per case in a fresh subprocess; peak_rss_mib includes the "
        "interpreter and imports (rss before the call is peak_rss_mib - rss_growth_mib)",
        "rows": _merged(args.out, rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def _merged(out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of this run, and those of cases it did not run from the existing file."""
    ran = {row["case"] for row in rows}
    old = json.loads(out.read_text())["rows"] if out.exists() else []
    return [row for row in old if row["case"] not in ran] + rows


if __name__ == "__main__":
    sys.exit(main())
