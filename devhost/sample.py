"""`python -m devhost.sample [DIR]`: write a small, installable demo wheel to try the index with.

The quickstart publishes it (`hello-wheelvault`, importable as `hello_wheelvault`, with a
`greet()` function) so a newcomer needs no project of their own to see the whole round trip.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devhost.wheels import build_wheel

PROG = "python -m devhost.sample"
NAME = "hello-wheelvault"
VERSION = "1.0.0"
MODULE = b'''"""A demo package published to a wheelvault index."""

__version__ = "1.0.0"


def greet() -> str:
    return "hello from your private index"
'''


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,  # argparse would say `sample.py` (or `__main__.py`), which runs nothing
        description=f"Write a small, installable demo wheel ({NAME}) to try the index with; "
        "prints its path.",
    )
    parser.add_argument(
        "directory",
        nargs="?",
        default=Path("dist"),
        type=Path,
        metavar="DIR",
        help="where to write the wheel, created if missing (default: %(default)s)",
    )
    parser.add_argument(
        "--version", default=VERSION, help="the demo package's version (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    wheel = build_wheel(
        NAME,
        args.version,
        summary="A demo package for wheelvault",
        requires_python=">=3.9",
        modules={"hello_wheelvault/__init__.py": MODULE.replace(b"1.0.0", args.version.encode())},
    )
    args.directory.mkdir(parents=True, exist_ok=True)
    target = args.directory / wheel.filename
    target.write_bytes(wheel.data)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
