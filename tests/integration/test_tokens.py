"""Tokens through the real SecretClient against the Key Vault stand-in: create, verify, rotate
with overlap, revoke, crash-safe rotation, the timer function, and no token in any log line."""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.secretstore import SecretStore, SecretVersion, secret_client_from_settings
from shared.core.tokens import (
    Policy,
    Scope,
    generation,
    index_url,
    index_url_secret_name,
    new_token,
    secret_name,
)
from shared.services.tokens import Tokens
from shared.services.verifier import TokenVerifier
from shared.settings import Settings, SettingsError
from tests.fixtures.vault import VaultStandinProcess, running_vault_standin
from tests.support.functions import function, handler

pytestmark = pytest.mark.integration

PUBLIC = "https://pkgs.example.com"


class Clock:
    """Starts at the real time (the vault stamps versions with it) and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CountingStore(SecretStore):
    """The real store, counting vault reads, and failing on the Nth write when told to."""

    def __init__(
        self, store: SecretStore, *, fail_on_write: int | None = None, only: str = ""
    ) -> None:
        super().__init__(store.client)
        self.reads = 0
        self.writes = 0
        self.fail_on_write = fail_on_write
        self.only = only  # count (and fail) only writes to secrets of this token

    def _write(self, name: str) -> None:
        if not name.endswith(self.only):
            return
        self.writes += 1
        if self.fail_on_write is not None and self.writes == self.fail_on_write:
            raise ConnectionError(f"injected failure at write {self.writes}")

    def versions(self, name: str) -> list[SecretVersion]:
        self.reads += 1
        return super().versions(name)

    def value(self, name: str, version: str) -> str | None:
        self.reads += 1
        return super().value(name, version)

    def set(self, name: str, value: str, **kwargs: object) -> SecretVersion:  # type: ignore[override]
        self._write(name)
        return super().set(name, value, **kwargs)  # type: ignore[arg-type]

    def set_enabled(self, name: str, version: str, *, enabled: bool) -> None:
        self._write(name)
        super().set_enabled(name, version, enabled=enabled)


@pytest.fixture(scope="module")
def vault_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultStandinProcess]:
    """This module's own vault. A rotation run walks every token in the vault, and with the
    clock a month ahead it would rotate (write to) every token other modules left in the
    session's vault: the runs here would cost in proportion to the whole suite."""
    with running_vault_standin(tmp_path_factory, "tokens-vault") as standin:
        yield standin


@pytest.fixture
def store(vault_standin: VaultStandinProcess) -> Iterator[SecretStore]:
    with vault_standin.secret_client() as client:
        yield SecretStore(client)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(store: SecretStore, clock: Clock) -> Tokens:
    return Tokens(store, public_url=PUBLIC, clock=clock)


TOKEN_PATTERN = re.compile(r"wvt_[A-Za-z0-9-]+_[A-Za-z0-9]{49}")
CREATED: list[str] = []


@pytest.fixture(autouse=True)
def no_token_in_logs(
    caplog: pytest.LogCaptureFixture, vault_standin: VaultStandinProcess
) -> Iterator[None]:
    """Every test here: all loggers at DEBUG (the SDK's HTTP logging included), and afterwards
    no token value may appear in anything logged. Then the test's secrets are purged, so each
    rotation run only meets the tokens of its own test."""
    caplog.set_level(logging.DEBUG)
    yield
    assert TOKEN_PATTERN.findall(caplog.text) == []
    assert TOKEN_PATTERN.findall(vault_standin.output()) == []
    with vault_standin.secret_client() as client:
        for name in CREATED:
            for secret in (secret_name(name), index_url_secret_name(name)):
                with contextlib.suppress(ResourceNotFoundError):
                    client.begin_delete_secret(secret).wait()
                    client.purge_deleted_secret(secret)
    CREATED.clear()


