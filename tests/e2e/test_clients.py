"""End to end: real pip and uv, through the local functions host, against Azurite and the Key
Vault stand-in. Packages are published by the real publish function; pip and uv are isolated
from this machine's package sources (see tests/support/clients.py)."""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devhost.standins.azurite import Azurite
from devhost.wheels import BuiltWheel, build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.tokens import Policy, Scope
from shared.services.wiring import get_services
from tests.fixtures.vault import VaultStandinProcess
from tests.support import clients
from tests.support.functions import blob_event, handler
from tests.support.stack import local_app

pytestmark = pytest.mark.e2e

SAS_SIGNATURE = re.compile(r"sig=[A-Za-z0-9%+/=]{10,}")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RequestLog(logging.Handler):
    """Collects the local host's one-line-per-request log (method, path, status, ...)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def paths(self) -> list[str]:
        return [line.split()[1] for line in self.lines]


@dataclass
class Stack:
    url: str
    reader: str
    publisher: str
    store: BlobStore
    requests: RequestLog
    home: Path
    wheels: dict[str, BuiltWheel] = field(default_factory=dict)

    def index_url(self, token: str | None = None) -> str:
        host = self.url.removeprefix("http://")
        return f"http://reader:{token or self.reader}@{host}/simple/"

    def publish(self, wheel: BuiltWheel) -> None:
        etag = self.store.put(layout.UPLOADS, wheel.filename, wheel.data, content_type="x/y")
        handler("publish_upload")(blob_event(layout.UPLOADS, wheel.filename, wheel.data, etag))
        self.wheels[wheel.filename] = wheel

    def post(self, path: str, body: dict[str, str], token: str) -> dict[str, object]:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), method="POST"
        )
        raw = base64.b64encode(f"x:{token}".encode()).decode()
        request.add_header("Authorization", f"Basic {raw}")
        with NO_PROXY.open(request, timeout=30) as reply:
            result: dict[str, object] = json.loads(reply.read())
            return result


def module(name: str, version: str) -> dict[str, bytes]:
    return {f"{name}/__init__.py": f"__version__ = {version!r}\n".encode()}


@pytest.fixture(scope="module")
def stack(
    azurite: Azurite,
    vault_standin: VaultStandinProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    with local_app(azurite, vault_standin) as (host, store):
        requests = RequestLog()
        request_logger = logging.getLogger("devhost.host.requests")
        request_logger.addHandler(requests)
        level = request_logger.level
        request_logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears the cache
        try:
            tokens = get_services().tokens
            suffix = uuid.uuid4().hex[:8]
            built = Stack(
                url=host.url,
                reader=tokens.create(f"e2e-reader-{suffix}", Policy(Scope.READ)),
                publisher=tokens.create(f"e2e-publisher-{suffix}", Policy(Scope.PUBLISH)),
                store=store,
                requests=requests,
                home=tmp_path_factory.mktemp("client-home"),
            )
            for version in ("1.0", "1.1", "2.0"):
                built.publish(build_wheel("alpha", version, modules=module("alpha", version)))
            built.publish(
                build_wheel(
                    "Beta.Pkg",
                    "1.0",
                    requires_dist=["alpha>=1.0,<3"],
                    modules=module("beta_pkg", "1.0"),
                )
            )
            built.publish(build_wheel("gamma", "0.1", modules=module("gamma", "0.1")))
            get_services().manager.yank("alpha", version="2.0", reason="broken on purpose")
            yield built
        finally:
            request_logger.removeHandler(requests)
            request_logger.setLevel(level)


def venv(stack: Stack, tmp_path: Path, name: str = "venv") -> Path:
    return clients.new_venv(tmp_path / name, stack.home)


def assert_clean(output: str, stack: Stack) -> None:
    assert stack.reader not in output
    assert stack.publisher not in output
    assert SAS_SIGNATURE.search(output) is None, "a SAS signature reached the client's log"


def test_pip_installs_the_newest_non_yanked_version_with_dependencies(
    stack: Stack, tmp_path: Path
) -> None:
    python = venv(stack, tmp_path)
    result = clients.pip(
        python, stack.home, "install", "-v", "--index-url", stack.index_url(), "beta-pkg"
    )
    assert result.returncode == 0, result.output
    assert clients.installed_version(python, "beta-pkg", stack.home) == "1.0"
    assert clients.installed_version(python, "alpha", stack.home) == "1.1"  # 2.0 is yanked
    assert_clean(result.output, stack)


def test_uv_installs_the_same(stack: Stack, tmp_path: Path) -> None:
    python = venv(stack, tmp_path)
    result = clients.uv(
        stack.home,
        "pip",
        "install",
        "-v",
        "--python",
        str(python),
        "--index-url",
        stack.index_url(),
        "beta-pkg",
    )
    assert result.returncode == 0, result.output
    assert clients.installed_version(python, "beta-pkg", stack.home) == "1.0"
    assert clients.installed_version(python, "alpha", stack.home) == "1.1"
    assert_clean(result.output, stack)


def test_a_yanked_version_installs_when_pinned(stack: Stack, tmp_path: Path) -> None:
    python = venv(stack, tmp_path)
    result = clients.pip(
        python, stack.home, "install", "--index-url", stack.index_url(), "alpha==2.0"
    )
    assert result.returncode == 0, result.output
    assert clients.installed_version(python, "alpha", stack.home) == "2.0"


def test_pip_resolves_from_metadata_files_without_downloading_wheels(
    stack: Stack, tmp_path: Path
) -> None:
    python = venv(stack, tmp_path)
    report = tmp_path / "report.json"
    stack.requests.lines.clear()
    result = clients.pip(
        python,
        stack.home,
        "install",
        "--dry-run",
        "--no-cache-dir",
        "--report",
        str(report),
        "--index-url",
        stack.index_url(),
        "beta-pkg",
    )
    assert result.returncode == 0, result.output
    names = {item["metadata"]["name"] for item in json.loads(report.read_text())["install"]}
    assert names == {"Beta.Pkg", "alpha"}
    files = [p for p in stack.requests.paths() if p.startswith("/files/")]
    assert files, stack.requests.lines
    assert all(p.endswith(".metadata") for p in files), files  # PEP 658: no wheel downloaded


def test_a_tampered_file_fails_the_hash_check(stack: Stack, tmp_path: Path) -> None:
    wheel = build_wheel("tampered", "1.0", modules=module("tampered", "1.0"))
    stack.publish(wheel)
    forged = build_wheel("tampered", "1.0", modules=module("tampered", "6.6.6"))
    path = layout.file_path("tampered", wheel.filename)  # type: ignore[arg-type]
    stack.store.put(layout.INDEX, path, forged.data, content_type=layout.BINARY_TYPE)
    python = venv(stack, tmp_path)
    result = clients.pip(
        python,
        stack.home,
        "install",
        "--no-cache-dir",
        "--index-url",
        stack.index_url(),
        "tampered",
    )
    assert result.returncode != 0
    assert "HASHES" in result.output
    assert clients.installed_version(python, "tampered", stack.home) is None
    uv_python = venv(stack, tmp_path, "uv-venv")
    uv_result = clients.uv(
        stack.home,
        "pip",
        "install",
        "--no-cache",
        "--python",
        str(uv_python),
        "--index-url",
        stack.index_url(),
        "tampered",
    )
    assert uv_result.returncode != 0
    assert "hash" in uv_result.output.lower()
    assert clients.installed_version(uv_python, "tampered", stack.home) is None


def test_a_wrong_token_installs_nothing(stack: Stack, tmp_path: Path) -> None:
    python = venv(stack, tmp_path)
    wrong = "wvt_nobody_" + "A" * 49
    result = clients.pip(
        python, stack.home, "install", "--index-url", stack.index_url(wrong), "alpha"
    )
    assert result.returncode != 0
    assert "401" in result.output
    assert clients.installed_version(python, "alpha", stack.home) is None
    # --no-cache: uv would otherwise answer from the pages it cached (private, max-age) with
    # the good token a moment ago: the client's own cache, not the index's answer.
    uv_result = clients.uv(
        stack.home,
        "pip",
        "install",
        "--no-cache",
        "--python",
        str(python),
        "--index-url",
        stack.index_url(wrong),
        "alpha",
    )
    assert uv_result.returncode != 0
    assert clients.installed_version(python, "alpha", stack.home) is None


def test_uv_lock_records_clean_file_urls(stack: Stack, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f"""[project]
name = "consumer"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["beta-pkg"]

