"""Front-door benchmark: what a read through the index costs, and what a resolve downloads.

Everything is brought up in this process or as a child of it: Azurite (blob service, temporary
data dir), the Key Vault stand-in (`devhost.standins.keyvault.VaultStandin`, in-process,
temporary data dir), the settings in `os.environ` (every `WHEELVAULT_*` variable is put back
afterwards) and the local functions host (`devhost.standins.host.localhost.LocalHost`) on a free
loopback port. A read token is created through the real token service and a project is
published through the real `publish_upload` function. Measured:

- HTTP through the local host, over keep-alive connections (one `http.client.HTTPConnection`
  per worker thread), with HTTP Basic auth carrying the read token and a warm token cache
  (`WHEELVAULT_TOKEN_CACHE_SECONDS=3600`; every connection makes one untimed request first):
  `GET /simple/{project}/` with pip's Accept header (200, the stored JSON page, compared byte
  for byte) and `GET /files/{project}/{filename}` (302 to a SAS URL on Azurite, not followed).
  A fixed number of requests with a few concurrent workers and with one: requests per second
  (requests / wall time of the whole run) and p50/p99 latency per request as the client sees
  it (request sent to response body read). Every status, and the body or Location, is checked
  after its sample's clock stops. The load runs as threads of the same process as the host, so
  on a small machine client and server share one GIL: the figures are a floor, not a ceiling.
  Bare Azurite reads (the page's GET, the file's HEAD) are timed too, to split the latency.
- The handlers' own cost in-process, without storage: the registered functions
  (`simple_project`, `files`) called with real `func.HttpRequest` objects, timed one call at a
  time with `perf_counter_ns`, against a `Services` whose `BlobStore` answers `get`/`info` from
  blobs fetched from Azurite beforehand (any other read fails the run). Counted: token
  verification (warm cache), content negotiation, name checks and routing inside the function,
  response building, and for files the SAS signing (account key, as locally; in Azure a
  cached user-delegation key, the same HMAC). Not counted: network round trips to storage,
  the host's HTTP parsing and socket I/O (the HTTP figures above include those).
- Bytes to resolve: N wheels (default 20, sizes spread evenly from 1 MB to 5 MB, incompressible
  payload), one root requiring all the others, published into wheelvault (which serves PEP 658
  `.metadata` files) and copied into a directory served by pypiserver (from PyPI, pinned in
  requirements-dev.txt; `--server wsgiref`, no auth, no fallback to PyPI) on loopback. Then
  `pip install --dry-run --report … --no-cache-dir root` and `uv pip compile --no-cache`
  against each index, each run with a fresh HOME and caches and the isolation of
  tests/support/clients.py. Every resolution must list all N packages (pip's report, uv's
  output), so a broken index cannot produce a small number.

How the bytes are counted: a small forward proxy on loopback (`CountingProxy`, below) that both
clients use through `HTTP_PROXY`/`http_proxy` (`NO_PROXY`/`no_proxy` empty, and nothing else
from the outer environment reaches the clients). All the traffic is plain HTTP, so clients
send absolute-form requests (`GET http://127.0.0.1:PORT/path HTTP/1.1`); the proxy relays
each one to its target in origin form (dropping only `Proxy-*` headers), and relays the
answer back byte for byte, counting the response exactly as it came off the wire (status line,
headers, body with any chunk framing) per target host:port and per kind (page, metadata,
wheel, ranged read (206), redirect, head, error, and aborted: an answer cut off midway, counted
as far as it got). Downloaded bytes = all response bytes of a run,
whatever host they came from (wheelvault's redirects and Azurite's SAS downloads both count).
CONNECT (HTTPS) is refused and fails the run: nothing may bypass the count. pip (requests)
and uv (reqwest) both send loopback traffic through the proxy when NO_PROXY is empty; neither
needed more settings here (checked: each run must show every project page passing through
the proxy, and no target but the index's own hosts).

What the byte figures come down to: against wheelvault both clients read each project page and
each `.metadata` file (a 302 from the host, then the file from Azurite), never a wheel. Against
pypiserver (no `.metadata` files) pip downloads every wheel whole, while uv asks for the wheel
with HEAD and, as pypiserver (bottle) answers `Accept-Ranges: bytes`, reads only the tail of
the zip (central directory and METADATA) with a ranged GET.

The machine's 1-minute load average before and after the run is recorded: on a shared machine
other work shows up in every timing (the byte counts do not depend on it).

    .venv/bin/python -m bench.front_door [--requests 2000] [--workers 4]
        [--handler-samples 20000] [--wheels 20] [--wheel-kb-min 1024] [--wheel-kb-max 5120]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import logging
import os
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

import azure.functions as func
from packaging.utils import NormalizedName, canonicalize_name

from bench.common import basic_header, machine, positive, summary
from devhost.listening import free_port
from devhost.standins.azurite import API_VERSION, ROOT, Azurite, start_azurite
from devhost.standins.host.localhost import LocalHost
from devhost.standins.keyvault import VaultStandin
from devhost.wheels import BuiltWheel, build_wheel
from shared.adapters.blobstore import BlobInfo, BlobStore, StoredBlob
from shared.core import layout
from shared.core.tokens import Policy, Scope
from shared.services.wiring import Services, get_services, install_services, reset_services
from shared.settings import get_settings
from tests.support import clients
from tests.support.functions import blob_event, handler, registered

RESULTS = Path(__file__).parent / "results" / "front_door.json"
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
"""What pip 26 sends for an index page (pip/_internal/index/collector.py)."""
TOKEN_CACHE_SECONDS = 3600
PAGE_PROJECT = "frontdoor-bench"
PAGE_VERSIONS = 10
READER = "bench-front-reader"
ROOT_PROJECT = "resolve-root"
KB = 1024
CLIENT_TIMEOUT = 600.0


# -- figures ---------------------------------------------------------------------------------


# -- the stack -------------------------------------------------------------------------------


@contextlib.contextmanager
def wheelvault_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Only `values` among the WHEELVAULT_* variables while inside; the old ones afterwards."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("WHEELVAULT_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    reset_services()
    try:
        yield
    finally:
        reset_services()
        for key in [k for k in os.environ if k.startswith("WHEELVAULT_")]:
            del os.environ[key]
        os.environ.update(saved)


@dataclass
class Stack:
    azurite: Azurite
    host: LocalHost
    services: Services
    reader_token: str

    @property
    def authority(self) -> str:
        return self.host.url.removeprefix("http://")

    @property
    def azurite_authority(self) -> str:
        return f"{self.azurite.host}:{self.azurite.port}"

    def publish(self, wheel: BuiltWheel) -> None:
        """Through the real blob-trigger function, then checked (a rejection is silent)."""
        store = self.services.store
        etag = store.put(layout.UPLOADS, wheel.filename, wheel.data, content_type="x/y")
        handler("publish_upload")(blob_event(layout.UPLOADS, wheel.filename, wheel.data, etag))
        project = canonicalize_name(wheel.filename.split("-", 1)[0])
        for path in (
            layout.file_path(project, wheel.filename),
            layout.metadata_path(project, wheel.filename),
        ):
            if store.info(layout.INDEX, path) is None:
                raise RuntimeError(f"{wheel.filename} was not published ({path} is missing)")


@contextlib.contextmanager
def running_stack(tmp: Path, extra: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """Azurite, the vault stand-in and the local host; `extra` settings on top of the usual."""
    azurite = start_azurite(tmp / "azurite")
    try:
        with VaultStandin(tmp / "keyvault", host="127.0.0.1", port=0) as vault:
            settings = {
                "WHEELVAULT_STORAGE": azurite.connection_string,
                "WHEELVAULT_STORAGE_API_VERSION": API_VERSION,
                "WHEELVAULT_VAULT_URL": vault.url,
                "WHEELVAULT_VAULT_CREDENTIAL": "local",
                "WHEELVAULT_VAULT_CA_BUNDLE": str(vault.ca_path),
                "WHEELVAULT_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
                # Not run here (the host leaves timers off for code), but the host checks it.
                "WHEELVAULT_ROTATION_SCHEDULE": "0 0 * * * *",
                **(extra or {}),
            }
            with wheelvault_environment(settings):
                host = LocalHost(functions=registered().values(), port=0, load_settings=False)
                host.start()
                try:
                    os.environ["WHEELVAULT_PUBLIC_URL"] = host.url  # known once listening
                    reset_services()
                    services = get_services()
                    try:
                        services.store.ensure_containers(layout.CONTAINERS)
                        token = services.tokens.create(READER, Policy(Scope.READ))
                        yield Stack(azurite, host, services, token)
                    finally:
                        services.secrets.client.close()
                        services.store.service.close()
                finally:
                    host.stop()
    finally:
        azurite.stop()


# -- HTTP through the host -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One route to load: what to send and how to tell a right answer."""

    route: str
    path: str
    headers: Mapping[str, str]
    check: Callable[[int, http.client.HTTPResponse, bytes], str | None]  # None when right


