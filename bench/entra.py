"""Entra ID benchmark: a warm Entra ID access-token check against a warm wheelvault-token check,
in-process, in the same run.

Both stand-ins are started in this process on free loopback ports: the Key Vault stand-in (a
read token created through the real token service, read through the real `SecretClient`) and
the Entra ID stand-in (access tokens from its token endpoint; its OpenID configuration and keys
read over HTTPS by the real `OidcClient`). Each verifier answers its first call untimed (the
wheelvault cache and the Entra keys are then held), and then the calls alternate, one of each
per round, timed one by one with `perf_counter_ns`, so load on the machine falls on both alike:

- wheelvault: `TokenVerifier.verify` of a read token's Basic header (cache one hour);
- Entra, repeated token: `EntraVerifier.verify` of the same access token each call (what a client
  sends for the token's hour: after its first check the verifier answers from the tokens it
  accepted, re-checking validity and key each time);
- Entra, new token: `EntraVerifier.verify` of a token it has not seen (minted untimed, one per
  sample), so PyJWT checks signature and claims in full, keys cached;
- both again through `FrontDoor.authorize` with the Basic header, as a request presents them
  (the credential parsed from the header, the JWT shape tested, the role mapped to a scope).

Every call must succeed (checked untimed). The goal: a warm Entra check within 2x the warm
wheelvault check (p50). A cProfile of the new-token check says where its time goes.

    .venv/bin/python -m bench.entra [--samples 20000] [--fresh-samples 1000] [--out FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobServiceClient

from bench.common import basic_header, machine, positive, summary, write_figures
from devhost.standins.entra import EntraStandin
from devhost.standins.keyvault import LocalVaultCredential, VaultStandin
from shared.adapters.blobstore import BlobStore
from shared.adapters.oidc import OidcClient
from shared.adapters.sas import SasSigner
from shared.adapters.secretstore import SecretStore
from shared.core.clock import utc_now
from shared.core.entra import EntraConfig, parse_audiences
from shared.core.tokens import Policy, Scope
from shared.services.entra import EntraVerifier
from shared.services.frontdoor import FrontDoor
from shared.services.tokens import Tokens
from shared.services.verifier import TokenVerifier

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "entra.json"
GOAL_RATIO = 2.0
READER = "bench-read"
PRINCIPAL = "reader"
PROFILE_LINES = 12

Check = Callable[[], object]


def mint(entra: EntraStandin) -> str:
    """An access token for wheelvault from the stand-in's token endpoint (client credentials)."""
    return entra.client_credentials_token(PRINCIPAL)


def front_door(tokens: TokenVerifier, entra: EntraVerifier) -> FrontDoor:
    """A front door whose storage is never touched: `authorize` reads only the verifiers."""
    service = BlobServiceClient("https://bench.blob.core.windows.net")
    return FrontDoor(
        BlobStore(service),
        SasSigner(service),
        lambda: tokens,
        sas_lifetime=timedelta(minutes=10),
        page_cache_seconds=60,
        entra=lambda: entra,
    )


def alternate(checks: dict[str, Check], rounds: int) -> dict[str, list[int]]:
    """`rounds` rounds of one timed call of each check in turn; each result is checked (untimed)
    to be truthy."""
    clock = time.perf_counter_ns
    timings: dict[str, list[int]] = {name: [] for name in checks}
    for i in range(rounds):
        for name, check in checks.items():
            started = clock()
            got = check()
            timings[name].append(clock() - started)
            if not got:
                raise RuntimeError(f"{name}: call {i} was refused")
    return timings


def fresh_tokens(entra: EntraStandin, count: int) -> list[str]:
    tokens = [mint(entra) for _ in range(count)]
    if len(set(tokens)) != count:
        raise RuntimeError("the stand-in issued the same token twice")
    return tokens


def measure(
    tokens: TokenVerifier,
    verifier: EntraVerifier,
    wheelvault_header: str,
    entra_token: str,
    new_tokens: list[str],
    samples: int,
) -> dict[str, dict[str, Any]]:
    door = front_door(tokens, verifier)
    entra_header = basic_header("anyone", entra_token)
    expected_door = f"entra:{verifier.verify(entra_token).object_id}"  # untimed: keys now held
    if tokens.verify(wheelvault_header, Scope.READ) != READER:
        raise RuntimeError("the warm-up refused the wheelvault token")
    warm = alternate(
        {
            "wheelvault": lambda: tokens.verify(wheelvault_header, Scope.READ) == READER,
            "entra_repeated_token": lambda: verifier.verify(entra_token).scope is Scope.READ,
            "wheelvault_authorize": lambda: door.authorize(wheelvault_header, Scope.READ),
            "entra_authorize": lambda: door.authorize(entra_header, Scope.READ) == expected_door,
        },
        samples,
    )
    fresh = iter(new_tokens)
    first_sight = alternate(
        {
            "wheelvault_beside_new_tokens": lambda: tokens.verify(wheelvault_header, Scope.READ),
            "entra_new_token": lambda: verifier.verify(next(fresh)).scope is Scope.READ,
        },
        len(new_tokens),
    )
    return {
        name: {"samples": len(t), **summary(t, "us")} for name, t in (warm | first_sight).items()
    }


