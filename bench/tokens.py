"""Token benchmark: the request verifier's cost per request, and the rotation run's duration.

Everything runs against the Key Vault stand-in (devhost/standins/keyvault), started in this
process on a free loopback port, through the real `SecretClient` over HTTPS. Measured:

- warm verify: `TokenVerifier.verify` of a valid Basic header with a one-hour cache, timed call
  by call with `perf_counter_ns` (p50/p99/mean in µs); every call must return the token's name.
  The goal is a warm p99 under 100 µs in-process.
- refusals with the warm verifier: a malformed token (bad checksum; must never reach the vault),
  a well-formed token with a known name but a wrong secret, and one with an unknown name; then a
  new unknown name on every call (each one a vault read: what a flood of made-up names costs).
- cold verify: the same call with `cache_seconds=0`, each sample on a new verifier (made
  untimed), so every call lists the token's versions and reads their values (p50/p99 in ms). A
  verifier keeps a fresh entry for 0.5 s even with `cache_seconds=0`, so back-to-back calls on
  one verifier would not reach the vault; the run reports how many requests they make.
- rotation: tokens created with rotate-after P30D and overlap P7D, then with the clock moved
  30 days and 1 hour ahead one `rotate_due()` run (every token rotates) and a second one (nothing
  to do), in seconds, with vault requests per token for each.

Vault requests are counted with the client's `raw_request_hook`, called once per HTTP request,
and bare vault reads (list versions, get value) are timed alone, so the cold and rotation figures
can be split into the stand-in's own latency and the code's: on loopback the stand-in, not the
verifier, sets them.

    .venv/bin/python -m bench.tokens [--warm-samples 20000] [--cold-samples 200] [--tokens 100]
                                     [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.keyvault.secrets import SecretClient

from bench.common import RequestCounter, basic_header, positive, summary, write_figures
from devhost.standins.keyvault import LocalVaultCredential, VaultStandin
from shared.adapters.secretstore import SecretStore
from shared.core.clock import utc_now
from shared.core.tokens import ALPHABET, Policy, Scope, new_token, secret_name, token_name
from shared.services.tokens import Tokens
from shared.services.verifier import TokenVerifier

RESULTS = Path(__file__).parent / "results" / "tokens.json"
PUBLIC_URL = "https://pkgs.example.com"
GOAL_WARM_P99_US = 100.0
WARM_CACHE_SECONDS = 3600.0
ROTATE_AFTER = "P30D"
OVERLAP = "P7D"
CLOCK_ADVANCE = timedelta(days=30, hours=1)
READER = "bench-read"
UNKNOWN_NAME = "bench-nobody"
BACK_TO_BACK_CALLS = 5


class Clock:
    """Starts at the real time (the vault stamps versions with it) and moves only when told."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def time_calls(
    call: Callable[[], str | None], expected: str | None, samples: int, what: str
) -> list[int]:
    """Times `samples` calls one by one; each must return `expected` (checked untimed)."""
    clock = time.perf_counter_ns
    timings = [0] * samples
    for i in range(samples):
        started = clock()
        got = call()
        timings[i] = clock() - started
        if got != expected:
            raise RuntimeError(f"{what}: call {i} returned {got!r}, expected {expected!r}")
    return timings


def bad_checksum(token: str) -> str:
    """`token` with its last checksum character changed: well-shaped, but refused unread."""
    last = token[-1]
    changed = token[:-1] + ALPHABET[(ALPHABET.index(last) + 1) % len(ALPHABET)]
    try:
        token_name(changed)
    except ValueError:
        return changed
    raise RuntimeError("changing the checksum did not make the token malformed")


def measure_warm(
    store: SecretStore, counter: RequestCounter, header: str, samples: int
) -> tuple[TokenVerifier, dict[str, Any]]:
    verifier = TokenVerifier(store, cache_seconds=WARM_CACHE_SECONDS)
    if verifier.verify(header, Scope.READ) != READER:
        raise RuntimeError("the warm-up verification refused a valid token")
    before = counter.count
    timings = time_calls(
        lambda: verifier.verify(header, Scope.READ), READER, samples, "warm verify"
    )
    return verifier, {
        "samples": samples,
        "cache_seconds": WARM_CACHE_SECONDS,
        **summary(timings, "us"),
        "vault_requests": counter.count - before,
    }


