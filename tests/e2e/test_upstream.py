"""End to end: upstream indexes behind ONE index URL, with real pip and uv.

The whole app runs on the local functions host over Azurite and the Key Vault stand-in
(tests/support/stack.py), with WHEELVAULT_UPSTREAM_URLS naming two local upstreams, tried in
order: a PEP 691 JSON index with `.metadata` files and upload times
(tests/support/upstream_index.py) and pypiserver, which serves PEP 503 HTML only. Nothing leaves
this machine; pip and uv are isolated from its package sources (tests/support/clients.py).
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from bench.front_door import PypiServer
from devhost.standins.azurite import Azurite
from devhost.wheels import BuiltWheel, build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.clock import utc_now
from shared.core.tokens import Policy, Scope
from shared.services.wiring import get_services, reset_services
from tests.fixtures.vault import VaultStandinProcess
from tests.integration.test_publish import deliver
from tests.support import clients
from tests.support.stack import local_app
from tests.support.upstream_index import JsonUpstream

pytestmark = pytest.mark.e2e

OLD = utc_now() - timedelta(days=30)
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
JSON = "application/vnd.pypi.simple.v1+json"


def module(name: str, version: str) -> dict[str, bytes]:
    return {f"{name}/__init__.py": f"__version__ = {version!r}\n".encode()}


def wheel(name: str, version: str, *requires: str) -> BuiltWheel:
    package = canonicalize_name(name).replace("-", "_")
    return build_wheel(name, version, requires_dist=requires, modules=module(package, version))


@dataclass
class World:
    url: str
    reader: str
    store: BlobStore
    json_upstream: JsonUpstream
    pypiserver: PypiServer
    home: Path

    def index_url(self) -> str:
        return f"http://reader:{self.reader}@{self.url.removeprefix('http://')}/simple/"

    def get(self, path: str) -> tuple[int, Any]:
        """Status and JSON body of an authenticated GET (redirects not followed)."""
        request = urllib.request.Request(f"{self.url}{path}", headers={"Accept": JSON})
        raw = base64.b64encode(f"reader:{self.reader}".encode()).decode()
        request.add_header("Authorization", f"Basic {raw}")
        try:
            with NO_PROXY.open(request, timeout=60) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def page_files(self, project: str) -> list[str]:
        """The filenames on the project's page as the index serves it."""
        status, page = self.get(f"/simple/{project}/")
        assert status == 200, page
        return [str(f["filename"]) for f in page["files"]]

    def error(self, path: str) -> tuple[int, str, str]:
        """Status, error code and message of a refused GET."""
        status, body = self.get(path)
        return status, str(body["error"]["code"]), str(body["error"]["message"])

    def cached(self, project: str) -> list[str]:
        prefix = layout.upstream_file_path(canonicalize_name(project), "")
        return sorted(b.name.removeprefix(prefix) for b in self.store.list(layout.INDEX, prefix))


def fill_json_upstream(upstream: JsonUpstream) -> None:
    for name, version, requires in (
        ("pubdep", "1.0", ("publeaf>=1",)),
        ("publeaf", "1.0", ()),
        ("acme-core", "99.0", ()),  # private 1.0 must win
        ("acme-secret", "1.0", ()),  # reserved: never from upstream
        ("evilpkg", "1.0", ()),  # deny-listed
        ("freshpkg", "1.0", ()),
        ("tamperpkg", "1.0", ()),
    ):
        upstream.add(name, wheel(name, version, *requires), OLD)
    upstream.add("freshpkg", wheel("freshpkg", "2.0"), utc_now() - timedelta(hours=1))
    tampered = wheel("tamperpkg", "1.0")
    upstream.tamper(tampered.filename, wheel("tamperpkg", "6.6.6").data[: len(tampered.data)])


