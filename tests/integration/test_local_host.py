"""The local Functions host, driven over real HTTP with a sample app that echoes its input."""

from __future__ import annotations

import http.client
import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import azure.functions as func
import pytest

from devhost.standins.host.localhost import (
    READY_PREFIX,
    HostConfigError,
    HostStartError,
    LocalHost,
)
from devhost.standins.host.messages import HostRequest, HostResponse
from devhost.standins.host.routes import RouteTemplateError, parse_template, split_path
from devhost.standins.host.settings import SettingsFileError
from tests.support import sample_app

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0
MAX_BODY = 100 * 1024 * 1024

pytestmark = pytest.mark.integration


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    host: LocalHost,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def raw_exchange(host: LocalHost, data: bytes) -> bytes:
    """Send bytes as they are and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def host() -> Iterator[LocalHost]:
    # Without host.json the Functions host's default routePrefix "api" applies.
    local = LocalHost(functions=sample_app.functions(), port=0, load_settings=False, host_json=None)
    with local:
        yield local


def test_routes_get_the_default_api_prefix_without_host_json(host: LocalHost) -> None:
    assert request(host, "GET", "/api/greeting").status == 200
    assert request(host, "GET", "/greeting").status == 404


def test_route_parameters_and_one_trailing_slash(host: LocalHost) -> None:
    both = request(host, "GET", "/api/echo/one/two").json()
    assert both["function"] == "echo_pair"
    assert both["route"] == {"first": "one", "second": "two"}
    assert request(host, "GET", "/api/echo/one").json()["route"] == {"first": "one"}
    assert request(host, "GET", "/api/echo/one/").json()["route"] == {"first": "one"}
    assert request(host, "GET", "/api/echo/one/two/").json()["route"] == {
        "first": "one",
        "second": "two",
    }
    assert request(host, "GET", "/api/greeting/").status == 200


def test_literal_segments_are_case_insensitive(host: LocalHost) -> None:
    assert request(host, "GET", "/API/Echo/Value").json()["route"] == {"first": "Value"}


def test_a_parameter_never_spans_a_slash(host: LocalHost) -> None:
    response = request(host, "GET", "/api/echo/a/b/c")
    assert response.status == 404
    assert response.json()["error"]["code"] == "not-found"
    assert request(host, "GET", "/api/echo//b").status == 404  # an empty segment is no value


def test_a_literal_segment_wins_over_a_parameter(host: LocalHost) -> None:
    assert request(host, "GET", "/api/items/new").json()["function"] == "item_new"
    assert request(host, "GET", "/API/Items/NEW").json()["function"] == "item_new"
    abc = request(host, "GET", "/api/items/abc").json()
    assert (abc["function"], abc["route"]) == ("item_by_name", {"name": "abc"})
    assert request(host, "GET", "/api/items/42").json()["function"] == "item_by_name"


def test_path_segments_are_percent_decoded_after_splitting(host: LocalHost) -> None:
    route = request(host, "GET", "/api/echo/h%C3%A9llo/a%2Fb").json()["route"]
    assert route == {"first": "héllo", "second": "a/b"}  # %2F decoded, passed as is
    assert request(host, "GET", "/api/echo/%2E%2E").json()["route"] == {"first": ".."}
    assert request(host, "GET", "/api/%65cho/x").json()["function"] == "echo"


def test_literal_dot_segments_are_resolved_before_routing() -> None:
    assert split_path("/api/echo/x/../y") == ["api", "echo", "y"]
    assert split_path("/../../api/./echo/") == ["api", "echo"]
    assert split_path("/api/%2e%2e/x") == ["api", "..", "x"]


def test_a_path_that_is_not_utf8_is_a_400(host: LocalHost) -> None:
    response = request(host, "GET", "/api/echo/%FF")
    assert response.status == 400
    assert response.json()["error"]["code"] == "bad-path"


def test_methods_and_405(host: LocalHost) -> None:
    assert request(host, "POST", "/api/only-post", b"{}").status == 201
    refused = request(host, "GET", "/api/only-post")
    assert refused.status == 405
    assert refused.headers["Allow"] == "POST"
    assert refused.json()["error"]["code"] == "method-not-allowed"
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        assert request(host, method, "/api/echo/m").json()["method"] == method


def test_head_sends_headers_but_no_body(host: LocalHost) -> None:
    get = request(host, "GET", "/api/greeting")
    assert get.body == b"hello, wheelvault\n"
    raw = raw_exchange(host, b"HEAD /api/greeting HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"Content-Length: {len(get.body)}".encode() in head
    assert b"X-Greeting: yes" in head
    assert rest == b""


def test_query_string_and_full_url(host: LocalHost) -> None:
    echoed = request(host, "GET", "/api/echo/q?a=1&a=2&empty=&text=%20x+y&sig=abc%2Fdef").json()
    assert echoed["params"] == {"a": "1", "empty": "", "text": " x y", "sig": "abc/def"}
    port = host.port
    assert echoed["url"] == (
        f"http://127.0.0.1:{port}/api/echo/q?a=1&a=2&empty=&text=%20x+y&sig=abc%2Fdef"
    )


def test_raw_body_bytes_reach_the_function_and_come_back(host: LocalHost) -> None:
    body = bytes(range(256)) * 64 + b"\xc3\x28 invalid utf-8"
    echoed = request(host, "PUT", "/api/echo/body", body).json()
    assert bytes.fromhex(echoed["body_hex"]) == body
    binary = request(host, "GET", "/api/binary")
    assert binary.body == sample_app.BINARY
    assert binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.headers["Content-Length"] == str(len(sample_app.BINARY))


def test_a_chunked_request_body_is_read_whole(host: LocalHost) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=TIMEOUT)
    try:
        parts = [b"first \xff", b"second", b"third"]
        connection.request("POST", "/api/echo/chunked", body=iter(parts), encode_chunked=True)
        echoed = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert bytes.fromhex(echoed["body_hex"]) == b"".join(parts)
    assert echoed["headers"]["transfer-encoding"] == "chunked"


def test_request_and_response_headers(host: LocalHost) -> None:
    echoed = request(
        host, "GET", "/api/echo/h", headers={"X-Test": "Value 1", "Authorization": "Basic eDp5"}
    ).json()
    assert echoed["headers"]["x-test"] == "Value 1"
    assert echoed["headers"]["authorization"] == "Basic eDp5"
    assert echoed["headers"]["host"] == f"127.0.0.1:{host.port}"
    response = request(host, "GET", "/api/respond")
    assert response.headers["X-Custom"] == "custom value"
    assert response.headers["Cache-Control"] == "no-store"
    cookies = request(host, "GET", "/api/cookies")
    assert cookies.status == 204
    assert cookies.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert cookies.body == b""


def test_repeated_request_headers_are_joined(host: LocalHost) -> None:
    raw = raw_exchange(
        host,
        b"GET /api/echo/r HTTP/1.1\r\nHost: h\r\nX-Many: one\r\nX-Many: two\r\n"
        b"Connection: close\r\n\r\n",
    )
    echoed = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert echoed["headers"]["x-many"] == "one, two"
    assert echoed["url"] == "http://h/api/echo/r"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "text/plain; charset=utf-8"),
        ("?mimetype=text/html&charset=iso-8859-1", "text/html; charset=iso-8859-1"),
        ("?mimetype=application/json", "application/json"),
        (
            "?content_type=application/vnd.pypi.simple.v1%2Bjson",
            "application/vnd.pypi.simple.v1+json",
        ),
    ],
)
def test_content_type_from_mimetype_and_charset(host: LocalHost, query: str, expected: str) -> None:
    assert request(host, "GET", f"/api/respond{query}").headers["Content-Type"] == expected


def test_status_codes_pass_through(host: LocalHost) -> None:
    for status in (200, 201, 302, 404, 418, 503):
        assert request(host, "GET", f"/api/respond?status={status}").status == status
    not_modified = request(host, "GET", "/api/respond?status=304")
    assert (not_modified.status, not_modified.body) == (304, b"")


def test_a_string_result_is_a_text_body(host: LocalHost) -> None:
    response = request(host, "GET", "/api/plain-text")
    assert (response.status, response.body) == (200, b"a plain string result")


def test_unknown_path_is_a_json_404(host: LocalHost) -> None:
    response = request(host, "GET", "/nothing/here?token=x")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "error": {"code": "not-found", "message": "no function serves this path"}
    }


def test_a_failing_function_is_a_500_without_the_exception_text(
    host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost.host"):
        response = request(host, "POST", "/api/boom", b"payload")
        wrong = request(host, "GET", "/api/wrong-result")
    assert response.status == 500
    assert response.json()["error"]["code"] == "internal"
    assert sample_app.SECRET_IN_ERROR.encode() not in response.body
    assert b"Traceback" not in response.body
    assert wrong.status == 500
    failures = [r for r in caplog.records if r.getMessage() == "function boom failed"]
    assert failures
    assert failures[0].exc_info is not None  # the traceback stays in the server log


def test_async_functions_are_awaited(host: LocalHost) -> None:
    echoed = request(host, "POST", "/api/async-echo/n1", b"\x00\x01").json()
    assert echoed["function"] == "async_echo"
    assert echoed["route"] == {"name": "n1"}
    assert echoed["body_hex"] == "0001"
    again = request(host, "POST", "/api/async-echo/n2").json()
    assert again["loop"] == echoed["loop"]  # one shared event loop, as in the Python worker


def test_requests_are_served_in_parallel(host: LocalHost) -> None:
    count = 20
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        statuses = list(pool.map(lambda _: request(host, "GET", "/api/slow").status, range(count)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * count
    assert elapsed < count * sample_app.SLOW_SECONDS / 4, elapsed


def test_keep_alive_requests_are_not_delayed_by_nagle(host: LocalHost) -> None:
    """Headers and body are separate writes: without TCP_NODELAY each costs ~40 ms."""
    connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=TIMEOUT)
    try:
        started = time.monotonic()
        for _ in range(20):
            connection.request("POST", "/api/echo/fast", body=b"x" * 100)
            assert connection.getresponse().read()
        elapsed = time.monotonic() - started
    finally:
        connection.close()
    assert elapsed < 20 * 0.02, elapsed


def test_a_body_over_100_mib_by_default_is_refused_before_it_is_sent(host: LocalHost) -> None:
    head = (
        "POST /api/echo/big HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {MAX_BODY + 1}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    raw = raw_exchange(host, head.encode() + b"\0" * 65536)  # a start, never the whole body
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"Connection: close" in rest
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == "too-large"


def test_expect_continue_gets_the_413_instead_of_100(host: LocalHost) -> None:
    head = (
        "PUT /api/echo/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        f"Content-Length: {MAX_BODY * 2}\r\n\r\n"
    )
    raw = raw_exchange(host, head.encode())
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in raw


def test_the_body_limit_applies_to_declared_and_chunked_bodies() -> None:
    small = LocalHost(
        functions=sample_app.functions(), port=0, load_settings=False, max_body_bytes=10
    )
    with small:
        assert request(small, "POST", "/echo/limit", b"0123456789").status == 200
        assert request(small, "POST", "/echo/limit", b"0123456789A").status == 413
        chunked = (
            b"POST /echo/limit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n01234567\r\n8\r\n89abcdef\r\n0\r\n\r\n"
        )
        assert raw_exchange(small, chunked).startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (
            b"POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n",
            400,
            "bad-request",
        ),
        (b"BREW /api/echo/x HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not-implemented"),
        (b"POST /api/echo/x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "not-implemented"),
    ],
)
def test_malformed_requests_get_json_errors(
    host: LocalHost, raw: bytes, status: int, code: str
) -> None:
    head, _, body = raw_exchange(host, raw).partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert json.loads(body)["error"]["code"] == code


def test_each_request_logs_one_line_without_query_headers_or_body(
    host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost.host.requests"):
        request(
            host,
            "POST",
            "/api/echo/logged?sig=SAS-SIGNATURE",
            b"BODY-SECRET",
            headers={"Authorization": "Basic SECRET-TOKEN"},
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "devhost.host.requests"]
    assert len(lines) == 1
    assert re.fullmatch(r"POST /api/echo/logged 200 \d+\.\dms echo", lines[0]), lines[0]
    everything = caplog.text
    for secret in ("SAS-SIGNATURE", "BODY-SECRET", "SECRET-TOKEN"):
        assert secret not in everything


def test_unsupported_templates_are_listed_as_problems_and_not_served(host: LocalHost) -> None:
    problems = {p.info.name: p.reason for p in host.problems}
    assert set(problems) == {"bad_template"}
    assert "regex" in problems["bad_template"]
    assert request(host, "GET", "/api/bad/a").status == 404
    listing = "\n".join(host.describe())
    assert "bad_template: error:" in listing
    assert f"echo: [ALL] {host.url}/api/echo/{{first}}" in listing
    assert f"echo_pair: [ALL] {host.url}/api/echo/{{first}}/{{second}}" in listing
    assert f"greeting: [GET,HEAD] {host.url}/api/greeting" in listing


@pytest.mark.parametrize(
    "template",
    [
        "a/{x}/{x}",
        "a//b",
        "pre{x}",
        "{x}{y}",
        "{}",
        "{1x}",
        "a}",
        "{x=1}",
        "{x:nope}",
        "items/{id:int}",
        "echo/{first}/{second?}",
        "{opt?}/required",
        "tree/{*rest}/leaf",
        "{*rest}/{x}",
        "tree/{*rest?}",
        "files/{**path}",
    ],
)
def test_templates_beyond_literals_parameters_and_a_last_catch_all_are_refused(
    template: str,
) -> None:
    with pytest.raises(RouteTemplateError):
        parse_template(template)


def test_the_root_and_legacy_routes_of_pypis_upload_api_are_served() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="", methods=["POST"])
    def upload_root(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("root")

    @app.route(route="legacy", methods=["POST"])
    def upload_legacy(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("legacy")

    assert parse_template("", "").match(split_path("/")) == {}
    assert parse_template("", "api").text == "api"
    local = LocalHost(app, port=0, load_settings=False, host_json=REPO_ROOT / "host.json")
    assert local.problems == ()
    with local:
        assert request(local, "POST", "/").body == b"root"
        assert request(local, "POST", "/legacy/").body == b"legacy"
        assert request(local, "POST", "/LEGACY").body == b"legacy"
        refused = request(local, "GET", "/")
        assert (refused.status, refused.headers["Allow"]) == (405, "POST")
        assert request(local, "POST", "/legacy/x").status == 404


def test_a_catch_all_takes_the_rest_of_the_path_and_loses_to_every_other_route() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    def named(name: str) -> func.HttpResponse:
        return func.HttpResponse(name)

    def routed(name: str, req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps([name, dict(req.route_params)]))

    @app.route(route="{*path}", methods=["POST"])
    def upload_root(req: func.HttpRequest) -> func.HttpResponse:
        return routed("root", req)

    @app.route(route="legacy", methods=["POST"])
    def upload_legacy(req: func.HttpRequest) -> func.HttpResponse:
        return named("legacy")

    @app.route(route="items/{name}", methods=["GET"])
    def item(req: func.HttpRequest) -> func.HttpResponse:
        return routed("item", req)

    @app.route(route="tree/{*rest}", methods=["GET"])
    def tree(req: func.HttpRequest) -> func.HttpResponse:
        return routed("tree", req)

    local = LocalHost(app, port=0, load_settings=False, host_json=REPO_ROOT / "host.json")
    assert local.problems == ()
    with local:
        assert request(local, "POST", "/").json() == ["root", {"path": ""}]
        assert request(local, "POST", "/a/b%2Fc/d/").json() == ["root", {"path": "a/b/c/d"}]
        assert request(local, "POST", "/legacy/").body == b"legacy"  # a literal wins
        assert request(local, "GET", "/items/x").json() == ["item", {"name": "x"}]
        assert request(local, "POST", "/items/x").json() == ["root", {"path": "items/x"}]
        assert request(local, "GET", "/tree").json() == ["tree", {"rest": ""}]
        assert request(local, "GET", "/tree/a/b").json() == ["tree", {"rest": "a/b"}]
        assert request(local, "GET", "/tree/a//b").status == 404  # an empty segment is no value
        refused = request(local, "GET", "/legacy")
        assert (refused.status, refused.headers["Allow"]) == (405, "POST")
        # Only the POST catch-all matches: no resource is there, so 404, not 405.
        assert request(local, "GET", "/nowhere").status == 404
        assert request(local, "GET", "/").status == 404


def test_two_catch_alls_for_one_method_are_a_duplicate_route() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="{*one}", methods=["POST"])
    def first(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("first")

    @app.route(route="{*other}", methods=["POST", "PUT"])
    def second(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("second")

    local = LocalHost(app, port=0, load_settings=False, host_json=REPO_ROOT / "host.json")
    assert {p.info.name: p.reason for p in local.problems} == {
        "second": "route '{*other}' is already served by 'first'"
    }


def test_the_body_limit_is_the_functions_hosts_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", "10")
    small = LocalHost(functions=sample_app.functions(), port=0, load_settings=False)
    with small:
        assert request(small, "POST", "/echo/limit", b"0123456789").status == 200
        refused = request(small, "POST", "/echo/limit", b"0123456789A")
        assert refused.status == 413
        assert refused.json()["error"]["message"] == (
            "the request body is over this host's limit of 10 bytes "
            "(FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)"
        )
    for bad in ("0", "-1", "ten", "1e6"):
        monkeypatch.setenv("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", bad)
        with pytest.raises(HostConfigError, match="FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"):
            LocalHost(functions=sample_app.functions(), port=0, load_settings=False)


def test_extra_endpoints_answer_before_the_functions() -> None:
    class Ping:
        def handle(self, request: HostRequest) -> HostResponse | None:
            if request.path != "/admin/ping":
                return None
            return HostResponse(200, [("Content-Type", "text/plain")], b"pong", function="admin")

    local = LocalHost(functions=(), port=0, load_settings=False)
    local.add_endpoint(Ping())
    with local:
        assert request(local, "GET", "/admin/ping").body == b"pong"
        assert request(local, "GET", "/admin/other").status == 404


def test_admin_routes_and_duplicate_routes_are_refused_as_azure_does() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="admin/thing")
    def admin_thing(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("x")

    @app.route(route="Items/{id}", methods=["GET"])
    def first(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("first")

    @app.route(route="items/{other}", methods=["GET", "POST"])
    def second(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("second")

    @app.route(route="items/{id}", methods=["DELETE"])
    def third(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("third")

    local = LocalHost(app, port=0, load_settings=False)
    problems = {p.info.name: p.reason for p in local.problems}
    assert set(problems) == {"admin_thing", "second"}
    assert "built-in /admin" in problems["admin_thing"]
    assert "already served by 'first'" in problems["second"]
    with local:
        assert request(local, "GET", "/items/1").body == b"first"
        assert request(local, "DELETE", "/items/1").body == b"third"
        assert request(local, "POST", "/items/1").status == 405
        assert request(local, "GET", "/admin/thing").status == 404


def test_stop_ends_idle_connections_and_lets_running_requests_finish() -> None:
    local = LocalHost(functions=sample_app.functions(), port=0, load_settings=False)
    port = local.start().port
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        idle.request("GET", "/greeting")  # keep-alive: the connection stays open afterwards
        assert idle.getresponse().read() == b"hello, wheelvault\n"
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(request, local, "GET", "/slow")
            time.sleep(sample_app.SLOW_SECONDS / 4)
            started = time.monotonic()
            local.stop()
            stop_seconds = time.monotonic() - started
            assert running.result().status == 200
        assert stop_seconds < 2.0

        def reuse_idle_connection() -> None:
            idle.request("GET", "/greeting")
            idle.getresponse()

        with pytest.raises((OSError, http.client.HTTPException)):  # closed by the stop
            reuse_idle_connection()
    finally:
        idle.close()
        local.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def test_settings_fill_the_environment_without_overriding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = tmp_path / "local.settings.json"
    values = {"WV_HOST_TEST_FROM_FILE": "file", "WV_HOST_TEST_OVERRIDDEN": "file"}
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    monkeypatch.setenv("WV_HOST_TEST_FROM_FILE", "placeholder")
    monkeypatch.delenv("WV_HOST_TEST_FROM_FILE")  # unset now, and again after the test
    monkeypatch.setenv("WV_HOST_TEST_OVERRIDDEN", "environment")
    LocalHost(functions=(), port=0, settings=settings)
    assert os.environ["WV_HOST_TEST_FROM_FILE"] == "file"
    assert os.environ["WV_HOST_TEST_OVERRIDDEN"] == "environment"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"Values": {"A": 1}}', '"Values".A must be a string, not a number'),
        ('{"Values": {"A": {"nested": "x"}}}', '"Values".A must be a string, not an object'),
        ('{"Values": ["A"]}', '"Values" must be an object of strings'),
        ("[1]", "must hold a JSON object"),
        ("{not json", "is not valid JSON (line 1"),
    ],
)
def test_a_malformed_settings_file_is_a_clear_error(
    tmp_path: Path, content: str, message: str
) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(content)
    with pytest.raises(SettingsFileError, match=re.escape(message)):
        LocalHost(functions=(), settings=settings)


def test_a_missing_settings_file_given_explicitly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsFileError, match="does not exist"):
        LocalHost(functions=(), settings=tmp_path / "absent.json")


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        local = LocalHost(functions=(), port=port, load_settings=False)
        with pytest.raises(HostStartError, match=f"port {port} on 127.0.0.1 is already in use"):
            local.start()
        local.stop()  # harmless when it never started


def test_the_real_function_app_is_listed_without_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.functions import registered  # shares the one get_functions() call

    # The settings the bindings name (as Azure, the host refuses functions without them).
    monkeypatch.setenv("WHEELVAULT_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("WHEELVAULT_ROTATION_SCHEDULE", "0 0 * * * *")
    functions = registered()
    local = LocalHost(functions=functions.values(), port=0, load_settings=False)
    assert local.problems == ()
    assert {f.name for f in local.functions} == set(functions)
    kinds = {f.name: f.trigger_type for f in local.functions}
    assert kinds["publish_upload"] == "blobTrigger"
    assert kinds["rotate_tokens"] == "timerTrigger"
    with local:
        listing = local.describe()
        assert len(listing) == len(functions)
        assert (
            "  publish_upload: blobTrigger uploads/{name} (not watched: blob triggers are off; "
            "POST /admin/functions/publish_upload runs it)"
        ) in listing
        for function in local.http_functions:  # routePrefix "" in host.json: at the root
            assert f"{local.url}/{function.template.text}" in "\n".join(listing)
            assert not function.template.text.startswith("api/")


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "devhost.standins.host", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class _Lines:
    """stdout lines of a process, read by a thread so a test can wait with a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put("")  # end of output

    def next(self, timeout: float) -> str:
        return self._lines.get(timeout=timeout)

    def rest(self) -> str:
        self._thread.join(timeout=TIMEOUT)
        return "".join(iter(self._lines.get_nowait, ""))