def measure_refusals(
    verifier: TokenVerifier,
    store: SecretStore,
    counter: RequestCounter,
    token: str,
    warm_samples: int,
    cold_samples: int,
) -> dict[str, dict[str, Any]]:
    """Refused tokens: in-process cases with the warm verifier, then a new name per call."""
    cases = {  # label: (user name in the header, token value)
        "bad_checksum": (READER, bad_checksum(token)),
        "unknown_value": (READER, new_token(READER)),  # the token's name, a different secret
        "unknown_name": (UNKNOWN_NAME, new_token(UNKNOWN_NAME)),  # no such token in the vault
    }
    found: dict[str, dict[str, Any]] = {}
    for label, (user, value) in cases.items():
        call = functools.partial(verifier.verify, basic_header(user, value), Scope.READ)
        before = counter.count
        timings = time_calls(call, None, warm_samples, label)
        requests = counter.count - before
        if label == "bad_checksum" and requests != 0:
            raise RuntimeError(f"a malformed token reached the vault ({requests} requests)")
        found[label] = {
            "samples": warm_samples,
            **summary(timings, "us"),
            "vault_requests": requests,
        }

    # A well-formed token with a name never seen before, every call: what a flood costs.
    fresh = TokenVerifier(store, cache_seconds=WARM_CACHE_SECONDS)
    headers = [
        basic_header(name, new_token(name))
        for name in (f"bench-stranger-{i:06d}" for i in range(cold_samples))
    ]
    presented = iter(headers)
    before = counter.count
    timings = time_calls(
        lambda: fresh.verify(next(presented), Scope.READ), None, cold_samples, "new name"
    )
    found["new_name_each_call"] = {
        "samples": cold_samples,
        **summary(timings, "ms"),
        "vault_requests_per_call": round((counter.count - before) / cold_samples, 2),
    }
    return found


def cold_verifier(store: SecretStore) -> TokenVerifier:
    """A verifier with nothing cached: its first call for a name must read the vault."""
    return TokenVerifier(store, cache_seconds=0)


def measure_cold(
    store: SecretStore, counter: RequestCounter, header: str, samples: int
) -> dict[str, Any]:
    timings: list[int] = []
    requests: list[int] = []
    for i in range(samples):
        verifier = cold_verifier(store)  # untimed: the call below must read the vault
        before = counter.count
        started = time.perf_counter_ns()
        got = verifier.verify(header, Scope.READ)
        timings.append(time.perf_counter_ns() - started)
        requests.append(counter.count - before)
        if got != READER:
            raise RuntimeError(f"cold verify: call {i} returned {got!r}")
    # One verifier: consecutive calls within 0.5 s share one read despite cache_seconds=0.
    verifier = cold_verifier(store)
    before = counter.count
    for _ in range(BACK_TO_BACK_CALLS):
        if verifier.verify(header, Scope.READ) != READER:
            raise RuntimeError("cold verify: a back-to-back call refused a valid token")
    return {
        "samples": samples,
        "cache_seconds": 0,
        **summary(timings, "ms"),
        "vault_requests_per_verify": statistics.median(requests),
        "vault_requests_per_verify_max": max(requests),
        "back_to_back_calls": BACK_TO_BACK_CALLS,
        "back_to_back_vault_requests": counter.count - before,
    }


def vault_baseline(store: SecretStore, runs: int = 20) -> dict[str, float]:
    """Bare vault reads (median ms), to tell the stand-in's own latency from the verifier's."""
    name = secret_name(READER)
    version = store.versions(name)[-1].version

    def median_ms(action: Callable[[], object]) -> float:
        timings = []
        for _ in range(runs):
            started = time.perf_counter_ns()
            action()
            timings.append(time.perf_counter_ns() - started)
        return round(statistics.median(timings) / 1_000_000, 3)

    return {
        "list_versions_ms": median_ms(lambda: store.versions(name)),
        "get_value_ms": median_ms(lambda: store.value(name, version)),
    }


