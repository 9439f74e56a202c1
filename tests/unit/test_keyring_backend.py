"""The Entra ID keyring backend (clients/keyring): configuration, which service strings get a
token, and how tokens are obtained, held and refused. The token source is a stand-in object
with azure-core's ``get_token``, the seam DefaultAzureCredential fills in real use."""

from __future__ import annotations

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from keyring.credentials import SimpleCredential
from keyring.errors import PasswordDeleteError, PasswordSetError
from wheelvault_keyring.__main__ import check_url
from wheelvault_keyring.backend import (
    FAILURE_PAUSE_SECONDS,
    REFRESH_MARGIN_SECONDS,
    TokenSource,
    WheelvaultKeyring,
    describe,
    process_token_source,
)
from wheelvault_keyring.config import ENV_INDEXES, IndexEntry, Origin, parse_indexes

INDEXES = (
    "https://wv.example.net=api://wv/.default,"
    " https://wv2.example.net:8443=api://wv2/.default\n"
    "http://127.0.0.1:7071=api://local/.default https://[2001:db8::1]=api://v6/.default"
)
CONFIG = parse_indexes(INDEXES)
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
NOW = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Credential:
    """Answers get_token with the next of ``answers`` (a token or an exception to raise)."""

    def __init__(self, *answers: str | Exception, lifetime: float = 3600) -> None:
        self.answers = list(answers)
        self.lifetime = lifetime
        self.asked: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.asked.append(scopes)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return AccessToken(answer, int(NOW + self.lifetime))


def backend(*answers: str | Exception) -> tuple[WheelvaultKeyring, Credential]:
    credential = Credential(*answers)
    return WheelvaultKeyring(config=CONFIG, credential=credential), credential


# --- configuration ---------------------------------------------------------------------------


def test_entries_are_separated_by_commas_spaces_and_newlines() -> None:
    assert CONFIG.problems == ()
    assert [(str(entry.origin), entry.scope) for entry in CONFIG.entries] == [
        ("https://wv.example.net", "api://wv/.default"),
        ("https://wv2.example.net:8443", "api://wv2/.default"),
        ("http://127.0.0.1:7071", "api://local/.default"),
        ("https://[2001:db8::1]", "api://v6/.default"),
    ]


def test_origins_are_normalised() -> None:
    config = parse_indexes("HTTPS://WV.Example.NET:443/=api://wv/.default")
    assert config.entries == (
        IndexEntry(Origin("https", "wv.example.net", 443), "api://wv/.default"),
    )


@pytest.mark.parametrize("value", ["", "   ", " , ,\n"])
def test_an_empty_setting_configures_nothing(value: str) -> None:
    assert parse_indexes(value) == parse_indexes("")
    assert parse_indexes(value).entries == ()
    assert parse_indexes(value).problems == ()


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("wv.example.net", "expected ORIGIN=SCOPE"),
        ("https://wv.example.net=", "the scope after '=' is empty"),
        ("https://wv.example.net/simple/=api://wv/.default", "no user, path or query"),
        ("https://user@wv.example.net=api://wv/.default", "no user, path or query"),
        ("https://wv.example.net?x=1=api://wv/.default", "no user, path or query"),
        ("ftp://wv.example.net=api://wv/.default", "must be https://host"),
        ("wv.example.net:443=api://wv/.default", "must be https://host"),
        ("https://=api://wv/.default", "must be https://host"),
        ("https://wv.example.net:0=api://wv/.default", "must be https://host"),
        ("https://wv.example.net:99999=api://wv/.default", "not a URL"),
        ("https://[::1=api://wv/.default", "not a URL"),
        ("https://evil.com\\@wv.example.net=api://wv/.default", "a backslash"),
        ("http://wv.example.net=api://wv/.default", "in the clear"),
        ("http://10.0.0.1:7071=api://wv/.default", "in the clear"),
    ],
)
def test_a_malformed_entry_is_left_out_and_explained(entry: str, reason: str) -> None:
    config = parse_indexes(f"{entry} https://ok.example.net=api://ok/.default")
    assert [str(known.origin) for known in config.entries] == ["https://ok.example.net"]
    (problem,) = config.problems
    assert problem.startswith(f"{ENV_INDEXES}: entry {entry!r} ignored: ")
    assert reason in problem


