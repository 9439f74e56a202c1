"""`OidcClient`: the tenant's documents read over HTTPS from the Entra ID stand-in, and every
kind of failure from a small misbehaving server on loopback, each an `EntraUnavailable` whose
reason names the failure and the URL, bounded in time and size."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from shared.adapters.oidc import EntraUnavailable, OidcClient
from shared.core.entra import EntraConfig
from tests.fixtures.entra import EntraStandinProcess

pytestmark = pytest.mark.integration


class _Misbehaving(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path
        if path == "/slow":  # headers at once, then a body that trickles
            self._head(200, 1000)
            for _ in range(50):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/huge":
            self._head(200, 2 * 1024 * 1024)
            self.wfile.write(b"[" + b"1," * (1024 * 1024 - 1) + b"1]")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/doc")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/error":
            self._send(500, b'{"error": "boom"}')
        elif path == "/list":
            self._send(200, b"[1, 2]")
        elif path == "/text":
            self._send(200, b"<html>not json</html>")
        elif path in ("/gzip", "/gzip-bomb"):
            plain = b'{"issuer": "zipped"}' if path == "/gzip" else b" " * (64 * 1024 * 1024)
            body = gzip.compress(plain)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"issuer": ', b'"in parts"}'):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(200, b'{"issuer": "x"}')

    protocol_version = "HTTP/1.1"  # chunked answers need it

    def _head(self, status: int, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, body: bytes) -> None:
        self._head(status, len(body))
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Quiet(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (the deadline tests) is what they test


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _Quiet(("127.0.0.1", 0), _Misbehaving)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_reads_the_stand_ins_documents(entra_standin: EntraStandinProcess) -> None:
    config = EntraConfig(entra_standin.tenant_id, ("x",), entra_standin.url)
    client = OidcClient(str(entra_standin.ca_path))
    v2 = client.get_json(config.v2_metadata_url, timeout=10)
    assert v2["issuer"] == f"{entra_standin.url}/{entra_standin.tenant_id}/v2.0"
    keys = client.get_json(v2["jwks_uri"], timeout=10)["keys"]
    assert keys
    assert all(key["kty"] == "RSA" for key in keys)
    v1 = client.get_json(config.v1_metadata_url, timeout=10)
    assert v1["issuer"] == f"{entra_standin.url}/{entra_standin.tenant_id}/"


def test_an_untrusted_certificate_is_unavailable(entra_standin: EntraStandinProcess) -> None:
    url = EntraConfig(entra_standin.tenant_id, ("x",), entra_standin.url).v2_metadata_url
    with pytest.raises(EntraUnavailable) as caught:
        OidcClient(None).get_json(url, timeout=10)  # the public CAs only
    assert caught.value.reason == f"TLS verification failed for {url}"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect", "HTTP 302 from {url}"),  # not followed: the URL is the whole story
        ("/error", "HTTP 500 from {url}"),
        ("/list", "not a JSON object from {url}"),
        ("/text", "not JSON from {url}"),
        ("/huge", "more than 1048576 bytes from {url}"),
        ("/gzip-bomb", "more than 1048576 bytes from {url}"),  # 64 MiB of spaces, 64 KB zipped
    ],
)
def test_failures_are_unavailable_naming_the_kind_and_url(
    server: str, path: str, reason: str
) -> None:
    url = server + path
    with pytest.raises(EntraUnavailable) as caught:
        OidcClient(None).get_json(url, timeout=10)
    assert caught.value.reason == reason.format(url=url)


def test_a_trickling_answer_is_cut_off_at_the_deadline(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(EntraUnavailable) as caught:
        OidcClient(None).get_json(server + "/slow", timeout=0.5)
    assert time.monotonic() - started < 2.0  # the server would take 5 s
    assert caught.value.reason == f"timed out reading {server}/slow"


def test_nothing_listening_is_unavailable() -> None:
    with pytest.raises(EntraUnavailable) as caught:
        OidcClient(None, connect_seconds=1).get_json("https://127.0.0.1:9/x", timeout=2)
    assert caught.value.reason == "ConnectionError reading https://127.0.0.1:9/x"


@pytest.mark.parametrize(
    ("path", "issuer"), [("/doc", "x"), ("/gzip", "zipped"), ("/chunked", "in parts")]
)
def test_a_good_answer_is_the_json_object(server: str, path: str, issuer: str) -> None:
    assert OidcClient(None).get_json(server + path, timeout=5) == {"issuer": issuer}