@pytest.fixture(scope="module")
def world(
    azurite: Azurite,
    vault_standin: VaultStandinProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    packages = tmp_path_factory.mktemp("pypiserver-packages")
    html_only = wheel("htmldep", "1.0")
    (packages / html_only.filename).write_bytes(html_only.data)
    log = tmp_path_factory.mktemp("pypiserver-log") / "pypiserver.log"
    with (
        JsonUpstream() as json_upstream,
        PypiServer(packages, log) as pypiserver,
        pytest.MonkeyPatch.context() as env,
    ):
        fill_json_upstream(json_upstream)
        env.setenv("WHEELVAULT_UPSTREAM_URLS", f"{json_upstream.url} {pypiserver.index_url}")
        env.setenv("WHEELVAULT_UPSTREAM_RESERVED", "acme-*")
        env.setenv("WHEELVAULT_UPSTREAM_DENY", "evil*")
        # Every page request asks the upstreams: a page served once they are stopped is the
        # stale one, served because they failed, not merely because it was still fresh.
        env.setenv("WHEELVAULT_UPSTREAM_PAGE_SECONDS", "0")
        with local_app(azurite, vault_standin) as (host, store):
            reader = get_services().tokens.create(
                f"e2e-upstream-{uuid.uuid4().hex[:8]}", Policy(Scope.READ)
            )
            for private in (
                wheel("acme-core", "1.0"),
                wheel("acme-app", "1.0", "acme-core>=1", "pubdep>=1", "htmldep"),
            ):
                deliver(store, private.filename, private.data)  # the real publish function
            yield World(
                host.url,
                reader,
                store,
                json_upstream,
                pypiserver,
                tmp_path_factory.mktemp("client-home"),
            )


def assert_clean(output: str, world: World) -> None:
    assert world.reader not in output
    assert "sig=" not in output, "a SAS signature reached the client's log"


def pip_install(
    world: World,
    tmp_path: Path,
    *requirements: str,
    home: Path | None = None,
    options: tuple[str, ...] = (),
) -> tuple[clients.Run, Path]:
    home = home or world.home
    python = clients.new_venv(tmp_path / f"venv-{uuid.uuid4().hex[:6]}", home)
    index = ("--index-url", world.index_url())
    result = clients.pip(python, home, "install", *index, *options, *requirements)
    assert_clean(result.output, world)
    return result, python


def uv_install(
    world: World,
    tmp_path: Path,
    *requirements: str,
    home: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[clients.Run, Path]:
    home = home or world.home
    python = clients.new_venv(tmp_path / f"uv-venv-{uuid.uuid4().hex[:6]}", home)
    result = clients.uv(
        home,
        "pip",
        "install",
        "--python",
        str(python),
        "--index-url",
        world.index_url(),
        *requirements,
        extra_env=extra_env,
    )
    assert_clean(result.output, world)
    return result, python


EXPECTED = {
    "acme-app": "1.0",
    "acme-core": "1.0",
    "pubdep": "1.0",
    "publeaf": "1.0",
    "htmldep": "1.0",
}


def assert_pip_installs(world: World, tmp_path: Path, project: str, version: str) -> None:
    result, python = pip_install(world, tmp_path, project)
    assert result.returncode == 0, result.output
    assert clients.installed_version(python, project, world.home) == version


def assert_installed(python: Path, home: Path) -> None:
    for name, version in EXPECTED.items():
        assert clients.installed_version(python, name, home) == version, name


def test_a_private_package_with_public_dependencies_installs_with_pip_and_uv(
    world: World, tmp_path: Path
) -> None:
    result, python = pip_install(world, tmp_path, "acme-app")
    assert result.returncode == 0, result.output
    assert_installed(python, world.home)
    uv_result, uv_python = uv_install(world, tmp_path, "acme-app")
    assert uv_result.returncode == 0, uv_result.output
    assert_installed(uv_python, world.home)
    pubdep = wheel("pubdep", "1.0").filename
    assert world.cached("pubdep") == [pubdep, f"{pubdep}.metadata"]  # PEP 658 file came along
    assert world.cached("htmldep") == [wheel("htmldep", "1.0").filename]  # HTML: no metadata
    assert world.cached("acme-core") == []


def test_private_acme_core_wins_over_upstream_99(world: World, tmp_path: Path) -> None:
    assert_pip_installs(world, tmp_path, "acme-core", "1.0")
    assert world.page_files("acme-core") == [wheel("acme-core", "1.0").filename]
    pinned, _ = pip_install(world, tmp_path, "acme-core==99.0")
    assert pinned.returncode != 0
    assert world.json_upstream.hits("/simple/acme-core/") == 0  # never consulted


def test_a_reserved_name_is_404_although_upstream_has_it(world: World, tmp_path: Path) -> None:
    status, code, message = world.error("/simple/acme-secret/")
    assert (status, code) == (404, "upstream-refused")
    assert "WHEELVAULT_UPSTREAM_RESERVED pattern 'acme-*'" in message
    result, python = pip_install(world, tmp_path, "acme-secret")
    assert result.returncode != 0
    assert clients.installed_version(python, "acme-secret", world.home) is None
    assert world.json_upstream.hits("/simple/acme-secret/") == 0
    file_status, _ = world.get(f"/files/acme-secret/{wheel('acme-secret', '1.0').filename}")
    assert file_status == 404
    assert world.cached("acme-secret") == []


def test_a_deny_listed_name_is_404_with_the_reason_and_a_log_line(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wheelvault.upstream"):
        refused = world.error("/simple/evilpkg/")
    assert refused == (
        404,
        "upstream-refused",
        "'evilpkg' is not taken from upstream: "
        "evilpkg is denied by WHEELVAULT_UPSTREAM_DENY pattern 'evil*'",
    )
    assert "upstream refused project=evilpkg" in caplog.text
    result, _ = uv_install(world, tmp_path, "evilpkg")
    assert result.returncode != 0
    assert world.cached("evilpkg") == []


def test_a_fresh_upstream_release_is_hidden_by_the_minimum_age(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELVAULT_UPSTREAM_MIN_AGE", "P7D")
    reset_services()  # the functions read the new settings on their next call
    try:
        assert_pip_installs(world, tmp_path, "freshpkg", "1.0")
        assert world.page_files("freshpkg") == [wheel("freshpkg", "1.0").filename]
        pinned, _ = uv_install(world, tmp_path, "freshpkg==2.0")
        assert pinned.returncode != 0
        status, code, message = world.error(f"/files/freshpkg/{wheel('freshpkg', '2.0').filename}")
        assert (status, code) == (404, "upstream-refused")
        assert "WHEELVAULT_UPSTREAM_MIN_AGE" in message
        assert world.cached("freshpkg") == [
            wheel("freshpkg", "1.0").filename,
            f"{wheel('freshpkg', '1.0').filename}.metadata",
        ]
    finally:
        monkeypatch.delenv("WHEELVAULT_UPSTREAM_MIN_AGE")
        reset_services()


def test_a_tampered_upstream_file_is_refused_and_not_cached(world: World, tmp_path: Path) -> None:
    # pip and uv retry a 502 with seconds of back-off (7 s and 11 s); one refusal is the point.
    result, python = pip_install(world, tmp_path, "tamperpkg", options=("--retries", "0"))
    assert result.returncode != 0
    assert clients.installed_version(python, "tamperpkg", world.home) is None
    uv_result, _ = uv_install(world, tmp_path, "tamperpkg", extra_env={"UV_HTTP_RETRIES": "0"})
    assert uv_result.returncode != 0
    status, code, _ = world.error(f"/files/tamperpkg/{wheel('tamperpkg', '1.0').filename}")
    assert (status, code) == (502, "upstream-hash-mismatch")
    # Its `.metadata`, which pip read first and which matches its own hash, is a verified
    # copy; the wheel whose bytes differ from the page's sha256 is nowhere in storage.
    tampered = wheel("tamperpkg", "1.0").filename
    assert world.cached("tamperpkg") == [f"{tampered}.metadata"]


def test_with_the_upstreams_stopped_a_fresh_install_works_from_the_cache(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Last in this module: it stops both upstreams."""
    warm, _ = pip_install(world, tmp_path, "acme-app")  # cached by now, whichever test ran
    assert warm.returncode == 0, warm.output
    world.json_upstream.stop()
    world.pypiserver.__exit__()
    fresh_home = tmp_path / "fresh-home"  # no pip or uv cache from the runs before
    with caplog.at_level(logging.WARNING, logger="wheelvault.upstream"):
        result, python = pip_install(world, tmp_path, "acme-app", home=fresh_home)
        assert result.returncode == 0, result.output
        assert_installed(python, fresh_home)
        uv_result, uv_python = uv_install(world, tmp_path, "acme-app", home=fresh_home)
        assert uv_result.returncode == 0, uv_result.output
        assert_installed(uv_python, fresh_home)
    assert "upstream failed, serving the stale page project=pubdep" in caplog.text