[[tool.uv.index]]
name = "wheelvault"
url = "{stack.url}/simple/"
authenticate = "always"
default = true
"""
    )
    # The project's pyproject.toml is the configuration under test, so this one run reads
    # configuration; user-level uv config is still kept out by the private HOME, and there is
    # no system-level one on this machine.
    assert not Path("/etc/uv/uv.toml").exists()
    result = clients.run(
        [clients.UV, "lock", "-v"],
        stack.home,
        cwd=project,
        extra_env={
            "UV_INDEX_WHEELVAULT_USERNAME": "reader",
            "UV_INDEX_WHEELVAULT_PASSWORD": stack.reader,
        },
        drop_env=("UV_NO_CONFIG",),
    )
    assert result.returncode == 0, result.output
    lock = (project / "uv.lock").read_text()
    urls = re.findall(r'url = "([^"]+)"', lock)
    file_urls = [u for u in urls if "/files/" in u]
    assert any(u.startswith(f"{stack.url}/files/beta-pkg/") for u in file_urls), lock
    assert all("?" not in u for u in urls), "a SAS (or any query) was written to uv.lock"
    assert stack.reader not in lock
    assert_clean(result.output, stack)


def test_a_sas_install_url_installs_with_pip(stack: Stack, tmp_path: Path) -> None:
    answer = stack.post("/sas/install", {"requirement": "gamma==0.1"}, stack.reader)
    (entry,) = answer["files"]  # type: ignore[misc]
    python = venv(stack, tmp_path)
    result = clients.pip(python, stack.home, "install", "--no-index", entry["url"])
    assert result.returncode == 0, result.output
    assert clients.installed_version(python, "gamma", stack.home) == "0.1"


def test_an_upload_sas_uploads_a_wheel_that_then_publishes(stack: Stack, tmp_path: Path) -> None:
    wheel = build_wheel("gamma", "0.2", modules=module("gamma", "0.2"))
    answer = stack.post("/sas/upload", {"filename": wheel.filename}, stack.publisher)
    request = urllib.request.Request(str(answer["url"]), data=wheel.data, method="PUT")
    request.add_header("x-ms-blob-type", "BlockBlob")
    with NO_PROXY.open(request, timeout=30) as reply:
        assert reply.status == 201
    uploaded = stack.store.get(layout.UPLOADS, wheel.filename)
    assert uploaded is not None
    handler("publish_upload")(
        blob_event(layout.UPLOADS, wheel.filename, uploaded.data, uploaded.etag)
    )
    python = venv(stack, tmp_path)
    result = clients.pip(python, stack.home, "install", "--index-url", stack.index_url(), "gamma")
    assert result.returncode == 0, result.output
    assert clients.installed_version(python, "gamma", stack.home) == "0.2"
