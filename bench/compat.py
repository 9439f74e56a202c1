"""Compatibility benchmark: which real wheels the validator accepts, refuses and warns about.

Runs ``inspect_wheel`` over every ``*.whl`` in the given folders and prints the accepted
share, the rejections by code (with example filenames) and the warnings by kind. It also
measures what the zip-bomb caps are about — each wheel's total uncompressed size, overall
ratio (total uncompressed / archive size), largest member ratio and member count — so the
caps can be checked against real wheels. The figures go to ``bench/results/compat.json``
under ``--label`` (other labels already in the file are kept, so a "before" and an "after"
run sit side by side).

The corpus is not in the repository; build one with an isolated pip, e.g.::

    pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \\
        --python-version 3.11 --dest /work/corpus six==1.17.0 numpy ...

    .venv/bin/python -m bench.compat /work/corpus [--label after] [--corpus-note TEXT]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.core.errors import Rejection
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


def run(paths: list[Path]) -> dict[str, Any]:
    accepted = 0
    rejections: dict[str, list[str]] = defaultdict(list)
    messages: dict[str, str] = {}
    warnings: Counter[str] = Counter()
    warning_examples: dict[str, list[str]] = defaultdict(list)
    warned_wheels = 0
    seconds: list[tuple[float, str]] = []
    shapes: list[tuple[dict[str, Any], str]] = []
    for path in paths:
        shapes.append((shape(path), path.name))
        started = time.perf_counter()
        try:
            with path.open("rb") as data:
                info = inspect_wheel(path.name, data)
        except Rejection as rejection:
            rejections[rejection.code.value].append(path.name)
            messages.setdefault(path.name, rejection.message)
        else:
            accepted += 1
            warned_wheels += bool(info.warnings)
            for text in info.warnings:
                kind = warning_kind(text)
                warnings[kind] += 1
                if len(warning_examples[kind]) < EXAMPLES:
                    warning_examples[kind].append(f"{path.name}: {text}")
        finally:
            seconds.append((time.perf_counter() - started, path.name))
    return {
        "wheels": len(paths),
        "accepted": accepted,
        "accepted_share": round(accepted / max(len(paths), 1), 4),
        "accepted_with_warnings": warned_wheels,
        "rejected_by_code": {
            code: {
                "count": len(names),
                "examples": [f"{name}: {messages[name]}" for name in sorted(names)[:EXAMPLES]],
            }
            for code, names in sorted(rejections.items(), key=lambda item: -len(item[1]))
        },
        "warnings_by_kind": {
            kind: {"count": count, "examples": warning_examples[kind]}
            for kind, count in warnings.most_common()
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


def report(figures: dict[str, Any]) -> None:
    print(
        f"{figures['accepted']}/{figures['wheels']} accepted "
        f"({100 * figures['accepted_share']:.1f}%), "
        f"{figures['accepted_with_warnings']} of them with warnings"
    )
    for code, entry in figures["rejected_by_code"].items():
        print(f"  rejected {code}: {entry['count']}")
        for example in entry["examples"][:3]:
            print(f"      {example[:200]}")
    for kind, entry in figures["warnings_by_kind"].items():
        print(f"  warning x{entry['count']}: {kind[:160]}")
    print(f"  validator time: {figures['validator_seconds']}")
    for key, top in figures["shapes"].items():
        print(f"  largest {key}: {top[:3]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--label", default="after", help="key of this run in the results file")
    parser.add_argument("--corpus-note", default="", help="how the corpus was made")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    paths = sorted(path for folder in args.folders for path in folder.glob("*.whl"))
    if not paths:
        print("no *.whl files in the given folders", file=sys.stderr)
        return 2
    figures = run(paths)
    existing = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = existing.get("runs", {})
    runs[args.label] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **figures}
    document = {
        "benchmark": "compat",
        "machine": {"python": platform.python_version(), "platform": platform.machine()},
        "corpus": {
            "wheels": len(paths),
            "bytes": sum(path.stat().st_size for path in paths),
            "how": args.corpus_note or existing.get("corpus", {}).get("how", ""),
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    report(figures)  # after writing: a closed pipe (| head) must not lose the figures
    return 0


if __name__ == "__main__":
    sys.exit(main())
