"""`wheelvault upstream list|drop` and `wheelvault status` of an upstream copy, as an operator runs
them (the installed command, in a subprocess), against Azurite.

The cache is filled the way the front door fills it: the real UpstreamIndex copies files from a
local PEP 691 upstream (tests/support/upstream_index.py) on their first download. Beside it sit
private packages in every state the index knows (published with `.metadata`, yanked, deleted
with a tombstone, quarantined), whose every blob must keep its ETag through any drop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from devhost.standins.azurite import Azurite
from devhost.wheels import build_wheel
from shared.adapters.blobstore import BlobStore
from shared.adapters.upstream import UpstreamClient, parse_upstreams
from shared.core import layout
from shared.core.clock import utc_now
from shared.core.upstream import UpstreamPolicy, parse_upstream_urls
from shared.services.manage import IndexManager
from shared.services.pages import IndexPages
from shared.services.records import IndexRecords
from shared.services.upstream import UpstreamIndex
from tests.integration.test_publish import deliver, publish
from tests.support.upstream_index import JsonUpstream

pytestmark = pytest.mark.integration

OLD = timedelta(days=30)


@dataclass
class Cache:
    store: BlobStore
    upstream: JsonUpstream
    index: UpstreamIndex
    env: dict[str, str]
    copied: dict[str, list[str]]
    """Project → the blob names its first downloads stored."""


def wheelvault(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("wheelvault", path=str(Path(sys.executable).parent))
    assert command is not None, "make installs the wheelvault command into .venv"
    return subprocess.run(
        [command, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def private_blobs(store: BlobStore) -> dict[tuple[str, str], str]:
    """(container, name) → ETag of every blob that is not an upstream copy."""
    return {
        (container, info.name): info.etag
        for container in layout.CONTAINERS
        for info in store.list(container, "")
        if not (container == layout.INDEX and info.name.startswith(layout.UPSTREAM_PREFIX))
    }


def upstream_blobs(store: BlobStore) -> list[str]:
    return sorted(info.name for info in store.list(layout.INDEX, layout.UPSTREAM_PREFIX))


def add_private_packages(store: BlobStore) -> None:
    """`alpha` published twice, one release yanked, one file deleted (tombstoned); a refused
    upload in quarantine. `alpha` is also a prefix of the upstream project `alpha-extra`."""
    for version in ("1.0", "1.1", "2.0"):
        publish(store, build_wheel("alpha", version))
    records = IndexRecords(store)
    manager = IndexManager(store, records, IndexPages(store, records))
    manager.yank("alpha", version="1.1", reason="broken")
    manager.delete_file("alpha", build_wheel("alpha", "2.0").filename, reason="test")
    deliver(store, "broken-1.0-py3-none-any.whl", b"not a zip")
    assert next(store.list(layout.QUARANTINE, ""), None) is not None


def copy_through_the_index(cache: Cache, project: str, filename: str) -> None:
    before = set(upstream_blobs(cache.store))
    cache.index.file(canonicalize_name(project), filename)
    after = set(upstream_blobs(cache.store))
    cache.copied.setdefault(project, []).extend(sorted(after - before))


@pytest.fixture
def cache(storage_env: BlobStore, azurite: Azurite) -> Iterator[Cache]:
    store = storage_env
    add_private_packages(store)
    with JsonUpstream() as upstream:
        for project, version in (("numpyish", "1.0"), ("numpyish", "1.1"), ("alpha-extra", "3.0")):
            upstream.add(project, build_wheel(project, version), utc_now() - OLD)
        upstream.add("pageonly", build_wheel("pageonly", "1.0"), utc_now() - OLD)
        index = UpstreamIndex(
            store,
            UpstreamClient(parse_upstreams(parse_upstream_urls(upstream.url))),
            UpstreamPolicy(),
            page_seconds=600,
            miss_seconds=60,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
        env["WHEELVAULT_STORAGE"] = azurite.connection_string
        env["WHEELVAULT_STORAGE_API_VERSION"] = os.environ["WHEELVAULT_STORAGE_API_VERSION"]
        built = Cache(store, upstream, index, env, {})
        for project, version in (("numpyish", "1.0"), ("numpyish", "1.1"), ("alpha-extra", "3.0")):
            copy_through_the_index(built, project, build_wheel(project, version).filename)
        index.page(canonicalize_name("pageonly"))  # a page stored, no file downloaded
        yield built


def test_the_fixture_fills_the_cache_beside_private_packages(cache: Cache) -> None:
    """What the other tests stand on: copies with their `.metadata`, pages, private blobs."""
    numpyish = build_wheel("numpyish", "1.0").filename
    assert sorted(cache.copied["numpyish"]) == sorted(
        [
            layout.upstream_file_path(canonicalize_name("numpyish"), name)
            for name in (
                numpyish,
                f"{numpyish}.metadata",
                build_wheel("numpyish", "1.1").filename,
                f"{build_wheel('numpyish', '1.1').filename}.metadata",
            )
        ]
        + [layout.upstream_page_path(canonicalize_name("numpyish"))]
    )
    private = {name for _, name in private_blobs(cache.store)}
    for kind in ("files/alpha/", "records/alpha/", "dists/alpha/", "simple/alpha/", "tombstones/"):
        assert any(name.startswith(kind) for name in private), kind
    assert any(name.endswith(".metadata") for name in private)


def test_list_shows_upstream_projects_files_sizes_and_when_cached(cache: Cache) -> None:
    listed = wheelvault(cache.env, "upstream", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("UPSTREAM CACHE")
    projects = [line.split(" ", 1)[0] for line in lines[1:-1] if not line.startswith(" ")]
    assert projects == ["alpha-extra", "numpyish", "pageonly"], listed.stdout  # not alpha
    assert any(line.startswith("numpyish (upstream; page fetched 20") for line in lines)
    assert "pageonly (upstream; page fetched" in listed.stdout
    wheel = build_wheel("numpyish", "1.0")
    row = next(line for line in lines if line.strip().startswith(wheel.filename + " "))
    assert f"{len(wheel.data) / 1e3:.1f} kB" in row or f"{len(wheel.data)} bytes" in row
    assert " cached 20" in row
    assert row.endswith("Z")
    assert lines[-1].startswith("3 projects, 6 files, ")

    document = json.loads(wheelvault(cache.env, "upstream", "list", "--json", "NumPyish").stdout)
    assert [p["project"] for p in document] == ["numpyish"]
    assert document[0]["source"] == "upstream"
    files = {f["filename"]: f for f in document[0]["files"]}
    assert files[wheel.filename]["size"] == len(wheel.data)
    assert files[wheel.filename]["metadata"] is False
    assert files[f"{wheel.filename}.metadata"]["metadata"] is True
    stored = cache.store.info(
        layout.INDEX, layout.upstream_file_path(canonicalize_name("numpyish"), wheel.filename)
    )
    assert stored is not None
    assert stored.last_modified is not None
    assert files[wheel.filename]["cached-at"] == stored.last_modified.strftime("%Y-%m-%dT%H:%M:%SZ")

    private = wheelvault(cache.env, "upstream", "list", "alpha")
    assert "alpha: nothing cached from upstream" in private.stdout


def test_drop_a_project_removes_only_its_copies_and_no_private_blob_changes(cache: Cache) -> None:
    before = private_blobs(cache.store)
    dropped = wheelvault(cache.env, "upstream", "drop", "numpyish", "alpha")
    assert dropped.returncode == 0, dropped.stderr
    removed = sorted(line.split()[1] for line in dropped.stdout.splitlines())
    assert removed == sorted(cache.copied["numpyish"])
    assert "alpha: nothing cached from upstream" in dropped.stderr
    assert "dropped 5 blobs" in dropped.stderr
    assert private_blobs(cache.store) == before
    left = upstream_blobs(cache.store)
    assert all(name.startswith(("upstream/files/alpha-extra/", "upstream/pages/")) for name in left)
    assert set(cache.copied["alpha-extra"]) <= set(left)  # `alpha-extra` is not `alpha`

    # Dropped means fetched again on the next download, as on the first day.
    asked = cache.upstream.count("/files/")
    copy_through_the_index(cache, "numpyish", build_wheel("numpyish", "1.0").filename)
    assert cache.upstream.count("/files/") > asked


def test_drop_all_empties_the_cache_and_no_private_blob_changes(cache: Cache) -> None:
    before = private_blobs(cache.store)
    everything = upstream_blobs(cache.store)
    dropped = wheelvault(cache.env, "upstream", "drop", "--all")
    assert dropped.returncode == 0, dropped.stderr
    assert sorted(line.split()[1] for line in dropped.stdout.splitlines()) == everything
    assert upstream_blobs(cache.store) == []
    assert private_blobs(cache.store) == before
    listed = wheelvault(cache.env, "upstream", "list")
    assert "the upstream cache is empty" in listed.stdout
    again = wheelvault(cache.env, "upstream", "drop", "--all")
    assert again.returncode == 0
    assert again.stdout == ""
    assert "dropped 0 blobs" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the PROJECTs whose upstream copies to drop, or pass --all"),
        (("numpyish", "--all"), "name the PROJECTs whose upstream copies to drop, or pass --all"),
        (("../files",), "invalid"),
    ],
)
def test_a_wrong_drop_deletes_nothing_and_says_why_in_one_line(
    cache: Cache, args: tuple[str, ...], message: str
) -> None:
    before = private_blobs(cache.store), upstream_blobs(cache.store)
    result = wheelvault(cache.env, "upstream", "drop", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (private_blobs(cache.store), upstream_blobs(cache.store)) == before


def test_status_says_cached_from_upstream(cache: Cache) -> None:
    upstream_file = build_wheel("numpyish", "1.0")
    private_file = build_wheel("alpha", "1.0").filename
    result = wheelvault(cache.env, "status", "--timeout", "0", upstream_file.filename, private_file)
    assert result.returncode == 1  # only a published private file counts as success
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{upstream_file.filename}: cached from upstream (copied 20")
    assert f"sha256 {upstream_file.sha256[:12]}" in lines[0]
    assert "wheelvault upstream drop numpyish" in lines[0]
    assert lines[1] == f"{private_file}: published"
