"""Compatibility benchmark: which real wheels and sdists the validator accepts, refuses and
warns about.

Runs ``inspect_wheel`` over every ``*.whl`` and ``inspect_sdist`` over every sdist (``*.tar.gz``,
and the legacy forms, which it refuses by name) in the given folders, and prints for each kind
the accepted share, the rejections by code (with example filenames) and the warnings by kind.
It also measures what the bomb caps are about — each file's total uncompressed size (for an
sdist: the whole tar stream), overall ratio (that / archive size), largest member ratio (wheels)
and member count — so the caps can be checked against real files. The figures go to
``bench/results/compat.json``, wheels under ``runs``, sdists under ``sdist_runs``, keyed by
``--label`` (other labels already in the file are kept, so a "before" and an "after" run sit
side by side).

The corpora are not in the repository; build them with an isolated pip, e.g.::

    pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \\
        --python-version 3.11 --dest /work/corpus six==1.17.0 numpy ...
    pip download --no-deps --no-binary :all: --no-build-isolation --dest /work/corpus-sdist six

    .venv/bin/python -m bench.compat /work/corpus /work/corpus-sdist [--label after] \\
        [--corpus-note TEXT] [--sdist-corpus-note TEXT]
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import re
import sys
import tarfile
import time
import typing
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.core.errors import Rejection
from shared.core.sdist import SDIST_SUFFIXES, inspect_sdist
from shared.core.wheel import inspect_wheel

RESULTS = Path(__file__).parent / "results" / "compat.json"
EXAMPLES = 8
TOP = 5

# What varies between two warnings of one kind: quoted values and numbers.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\b\d+(\.\d+)*\b")


def warning_kind(text: str) -> str:
    """A warning with its particulars (names, paths, numbers) blanked out."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", text))