def profile(verifier: EntraVerifier, new_tokens: list[str]) -> str:
    """Where a new token's check spends its time (cProfile, internal time)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for token in new_tokens:
        verifier.verify(token)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(PROFILE_LINES)
    return out.getvalue().replace(f"{ROOT}/", "")  # paths relative to the repository


def ratio(figures: dict[str, dict[str, Any]], entra: str, wheelvault: str, key: str) -> float:
    return round(float(figures[entra][key]) / float(figures[wheelvault][key]), 2)


def run(samples: int, fresh_samples: int, out: Path) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="wheelvault-bench-entra-") as tmp,
        VaultStandin(Path(tmp) / "keyvault", host="127.0.0.1", port=0) as vault,
        EntraStandin(Path(tmp) / "entra", host="127.0.0.1", port=0) as entra,
        SecretClient(
            vault.url,
            LocalVaultCredential(),
            verify_challenge_resource=False,
            connection_verify=str(vault.ca_path),
        ) as client,
    ):
        store = SecretStore(client)
        token = Tokens(store, public_url="https://pkgs.example.com").create(
            READER, Policy(Scope.READ)
        )
        tokens = TokenVerifier(store, cache_seconds=3600)
        config = EntraConfig(
            entra.tenant_id, parse_audiences(entra.audience), entra.url, str(entra.ca_path)
        )
        verifier = EntraVerifier(config, OidcClient(config.ca_bundle))
        new_tokens = fresh_tokens(entra, fresh_samples * 2)
        figures = measure(
            tokens,
            verifier,
            basic_header(READER, token),
            mint(entra),
            new_tokens[:fresh_samples],
            samples,
        )
        key_fetches = entra.key_fetches
        where = profile(verifier, new_tokens[fresh_samples:])
    warm = ratio(figures, "entra_repeated_token", "wheelvault", "p50_us")
    result = {
        "benchmark": "entra",
        "at": utc_now().isoformat(timespec="seconds"),
        "machine": machine(load_before),
        "setup": "Key Vault and Entra ID stand-ins in-process on loopback (HTTPS); "
        "calls alternate, one of each per round",
        "goal": {
            "warm_ratio_p50_at_most": GOAL_RATIO,
            "warm_ratio_p50": warm,
            "met": warm <= GOAL_RATIO,
        },
        "ratios": {
            "warm_p50": warm,
            "warm_mean": ratio(figures, "entra_repeated_token", "wheelvault", "mean_us"),
            "authorize_p50": ratio(figures, "entra_authorize", "wheelvault_authorize", "p50_us"),
            "new_token_p50": ratio(
                figures, "entra_new_token", "wheelvault_beside_new_tokens", "p50_us"
            ),
        },
        "key_fetches": key_fetches,
        "checks": figures,
        "new_token_profile": where.strip().splitlines(),
    }
    write_figures(out, result)
    return result


def print_table(result: dict[str, Any]) -> None:
    print("in-process checks, alternating (µs)")
    print(f"  {'check':<30}{'n':>7}{'p50':>10}{'p99':>10}{'mean':>10}")
    for name, row in result["checks"].items():
        cells = "".join(f"{row[f'{k}_us']:>10.3f}" for k in ("p50", "p99", "mean"))
        print(f"  {name:<30}{row['samples']:>7}{cells}")
    ratios = result["ratios"]
    print(
        f"Entra / wheelvault (p50): warm {ratios['warm_p50']:g}x, through authorize "
        f"{ratios['authorize_p50']:g}x, a token not seen before {ratios['new_token_p50']:g}x; "
        f"JWKS fetches in the run: {result['key_fetches']}"
    )
    goal = result["goal"]
    verdict = "met" if goal["met"] else "NOT met"
    print(f"goal: warm Entra check within {goal['warm_ratio_p50_at_most']:g}x: {verdict}")


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("azure").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description="Entra ID vs wheelvault token check benchmark")
    parser.add_argument("--samples", type=positive, default=20_000, help="warm rounds")
    parser.add_argument(
        "--fresh-samples", type=positive, default=1_000, help="tokens checked for the first time"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.samples, args.fresh_samples, args.out)
    print_table(result)
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
