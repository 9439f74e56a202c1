"""Upstream benchmark: a public set installed through wheelvault (cold and warm cache) vs direct.

One run brings up, on loopback: pypiserver (pinned in requirements-dev.txt) holding a public set
of N wheels (default 20: a root requiring the other 19, sizes spread from 100 KB to 1 MB,
incompressible payload) — the "public index" — and wheelvault (Azurite, the vault stand-in, the
local host in-process) with `WHEELVAULT_UPSTREAM_URLS` pointing at it. Then, per sample,
`pip download --no-cache-dir` of the root and its dependencies into an empty directory (every one
of the N wheels must arrive) in a fresh HOME, three ways:

- direct: from pypiserver's simple index;
- cold: from wheelvault with its upstream cache dropped first (every page fetched from the
  upstream, every file copied into storage on its first download);
- warm: from wheelvault again (pages fresh, files cached: the upstream is not touched).

Per way: wall time of the pip process, and — through the counting proxy of bench/front_door.py,
which pip uses via HTTP_PROXY — the requests and bytes pip received, wheelvault's redirects and
Azurite's SAS downloads included. The host's own requests to the upstream are counted from
pypiserver's access log. Samples alternate between the three ways so that other work on the
machine falls on all of them alike; the 1-minute load average is recorded.

    .venv/bin/python -m bench.upstream [--runs 3] [--wheels 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

from bench.common import machine, positive, write_figures
from bench.front_door import (
    ROOT_PROJECT,
    CountingProxy,
    PypiServer,
    Stack,
    resolve_set,
    running_stack,
)
from shared.core import layout
from tests.support import clients

RESULTS = Path(__file__).parent / "results" / "upstream.json"
KB = 1024
WAYS = ("direct", "cold", "warm")
GOALS = {"warm": 1.3, "cold": 2.0}
"""p50 time through wheelvault over p50 direct, at most (issue 13)."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    requests: int
    bytes_received: int
    upstream_requests: int


def drop_upstream_cache(stack: Stack) -> int:
    """Delete every blob under the upstream prefix of the index container; how many. The
    worker's pages held in memory go too: a cold sample starts as a new worker would."""
    store = stack.services.store
    names = [b.name for b in store.list(layout.INDEX, layout.UPSTREAM_PREFIX)]
    for name in names:
        store.delete(layout.INDEX, name)
    if stack.services.upstream is not None:
        stack.services.upstream.forget_pages()
    return len(names)


def upstream_requests(log_path: Path) -> int:
    """pypiserver's access-log lines so far (one per request it answered, with -v)."""
    if not log_path.exists():
        return 0
    lines = log_path.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if '] "GET ' in line)


def download(
    index_url: str, proxy: CountingProxy, work: Path, expected: int, log_path: Path
) -> Sample:
    """`pip download` of the root and its dependencies into an empty directory, via the proxy."""
    target = work / "downloaded"
    args = [sys.executable, "-m", "pip", "download", "--no-cache-dir", "--dest", str(target)]
    args += ["--index-url", index_url, ROOT_PROJECT]
    env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}
    before = upstream_requests(log_path)
    proxy.take()
    started = time.perf_counter()
    done = clients.run(args, work / "home", timeout=600, extra_env=env)
    seconds = time.perf_counter() - started
    counts = proxy.take()
    if done.returncode != 0:
        raise RuntimeError(f"pip download from {index_url} failed:\n{done.output[-3000:]}")
    got = len(list(target.glob("*.whl")))
    if got != expected:
        raise RuntimeError(f"pip downloaded {got} wheels from {index_url}, expected {expected}")
    tallies = counts.by_target.values()
    return Sample(
        seconds=seconds,
        requests=sum(t.requests for t in tallies),
        bytes_received=sum(t.response_bytes for t in tallies),
        upstream_requests=upstream_requests(log_path) - before,
    )


def figures(samples: list[Sample]) -> dict[str, Any]:
    return {
        "seconds": [round(s.seconds, 3) for s in samples],
        "p50_seconds": round(statistics.median(s.seconds for s in samples), 3),
        "requests": samples[-1].requests,
        "bytes_received": samples[-1].bytes_received,
        "upstream_requests": samples[-1].upstream_requests,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    wheels = resolve_set(args.wheels, 100, 1024)
    with tempfile.TemporaryDirectory(prefix="wheelvault-bench-upstream-") as tmp_name:
        tmp = Path(tmp_name)
        served = tmp / "public"
        served.mkdir()
        for wheel in wheels:
            (served / wheel.filename).write_bytes(wheel.data)
        log_path = tmp / "pypiserver.log"
        with PypiServer(served, log_path, access_log=True) as public, CountingProxy() as proxy:
            extra = {"WHEELVAULT_UPSTREAM_URLS": public.index_url}
            with running_stack(tmp, extra) as stack:
                urls = {
                    "direct": public.index_url,
                    "cold": f"http://reader:{stack.reader_token}@{stack.authority}/simple/",
                }
                urls["warm"] = urls["cold"]
                samples: dict[str, list[Sample]] = {way: [] for way in WAYS}
                for n in range(args.runs):
                    for way in WAYS:
                        if way == "cold":
                            drop_upstream_cache(stack)
                        work = tmp / f"{way}-{n}"
                        work.mkdir()
                        samples[way].append(download(urls[way], proxy, work, len(wheels), log_path))
            pypiserver_version = public.version
    rows = {way: figures(values) for way, values in samples.items()}
    direct = rows["direct"]["p50_seconds"]
    ratios = {way: round(rows[way]["p50_seconds"] / direct, 2) for way in GOALS}
    return {
        "benchmark": "upstream",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_before),
        "what": "pip download of a public set: direct from the upstream vs through wheelvault",
        "wheels": len(wheels),
        "wheel_bytes_total": sum(len(w.data) for w in wheels),
        "runs": args.runs,
        "versions": {"pip": dist_version("pip"), "pypiserver": pypiserver_version},
        "ways": rows,
        "ratio_to_direct_p50": ratios,
        "goals": {
            way: {"at_most": goal, "met": ratios[way] <= goal} for way, goal in GOALS.items()
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{'way':<8}{'p50 s':>8}{'requests':>10}{'bytes':>12}{'upstream req':>14}")
    for way, row in result["ways"].items():
        print(
            f"{way:<8}{row['p50_seconds']:>8}{row['requests']:>10}"
            f"{row['bytes_received']:>12}{row['upstream_requests']:>14}"
        )
    for way, ratio in result["ratio_to_direct_p50"].items():
        goal = result["goals"][way]
        verdict = "met" if goal["met"] else "NOT met"
        print(f"{way} / direct: {ratio}× (goal ≤ {goal['at_most']}×: {verdict})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__)
    parser.add_argument("--runs", type=positive, default=3, help="samples per way")
    parser.add_argument("--wheels", type=positive, default=20, help="size of the public set")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the figures go")
    args = parser.parse_args(argv)
    result = run(args)
    write_figures(args.out, result)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
