"""End to end: twine, uv publish and poetry publish against the upload API of the local
functions host (Azurite, the Key Vault stand-in), then pip installs what they published.

Every client is the real one pinned in requirements-dev.txt (poetry in .venv-poetry), run as a
process with a clean environment (tests/support/clients.py); the token goes in through the
clients' own options or variables and must never show in their output.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from twine.commands.upload import skip_upload
from twine.package import PackageFile
from urllib3.filepost import encode_multipart_formdata

from devhost.standins.azurite import Azurite
from devhost.wheels import build_sdist, build_wheel, zip_bytes
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.tokens import Policy, Scope
from shared.services.wiring import get_services
from tests.fixtures.vault import VaultStandinProcess
from tests.support import clients
from tests.support.stack import local_app

pytestmark = pytest.mark.e2e

TWINE = clients.BIN / "twine"
POETRY = Path(__file__).resolve().parents[2] / ".venv-poetry" / "bin" / "poetry"
TWINE61 = Path(__file__).resolve().parents[2] / ".venv-twine61" / "bin" / "twine"
"""twine 6.1, the last that allows --skip-existing for an index other than PyPI (the Makefile)."""


@dataclass
class Stack:
    url: str
    reader: str
    publisher: str
    store: BlobStore
    home: Path

    @property
    def legacy(self) -> str:
        return f"{self.url}/legacy/"

    def index_url(self) -> str:
        return f"http://__token__:{self.reader}@{self.url.removeprefix('http://')}/simple/"

    def files(self, project: str) -> list[str]:
        """The distribution files stored for `project` (not their `.metadata` sidecars)."""
        prefix = layout.file_path(project, "")  # type: ignore[arg-type]
        names = (b.name.removeprefix(prefix) for b in self.store.list(layout.INDEX, prefix))
        return sorted(name for name in names if not name.endswith(".metadata"))

    def index(self) -> dict[str, str]:
        return {b.name: b.etag for b in self.store.list(layout.INDEX, "")}

    def twine(self, *args: str, token: str | None = None, twine: Path = TWINE) -> clients.Run:
        """`twine upload` to /legacy/ with a token (the publisher's unless given)."""
        return clients.run(
            [str(twine), "upload", "--non-interactive", "--disable-progress-bar", *args],
            self.home,
            extra_env={
                "TWINE_REPOSITORY_URL": self.legacy,
                "TWINE_USERNAME": "__token__",
                "TWINE_PASSWORD": token or self.publisher,
            },
        )

    def uv_publish(self, *args: str, token: str | None = None) -> clients.Run:
        return clients.run(
            [clients.UV, "publish", "--no-config", "--publish-url", self.legacy, *args],
            self.home,
            extra_env={
                "UV_PUBLISH_USERNAME": "__token__",
                "UV_PUBLISH_PASSWORD": token or self.publisher,
            },
        )

    def assert_clean(self, output: str) -> None:
        assert self.publisher not in output
        assert self.reader not in output


@pytest.fixture(scope="module")
def stack(
    azurite: Azurite, vault_standin: VaultStandinProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with local_app(azurite, vault_standin) as (host, store):
        tokens = get_services().tokens
        suffix = uuid.uuid4().hex[:8]
        yield Stack(
            url=host.url,
            reader=tokens.create(f"e2e-upload-reader-{suffix}", Policy(Scope.READ)),
            publisher=tokens.create(f"e2e-upload-publisher-{suffix}", Policy(Scope.PUBLISH)),
            store=store,
            home=tmp_path_factory.mktemp("upload-home"),
        )


def write(directory: Path, filename: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_bytes(data)
    return path


def module(name: str, version: str) -> dict[str, bytes]:
    return {f"{name}/__init__.py": f"__version__ = {version!r}\n".encode()}


# -- twine -----------------------------------------------------------------------------------


def test_twine_uploads_a_wheel_and_an_sdist_and_pip_installs_the_wheel(
    stack: Stack, tmp_path: Path
) -> None:
    wheel = build_wheel("twine-demo", "1.0", modules=module("twine_demo", "1.0"))
    sdist = build_sdist("twine-demo", "1.0")
    files = [write(tmp_path, f.filename, f.data) for f in (wheel, sdist)]
    result = stack.twine(*map(str, files))
    assert result.returncode == 0, result.output
    stack.assert_clean(result.output)
    assert stack.files("twine-demo") == sorted([wheel.filename, sdist.filename])
    python = clients.new_venv(tmp_path / "venv", stack.home)
    installed = clients.pip(
        python, stack.home, "install", "--index-url", stack.index_url(), "twine-demo"
    )
    assert installed.returncode == 0, installed.output
    assert clients.installed_version(python, "twine-demo", stack.home) == "1.0"


def test_a_rerun_passes(stack: Stack, tmp_path: Path) -> None:
    wheel = write(tmp_path, *_wheel("rerun-demo", "1.0"))
    assert stack.twine(str(wheel)).returncode == 0
    before = stack.index()
    again = stack.twine(str(wheel))  # identical bytes: a 200, as PyPI answers
    assert again.returncode == 0, again.output
    assert stack.index() == before


def test_skip_existing_skips_on_our_409_where_twine_allows_it(stack: Stack, tmp_path: Path) -> None:
    """twine 6.2 and later refuse `--skip-existing` for every index but PyPI and TestPyPI, before
    sending anything; twine's skip rule, which 6.1 and earlier apply to every index, is still
    `skip_upload`, and it skips on the 409 a changed file gets here."""
    name, data = _wheel("skip-demo", "1.0")
    assert stack.twine(str(write(tmp_path / "a", name, data))).returncode == 0
    refused = stack.twine("--skip-existing", str(tmp_path / "a" / name))
    assert refused.returncode != 0
    assert "does not have support for the following features: --skip-existing" in flat(refused)
    changed = build_wheel("skip-demo", "1.0", summary="rebuilt, other bytes")
    path = write(tmp_path / "b", changed.filename, changed.data)
    response = _send(stack, changed.filename, changed.data, form_for("skip-demo"))
    assert response.status_code == 409
    package = PackageFile.from_filename(str(path), comment=None)
    assert skip_upload(response, skip_existing=True, package=package)
    assert not skip_upload(response, skip_existing=False, package=package)


def test_twine_6_1_skip_existing_rerun_passes_over_a_changed_file(
    stack: Stack, tmp_path: Path
) -> None:
    """What a CI job pinned to twine 6.1 sees on a rerun: a rebuilt file (other bytes) under a
    published name is skipped with --skip-existing (our 409), refused without it, and the index
    does not change either way."""
    if not TWINE61.exists():
        pytest.fail(f"{TWINE61} is missing: run `make twine61-tool` (make test does)")
    name, data = _wheel("skip-legacy", "1.0")
    first = stack.twine(str(write(tmp_path / "a", name, data)), twine=TWINE61)
    assert first.returncode == 0, first.output
    changed = build_wheel("skip-legacy", "1.0", summary="rebuilt, other bytes")
    path = str(write(tmp_path / "b", changed.filename, changed.data))
    before = stack.index()
    skipped = stack.twine("--skip-existing", path, twine=TWINE61)
    assert skipped.returncode == 0, skipped.output
    assert "Skipping" in flat(skipped)
    refused = stack.twine(path, twine=TWINE61)
    assert refused.returncode != 0
    assert "409" in flat(refused)
    assert stack.index() == before
    stack.assert_clean(skipped.output + refused.output)


def test_a_changed_file_under_a_published_name_is_refused_and_twine_says_why(
    stack: Stack, tmp_path: Path
) -> None:
    name, data = _wheel("changed-demo", "1.0")
    assert stack.twine(str(write(tmp_path / "a", name, data))).returncode == 0
    before = stack.index()
    changed = build_wheel("changed-demo", "1.0", summary="rebuilt, other bytes")
    path = write(tmp_path / "b", changed.filename, changed.data)
    plain = stack.twine(str(path))
    assert plain.returncode != 0
    assert "409 Conflict" in plain.output  # all twine shows without --verbose
    verbose = stack.twine("--verbose", str(path))  # the body, our code and message
    assert verbose.returncode != 0
    assert '{"error": {"code": "file-exists", "message":' in flat(verbose)
    assert "already published with different contents" in flat(verbose)
    stack.assert_clean(verbose.output)
    assert stack.index() == before


def test_a_hostile_file_is_refused_with_its_code_and_the_index_is_unchanged(
    stack: Stack, tmp_path: Path
) -> None:
    wheel = build_wheel("hostile-demo", "1.0")
    data = zip_bytes([*wheel.members, ("../../escape.py", b"import os")])
    before = stack.index()
    result = stack.twine("--verbose", str(write(tmp_path, wheel.filename, data)))
    assert result.returncode != 0
    assert "400 Bad Request" in result.output
    assert '"code": "unsafe-path"' in flat(result)
    assert stack.index() == before
    assert stack.store.info(layout.QUARANTINE, layout.reason_path(wheel.filename)) is not None


def test_a_read_token_is_refused_with_403(stack: Stack, tmp_path: Path) -> None:
    path = write(tmp_path, *_wheel("read-demo", "1.0"))
    result = stack.twine(str(path), token=stack.reader)
    assert result.returncode != 0
    assert "403 Forbidden" in result.output
    assert stack.files("read-demo") == []
    uv = stack.uv_publish(str(path), token=stack.reader)
    assert uv.returncode != 0
    assert "403" in uv.output
    assert "publishing needs a publish token" in uv.output
    stack.assert_clean(result.output + uv.output)


# -- uv --------------------------------------------------------------------------------------


def test_uv_publish_and_a_check_url_rerun(stack: Stack, tmp_path: Path) -> None:
    wheel = write(tmp_path, *_wheel("uv-demo", "1.0"))
    sdist = build_sdist("uv-demo", "1.0")
    files = [str(wheel), str(write(tmp_path, sdist.filename, sdist.data))]
    first = stack.uv_publish(*files)
    assert first.returncode == 0, first.output
    assert stack.files("uv-demo") == sorted([wheel.name, sdist.filename])
    before = stack.index()
    rerun = stack.uv_publish("--check-url", stack.index_url(), *files)
    assert rerun.returncode == 0, rerun.output
    assert "skipping" in rerun.output.lower()
    again = stack.uv_publish(*files)  # without --check-url: identical files answer 200
    assert again.returncode == 0, again.output
    assert stack.index() == before
    stack.assert_clean(first.output + rerun.output + again.output)


def test_uv_shows_the_reason_of_a_refusal(stack: Stack, tmp_path: Path) -> None:
    assert (
        stack.uv_publish(str(write(tmp_path / "a", *_wheel("uv-changed", "1.0")))).returncode == 0
    )
    changed = build_wheel("uv-changed", "1.0", summary="other bytes")
    path = write(tmp_path / "b", changed.filename, changed.data)
    refused = stack.uv_publish(str(path))
    assert refused.returncode != 0
    assert "409 Conflict" in refused.output
    assert "already published with different contents" in refused.output
    checked = stack.uv_publish("--check-url", stack.index_url(), str(path))
    assert checked.returncode != 0  # uv compares the hashes: a different local file is an error
    stack.assert_clean(refused.output + checked.output)


# -- poetry ----------------------------------------------------------------------------------


def test_poetry_publishes_to_a_configured_repository(stack: Stack, tmp_path: Path) -> None:
    if not POETRY.exists():
        pytest.fail(f"{POETRY} is missing: run `make poetry-tool` (make test does)")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "poetry-demo"\nversion = "1.0"\n'
        '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n'
    )
    wheel = build_wheel("poetry-demo", "1.0")
    write(project / "dist", wheel.filename, wheel.data)
    home = tmp_path / "poetry-home"

    def publish() -> clients.Run:
        return clients.run(
            [str(POETRY), "publish", "-r", "wheelvault", "--no-interaction"],
            home,
            cwd=project,
            extra_env={
                "POETRY_CONFIG_DIR": str(home / "config"),
                "POETRY_CACHE_DIR": str(home / "cache"),
                "POETRY_KEYRING_ENABLED": "false",
                "POETRY_REPOSITORIES_WHEELVAULT_URL": stack.legacy,
                "POETRY_HTTP_BASIC_WHEELVAULT_USERNAME": "__token__",
                "POETRY_HTTP_BASIC_WHEELVAULT_PASSWORD": stack.publisher,
            },
        )

    result = publish()
    assert result.returncode == 0, result.output
    assert stack.files("poetry-demo") == [wheel.filename]
    again = publish()  # poetry sends md5, sha256 and blake2_256: all checked, all match
    assert again.returncode == 0, again.output
    changed = build_wheel("poetry-demo", "1.0", summary="other bytes")
    write(project / "dist", changed.filename, changed.data)
    refused = publish()
    assert refused.returncode != 0
    assert "HTTP Error 409: Conflict" in flat(refused)
    assert "already published with different contents" in flat(refused)
    stack.assert_clean(result.output + again.output + refused.output)


# -- raw requests ----------------------------------------------------------------------------


def _send(
    stack: Stack, filename: str, data: bytes, fields: list[tuple[str, str]], token: str | None = ""
) -> requests.Response:
    """POST a form as twine would (`token` "" is the publisher's, None none at all)."""
    body, content_type = encode_multipart_formdata(
        [*fields, ("content", (filename, data, "application/octet-stream"))]
    )
    headers = {"Content-Type": content_type}
    if token is not None:
        basic = base64.b64encode(f"__token__:{token or stack.publisher}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    session = requests.Session()
    session.trust_env = False  # no proxy from this machine's environment
    return session.post(stack.legacy, data=body, headers=headers, timeout=30)


def _post(stack: Stack, fields: list[tuple[str, str]], token: str | None) -> requests.Response:
    wheel = build_wheel("raw-demo", "1.0")
    return _send(stack, wheel.filename, wheel.data, fields, token)


FORM = [(":action", "file_upload"), ("protocol_version", "1"), ("filetype", "bdist_wheel")]


def form_for(name: str, version: str = "1.0") -> list[tuple[str, str]]:
    return [*FORM, ("name", name), ("version", version)]


def test_no_token_is_a_401_with_the_basic_challenge(stack: Stack) -> None:
    response = _post(stack, [*FORM, ("name", "raw-demo"), ("version", "1.0")], None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="wheelvault"'


def test_a_form_that_misnames_its_file_is_refused(stack: Stack) -> None:
    response = _post(stack, [*FORM, ("name", "other"), ("version", "1.0")], stack.publisher)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "form-mismatch"
    assert stack.files("raw-demo") == []


def flat(run: clients.Run) -> str:
    """A client's output on one line: rich wraps twine's at 80 columns."""
    return " ".join(run.output.split())


def _wheel(name: str, version: str) -> tuple[str, bytes]:
    built = build_wheel(name, version)
    return built.filename, built.data