def test_an_origin_listed_twice_keeps_the_first_scope() -> None:
    config = parse_indexes("https://wv.example.net=api://a/.default https://WV.example.net:443=b")
    assert [entry.scope for entry in config.entries] == ["api://a/.default"]
    assert config.problems == (
        f"{ENV_INDEXES}: entry 'https://WV.example.net:443=b' ignored: "
        "https://wv.example.net is listed twice",
    )


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:7071", "http://localhost:7071", "http://[::1]:7071"]
)
def test_http_is_accepted_for_loopback_hosts(origin: str) -> None:
    config = parse_indexes(f"{origin}=api://local/.default")
    assert config.problems == ()
    assert str(config.entries[0].origin) == origin


# --- which service strings match --------------------------------------------------------------

CLIENT_FORMS = [
    # pip, --keyring-provider import and subprocess: the index URL, then the netloc
    ("https://wv.example.net/simple/", "https://wv.example.net"),
    ("wv.example.net", "https://wv.example.net"),
    # uv, --keyring-provider subprocess: the request URL (a page or a file), then host[:port]
    ("https://wv.example.net/simple/requests/", "https://wv.example.net"),
    ("https://wv.example.net/files/requests-2.32.3-py3-none-any.whl", "https://wv.example.net"),
    # twine and uv publish: the upload URL
    ("https://wv.example.net/legacy/", "https://wv.example.net"),
    ("https://wv.example.net", "https://wv.example.net"),
    ("https://entra@wv.example.net/simple/", "https://wv.example.net"),
]
MATCHES = [
    *CLIENT_FORMS,
    # hosts are case-insensitive, default ports may be spelled out
    ("HTTPS://WV.Example.NET/simple/", "https://wv.example.net"),
    ("WV.EXAMPLE.NET", "https://wv.example.net"),
    ("https://wv.example.net:443/simple/", "https://wv.example.net"),
    ("wv.example.net:443", "https://wv.example.net"),
    # a configured port
    ("https://wv2.example.net:8443/simple/", "https://wv2.example.net:8443"),
    ("wv2.example.net:8443", "https://wv2.example.net:8443"),
    # the local stack over loopback http
    ("http://127.0.0.1:7071/simple/", "http://127.0.0.1:7071"),
    ("127.0.0.1:7071", "http://127.0.0.1:7071"),
    # IPv6 literals, as URLs and as uv's bracketed host
    ("https://[2001:db8::1]/simple/", "https://[2001:db8::1]"),
    ("[2001:db8::1]", "https://[2001:db8::1]"),
    ("[2001:DB8::1]:443", "https://[2001:db8::1]"),
]

NO_MATCH = [
    # other indexes keep their own credentials
    "https://pypi.org/simple/",
    "pypi.org",
    "https://upload.pypi.org/legacy/",
    # near misses: other hosts, ports, schemes
    "wv.example.net.evil.com",
    "https://wv.example.net.evil.com/simple/",
    "evilwv.example.net",
    "wv.example.net.",
    "example.net",
    "wv2.example.net",
    "https://wv2.example.net/simple/",
    "wv.example.net:8443",
    "wv.example.net:80",
    "http://wv.example.net/simple/",
    "https://127.0.0.1:7071/simple/",
    "127.0.0.1",
    "localhost:7071",
    "ftp://wv.example.net/",
    "https://wv.example.net:0/",
    "wv.example.net:0",
    "2001:db8::1",
    # the configured host in a path, query, fragment or user name: the request goes to evil.com
    "evil.com/wv.example.net",
    "https://evil.com/wv.example.net/simple/",
    "https://evil.com?wv.example.net",
    "https://evil.com#@wv.example.net/",
    "https://wv.example.net@evil.com/simple/",
    "https://wv.example.net:443@evil.com/simple/",
    "wv.example.net@evil.com",
    "https://evil.com\\@wv.example.net/simple/",
    "https://wv.example.net＃@evil.com/",
    "https://wv.example.net%2eevil.com/",
    # not URLs, or holding characters that a parser would drop
    "",
    "https://",
    "https://[::1/simple/",
    "wv.example.net:notaport",
    "wv.example.net:99999",
    "https://wv.example.net/simple/\n",
    "https://wv.exa\tmple.net/simple/",
    " wv.example.net",
]


@pytest.mark.parametrize(("service", "origin"), MATCHES)
def test_a_configured_origin_matches(service: str, origin: str) -> None:
    entry = CONFIG.match(service)
    assert entry is not None
    assert str(entry.origin) == origin


@pytest.mark.parametrize("service", NO_MATCH)
def test_nothing_else_matches(service: str) -> None:
    assert CONFIG.match(service) is None