def measure_rotation(store: SecretStore, counter: RequestCounter, count: int) -> dict[str, Any]:
    """Creates `count` tokens, moves the clock past rotate-after and times two rotation runs.

    Runs on a vault holding only these tokens: `rotate_due` covers every token in the vault.
    """
    clock = Clock()
    tokens = Tokens(store, public_url=PUBLIC_URL, clock=clock)
    policy = Policy(Scope.READ, rotate_after=ROTATE_AFTER, overlap=OVERLAP)
    names = [f"bench-rot-{i:04d}" for i in range(count)]
    before = counter.count
    started = time.perf_counter()
    for name in names:
        tokens.create(name, policy)
    created = time.perf_counter() - started
    create_requests = counter.count - before

    clock.advance(CLOCK_ADVANCE)
    runs: dict[str, dict[str, Any]] = {}
    for label in ("due_run", "idle_run"):
        before = counter.count
        started = time.perf_counter()
        report = tokens.rotate_due()
        elapsed = time.perf_counter() - started
        requests = counter.count - before
        if report.failed:
            raise RuntimeError(f"rotation {label} failed for {report.failed[:3]} ...")
        wanted = sorted(names) if label == "due_run" else []
        if sorted(report.rotated) != wanted:
            raise RuntimeError(
                f"rotation {label} rotated {len(report.rotated)} tokens, expected {len(wanted)}"
            )
        runs[label] = {
            "seconds": round(elapsed, 3),
            "rotated": len(report.rotated),
            "index_urls_updated": len(report.index_urls_updated),
            "disabled_versions": report.disabled_versions,
            "vault_requests": requests,
            "vault_requests_per_token": round(requests / count, 2),
        }
    return {
        "tokens": count,
        "rotate_after": ROTATE_AFTER,
        "overlap": OVERLAP,
        "clock_advanced_hours": CLOCK_ADVANCE.total_seconds() / 3600,
        "create_seconds": round(created, 3),
        "create_vault_requests_per_token": round(create_requests / count, 2),
        **runs,
    }


def run(warm_samples: int, cold_samples: int, token_count: int, out: Path) -> dict[str, Any]:
    counter = RequestCounter()
    with (
        tempfile.TemporaryDirectory(prefix="wheelvault-bench-tokens-") as tmp,
        VaultStandin(Path(tmp) / "keyvault", host="127.0.0.1", port=0) as vault,
        SecretClient(
            vault.url,
            LocalVaultCredential(),
            verify_challenge_resource=False,
            connection_verify=str(vault.ca_path),
            raw_request_hook=counter,
        ) as client,
    ):
        store = SecretStore(client)
        # Rotation first, while the vault holds nothing else (rotate_due covers every token).
        rotation = measure_rotation(store, counter, token_count)
        token = Tokens(store, public_url=PUBLIC_URL).create(READER, Policy(Scope.READ))
        header = basic_header(READER, token)
        verifier, warm = measure_warm(store, counter, header, warm_samples)
        refusal = measure_refusals(verifier, store, counter, token, warm_samples, cold_samples)
        cold = measure_cold(store, counter, header, cold_samples)
        baseline = vault_baseline(store, runs=min(20, cold_samples))
    result = {
        "benchmark": "tokens",
        "at": utc_now().isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "system": f"{platform.system()} {platform.machine()}",
        },
        "vault": "Key Vault stand-in (devhost.standins.keyvault) in-process on loopback (HTTPS)",
        "goal": {
            "warm_p99_us_below": GOAL_WARM_P99_US,
            "warm_p99_us": warm["p99_us"],
            "met": warm["p99_us"] < GOAL_WARM_P99_US,
        },
        "vault_baseline": baseline,
        "warm": warm,
        "cold": cold,
        "refusal": refusal,
        "rotation": rotation,
    }
    write_figures(out, result)
    return result