class _Inspected(typing.Protocol):
    @property
    def warnings(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Kind:
    """One kind of distribution: how to validate it and how to measure its shape."""

    name: str  # "wheels" or "sdists": the count's key in the figures
    inspect: Callable[[str, typing.BinaryIO], _Inspected]
    shape: Callable[[Path], dict[str, Any]]
    runs_key: str  # where its runs go in the results file
    corpus_key: str  # where its corpus is described


def shape(path: Path) -> dict[str, Any]:
    """What the zip-bomb caps measure, from the central directory (no decompression)."""
    with zipfile.ZipFile(path) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
    total = sum(info.file_size for info in infos)
    member_ratio = max((i.file_size / max(i.compress_size, 1) for i in infos), default=0.0)
    return {
        "archive_bytes": path.stat().st_size,
        "uncompressed_bytes": total,
        "overall_ratio": total / max(path.stat().st_size, 1),
        "max_member_ratio": member_ratio,
        "members": len(infos),
    }


def sdist_shape(path: Path) -> dict[str, Any]:
    """What the sdist caps measure: the whole tar stream's size, its ratio, the members."""
    try:
        with gzip.open(path) as stream:
            total = sum(len(chunk) for chunk in iter(lambda: stream.read(1024**2), b""))
        with tarfile.open(path, "r:gz") as archive:
            members = len(archive.getmembers())
    except (OSError, EOFError, tarfile.TarError, zlib.error):
        total = members = 0  # not a readable .tar.gz: its rejection says why
    return {
        "archive_bytes": path.stat().st_size,
        "uncompressed_bytes": total,
        "overall_ratio": total / max(path.stat().st_size, 1),
        "members": members,
    }


WHEELS = Kind("wheels", inspect_wheel, shape, "runs", "corpus")
SDISTS = Kind("sdists", inspect_sdist, sdist_shape, "sdist_runs", "sdist_corpus")


def kind_of(path: Path) -> Kind | None:
    name = path.name.lower()
    if name.endswith(".whl"):
        return WHEELS
    return SDISTS if name.endswith(SDIST_SUFFIXES) else None


def run(paths: list[Path], kind: Kind = WHEELS) -> dict[str, Any]:
    accepted = 0
    rejections: dict[str, list[str]] = defaultdict(list)
    messages: dict[str, str] = {}
    warnings: Counter[str] = Counter()
    warning_examples: dict[str, list[str]] = defaultdict(list)
    warned = 0
    seconds: list[tuple[float, str]] = []
    shapes: list[tuple[dict[str, Any], str]] = []
    for path in paths:
        shapes.append((kind.shape(path), path.name))
        started = time.perf_counter()
        try:
            with path.open("rb") as data:
                info = kind.inspect(path.name, data)
        except Rejection as rejection:
            rejections[rejection.code.value].append(path.name)
            messages.setdefault(path.name, rejection.message)
        else:
            accepted += 1
            warned += bool(info.warnings)
            for text in info.warnings:
                pattern = warning_kind(text)
                warnings[pattern] += 1
                if len(warning_examples[pattern]) < EXAMPLES:
                    warning_examples[pattern].append(f"{path.name}: {text}")
        finally:
            seconds.append((time.perf_counter() - started, path.name))
    return {
        kind.name: len(paths),
        "accepted": accepted,
        "accepted_share": round(accepted / max(len(paths), 1), 4),
        "accepted_with_warnings": warned,
        "rejected_by_code": {
            code: {
                "count": len(names),
                "examples": [f"{name}: {messages[name]}" for name in sorted(names)[:EXAMPLES]],
            }
            for code, names in sorted(rejections.items(), key=lambda item: -len(item[1]))
        },
        "warnings_by_kind": {
            pattern: {"count": count, "examples": warning_examples[pattern]}
            for pattern, count in warnings.most_common()
        },
        "validator_seconds": {
            "total": round(sum(s for s, _ in seconds), 2),
            "slowest": [[name, round(s, 3)] for s, name in sorted(seconds, reverse=True)[:TOP]],
        },
        "shapes": _shape_summary(shapes),
    }


def _shape_summary(shapes: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """The largest values of each cap-relevant measure, with the wheels that reach them."""
    summary: dict[str, Any] = {}
    for key in ("uncompressed_bytes", "overall_ratio", "max_member_ratio", "members"):
        if key not in shapes[0][0]:
            continue  # sdists: no per-member ratio (one gzip stream)
        top = sorted(shapes, key=lambda item: item[0][key], reverse=True)[:TOP]
        summary[key] = [[name, _round(measure[key])] for measure, name in top]
    # The overall ratio matters most for large wheels: the cap applies above a total.
    for floor_mib in (16, 64, 256):
        large = [item for item in shapes if item[0]["uncompressed_bytes"] > floor_mib * 1024**2]
        top = sorted(large, key=lambda item: item[0]["overall_ratio"], reverse=True)[:TOP]
        summary[f"overall_ratio_above_{floor_mib}MiB"] = [
            [name, _round(m["overall_ratio"]), m["uncompressed_bytes"]] for m, name in top
        ]
    return summary


def _round(value: float) -> float:
    return round(value, 2) if isinstance(value, float) else value


def report(figures: dict[str, Any], kind: Kind = WHEELS) -> None:
    print(
        f"{kind.name}: {figures['accepted']}/{figures[kind.name]} accepted "
        f"({100 * figures['accepted_share']:.1f}%), "
        f"{figures['accepted_with_warnings']} of them with warnings"
    )
    for code, entry in figures["rejected_by_code"].items():
        print(f"  rejected {code}: {entry['count']}")
        for example in entry["examples"][:3]:
            print(f"      {example[:200]}")
    for pattern, entry in figures["warnings_by_kind"].items():
        print(f"  warning x{entry['count']}: {pattern[:160]}")
    print(f"  validator time: {figures['validator_seconds']}")
    for key, top in figures["shapes"].items():
        print(f"  largest {key}: {top[:3]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--label", default="after", help="key of this run in the results file")
    parser.add_argument("--corpus-note", default="", help="how the wheel corpus was made")
    parser.add_argument("--sdist-corpus-note", default="", help="how the sdist corpus was made")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    found = sorted(path for folder in args.folders for path in folder.iterdir())
    by_kind = {kind: [path for path in found if kind_of(path) is kind] for kind in (WHEELS, SDISTS)}
    if not any(by_kind.values()):
        print("no wheels or sdists in the given folders", file=sys.stderr)
        return 2
    document = json.loads(args.out.read_text()) if args.out.exists() else {}
    document.update(
        benchmark="compat",
        machine={"python": platform.python_version(), "platform": platform.machine()},
    )
    notes = {WHEELS: args.corpus_note, SDISTS: args.sdist_corpus_note}
    reports = []
    for kind, paths in by_kind.items():
        if paths:
            figures = run(paths, kind)
            _record(document, kind, paths, notes[kind], args.label, figures)
            reports.append((figures, kind))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    for figures, kind in reports:  # after writing: a closed pipe (| head) must not lose them
        report(figures, kind)
    return 0


def _record(
    document: dict[str, Any],
    kind: Kind,
    paths: list[Path],
    note: str,
    label: str,
    figures: dict[str, Any],
) -> None:
    """Put one kind's run and corpus description into the results document."""
    corpus = document.get(kind.corpus_key, {})
    document[kind.corpus_key] = {
        kind.name: len(paths),
        "bytes": sum(path.stat().st_size for path in paths),
        "how": note or corpus.get("how", ""),
    }
    runs = document.setdefault(kind.runs_key, {})
    runs[label] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **figures}


if __name__ == "__main__":
    sys.exit(main())