# --- the backend -----------------------------------------------------------------------------


def test_priority_is_above_the_platform_keyrings_and_below_the_chainer() -> None:
    assert WheelvaultKeyring.priority == 9.9
    assert WheelvaultKeyring.viable


@pytest.mark.parametrize(("service", "_origin"), CLIENT_FORMS)
def test_each_clients_service_string_gets_the_token(service: str, _origin: str) -> None:
    keyring, credential = backend(TOKEN)
    assert keyring.get_password(service, "entra") == TOKEN
    assert credential.asked == [("api://wv/.default",)]


@pytest.mark.parametrize("service", ["https://pypi.org/simple/", "pypi.org", "evil.com"])
def test_other_hosts_get_nothing_and_no_sign_in_is_tried(service: str) -> None:
    keyring, credential = backend(TOKEN)
    assert keyring.get_password(service, "entra") is None
    assert keyring.get_credential(service, None) is None
    assert credential.asked == []


@pytest.mark.parametrize(
    ("username", "returned"), [("entra", "entra"), ("__token__", "__token__"), (None, "entra")]
)
def test_get_credential_returns_the_username_given_or_entra(
    username: str | None, returned: str
) -> None:
    keyring, _ = backend(TOKEN)
    credential = keyring.get_credential("https://wv.example.net/simple/", username)
    assert isinstance(credential, SimpleCredential)
    assert (credential.username, credential.password) == (returned, TOKEN)


def test_each_origin_gets_a_token_for_its_own_scope() -> None:
    keyring, credential = backend("token-wv", "token-wv2")
    assert keyring.get_password("wv.example.net", "u") == "token-wv"
    assert keyring.get_password("wv2.example.net:8443", "u") == "token-wv2"
    assert credential.asked == [("api://wv/.default",), ("api://wv2/.default",)]


def test_set_and_delete_are_refused_as_read_only() -> None:
    keyring, _ = backend()
    with pytest.raises(PasswordSetError, match="stores nothing"):
        keyring.set_password("https://wv.example.net/simple/", "entra", "secret")
    with pytest.raises(PasswordDeleteError, match="nothing to delete"):
        keyring.delete_password("https://wv.example.net/simple/", "entra")


def test_refusals_are_not_implemented_errors_so_the_chainer_asks_the_next_backend() -> None:
    keyring, _ = backend()
    with pytest.raises(NotImplementedError):
        keyring.set_password("pypi.org", "me", "secret")
    with pytest.raises(NotImplementedError):
        keyring.delete_password("pypi.org", "me")


def test_malformed_entries_are_reported_once_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_INDEXES, "bogus https://wv.example.net=api://wv/.default")
    keyring = WheelvaultKeyring(credential=Credential(TOKEN))
    assert keyring.get_password("https://pypi.org/simple/", "me") is None
    assert keyring.get_password("https://wv.example.net/simple/", "me") == TOKEN
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"wheelvault-keyring: {ENV_INDEXES}: entry 'bogus' ignored: "
        "expected ORIGIN=SCOPE, e.g. https://host=api://app/.default\n"
    )


def test_reports_are_ascii_whatever_the_entry_holds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_INDEXES, "https://ｗv.example.net")
    assert WheelvaultKeyring(credential=Credential()).get_password("wv.example.net", "me") is None
    assert capsys.readouterr().err == (
        f"wheelvault-keyring: {ENV_INDEXES}: entry 'https://\\uff57v.example.net' ignored: "
        "expected ORIGIN=SCOPE, e.g. https://host=api://app/.default\n"
    )


def test_keyring_properties_from_the_environment_do_not_break_the_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """keyring sets KEYRING_PROPERTY_<NAME> as attribute <name> on every backend it builds."""
    for name in ("CONFIG", "TOKENS", "CREDENTIAL", "INDEXES"):
        monkeypatch.setenv(f"KEYRING_PROPERTY_{name}", "x")
    monkeypatch.setenv(ENV_INDEXES, "https://wv.example.net=api://wv/.default")
    keyring = WheelvaultKeyring(credential=Credential(TOKEN))
    assert keyring.get_password("wv.example.net", "me") == TOKEN


def test_the_setting_is_read_when_first_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_INDEXES, raising=False)
    keyring = WheelvaultKeyring(credential=Credential(TOKEN))
    monkeypatch.setenv(ENV_INDEXES, "https://wv.example.net=api://wv/.default")
    assert keyring.get_password("wv.example.net", "me") == TOKEN


