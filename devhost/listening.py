"""What devhost's local servers share: ports, the threaded HTTP server, and running until stopped.

The functions host and the Key Vault stand-in are standard-library ``ThreadingHTTPServer``s
served from a background thread (:class:`LocalHttpServer`, :class:`QuietHandler`,
:func:`serve_in_thread`); run as processes they stop on SIGINT or SIGTERM
(:func:`stop_on_signals`), as does the stack supervisor, which also checks its ports here before
starting anything. Whatever is started and stopped is a context manager (:class:`StartStop`).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import re
import signal
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"
_LOGGED_PATH_CHARS = 200
# What a Host header may look like before it is trusted to build URLs: name or [IPv6], port.
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9.\-_]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


# -- ports --------------------------------------------------------------------------------------


def bind_error(host: str, port: int, exc: OSError) -> str:
    """One line saying why `host:port` cannot be listened on (no traceback for the user)."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; pick another with --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"address {host} is not available on this machine"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {host}:{port}"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def public_url(scheme: str, host: str, port: int) -> str:
    """The URL clients should use; a wildcard bind is reached through loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"{scheme}://{host}:{port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    if address.version == 6:
        return f"{scheme}://[{address}]:{port}"
    return f"{scheme}://{address}:{port}"


def port_accepts(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def port_free(host: str, port: int) -> bool:
    """Whether a server could bind host:port now.

    Binding with SO_REUSEADDR, as the servers do, so connections in TIME_WAIT from the
    previous run do not count; a socket that is bound but not listening still does.
    """
    if port_accepts(host, port):
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are picked."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


# -- the HTTP server ----------------------------------------------------------------------------


class LocalHttpServer(ThreadingHTTPServer):
    """A threaded HTTP server on an IPv4 or IPv6 address, one daemon thread per connection."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on some networks.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (as pip, uv and the Azure SDKs expect), sent without delay.

    Subclasses write their own request log: http.server's would quote raw request lines,
    query strings (SAS signatures) included.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes; with Nagle's algorithm the body would wait for the
    # client's delayed ACK (~40 ms per keep-alive request, measured). Send both at once.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: http.server's messages quote raw request lines, query strings included."""


def trusted_host(header: str | None) -> str | None:
    """The Host header a client sent, if it is safe to build URLs from (the URLs a function
    sees, the vault's secret ids); otherwise None, and the server uses its own address."""
    return header if header and _HOST_HEADER.fullmatch(header) else None


def loggable_path(path: str) -> str:
    """A request path (without its query) for a log line: capped, control characters escaped,
    so a line stays one line."""
    shown = path[:_LOGGED_PATH_CHARS]
    return "".join(c if c.isprintable() and c != " " else f"\\x{ord(c):02x}" for c in shown) or "-"


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Serve from a daemon thread; ``server.shutdown()`` ends it within the poll interval."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True
    )
    thread.start()
    return thread


# -- starting and stopping ----------------------------------------------------------------------


class StartStop:
    """``with thing:`` starts it and stops it, however the block ends."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def log_to_stderr() -> None:
    """What a server run as a process logs: INFO and up, one line each, on stderr."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set, and nothing more: start-up and shutdown are never
    interrupted half-way. Install it before starting, so an early signal still stops cleanly."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop_requested


def wait_until_set(stop_requested: threading.Event) -> None:
    # A timed wait keeps the main thread responsive to signals.
    while not stop_requested.wait(timeout=0.5):
        pass
