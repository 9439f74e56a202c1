"""Upload benchmark: from the start of `twine upload` to the file being listed on the index.

The same wheels are uploaded, in the same run, to two indexes on loopback:

- wheelvault: the local functions host (`LocalHost`, in-process) serving the upload API at
  `/legacy/`, over Azurite (blob service) and the Key Vault stand-in, with a publish token. The
  upload is published synchronously (validated, stored, listed) before the API answers.
- pypiserver (pinned in requirements-dev.txt, a child process, `--server wsgiref`, uploads
  without auth), which writes the file into a directory and lists that directory.

One sample: `twine upload` starts as a child process (a fresh interpreter, as in CI) →
twine exits 0 → the project page is fetched until it lists the file (for wheelvault that is
at once: a page that does not list it when twine has returned fails the run). Timed with
`perf_counter_ns` around all of it, so twine's own start-up (~0.3 s, the same for both) is
in every figure. Sizes: 100 KB and 10 MB wheels (incompressible payload); `--runs` samples
per size and index, each a new version, alternating between the two indexes so that other work
on the machine falls on both alike. The 1-minute load average before and after is recorded.

    .venv/bin/python -m bench.upload [--runs 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

from bench.common import machine, positive, write_figures
from bench.front_door import PypiServer, running_stack
from devhost.wheels import build_wheel
from shared.core.tokens import Policy, Scope
from tests.support import clients

RESULTS = Path(__file__).parent / "results" / "upload.json"
KB = 1024
SIZES = {"100 KB": 100 * KB, "10 MB": 10 * 1024 * KB}
PUBLISHER = "bench-upload-publisher"
LIST_SECONDS = 30.0
TWINE_SECONDS = 300.0


@dataclass(frozen=True)
class Index:
    """Where twine uploads to and how to tell that a file is listed."""

    name: str
    upload_url: str
    page_url: Callable[[str], str]
    auth: tuple[str, str] | None  # twine's username and password; None: no auth


def twine_upload(index: Index, wheel: Path, home: Path) -> None:
    args = [sys.executable, "-m", "twine", "upload", "--non-interactive"]
    args += ["--disable-progress-bar", "--repository-url", index.upload_url]
    env = clients.clean_env(home)
    if index.auth is not None:
        env["TWINE_USERNAME"], env["TWINE_PASSWORD"] = index.auth
    else:  # pypiserver without auth still makes twine ask unless it has something
        env["TWINE_USERNAME"], env["TWINE_PASSWORD"] = "bench", "bench"
    done = subprocess.run(
        [*args, str(wheel)], env=env, capture_output=True, text=True, timeout=TWINE_SECONDS
    )
    if done.returncode != 0:
        raise RuntimeError(f"twine upload to {index.name} failed:\n{done.stdout}{done.stderr}")


def listed(index: Index, project: str, filename: str, headers: dict[str, str]) -> bool:
    url = index.page_url(project)  # http://127.0.0.1:…, built here, never from input
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as reply:
        return filename in reply.read().decode("utf-8", "replace")


def one_sample(index: Index, wheel: Path, project: str, home: Path, headers: dict[str, str]) -> int:
    """Nanoseconds from twine's start to the file on the page."""
    started = time.perf_counter_ns()
    twine_upload(index, wheel, home)
    returned = time.perf_counter_ns()
    while not listed(index, project, wheel.name, headers):
        if index.name == "wheelvault":
            raise RuntimeError(f"{wheel.name}: twine returned but the page does not list it")
        if time.perf_counter_ns() - returned > LIST_SECONDS * 1e9:
            raise RuntimeError(f"{wheel.name} was not listed by {index.name}")
        time.sleep(0.01)
    return time.perf_counter_ns() - started


def figures(samples_ns: list[int]) -> dict[str, Any]:
    ms = [n / 1e6 for n in samples_ns]
    return {
        "samples_ms": [round(v, 1) for v in ms],
        "p50_ms": round(statistics.median(ms), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
    }


def measure(indexes: list[Index], tmp: Path, runs: int, reader: str) -> dict[str, Any]:
    basic = base64.b64encode(f"bench:{reader}".encode()).decode()
    headers = {"wheelvault": {"Authorization": f"Basic {basic}"}, "pypiserver": {}}
    rows: dict[str, Any] = {}
    for label, size in SIZES.items():
        project = f"upload-bench-{size // KB}k"
        samples: dict[str, list[int]] = {index.name: [] for index in indexes}
        for run in range(runs):
            for index in indexes:  # alternate: load on the machine falls on both alike
                version = f"1.{run}+{index.name}"
                built = build_wheel(project, version, payload_bytes=size)
                wheel = tmp / index.name / built.filename
                wheel.parent.mkdir(exist_ok=True)
                wheel.write_bytes(built.data)
                home = tmp / "home" / index.name
                samples[index.name].append(
                    one_sample(index, wheel, project, home, headers[index.name])
                )
        row: dict[str, Any] = {name: figures(values) for name, values in samples.items()}
        row["payload_bytes"] = size
        row["ratio_wheelvault_to_pypiserver_p50"] = round(
            row["wheelvault"]["p50_ms"] / row["pypiserver"]["p50_ms"], 2
        )
        rows[label] = row
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wheelvault-bench-upload-") as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "pypiserver-packages"
        served.mkdir()
        with (
            running_stack(tmp) as stack,
            PypiServer(served, tmp / "pypiserver.log") as pypiserver,
        ):
            token = stack.services.tokens.create(PUBLISHER, Policy(Scope.PUBLISH))
            base = stack.host.url
            indexes = [
                Index(
                    "wheelvault",
                    f"{base}/legacy/",
                    lambda p: f"{base}/simple/{p}/",
                    ("__token__", token),
                ),
                Index(
                    "pypiserver",
                    f"http://{pypiserver.authority}/",
                    lambda p: f"{pypiserver.index_url}{p}/",
                    None,
                ),
            ]
            rows = measure(indexes, tmp, args.runs, stack.reader_token)
            versions = {"pypiserver": pypiserver.version, "twine": dist_version("twine")}
    return {
        "benchmark": "upload",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_before),
        "what": "twine upload start → file listed on the project page, per wheel size",
        "runs_per_size_and_index": args.runs,
        "versions": versions,
        "sizes": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{'size':<8}{'index':<12}{'p50 ms':>10}{'min ms':>10}{'max ms':>10}")
    for label, row in result["sizes"].items():
        for name in ("wheelvault", "pypiserver"):
            f = row[name]
            print(f"{label:<8}{name:<12}{f['p50_ms']:>10}{f['min_ms']:>10}{f['max_ms']:>10}")
        print(f"{'':<8}wheelvault / pypiserver (p50): {row['ratio_wheelvault_to_pypiserver_p50']}×")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__)
    parser.add_argument("--runs", type=positive, default=5, help="samples per size and index")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the figures go")
    args = parser.parse_args(argv)
    result = run(args)
    write_figures(args.out, result)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
