"""What the local servers (functions host, vault stand-in) share about listening on a socket."""

from __future__ import annotations

import errno
import ipaddress
import socket


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