def test_cli_prints_ready_line_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {"WV_HOST_CLI_TEST": "1"}}))
    with _cli("--port", "0", "--settings", str(settings)) as process:
        lines = _Lines(process)
        try:
            ready = lines.next(30)
            match = re.fullmatch(
                rf"{re.escape(READY_PREFIX)} url=http://127\.0\.0\.1:(\d+)\n", ready
            )
            assert match, ready
            connection = http.client.HTTPConnection("127.0.0.1", int(match[1]), timeout=TIMEOUT)
            try:
                connection.request("GET", "/no-such-route?sig=SECRET")
                assert connection.getresponse().status == 404
            finally:
                connection.close()
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.stderr is not None
        stderr = process.stderr.read()
        listing = lines.rest()
    assert returncode == 0, stderr
    assert listing.startswith("functions:\n")
    # Its settings file names no storage: listed as in error, as Azure would, and not run.
    assert (
        "  publish_upload: error: app setting WHEELVAULT_STORAGE (the blob connection) is not set\n"
        in listing
    )
    assert "Traceback" not in stderr
    assert "GET /no-such-route 404" in stderr
    assert "SECRET" not in stderr


def test_cli_port_in_use_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {}}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with _cli("--port", str(port), "--settings", str(settings)) as process:
            stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stdout == ""
    assert "Traceback" not in stderr
    not_info = [line for line in stderr.splitlines() if " INFO " not in line]
    assert not_info == [
        f"wheelvault host: error: port {port} on 127.0.0.1 is already in use; "
        "pick another with --port"
    ]
