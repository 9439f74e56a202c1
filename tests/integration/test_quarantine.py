"""The quarantine service on its own (publishing's rejects and the local host's poison path both
use it), against Azurite."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.errors import RejectCode
from shared.services.quarantine import MAX_BLOB_NAME, Payload, Quarantine, quarantine_name

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 6, 7, 10, tzinfo=UTC)


def keep(quarantine: Quarantine, name: str, data: bytes, **extra: str) -> str:
    return quarantine.put(
        name,
        lambda: data,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        code=RejectCode.NOT_A_WHEEL,
        message="not a wheel",
        extra=extra,
    )


def stored(store: BlobStore, name: str) -> bytes:
    found = store.get(layout.QUARANTINE, name)
    assert found is not None, name
    return found.data


def test_the_bytes_and_the_reason_as_stored(storage_env: BlobStore) -> None:
    quarantine = Quarantine(storage_env, clock=lambda: AT)
    assert keep(quarantine, "x.txt", b"data", function="publish_upload") == "x.txt"
    assert stored(storage_env, "x.txt") == b"data"
    info = storage_env.info(layout.QUARANTINE, "x.txt")
    assert info is not None
    assert info.content_type == layout.BINARY_TYPE
    assert info.metadata == {"sha256": hashlib.sha256(b"data").hexdigest()}
    reason = stored(storage_env, "x.txt.reason.json")
    assert reason.endswith(b"}\n")
    assert list(json.loads(reason).items()) == [
        ("code", "not-a-wheel"),
        ("message", "not a wheel"),
        ("at", "2026-12-06T07:10:00Z"),
        ("sha256", hashlib.sha256(b"data").hexdigest()),
        ("size", 4),
        ("upload", "x.txt"),
        ("function", "publish_upload"),
    ]


def test_the_same_bytes_keep_their_name_and_different_bytes_get_the_next(
    storage_env: BlobStore,
) -> None:
    quarantine = Quarantine(storage_env)
    assert keep(quarantine, "x.txt", b"first") == "x.txt"
    etag = storage_env.info(layout.QUARANTINE, "x.txt")
    assert keep(quarantine, "x.txt", b"first") == "x.txt"
    assert storage_env.info(layout.QUARANTINE, "x.txt") == etag  # not written again
    assert keep(quarantine, "x.txt", b"second") == "x.txt.1"
    assert keep(quarantine, "x.txt", b"third") == "x.txt.2"
    assert keep(quarantine, "x.txt", b"second") == "x.txt.1"
    assert stored(storage_env, "x.txt.2") == b"third"


def test_a_writer_that_wins_the_name_meanwhile_keeps_it(storage_env: BlobStore) -> None:
    """Another writer creates the free name between our look and our write: both files stay."""
    quarantine = Quarantine(storage_env)
    calls: list[str] = []

    def ours() -> Payload:
        if not calls:
            storage_env.put(
                layout.QUARANTINE,
                "x.txt",
                b"theirs",
                content_type=layout.BINARY_TYPE,
                metadata={"sha256": hashlib.sha256(b"theirs").hexdigest()},
            )
        calls.append("read")
        return b"ours"

    sha256 = hashlib.sha256(b"ours").hexdigest()
    kept = quarantine.put(
        "x.txt", ours, sha256=sha256, size=4, code=RejectCode.NOT_A_WHEEL, message="m"
    )
    assert kept == "x.txt.1"
    assert len(calls) == 2  # the lost write used the bytes up: they were asked for again
    assert stored(storage_env, "x.txt") == b"theirs"
    assert stored(storage_env, "x.txt.1") == b"ours"


def test_a_name_too_long_for_its_suffixes_is_cut_and_made_unique() -> None:
    sha256 = "0123456789abcdef" * 4
    fits = "a" * (MAX_BLOB_NAME - 40)
    assert quarantine_name(fits, sha256) == fits
    long = "b" * (MAX_BLOB_NAME - 39)
    assert quarantine_name(long, sha256) == "b" * 900 + "~0123456789abcdef"


def test_another_container_can_be_used(storage_env: BlobStore) -> None:
    storage_env.ensure_containers(("poisoned",))
    quarantine = Quarantine(storage_env, container="poisoned")
    assert keep(quarantine, "y.bin", b"bytes") == "y.bin"
    assert storage_env.get("poisoned", "y.bin.reason.json") is not None
    assert storage_env.get(layout.QUARANTINE, "y.bin") is None