def print_table(result: dict[str, Any]) -> None:
    warm, cold, refusal = result["warm"], result["cold"], result["refusal"]
    print("verify (real SecretClient, Key Vault stand-in over HTTPS on loopback)")
    print(f"  {'case':<34}{'n':>7}{'p50':>12}{'p99':>12}{'mean':>12}  vault requests")
    rows: list[tuple[str, dict[str, Any], str, str]] = [
        (
            f"warm, cache {warm['cache_seconds']:g} s",
            warm,
            "us",
            f"{warm['vault_requests']} in all",
        ),
        (
            "refused: bad checksum",
            refusal["bad_checksum"],
            "us",
            f"{refusal['bad_checksum']['vault_requests']} in all",
        ),
        (
            "refused: known name, wrong secret",
            refusal["unknown_value"],
            "us",
            f"{refusal['unknown_value']['vault_requests']} in all",
        ),
        (
            "refused: unknown name",
            refusal["unknown_name"],
            "us",
            f"{refusal['unknown_name']['vault_requests']} in all",
        ),
        (
            "refused: new unknown name per call",
            refusal["new_name_each_call"],
            "ms",
            f"{refusal['new_name_each_call']['vault_requests_per_call']:g} per call",
        ),
        ("cold, cache 0 s", cold, "ms", f"{cold['vault_requests_per_verify']:g} per call"),
    ]
    for label, row, unit, requests in rows:
        shown = "µs" if unit == "us" else unit
        cells = "".join(f"{row[f'{k}_{unit}']:>9.3f} {shown}" for k in ("p50", "p99", "mean"))
        print(f"  {label:<34}{row['samples']:>7}{cells}  {requests}")
    print(
        f"  cache 0 s, {cold['back_to_back_calls']} calls back to back: "
        f"{cold['back_to_back_vault_requests']} vault requests (0.5 s floor in the verifier)"
    )
    base = result["vault_baseline"]
    print(
        f"  vault alone (median): list versions {base['list_versions_ms']:.3f} ms, "
        f"get value {base['get_value_ms']:.3f} ms"
    )
    rotation = result["rotation"]
    print(
        f"rotation of {rotation['tokens']} tokens (rotate-after {rotation['rotate_after']}, "
        f"overlap {rotation['overlap']}; clock moved {rotation['clock_advanced_hours']:g} h)"
    )
    print(f"  {'run':<34}{'seconds':>9}{'rotated':>9}{'index URLs':>12}  vault requests/token")
    print(
        f"  {'create (before the clock moves)':<34}{rotation['create_seconds']:>9.3f}"
        f"{'':>9}{'':>12}  {rotation['create_vault_requests_per_token']:g}"
    )
    for label, key in (("rotate_due, all due", "due_run"), ("rotate_due, nothing due", "idle_run")):
        run_ = rotation[key]
        print(
            f"  {label:<34}{run_['seconds']:>9.3f}{run_['rotated']:>9}"
            f"{run_['index_urls_updated']:>12}  {run_['vault_requests_per_token']:g}"
        )
    goal = result["goal"]
    verdict = "met" if goal["met"] else "NOT met"
    print(
        f"goal: warm verify p99 < {goal['warm_p99_us_below']:g} µs in-process: {verdict} "
        f"(p99 {goal['warm_p99_us']:.3f} µs)"
    )


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("azure").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description="wheelvault token verifier and rotation benchmark")
    parser.add_argument("--warm-samples", type=positive, default=20_000, help="warm verifications")
    parser.add_argument(
        "--cold-samples", type=positive, default=200, help="cold verifications (each a vault read)"
    )
    parser.add_argument("--tokens", type=positive, default=100, help="tokens in the rotation run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.warm_samples, args.cold_samples, args.tokens, args.out)
    print_table(result)
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
