"""Bounded waits must not bound transfers (issue 9 §4.1): the storage timeouts are per socket
read, and the retry budget only stops new tries, so a blob that keeps streaming arrives in one
piece even when that takes far longer than the call's whole budget.

A throttling TCP proxy in front of Azurite slows downloads, so one takes seconds while no single
read waits long. (Uploads are not throttled: socket buffers would let the client finish sending
long before the server has read it all, and the wait for the answer is rightly a read timeout.)
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from shared.adapters.blobstore import BlobStore, StorageRetry, blob_service_from_settings
from shared.core import layout
from shared.settings import Settings, load_settings

pytestmark = pytest.mark.integration

SIZE = 6 * 1024 * 1024
BYTES_PER_SECOND = 3 * 1024 * 1024  # about 2 s for the download
BUDGET = 1.0


def _pump(source: socket.socket, target: socket.socket, throttle: bool) -> None:
    """Copy (at BYTES_PER_SECOND in small steps when throttled) until either side closes."""
    step = 64 * 1024
    with contextlib.suppress(OSError):
        while data := source.recv(step):
            target.sendall(data)
            if throttle:
                time.sleep(len(data) / BYTES_PER_SECOND)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def throttled(upstream: tuple[str, int]) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(upstream)
            for a, b, slow in ((client, server, False), (server, client, True)):
                threading.Thread(target=_pump, args=(a, b, slow), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def test_a_transfer_longer_than_the_whole_budget_completes(storage_env: BlobStore) -> None:
    settings = load_settings()
    assert settings.storage_connection_string is not None
    connection = settings.storage_connection_string.get_secret_value()
    endpoint = urlsplit(storage_env.service.url)
    assert endpoint.hostname is not None
    assert endpoint.port is not None
    with throttled((endpoint.hostname, endpoint.port)) as port:
        slow = connection.replace(f":{endpoint.port}/", f":{port}/")
        slow_settings = Settings.model_validate(
            {
                "WHEELVAULT_STORAGE": slow,
                "WHEELVAULT_STORAGE_API_VERSION": settings.storage_api_version,
            }
        )
        store = BlobStore(
            blob_service_from_settings(slow_settings, retry_policy=StorageRetry(budget=BUDGET))
        )
        data = os.urandom(SIZE)
        store.put(layout.UPLOADS, "big.bin", data, content_type="application/octet-stream")
        started = time.monotonic()
        stored = store.get(layout.UPLOADS, "big.bin")
        get_seconds = time.monotonic() - started
    assert stored is not None
    assert stored.data == data
    # One call (one GET: the blob is under the SDK's 32 MiB single-GET size) took well over
    # its whole budget, and was not cut.
    assert get_seconds > 1.5 * BUDGET