def page_target(stack: Stack, project: str) -> Target:
    stored = stack.services.store.get(layout.INDEX, layout.project_json(canonicalize_name(project)))
    if stored is None:
        raise RuntimeError(f"no JSON page for {project}")
    expected = stored.data

    def check(status: int, response: http.client.HTTPResponse, body: bytes) -> str | None:
        if status != 200:
            return f"status {status}"
        content_type = response.getheader("Content-Type", "")
        if not content_type.startswith("application/vnd.pypi.simple.v1+json"):
            return f"content type {content_type!r}"
        return None if body == expected else f"a {len(body)}-byte body that is not the page"

    return Target(
        "simple_project",
        f"/simple/{project}/",
        {
            "Authorization": basic_header("reader", stack.reader_token),
            "Accept": PIP_ACCEPT,
        },
        check,
    )


def file_target(stack: Stack, project: NormalizedName, filename: str) -> Target:
    blob_url = f"{stack.azurite.blob_endpoint}/{layout.INDEX}/{layout.file_path(project, filename)}"

    def check(status: int, response: http.client.HTTPResponse, body: bytes) -> str | None:
        if status != 302:
            return f"status {status}"
        location = response.getheader("Location", "")
        if not location.startswith(blob_url + "?") or "sig=" not in location:
            return "a Location that is not a SAS URL for the file"
        return None

    return Target(
        "files",
        f"/files/{project}/{filename}",
        {"Authorization": basic_header("reader", stack.reader_token)},
        check,
    )