# --- tokens: held, refreshed, failures ---------------------------------------------------------

WV = CONFIG.entries[0]


def test_the_credential_is_built_on_first_use_only_once() -> None:
    built: list[Credential] = []

    def factory() -> Credential:
        built.append(Credential("a", "b"))
        return built[-1]

    tokens = TokenSource(factory)
    assert built == []
    assert tokens.token(CONFIG.entries[0]) == "a"
    assert tokens.token(CONFIG.entries[1]) == "b"
    assert len(built) == 1


def test_the_process_has_one_token_source() -> None:
    assert process_token_source() is process_token_source()


def test_a_token_is_held_until_shortly_before_it_expires() -> None:
    clock = Clock()
    credential = Credential("first", "second")
    tokens = TokenSource(lambda: credential, clock=clock)
    assert tokens.token(WV) == "first"
    clock.now = NOW + 3600 - REFRESH_MARGIN_SECONDS - 1
    assert tokens.token(WV) == "first"
    clock.now = NOW + 3600 - REFRESH_MARGIN_SECONDS
    assert tokens.token(WV) == "second"
    assert len(credential.asked) == 2


def test_a_failure_is_one_line_on_stderr_without_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    keyring, _ = backend(ClientAuthenticationError(f"refused: {TOKEN}\nAttempted credentials: …"))
    assert keyring.get_password("https://wv.example.net/simple/", "entra") is None
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(
        "wheelvault-keyring: no Entra ID token for https://wv.example.net "
        "(scope api://wv/.default): ClientAuthenticationError: refused: [token removed]"
    )
    assert "python -m wheelvault_keyring check https://wv.example.net" in captured.err
    assert TOKEN not in captured.err
    assert "eyJ" not in captured.err


def test_after_a_failure_the_scope_rests_before_another_try(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    credential = Credential(RuntimeError("no identity"), "late")
    tokens = TokenSource(lambda: credential, clock=clock)
    assert tokens.token(WV) is None
    clock.now = NOW + FAILURE_PAUSE_SECONDS - 1
    assert tokens.token(WV) is None
    assert len(credential.asked) == 1
    assert capsys.readouterr().err.count("\n") == 1
    clock.now = NOW + FAILURE_PAUSE_SECONDS
    assert tokens.token(WV) == "late"


def test_a_credential_that_cannot_be_built_is_a_failure_like_any_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def factory() -> Credential:
        raise ImportError("No module named 'azure.identity'")

    tokens = TokenSource(factory)
    assert tokens.token(WV) is None
    assert "ImportError: No module named 'azure.identity'" in capsys.readouterr().err
    assert tokens.last_failure == "No module named 'azure.identity'"


def test_describe_bounds_the_reason() -> None:
    assert describe(ValueError("x" * 1000)) == "ValueError: " + "x" * 297 + "..."
    assert describe(ValueError()) == "ValueError"


# --- python -m wheelvault_keyring check URL ---------------------------------------------------


def test_check_shows_the_match_and_never_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    tokens = TokenSource(lambda: Credential(TOKEN))
    assert check_url("wv2.example.net:8443", CONFIG, tokens) == 0
    out = capsys.readouterr().out
    assert "origin: https://wv2.example.net:8443\nscope: api://wv2/.default\n" in out
    assert "token: obtained in " in out
    assert f"({len(TOKEN)} characters, not shown)" in out
    assert TOKEN not in out


def test_check_names_the_configured_origins_when_nothing_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tokens = TokenSource(lambda: Credential(TOKEN))
    assert check_url("https://pypi.org/simple/", CONFIG, tokens) == 1
    assert capsys.readouterr().out == (
        "no match: https://pypi.org/simple/ names none of the origins in "
        f"{ENV_INDEXES} (https://wv.example.net, https://wv2.example.net:8443, "
        "http://127.0.0.1:7071, https://[2001:db8::1])\n"
    )


def test_check_shows_the_whole_failure(capsys: pytest.CaptureFixture[str]) -> None:
    failure = ClientAuthenticationError("DefaultAzureCredential failed\nAzureCliCredential: no az")
    tokens = TokenSource(lambda: Credential(failure))
    assert check_url("https://wv.example.net/simple/", CONFIG, tokens) == 1
    out = capsys.readouterr().out
    assert out.endswith(
        "token: not obtained\n  DefaultAzureCredential failed\n  AzureCliCredential: no az\n"
    )
