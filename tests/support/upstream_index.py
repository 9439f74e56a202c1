"""A small PEP 691 JSON simple index on loopback, standing in for an upstream such as PyPI.

Pages are JSON documents generated from the wheels it holds, with `.metadata` files (PEP 658/714)
and the PEP 700 upload times a test chooses; file URLs are relative (`../../files/…`) so that
resolving them against the page is exercised. It counts every request, can require Basic auth,
can serve other bytes than the page's hash promises (`tamper`), can hold file downloads until
several are in flight (`hold_files`), and can be stopped and started again on the same port.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from devhost.listening import LocalHttpServer, QuietHandler, free_port
from devhost.wheels import BuiltWheel
from shared.core.clock import iso_z

JSON_V1 = "application/vnd.pypi.simple.v1+json"
SEND_BYTES = 256 * 1024


@dataclass
class Hosted:
    project: str
    filename: str
    data: bytes
    metadata: bytes | None
    upload_time: datetime | None
    yanked: bool | str = False
    with_hash: bool = True
    requires_python: str | None = None


class JsonUpstream:
    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.credentials = credentials
        self.files: dict[str, Hosted] = {}
        self.tampered: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()
        self.unauthorized = 0
        self.sent_authorization = 0
        self.files_url: str | None = None
        """Where the pages point for files (another server, say); None: `../../files/` here."""
        self._lock = threading.Lock()
        self._held: threading.Barrier | None = None
        self._server: LocalHttpServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        """The index base URL, with the credentials in it when it requires them."""
        auth = ":".join(self.credentials) + "@" if self.credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}/simple/"

    def add(self, project: str, wheel: BuiltWheel, upload_time: datetime | None, **kw: Any) -> None:
        self.files[wheel.filename] = Hosted(
            project, wheel.filename, wheel.data, wheel.metadata, upload_time, **kw
        )

    def tamper(self, filename: str, data: bytes) -> None:
        """Serve `data` for `filename` while the page keeps the original hash."""
        self.tampered[filename] = data

    def hold_files(self, parties: int) -> None:
        """Hold each file download until `parties` of them are in flight (or 10 s passed)."""
        self._held = threading.Barrier(parties, timeout=10)

    def count(self, prefix: str = "/") -> int:
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))

    def hits(self, path: str) -> int:
        """Requests for exactly `path`."""
        with self._lock:
            return self.requests[path]

    def start(self) -> JsonUpstream:
        self._server = LocalHttpServer(("127.0.0.1", self.port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:  # kept-alive connections too: a stopped upstream answers nothing
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> JsonUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it serves -------------------------------------------------------------------------

    def page(self, project: str) -> bytes | None:
        files = [f for f in self.files.values() if f.project == project]
        if not files:
            return None
        document = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "versions": [],
            "files": [_entry(f, self.files_url) for f in sorted(files, key=lambda f: f.filename)],
        }
        return json.dumps(document).encode()

    def file(self, filename: str) -> bytes | None:
        if filename.endswith(".metadata"):
            hosted = self.files.get(filename.removesuffix(".metadata"))
            return hosted.metadata if hosted else None
        hosted = self.files.get(filename)
        if hosted is None:
            return None
        return self.tampered.get(filename, hosted.data)

    def authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {expected}"

    def wait_for_peers(self) -> None:
        if self._held is not None:
            self._held.wait()


def _entry(f: Hosted, files_url: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": f.filename,
        "url": f"{files_url or '../../files/'}{f.filename}",
        "hashes": {"sha256": hashlib.sha256(f.data).hexdigest()} if f.with_hash else {},
        "requires-python": f.requires_python,
        "size": len(f.data),
        "yanked": f.yanked,
    }
    if f.metadata is not None:
        entry["core-metadata"] = {"sha256": hashlib.sha256(f.metadata).hexdigest()}
    if f.upload_time is not None:
        entry["upload-time"] = iso_z(f.upload_time)
    return entry


def _handler(upstream: JsonUpstream) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def setup(self) -> None:
            super().setup()
            with upstream._lock:
                upstream._connections.add(self.connection)

        def finish(self) -> None:
            with upstream._lock:
                upstream._connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            with upstream._lock:
                upstream.requests[path] += 1
                upstream.sent_authorization += "Authorization" in self.headers
            if not upstream.authorized(self.headers.get("Authorization")):
                upstream.unauthorized += 1
                self._send(401, b"", "text/plain", {"WWW-Authenticate": 'Basic realm="up"'})
                return
            if path.startswith("/simple/") and path.endswith("/"):
                body = upstream.page(path.removeprefix("/simple/").strip("/"))
                self._send(200 if body else 404, body or b"not found", JSON_V1)
            elif path.startswith("/files/"):
                data = upstream.file(path.removeprefix("/files/"))
                if data is not None and not path.endswith(".metadata"):
                    upstream.wait_for_peers()
                self._send(200 if data is not None else 404, data or b"", "application/zip")
            else:
                self._send(404, b"not found", "text/plain")

        def _send(
            self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            view = memoryview(body)
            for start in range(0, len(body), SEND_BYTES):
                self.wfile.write(view[start : start + SEND_BYTES])

    return Handler