def unique(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    CREATED.append(name)
    return name


def basic(token: str, user: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def verifier(store: SecretStore, clock: Clock, cache_seconds: float = 0.0) -> TokenVerifier:
    return TokenVerifier(store, cache_seconds=cache_seconds, clock=clock)


def companion_value(store: SecretStore, name: str) -> str | None:
    enabled = [v for v in store.versions(index_url_secret_name(name)) if v.enabled]
    newest = max(enabled, key=lambda v: (generation(v.tags), v.created_on))
    return store.value(index_url_secret_name(name), newest.version)


def test_create_then_verify_with_basic_or_bearer(
    tokens: Tokens, store: SecretStore, clock: Clock
) -> None:
    name = unique("reader")
    value = tokens.create(name, Policy(Scope.READ))
    check = verifier(store, clock)
    assert check.verify(basic(value), Scope.READ) == name
    assert check.verify(basic(value, user="whoever"), Scope.READ) == name
    assert check.verify(f"Bearer {value}", Scope.READ) == name
    assert check.verify(basic(value), Scope.PUBLISH) is None  # read cannot publish
    assert tokens.show(name) == value
    version = store.versions(secret_name(name))[0]
    assert version.tags["scope"] == "read"
    assert version.tags["rotate-after"] == "P30D"
    assert version.tags["overlap"] == "P7D"
    assert version.expires_on is not None
    assert abs(version.expires_on - (clock() + timedelta(days=37))) < timedelta(seconds=5)
    assert companion_value(store, name) == index_url(PUBLIC, name, value)


def test_publish_token_may_read(tokens: Tokens, store: SecretStore, clock: Clock) -> None:
    name = unique("publisher")
    value = tokens.create(name, Policy(Scope.PUBLISH))
    check = verifier(store, clock)
    assert check.verify(basic(value), Scope.PUBLISH) == name
    assert check.verify(basic(value), Scope.READ) == name


def test_forged_unknown_and_malformed_tokens_are_refused(
    tokens: Tokens, store: SecretStore, clock: Clock
) -> None:
    name = unique("reader")
    value = tokens.create(name, Policy(Scope.READ))
    counting = CountingStore(store)
    check = verifier(counting, clock)  # type: ignore[arg-type]
    forged = new_token(name)  # right prefix, name and checksum; wrong secret
    assert check.verify(basic(forged), Scope.READ) is None
    assert check.verify(basic(new_token(unique("nobody"))), Scope.READ) is None
    reads = counting.reads
    for junk in (value[:-1] + "x", "wvt_" + name, "hunter2", value.upper()):
        assert check.verify(basic(junk), Scope.READ) is None
    assert counting.reads == reads  # malformed tokens never reach the vault
    assert check.verify(None, Scope.READ) is None


def test_rotation_overlap_then_old_refused(
    tokens: Tokens, store: SecretStore, clock: Clock
) -> None:
    name = unique("rotating")
    old = tokens.create(name, Policy(Scope.READ, rotate_after="P30D", overlap="P7D"))
    clock.advance(days=30, hours=1)
    report = tokens.rotate_due()
    assert name in report.rotated
    new = tokens.show(name)
    assert new != old
    check = verifier(store, clock)
    assert check.verify(basic(old), Scope.READ) == name  # overlap: both work
    assert check.verify(basic(new), Scope.READ) == name
    assert companion_value(store, name) == index_url(PUBLIC, name, new)

    clock.advance(days=7)  # the old version's expiry (creation + 37 days) has passed
    assert check.verify(basic(old), Scope.READ) is None
    assert check.verify(basic(new), Scope.READ) == name
    report = tokens.rotate_due()
    assert name not in report.rotated
    enabled = [v for v in store.versions(secret_name(name)) if v.enabled]
    assert len(enabled) == 1  # the expired version was disabled

    again = tokens.rotate_due()  # a second run does nothing
    assert name not in again.rotated
    assert name not in again.index_urls_updated


def test_cached_verifier_still_enforces_expiry_and_sees_new_versions(
    tokens: Tokens, store: SecretStore, clock: Clock
) -> None:
    name = unique("cached")
    old = tokens.create(name, Policy(Scope.READ, rotate_after="P1D", overlap="PT1H"))
    counting = CountingStore(store)
    check = TokenVerifier(counting, cache_seconds=3600, clock=clock)  # type: ignore[arg-type]
    for _ in range(50):
        assert check.verify(basic(old), Scope.READ) == name
    assert counting.reads == 2  # one listing and one value for a burst of 50 requests
    clock.advance(days=1, hours=2)
    assert check.verify(basic(old), Scope.READ) is None  # expired, although cached


def test_revoke_refuses_every_version(tokens: Tokens, store: SecretStore, clock: Clock) -> None:
    name = unique("revoked")
    old = tokens.create(name, Policy(Scope.READ))
    new = tokens.rotate(name)
    assert tokens.revoke(name) >= 3  # two token versions and the companion
    check = verifier(store, clock)
    assert check.verify(basic(old), Scope.READ) is None
    assert check.verify(basic(new), Scope.READ) is None
    clock.advance(days=90)
    report = tokens.rotate_due()
    assert name in report.revoked_skipped  # rotation does not bring it back
    assert name not in report.rotated


def test_list_never_shows_values(tokens: Tokens) -> None:
    name = unique("listed")
    value = tokens.create(name, Policy(Scope.PUBLISH, description="CI for team X"))
    (info,) = [i for i in tokens.list_tokens() if i.name == name]
    assert (info.scope, info.description, info.usable_versions, info.revoked) == (
        "publish",
        "CI for team X",
        1,
        False,
    )
    assert value not in repr(tokens.list_tokens())


def test_one_failing_token_does_not_stop_the_others(store: SecretStore, clock: Clock) -> None:
    names = [unique("batch") for _ in range(3)]
    setup = Tokens(store, public_url=PUBLIC, clock=clock)
    for name in names:
        setup.create(name, Policy(Scope.READ))
    clock.advance(days=31)
    failing = CountingStore(store, fail_on_write=1, only=names[1])
    report = Tokens(failing, public_url=PUBLIC, clock=clock).rotate_due()
    assert [f for f in report.failed if f["token"] in names] == [
        {"token": names[1], "error": "ConnectionError"}
    ]
    assert sorted(n for n in report.rotated if n in names) == sorted([names[0], names[2]])


@pytest.mark.parametrize("crash_at", [1, 2, 3])
def test_rotation_is_crash_safe(store: SecretStore, clock: Clock, crash_at: int) -> None:
    """Crash at each write of a rotation (new version, index URL, disable), then run again."""
    name = unique("crashy")
    tokens = Tokens(store, public_url=PUBLIC, clock=clock)
    v1 = tokens.create(name, Policy(Scope.READ, rotate_after="P30D", overlap="P7D"))
    clock.advance(days=30, hours=1)
    tokens.rotate_due()
    v2 = tokens.show(name)
    clock.advance(days=30)  # v1 has expired, v2 is due: the run writes v3, the URL, disables v1
    assert v1 != v2

    crashing = CountingStore(store, fail_on_write=crash_at, only=name)
    report = Tokens(crashing, public_url=PUBLIC, clock=clock).rotate_due()
    assert any(f["token"] == name for f in report.failed)
    check = verifier(store, clock)
    url_token = companion_value(store, name).split(":")[2].split("@")[0]  # type: ignore[union-attr]
    assert check.verify(basic(url_token), Scope.READ) == name  # the URL consumers read works

    final = Tokens(store, public_url=PUBLIC, clock=clock).rotate_due()
    assert not [f for f in final.failed if f["token"] == name]
    versions = sorted(store.versions(secret_name(name)), key=lambda v: generation(v.tags))
    assert len(versions) == 3  # exactly one new version, whatever the crash
    assert [v.enabled for v in versions] == [False, True, True]
    v3 = tokens.show(name)
    assert companion_value(store, name) == index_url(PUBLIC, name, v3)
    check = verifier(store, clock)  # a new process's view (the old one may cache for 0.5 s)
    assert check.verify(basic(v2), Scope.READ) == name
    assert check.verify(basic(v3), Scope.READ) == name
    assert Tokens(store, public_url=PUBLIC, clock=clock).rotate_due().rotated.count(name) == 0


def test_timer_function_binding() -> None:
    import json

    function_json = json.loads(function("rotate_tokens").get_function_json())
    assert function_json["bindings"] == [
        {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "%WHEELVAULT_ROTATION_SCHEDULE%",
            "runOnStartup": False,
        }
    ]


def test_timer_function_rotates_through_function_app(
    storage_env: object,
    vault_standin: VaultStandinProcess,
    store: SecretStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.services.wiring import reset_services

    monkeypatch.setenv("WHEELVAULT_VAULT_URL", vault_standin.url)
    monkeypatch.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
    monkeypatch.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(vault_standin.ca_path))
    monkeypatch.setenv("WHEELVAULT_PUBLIC_URL", PUBLIC)
    reset_services()
    name = unique("timer")
    # A token already due: created with a one-second rotate-after.
    old = Tokens(store, public_url=PUBLIC).create(
        name, Policy(Scope.READ, rotate_after="PT1S", overlap="P1D")
    )
    import time

    time.sleep(1.1)
    handler("rotate_tokens")(func.timer.TimerRequest(past_due=True))
    new = Tokens(store, public_url=PUBLIC).show(name)
    assert new != old
    assert companion_value(store, name) == index_url(PUBLIC, name, new)
    assert "rotation run" in caplog.text
    reset_services()


def test_local_vault_settings_need_the_credential_devhost_supplies() -> None:
    """The production adapter builds no placeholder credential: "local" without one is a
    settings error that says where the credential comes from."""
    settings = Settings.model_validate(
        {
            "WHEELVAULT_STORAGE": "UseDevelopmentStorage=true",
            "WHEELVAULT_VAULT_URL": "https://127.0.0.1:9",
            "WHEELVAULT_VAULT_CREDENTIAL": "local",
        }
    )
    with pytest.raises(SettingsError, match="supplied by the devhost stand-ins"):
        secret_client_from_settings(settings)


def test_no_token_value_in_any_log_line(
    tokens: Tokens, store: SecretStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("quiet")
    values = [tokens.create(name, Policy(Scope.READ))]
    values.append(tokens.rotate(name))
    clock.advance(days=31)
    tokens.rotate_due()
    values.append(tokens.show(name))
    check = verifier(store, clock)
    for value in values:
        check.verify(basic(value), Scope.READ)
        check.verify(f"Bearer {value}", Scope.READ)
    tokens.revoke(name)
    assert caplog.records  # the SDK and our code did log (DEBUG is on)
    for value in values:
        assert value not in caplog.text
        assert value.rsplit("_", 1)[1][:20] not in caplog.text


def test_a_flood_of_made_up_names_is_bounded(store: SecretStore, clock: Clock) -> None:
    """Well-formed tokens for endless new names: vault reads stop at the budget, and a real
    token whose name is cached keeps working throughout."""
    tokens = Tokens(store, public_url=PUBLIC, clock=clock)
    name = unique("steady")
    value = tokens.create(name, Policy(Scope.READ))
    counting = CountingStore(store)
    # The budget's clock stands still: on the real one it refills 20 reads a second, and a
    # slow machine's flood would be charged for its own slowness.
    check = TokenVerifier(
        counting,  # type: ignore[arg-type]
        cache_seconds=60,
        clock=clock,
        monotonic=lambda: 1000.0,
    )
    assert check.verify(basic(value), Scope.READ) == name
    before = counting.reads
    for _ in range(300):
        assert check.verify(basic(new_token(f"fake-{uuid.uuid4().hex[:12]}")), Scope.READ) is None
    flood_reads = counting.reads - before
    assert flood_reads <= TokenVerifier.NEW_NAME_BURST + 10  # not one read per request
    assert check.verify(basic(value), Scope.READ) == name


def test_re_reads_of_names_the_vault_does_not_know_are_charged_to_the_budget(
    store: SecretStore, clock: Clock
) -> None:
    """The same made-up names over and over, past the re-read interval: each round would re-read
    every name if re-reads of unknown names were free; they spend the new-name budget instead."""
    from shared.services.verifier import MIN_REFRESH_SECONDS

    counting = CountingStore(store)
    now = [1000.0]
    check = TokenVerifier(
        counting,  # type: ignore[arg-type]
        cache_seconds=3600,
        clock=clock,
        monotonic=lambda: now[0],
        new_name_reads_per_second=1.0,
        new_name_burst=20.0,
    )
    names = [f"ghost-{uuid.uuid4().hex[:12]}" for _ in range(20)]
    for name in names:  # the burst: one listing per new name
        assert check.verify(basic(new_token(name)), Scope.READ) is None
    assert counting.reads == 20
    for _ in range(10):
        now[0] += MIN_REFRESH_SECONDS
        for name in names:
            assert check.verify(basic(new_token(name)), Scope.READ) is None
    # 50 s at one read per second refills at most 50 reads, not 10 rounds x 20 names.
    assert counting.reads - 20 <= 50 + 1


def test_a_rotated_value_works_on_the_very_next_request(
    tokens: Tokens, store: SecretStore, clock: Clock
) -> None:
    """Issue 9 §4.4: the verifier has just cached the name's versions; `rotate` makes a new one;
    the new value must not be refused while that cache is fresh."""
    name = unique("fresh")
    old = tokens.create(name, Policy(Scope.READ))
    counting = CountingStore(store)
    check = TokenVerifier(counting, cache_seconds=60, clock=clock)  # type: ignore[arg-type]
    assert check.verify(basic(old), Scope.READ) == name
    new = tokens.rotate(name)
    assert check.verify(basic(new), Scope.READ) == name  # the very next request
    assert check.verify(basic(old), Scope.READ) == name  # the overlap: both work
    # The re-read listed the versions and fetched only the new value.
    assert counting.reads == 2 + 2


def test_forged_values_for_a_known_name_cost_one_listing_per_interval(
    tokens: Tokens, store: SecretStore, clock: Clock
) -> None:
    """Unseen values re-read a known name at most once per MIN_REFRESH_SECONDS, and such a
    re-read lists versions only (their values are already known)."""
    from shared.services.verifier import MIN_REFRESH_SECONDS

    name = unique("target")
    value = tokens.create(name, Policy(Scope.READ))
    counting = CountingStore(store)
    now = [1000.0]
    check = TokenVerifier(
        counting,  # type: ignore[arg-type]
        cache_seconds=3600,
        clock=clock,
        monotonic=lambda: now[0],
    )
    assert check.verify(basic(value), Scope.READ) == name
    before = counting.reads
    for _ in range(200):
        assert check.verify(basic(new_token(name)), Scope.READ) is None
    assert counting.reads - before == 1  # one listing, no value reads
    now[0] += MIN_REFRESH_SECONDS / 2
    for _ in range(50):
        assert check.verify(basic(new_token(name)), Scope.READ) is None
    assert counting.reads - before == 1  # still within the interval
    now[0] += MIN_REFRESH_SECONDS
    assert check.verify(basic(new_token(name)), Scope.READ) is None
    assert counting.reads - before == 2
    assert check.verify(basic(value), Scope.READ) == name  # the real value never stopped working
