"""Token format, durations, rotation policy, header parsing and redaction: pure, no services."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.redact import redact_text, redact_url
from shared.core.tokens import (
    ALPHABET,
    PREFIX,
    Policy,
    Scope,
    TokenFormatError,
    VersionState,
    index_url,
    new_token,
    parse_duration,
    plan_rotation,
    presented_token,
    secret_name,
    token_name,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_token_carries_prefix_name_and_256_bits() -> None:
    token = new_token("ci-publisher")
    assert token.startswith(PREFIX + "ci-publisher_")
    tail = token.rsplit("_", 1)[1]
    assert len(tail) == 43 + 6
    assert all(c in ALPHABET for c in tail)
    assert 62**43 >= 2**256
    assert token_name(token) == "ci-publisher"
    assert new_token("ci-publisher") != token


def test_token_randomness_is_injectable_and_deterministic() -> None:
    assert new_token("a", randbits=12345) == new_token("a", randbits=12345)
    assert new_token("a", randbits=1) != new_token("a", randbits=2)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # checksum digit changed
        lambda t: t[:20] + ("x" if t[20] != "x" else "y") + t[21:],  # secret digit changed
        lambda t: t.replace(PREFIX, "pat_"),
        lambda t: t[:-2],
        lambda t: t + "0",
        lambda t: t.replace("reader", "read_er"),
        lambda t: "",
        lambda t: PREFIX + "_" * 60,
    ],
)
def test_malformed_tokens_are_refused_without_saying_why(mangle: object) -> None:
    token = new_token("reader")
    with pytest.raises(TokenFormatError, match=r"^not a wheelvault token$"):
        token_name(mangle(token))  # type: ignore[operator]


@pytest.mark.parametrize("name", ["", "-lead", "trail-", "under_score", "dot.ted", "x" * 65])
def test_bad_token_names(name: str) -> None:
    with pytest.raises(ValueError, match="token name"):
        new_token(name)


def test_secret_names_fit_key_vault() -> None:
    assert secret_name("local-reader") == "wvtoken-local-reader"
    assert len(secret_name("x" * 64)) <= 127


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P30D", timedelta(days=30)), ("PT1H", timedelta(hours=1)), ("P1W", timedelta(days=7))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30 days", "P0D", "-P1D", "", "P", "3600"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def test_policy_tags_round_trip_and_lifetime() -> None:
    policy = Policy(Scope.PUBLISH, rotate_after="P10D", overlap="P2D", description="CI")
    assert Policy.from_tags(policy.to_tags()) == policy
    assert policy.expires_on(T0) == T0 + timedelta(days=12)
    assert Policy.from_tags({"scope": "read"}) == Policy(Scope.READ, "P30D", "P7D")
    with pytest.raises(ValueError, match="admin"):
        Policy.from_tags({"scope": "admin"})


def test_publish_implies_read() -> None:
    assert Scope.PUBLISH.allows(Scope.READ)
    assert Scope.PUBLISH.allows(Scope.PUBLISH)
    assert Scope.READ.allows(Scope.READ)
    assert not Scope.READ.allows(Scope.PUBLISH)


POLICY = Policy(Scope.READ, rotate_after="P30D", overlap="P7D")


def version(name: str, created_days: float, *, enabled: bool = True) -> VersionState:
    created = T0 + timedelta(days=created_days)
    return VersionState(name, created, created + timedelta(days=37), enabled)


def test_fresh_token_needs_nothing() -> None:
    plan = plan_rotation([version("v1", 0)], POLICY, T0 + timedelta(days=29))
    assert (plan.create_version, plan.disable, plan.revoked) == (False, (), False)


def test_due_token_gets_a_new_version() -> None:
    plan = plan_rotation([version("v1", 0)], POLICY, T0 + timedelta(days=30))
    assert plan.create_version
    assert plan.disable == ()


def test_expired_versions_are_disabled_and_newest_decides() -> None:
    plan = plan_rotation([version("v1", 0), version("v2", 30)], POLICY, T0 + timedelta(days=38))
    assert plan.disable == ("v1",)
    assert not plan.create_version  # v2 is 8 days old


def test_rotation_down_longer_than_the_overlap_still_recovers() -> None:
    plan = plan_rotation([version("v1", 0)], POLICY, T0 + timedelta(days=90))
    assert plan.create_version
    assert plan.disable == ("v1",)


def test_a_revoked_token_stays_revoked() -> None:
    plan = plan_rotation([version("v1", 0, enabled=False)], POLICY, T0 + timedelta(days=90))
    assert plan.revoked
    assert not plan.create_version


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("anyone", "wvt_x_secret"), "wvt_x_secret"),
        (basic("wvt_x_secret", ""), "wvt_x_secret"),  # https://TOKEN@host/ sends it as the user
        ("Bearer wvt_x_secret", "wvt_x_secret"),
        ("bearer   wvt_x_secret ", "wvt_x_secret"),
        ("Basic !!!notbase64", None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
        ("Digest abc", None),
        ("", None),
        (None, None),
        ("Bearer", None),
    ],
)
def test_presented_token(header: str | None, expected: str | None) -> None:
    assert presented_token(header) == expected


def test_index_url() -> None:
    assert (
        index_url("https://pkgs.example.com", "ml-team", "wvt_ml-team_abc")
        == "https://ml-team:wvt_ml-team_abc@pkgs.example.com/simple/"
    )
    assert index_url("http://127.0.0.1:7071/", "r", "t") == "http://r:t@127.0.0.1:7071/simple/"
    assert index_url("https://h/base", "r", "t") == "https://r:t@h/base/simple/"


def test_redaction() -> None:
    token = new_token("reader")
    assert redact_url(f"https://reader:{token}@host/simple/") == "https://reader:***@host/simple/"
    assert token not in redact_text(f"Authorization failed for {token}, really")
    sas = "https://acct.blob.core.windows.net/c/b?sv=2024&sig=abc%2Fdef%3D&se=2026"
    assert "abc" not in redact_url(sas)
    assert "sig=***" in redact_url(sas)