def load(stack: Stack, target: Target, requests: int, workers: int) -> dict[str, Any]:
    """`requests` GETs of `target` spread over `workers` keep-alive connections."""
    shares = [requests // workers + (1 if i < requests % workers else 0) for i in range(workers)]
    timings: list[list[int]] = [[] for _ in range(workers)]
    problems: list[str] = []
    ready = threading.Barrier(workers + 1)
    host, port, headers = stack.host.host, stack.host.port, dict(target.headers)

    def exchange(connection: http.client.HTTPConnection) -> tuple[int, str | None]:
        """One timed request; its answer is checked once the clock has stopped."""
        started = time.perf_counter_ns()
        connection.request("GET", target.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter_ns() - started
        return elapsed, target.check(response.status, response, body)

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            _, problem = exchange(connection)  # not counted: connects, warms the cache
            if problem:
                problems.append(f"warm-up: {problem}")
            ready.wait()
            mine = timings[index]
            for _ in range(shares[index]):
                elapsed, problem = exchange(connection)
                mine.append(elapsed)
                if problem:
                    problems.append(problem)
        except Exception as error:  # the run must fail, not hang the barrier
            problems.append(f"{type(error).__name__}: {error}")
            ready.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    done = [t for worker_timings in timings for t in worker_timings]
    if problems or len(done) != requests:
        raise RuntimeError(
            f"{target.route}: {len(problems)} wrong answers of {len(done)} (first: {problems[:3]})"
        )
    return {
        "route": target.route,
        "path": target.path,
        "workers": workers,
        "requests": requests,
        "seconds": round(wall, 3),
        "requests_per_second": round(requests / wall, 1),
        **summary(done, "ms"),
    }


def storage_baseline(stack: Stack, page: str, file: str, runs: int = 200) -> dict[str, float]:
    """Bare Azurite reads (median ms): the page GET and the file HEAD the two routes make."""
    store = stack.services.store

    def median_ms(action: Callable[[], object]) -> float:
        timings = []
        for _ in range(runs):
            started = time.perf_counter_ns()
            if action() is None:
                raise RuntimeError("a baseline read found nothing")
            timings.append(time.perf_counter_ns() - started)
        return round(statistics.median(timings) / 1_000_000, 3)

    return {
        "get_page_ms": median_ms(lambda: store.get(layout.INDEX, page)),
        "info_file_ms": median_ms(lambda: store.info(layout.INDEX, file)),
    }


# -- handlers in-process, storage taken out ---------------------------------------------------


class PrefetchedStore(BlobStore):
    """The real store's client (the SAS signer signs with it), but `get` and `info` answer
    from blobs read beforehand, and raise for any other blob: no read reaches storage unseen.
    (The two routes measured read storage through `get` and `info` only.)"""

    def __init__(self, real: BlobStore, paths: list[tuple[str, str]]) -> None:
        super().__init__(real.service)
        self._blobs: dict[tuple[str, str], StoredBlob] = {}
        self._infos: dict[tuple[str, str], BlobInfo] = {}
        for container, name in paths:
            blob, info = real.get(container, name), real.info(container, name)
            if blob is None or info is None:
                raise RuntimeError(f"{container}/{name} is not in storage")
            self._blobs[container, name], self._infos[container, name] = blob, info

    def get(self, container: str, name: str) -> StoredBlob | None:
        try:
            return self._blobs[container, name]
        except KeyError:
            raise RuntimeError(f"unexpected storage read: {container}/{name}") from None

    def info(self, container: str, name: str) -> BlobInfo | None:
        try:
            return self._infos[container, name]
        except KeyError:
            raise RuntimeError(f"unexpected storage read: {container}/{name}") from None


def function_request(
    stack: Stack, path: str, route_params: dict[str, str], headers: Mapping[str, str]
) -> func.HttpRequest:
    """The request the host would build (devhost/standins/host/invoke.py: lower-case headers)."""
    return func.HttpRequest(
        method="GET",
        url=f"{stack.host.url}{path}",
        headers={k.lower(): v for k, v in headers.items()},
        params={},
        route_params=route_params,
        body=b"",
    )


def time_handler(
    name: str, request: func.HttpRequest, check: Callable[[func.HttpResponse], str | None], n: int
) -> dict[str, Any]:
    call = handler(name)
    for _ in range(min(100, n)):  # untimed warm-up: verifier cache, SDK lazies, code paths
        call(request)
    clock = time.perf_counter_ns
    timings = [0] * n
    for i in range(n):
        started = clock()
        response = call(request)
        timings[i] = clock() - started
        problem = check(response)
        if problem:
            raise RuntimeError(f"{name} in-process: call {i}: {problem}")
    return {"function": name, "samples": n, **summary(timings, "us")}


def measure_handlers(
    stack: Stack, project: NormalizedName, filename: str, samples: int
) -> dict[str, Any]:
    page_path = layout.project_json(project)
    file_path = layout.file_path(project, filename)
    store = PrefetchedStore(
        stack.services.store, [(layout.INDEX, page_path), (layout.INDEX, file_path)]
    )
    expected_page = store.get(layout.INDEX, page_path)
    assert expected_page is not None
    bench_services = Services(get_settings(), store)
    auth = basic_header("reader", stack.reader_token)
    page_request = function_request(
        stack,
        f"/simple/{project}/",
        {"project": project},
        {"Authorization": auth, "Accept": PIP_ACCEPT},
    )
    file_request = function_request(
        stack,
        f"/files/{project}/{filename}",
        {"project": project, "filename": filename},
        {"Authorization": auth},
    )
    blob_url = f"{stack.azurite.blob_endpoint}/{layout.INDEX}/{file_path}?"

    def page_ok(response: func.HttpResponse) -> str | None:
        if response.status_code != 200:
            return f"status {response.status_code}"
        return None if response.get_body() == expected_page.data else "not the stored page"

    def file_ok(response: func.HttpResponse) -> str | None:
        if response.status_code != 302:
            return f"status {response.status_code}"
        location = response.headers.get("Location", "")
        return None if location.startswith(blob_url) and "sig=" in location else "bad Location"

    install_services(bench_services)
    try:
        rows = [
            time_handler("simple_project", page_request, page_ok, samples),
            time_handler("files", file_request, file_ok, samples),
        ]
    finally:
        install_services(stack.services)
        bench_services.secrets.client.close()
    return {
        "counted": [
            "token verification (warm cache)",
            "content negotiation",
            "name checks and routing inside the function",
            "response building",
            "SAS signing (files)",
        ],
        "not_counted": ["storage round trips", "the host's HTTP parsing and socket I/O"],
        "rows": rows,
    }


# -- bytes to resolve ------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    request_bytes: int = 0
    response_bytes: int = 0

    def add(self, sent: int, received: int) -> None:
        self.requests += 1
        self.request_bytes += sent
        self.response_bytes += received


@dataclass
class Counts:
    by_target: dict[str, Tally] = field(default_factory=dict)
    by_kind: dict[str, Tally] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)


class ProxyError(Exception):
    """A message the proxy cannot relay; the client connection is closed."""


class Reader(Protocol):
    """The reading half of a buffered socket file."""

    def read(self, size: int, /) -> bytes: ...

    def readline(self, size: int, /) -> bytes: ...


MAX_LINE = 65536
MAX_HEADER_LINES = 200
RELAY_BLOCK = 256 * KB


def read_head(stream: Reader) -> list[bytes] | None:
    """The start line and header lines, blank line included; None at a clean end of stream."""
    first = stream.readline(MAX_LINE)
    if not first:
        return None
    lines = [first]
    while True:
        line = stream.readline(MAX_LINE)
        if not line:
            raise ProxyError("the stream ended inside a header")
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return lines
        if len(lines) > MAX_HEADER_LINES:
            raise ProxyError("too many header lines")


def header_map(lines: list[bytes]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines[1:-1]:
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        found[key] = f"{found[key]}, {value.strip()}" if key in found else value.strip()
    return found


def kind_of(method: str, path: str, status: int) -> str:
    if 300 <= status < 400 and status != 304:
        return "redirect"
    if status == 206:
        return "ranged read"
    if method == "HEAD":
        return "head"
    if status >= 400:
        return "error"
    path = path.partition("?")[0]
    if path.endswith(".metadata"):
        return "metadata"
    if path.endswith(".whl"):
        return "wheel"
    return "page"


class _Upstream:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=CLIENT_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")

    def exchange(self, request: bytes) -> list[bytes] | None:
        """Send `request`; the response head, or None if the connection was already gone."""
        try:
            self.sock.sendall(request)
            return read_head(self.rfile)
        except OSError:
            return None

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: CountingProxy
    timeout = CLIENT_TIMEOUT

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._current: tuple[str, int] | None = None  # (target, bytes sent) while relaying
        self._received = 0
        self._upstream: _Upstream | None = None  # the connection being relayed from

    def handle(self) -> None:
        upstreams: dict[str, _Upstream] = {}
        try:
            while self._relay_one(upstreams):
                pass
        except (OSError, ProxyError, ValueError) as error:
            problem = f"{type(error).__name__}: {error}"
            if self._current is None:  # before anything was relayed: a bad request
                self.server.note_error(problem)
            else:  # cut off mid-answer (by either side): count what did pass
                target, sent = self._current
                self.server.note(target, "aborted", sent, self._received)
                self.server.note_aborted(problem)
        finally:
            for upstream in [*upstreams.values(), *([self._upstream] if self._upstream else [])]:
                upstream.close()

    def _relay_one(self, upstreams: dict[str, _Upstream]) -> bool:
        """Relay one exchange; whether the client connection stays open."""
        head = read_head(self.rfile)
        if head is None:
            return False
        method, target, version = head[0].decode("latin-1").split()
        headers = header_map(head)
        if method == "CONNECT" or not target.startswith("http://"):
            self.server.note_refused(f"{method} {target}")
            self.wfile.write(b"HTTP/1.1 405 Not Allowed\r\nContent-Length: 0\r\n")
            self.wfile.write(b"Connection: close\r\n\r\n")
            return False
        if "transfer-encoding" in headers:
            raise ProxyError("chunked request bodies are not relayed")
        body = self.rfile.read(int(headers.get("content-length", "0")))
        parts = urlsplit(target)
        authority = parts.netloc.rpartition("@")[2]
        origin = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [line for line in head[1:] if not line.lower().startswith(b"proxy-")]
        request = f"{method} {origin} {version}\r\n".encode("latin-1") + b"".join(kept) + body

        sent = sum(len(line) for line in head) + len(body)
        upstream, answer = self._exchange(upstreams.pop(authority, None), parts, request)
        self._upstream, self._current, self._received = upstream, (authority, sent), 0
        status_version, status_text = answer[0].decode("latin-1").split(" ", 1)
        status = int(status_text.split(" ", 1)[0])
        response_headers = header_map(answer)
        self._relay(b"".join(answer))
        reusable = True
        if method == "HEAD" or status < 200 or status in (204, 304):
            pass
        elif "chunked" in response_headers.get("transfer-encoding", "").lower():
            self._relay_chunked(upstream.rfile)
        elif "content-length" in response_headers:
            self._relay_exactly(upstream.rfile, int(response_headers["content-length"]))
        else:
            self._relay_to_end(upstream.rfile)
            reusable = False
        tokens = {t.strip().lower() for t in response_headers.get("connection", "").split(",")}
        reusable = (
            reusable
            and "close" not in tokens
            and (status_version == "HTTP/1.1" or "keep-alive" in tokens)
        )
        self.server.note(authority, kind_of(method, parts.path, status), sent, self._received)
        self._upstream = self._current = None
        if reusable:
            upstreams[authority] = upstream
        else:
            upstream.close()
        client_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        # An answer whose connection ends upstream is relayed as such: the client sees the
        # same framing (HTTP/1.0, Connection: close, or end of stream) and closes too.
        return reusable and version == "HTTP/1.1" and "close" not in client_tokens

    @staticmethod
    def _exchange(
        kept: _Upstream | None, parts: SplitResult, request: bytes
    ) -> tuple[_Upstream, list[bytes]]:
        """Send on the kept connection, or on a new one if there is none or it had closed."""
        if kept is not None:
            answer = kept.exchange(request)
            if answer is not None:
                return kept, answer
            kept.close()
        upstream = _Upstream(parts.hostname or "127.0.0.1", parts.port or 80)
        answer = upstream.exchange(request)
        if answer is None:
            upstream.close()
            raise ProxyError(f"{parts.netloc} closed the connection without answering")
        return upstream, answer

    def _relay(self, data: bytes) -> None:
        """Count bytes as they came from upstream, then pass them on to the client."""
        self._received += len(data)
        self.wfile.write(data)

    def _relay_exactly(self, stream: Reader, length: int) -> None:
        left = length
        while left:
            block = stream.read(min(left, RELAY_BLOCK))
            if not block:
                raise ProxyError("the upstream body ended early")
            self._relay(block)
            left -= len(block)

    def _relay_chunked(self, stream: Reader) -> None:
        while True:
            line = stream.readline(MAX_LINE)
            if not line:
                raise ProxyError("the upstream chunked body ended early")
            self._relay(line)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, up to the blank line
                    trailer = stream.readline(MAX_LINE)
                    self._relay(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return
            self._relay_exactly(stream, size + 2)

    def _relay_to_end(self, stream: Reader) -> None:
        while block := stream.read(RELAY_BLOCK):
            self._relay(block)


class CountingProxy(socketserver.ThreadingTCPServer):
    """A plain-HTTP forward proxy on loopback counting what it relays (see the module doc)."""

    daemon_threads = False  # server_close() waits for every connection's thread
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self._lock = threading.Lock()
        self._counts = Counts()
        self._open: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> CountingProxy:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="counting-proxy"
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def note(self, authority: str, kind: str, sent: int, received: int) -> None:
        with self._lock:
            self._counts.by_target.setdefault(authority, Tally()).add(sent, received)
            self._counts.by_kind.setdefault(kind, Tally()).add(sent, received)

    def note_refused(self, what: str) -> None:
        with self._lock:
            self._counts.refused.append(what)

    def note_error(self, what: str) -> None:
        with self._lock:
            self._counts.errors.append(what)

    def note_aborted(self, what: str) -> None:
        with self._lock:
            self._counts.aborted.append(what)

    def take(self) -> Counts:
        """What was counted since the last call, and start again from zero."""
        with self._lock:
            counts, self._counts = self._counts, Counts()
        return counts


class PypiServer:
    """pypiserver serving `directory` on loopback, as a child process."""

    def __init__(self, directory: Path, log_path: Path, *, access_log: bool = False) -> None:
        """`access_log`: one line per request in the log (pypiserver's -v), to count them."""
        self.directory, self.log_path = directory, log_path
        self.access_log = access_log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.version = ""

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        return f"http://{self.authority}/simple/"

    def __enter__(self) -> PypiServer:
        try:
            self.version = importlib.metadata.version("pypiserver")
        except importlib.metadata.PackageNotFoundError:
            raise RuntimeError(
                "pypiserver is not installed: pip install -r requirements-dev.txt"
            ) from None
        args = [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--authenticate",
            ".",
            "--passwords",
            ".",
            "--disable-fallback",
            "--server",
            "wsgiref",
            *(["-v"] if self.access_log else []),
            str(self.directory),
        ]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pypiserver exited; see {self.log_path}")
            try:
                with opener.open(f"http://{self.authority}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"pypiserver did not answer; see {self.log_path}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wheel_sizes(count: int, min_kb: int, max_kb: int) -> list[int]:
    if count == 1:
        return [min_kb * KB]
    step = (max_kb - min_kb) / (count - 1)
    return [round((min_kb + step * i) * KB) for i in range(count)]


def resolve_set(count: int, min_kb: int, max_kb: int) -> list[BuiltWheel]:
    """`count` wheels: the root (requiring all others) and count-1 dependencies."""
    sizes = wheel_sizes(count, min_kb, max_kb)
    deps = [f"resolve-dep-{i:02d}" for i in range(1, count)]
    wheels = [
        build_wheel(name, "1.0", payload_bytes=size)
        for name, size in zip(deps, sizes[1:], strict=True)
    ]
    root = build_wheel(ROOT_PROJECT, "1.0", requires_dist=deps, payload_bytes=sizes[0])
    return [root, *wheels]


def resolved_by_pip(report: Path) -> set[str]:
    data = json.loads(report.read_text())
    return {str(canonicalize_name(item["metadata"]["name"])) for item in data["install"]}


def resolved_by_uv(output: str) -> set[str]:
    """`name==version` lines of `uv pip compile` output."""
    names = set()
    for line in output.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "==" in line:
            names.add(str(canonicalize_name(line.split("==", 1)[0])))
    return names


def run_client(
    client: str, index_url: str, proxy: CountingProxy, work: Path
) -> tuple[set[str], float, str]:
    """One resolve of the root from `index_url` through `proxy`: (names, seconds, output)."""
    home = work / "home"
    proxy_env = {
        "HTTP_PROXY": proxy.url,
        "http_proxy": proxy.url,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    if client == "pip":
        report = work / "report.json"
        args = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--no-cache-dir",
            "--report",
            str(report),
            "--index-url",
            index_url,
            ROOT_PROJECT,
        ]
    else:
        requirements = work / "requirements.in"
        requirements.write_text(f"{ROOT_PROJECT}\n")
        args = [
            clients.UV,
            "pip",
            "compile",
            "--no-config",
            "--no-cache",
            "--no-header",
            "--no-annotate",
            "--python",
            sys.executable,
            "--index-url",
            index_url,
            str(requirements),
        ]
    started = time.perf_counter()
    done = clients.run(args, home, timeout=CLIENT_TIMEOUT, extra_env=proxy_env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{client} failed against {index_url}:\n{done.output[-3000:]}")
    names = (
        resolved_by_pip(work / "report.json") if client == "pip" else resolved_by_uv(done.stdout)
    )
    return names, seconds, done.output


def measure_resolve(
    stack: Stack, tmp: Path, count: int, min_kb: int, max_kb: int
) -> dict[str, Any]:
    wheels = resolve_set(count, min_kb, max_kb)
    served = tmp / "pypiserver-packages"
    served.mkdir()
    for wheel in wheels:
        stack.publish(wheel)
        (served / wheel.filename).write_bytes(wheel.data)
    expected = {str(canonicalize_name(w.filename.split("-", 1)[0])) for w in wheels}
    wheelvault_url = f"http://reader:{stack.reader_token}@{stack.authority}/simple/"
    runs: dict[str, dict[str, Any]] = {}
    with (
        PypiServer(served, tmp / "pypiserver.log") as pypiserver,
        CountingProxy() as proxy,
    ):
        labels = {
            stack.authority: "wheelvault host",
            stack.azurite_authority: "azurite (SAS downloads)",
            pypiserver.authority: "pypiserver",
        }
        indexes = {"wheelvault": wheelvault_url, "pypiserver": pypiserver.index_url}
        for client in ("pip", "uv"):
            runs[client] = {}
            for index, url in indexes.items():
                work = tmp / f"resolve-{client}-{index}"
                work.mkdir()
                proxy.take()
                names, seconds, output = run_client(client, url, proxy, work)
                counts = proxy.take()
                runs[client][index] = tally_run(
                    client, index, names, expected, seconds, counts, labels, output, stack
                )
            wheelvault_bytes = runs[client]["wheelvault"]["bytes_downloaded"]
            runs[client]["ratio_pypiserver_to_wheelvault"] = round(
                runs[client]["pypiserver"]["bytes_downloaded"] / wheelvault_bytes, 2
            )
        pypiserver_version = pypiserver.version
    sizes = [len(w.data) for w in wheels]
    return {
        "wheels": count,
        "wheel_bytes": {"min": min(sizes), "max": max(sizes), "total": sum(sizes)},
        "tree": f"{ROOT_PROJECT} requires the other {count - 1}",
        "clients": {
            "pip": importlib.metadata.version("pip"),
            "uv": importlib.metadata.version("uv"),
            "pypiserver": pypiserver_version,
        },
        "commands": {
            "pip": "pip install --dry-run --ignore-installed --no-cache-dir --report FILE "
            f"--index-url URL {ROOT_PROJECT}",
            "uv": "uv pip compile --no-config --no-cache --python PY --index-url URL "
            "requirements.in",
        },
        "runs": runs,
    }


def tally_run(
    client: str,
    index: str,
    names: set[str],
    expected: set[str],
    seconds: float,
    counts: Counts,
    labels: Mapping[str, str],
    output: str,
    stack: Stack,
) -> dict[str, Any]:
    what = f"{client} against {index}"
    if names != expected:
        raise RuntimeError(
            f"{what} resolved {len(names)} of {len(expected)} packages: "
            f"missing {sorted(expected - names)[:5]}, extra {sorted(names - expected)[:5]}"
        )
    if counts.refused or counts.errors:
        raise RuntimeError(
            f"{what}: proxy refused {counts.refused[:3]}, errors {counts.errors[:3]}"
        )
    unknown = set(counts.by_target) - set(labels)
    if unknown:
        raise RuntimeError(f"{what} reached hosts it should not: {sorted(unknown)}")
    pages = counts.by_kind.get("page", Tally()).requests
    if pages < len(expected):  # a client that went around the proxy would show fewer
        raise RuntimeError(f"{what}: {pages} project pages through the proxy for {len(expected)}")
    if stack.reader_token in output:
        raise RuntimeError(f"{what} printed the read token")
    return {
        "resolved": len(names),
        "complete": True,
        "seconds": round(seconds, 2),
        "requests": sum(t.requests for t in counts.by_target.values()),
        "bytes_downloaded": sum(t.response_bytes for t in counts.by_target.values()),
        "bytes_sent": sum(t.request_bytes for t in counts.by_target.values()),
        "by_target": {labels[k]: asdict(v) for k, v in sorted(counts.by_target.items())},
        "by_kind": {k: asdict(v) for k, v in sorted(counts.by_kind.items())},
        "aborted_exchanges": len(counts.aborted),
    }


# -- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    storage = f"Azurite {azurite_version()} on loopback (HTTP)"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wheelvault-bench-frontdoor-") as tmp_name:
        tmp = Path(tmp_name)
        with running_stack(tmp) as stack:
            project = canonicalize_name(PAGE_PROJECT)
            wheels = [build_wheel(PAGE_PROJECT, f"1.{i}") for i in range(PAGE_VERSIONS)]
            for wheel in wheels:
                stack.publish(wheel)
            filename = wheels[-1].filename
            targets = [page_target(stack, project), file_target(stack, project, filename)]
            http_rows = []
            for target in targets:
                for workers in sorted({args.workers, 1}, reverse=True):
                    http_rows.append(load(stack, target, args.requests, workers))
            baseline = storage_baseline(
                stack, layout.project_json(project), layout.file_path(project, filename)
            )
            handlers = measure_handlers(stack, project, filename, args.handler_samples)
            page = stack.services.store.get(layout.INDEX, layout.project_json(project))
            assert page is not None
            resolve = measure_resolve(stack, tmp, args.wheels, args.wheel_kb_min, args.wheel_kb_max)
    return {
        "benchmark": "front_door",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(load_before),
        "storage": storage,
        "vault": "Key Vault stand-in (devhost.standins.keyvault) in-process on loopback (HTTPS)",
        "host": (
            "devhost.standins.host.localhost.LocalHost in-process on loopback; "
            "load threads in the same process"
        ),
        "setup": {
            "project": str(project),
            "files_in_project": PAGE_VERSIONS,
            "page_bytes": len(page.data),
            "accept": PIP_ACCEPT,
            "token_cache_seconds": TOKEN_CACHE_SECONDS,
        },
        "http": http_rows,
        "storage_baseline": baseline,
        "handler_in_process": handlers,
        "resolve": resolve,
    }


def azurite_version() -> str:
    package = ROOT / "node_modules" / "azurite" / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "(version unreadable)"


def print_table(result: dict[str, Any]) -> None:
    setup = result["setup"]
    print(
        f"HTTP through the local host ({setup['project']}: {setup['files_in_project']} files, "
        f"JSON page {setup['page_bytes']} bytes; token cache warm)"
    )
    print(f"  {'request':<34}{'workers':>8}{'n':>7}{'req/s':>9}{'p50':>12}{'p99':>12}")
    labels = {"simple_project": "GET /simple/{project}/ (200)", "files": "GET /files/… (302)"}
    for row in result["http"]:
        label = labels.get(row["route"], row["route"])
        print(
            f"  {label:<34}{row['workers']:>8}{row['requests']:>7}"
            f"{row['requests_per_second']:>9.1f}{row['p50_ms']:>9.3f} ms{row['p99_ms']:>9.3f} ms"
        )
    base = result["storage_baseline"]
    print(
        f"  Azurite alone (median): page GET {base['get_page_ms']:.3f} ms, "
        f"file HEAD {base['info_file_ms']:.3f} ms"
    )
    handlers = result["handler_in_process"]
    print("handler in-process, storage taken out (token verify, negotiation, reply, SAS)")
    print(f"  {'function':<34}{'n':>7}{'p50':>12}{'p99':>12}{'mean':>12}")
    for row in handlers["rows"]:
        print(
            f"  {row['function']:<34}{row['samples']:>7}{row['p50_us']:>9.1f} µs"
            f"{row['p99_us']:>9.1f} µs{row['mean_us']:>9.1f} µs"
        )
    resolve = result["resolve"]
    sizes = resolve["wheel_bytes"]
    print(
        f"bytes downloaded to resolve {resolve['wheels']} wheels "
        f"({sizes['min'] / KB / KB:.2f}-{sizes['max'] / KB / KB:.2f} MB, "
        f"{sizes['total'] / KB / KB:.1f} MB in all), fresh caches"
    )
    print(f"  {'client':<7}{'index':<12}{'bytes':>14}{'requests':>10}{'seconds':>9}  by kind")
    for client, runs in resolve["runs"].items():
        for index in ("wheelvault", "pypiserver"):
            one = runs[index]
            kinds = ", ".join(
                f"{kind} {tally['requests']}×/{tally['response_bytes']:,} B"
                for kind, tally in one["by_kind"].items()
            )
            print(
                f"  {client:<7}{index:<12}{one['bytes_downloaded']:>14,}{one['requests']:>10}"
                f"{one['seconds']:>9.2f}  {kinds}"
            )
        print(f"  {client:<7}pypiserver / wheelvault: {runs['ratio_pypiserver_to_wheelvault']:g}×")


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("azure").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description="wheelvault front-door benchmark")
    parser.add_argument("--requests", type=positive, default=2000, help="HTTP requests per run")
    parser.add_argument("--workers", type=positive, default=4, help="concurrent connections")
    parser.add_argument(
        "--handler-samples", type=positive, default=20_000, help="in-process calls per function"
    )
    parser.add_argument("--wheels", type=positive, default=20, help="wheels in the resolve set")
    parser.add_argument("--wheel-kb-min", type=positive, default=1024, help="smallest wheel (KB)")
    parser.add_argument("--wheel-kb-max", type=positive, default=5120, help="largest wheel (KB)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.wheel_kb_max < args.wheel_kb_min:
        parser.error("--wheel-kb-max is below --wheel-kb-min")
    if shutil.which(clients.UV) is None:
        parser.error(f"uv not found ({clients.UV})")
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print_table(result)
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
