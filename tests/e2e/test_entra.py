"""End to end: Entra ID sign-in with the real clients against `make run`'s stack (issue 14).

One stack for the module (devhost.stack.Stack on free ports: Azurite, the Key Vault and Entra ID
stand-ins, the functions host). Each client runs as a process in a clean environment
(tests/support/clients.py: no PIP_*/UV_*, PIP_CONFIG_FILE=/dev/null, `uv --no-config`, a private
HOME, so no keyring configuration of this machine and no PYTHON_KEYRING_BACKEND) plus exactly what
`eval "$(wheelvault entra env --role …)"` exports: the stand-in as the shell's managed identity
and the index for the wheelvault keyring backend. The clients never see a token: pip, uv, twine
and uv publish ask keyring, keyring asks the backend, the backend asks DefaultAzureCredential.

Every case also runs its control: the same command without that environment, or as a principal
without the role, is refused; a broken sign-in could not pass.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devhost.stack import Ports, Stack
from devhost.wheels import BuiltWheel, build_wheel
from tests.support import clients

pytestmark = pytest.mark.e2e

WHEELVAULT = clients.BIN / "wheelvault"
TWINE = clients.BIN / "twine"
EXPORTED = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AZURE_CLIENT_ID",
    "REQUESTS_CA_BUNDLE",
    "WHEELVAULT_KEYRING_INDEXES",
    "WHEELVAULT_ENTRA_SCOPE",
)
"""What `wheelvault entra env` exports."""
SEEDED = "entra-demo"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Local:
    stack: Stack
    home: Path

    @property
    def origin(self) -> str:
        return self.stack.public_url

    @property
    def host(self) -> str:
        return self.origin.removeprefix("http://")

    def simple(self, user: str = "") -> str:
        return f"http://{user + '@' if user else ''}{self.host}/simple/"

    def legacy(self) -> str:
        return f"{self.origin}/legacy/"

    def wheelvault(self, *args: str, env: dict[str, str] | None = None) -> clients.Run:
        """The installed command for this stack's root (it finds the stack in stack.json)."""
        command = [str(WHEELVAULT), "--root", str(self.stack.paths.root), *args]
        return clients.run(command, self.home, extra_env=env, timeout=120)

    def signed_in_as(self, *who: str) -> dict[str, str]:
        """The variables `eval "$(wheelvault entra env …)"` leaves in a shell, with the
        `keyring` command on PATH (the subprocess providers run it)."""
        command = shlex.join(
            [str(WHEELVAULT), "--root", str(self.stack.paths.root), "entra", "env", *who]
        )
        python = shlex.quote(sys.executable)
        dump = f"{python} -c 'import json, os; print(json.dumps(dict(os.environ)))'"
        shell = clients.run(["bash", "-c", f'eval "$({command})" && {dump}'], self.home)
        assert shell.returncode == 0, shell.output
        after = json.loads(shell.stdout)
        assert set(EXPORTED) <= set(after), shell.output
        return {
            **{name: after[name] for name in EXPORTED},
            "PATH": f"{clients.BIN}{os.pathsep}{os.environ['PATH']}",
        }

    def mark(self) -> int:
        """Where the host's request log ends now (for `answered`)."""
        return self.stack.paths.log("host").stat().st_size

    def answered(self, mark: int) -> str:
        """The host's request log lines since `mark`: what the index really answered, where
        pip says only "from versions: none"."""
        with self.stack.paths.log("host").open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    def listed(self, project: str) -> str:
        """The project's simple page, read with the local wheelvault reader token."""
        request = urllib.request.Request(f"{self.simple()}{project}/")
        credential = f"local-reader:{self.stack.reader_token}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(credential).decode())
        try:
            with DIRECT.open(request, timeout=10) as reply:
                return str(reply.read().decode())
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code}"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    root = tmp_path_factory.mktemp("entra-stack")
    with Stack(root, ports=Ports(blob=0, vault=0, host=0, entra=0)) as stack:
        built = Local(stack, tmp_path_factory.mktemp("entra-home"))
        wheel = write(root / "seed", build_wheel(SEEDED, "1.0", modules=module(SEEDED, "1.0")))
        seeded = built.wheelvault("upload", "--wait", str(wheel))  # the local publisher token
        assert seeded.returncode == 0, seeded.output
        yield built


def module(name: str, version: str) -> dict[str, bytes]:
    return {f"{name.replace('-', '_')}/__init__.py": f"__version__ = {version!r}\n".encode()}


def write(directory: Path, wheel: BuiltWheel) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / wheel.filename
    path.write_bytes(wheel.data)
    return path


def fresh_wheel(tmp_path: Path, project: str) -> Path:
    return write(tmp_path / "dist", build_wheel(project, "1.0", modules=module(project, "1.0")))


def assert_no_token(run: clients.Run) -> None:
    """Tokens reach the index, never a client's output (every JWT starts with eyJ)."""
    assert "eyJ" not in run.output


def pip_install(
    local: Local, where: Path, index_url: str, provider: str, env: dict[str, str] | None
) -> clients.Run:
    """pip installing the seeded package into `where`, asking keyring as `provider` says.

    `import`: keyring is imported by pip's own process, so that is this checkout's python (with
    keyring and the wheelvault backend) installing into a target directory (`pip --python`
    would re-run pip under the target's python). `subprocess`: pip runs the `keyring` command,
    so it installs into a fresh venv like any pip would."""
    install = [sys.executable, "-m", "pip"]
    if provider == "import":
        install += ["install", "--target", str(where)]
    else:
        python = clients.new_venv(where, local.home)
        install += ["--python", str(python), "install"]
    options = ["--keyring-provider", provider, "--index-url", index_url, SEEDED]
    return clients.run([*install, *options], local.home, extra_env=env)


# -- installing as the reader ----------------------------------------------------------------


def test_pip_with_the_keyring_imported_installs_as_the_reader(local: Local, tmp_path: Path) -> None:
    reader = local.signed_in_as("--role", "read")
    run = pip_install(local, tmp_path / "a", local.simple(), "import", reader)
    assert run.returncode == 0, run.output
    assert (tmp_path / "a" / "entra_demo" / "__init__.py").read_text() == "__version__ = '1.0'\n"
    assert_no_token(run)
    mark = local.mark()
    refused = pip_install(local, tmp_path / "b", local.simple(), "import", None)
    assert refused.returncode != 0
    assert f"GET /simple/{SEEDED}/ 401" in local.answered(mark)
    assert f"GET /simple/{SEEDED}/ 200" not in local.answered(mark)


def test_pip_with_the_keyring_command_installs_as_the_reader(local: Local, tmp_path: Path) -> None:
    """The subprocess provider asks only for a URL with a username (`keyring get URL entra`)."""
    reader = local.signed_in_as("--role", "read")
    run = pip_install(local, tmp_path / "a", local.simple("entra"), "subprocess", reader)
    assert run.returncode == 0, run.output
    python = tmp_path / "a" / "bin" / "python"
    assert clients.installed_version(python, SEEDED, local.home) == "1.0"
    assert_no_token(run)
    nobody = local.signed_in_as("--principal", "nobody")  # signed in, but no wheelvault role
    mark = local.mark()
    refused = pip_install(local, tmp_path / "b", local.simple("entra"), "subprocess", nobody)
    assert refused.returncode != 0
    assert f"GET /simple/{SEEDED}/ 403" in local.answered(mark)
    assert_no_token(refused)


def test_uv_with_the_keyring_command_installs_as_the_reader(local: Local, tmp_path: Path) -> None:
    python = clients.new_venv(tmp_path / "venv", local.home)

    def uv_install(env: dict[str, str] | None) -> clients.Run:
        command = [clients.UV, "pip", "install", "--no-config", "--python", str(python)]
        options = ["--keyring-provider", "subprocess", "--index-url", local.simple("entra")]
        return clients.run([*command, *options, SEEDED], local.home, extra_env=env)

    mark = local.mark()
    refused = uv_install({"PATH": f"{clients.BIN}{os.pathsep}{os.environ['PATH']}"})
    assert refused.returncode != 0, refused.output  # keyring there, but no identity to sign in
    assert f"GET /simple/{SEEDED}/ 401" in local.answered(mark)
    run = uv_install(local.signed_in_as("--role", "read"))
    assert run.returncode == 0, run.output
    assert clients.installed_version(python, SEEDED, local.home) == "1.0"
    assert_no_token(run)


def test_an_entra_token_as_the_basic_password_installs_with_plain_pip(
    local: Local, tmp_path: Path
) -> None:
    """`wheelvault entra token` for clients without keyring: https://x:TOKEN@host/simple/."""
    printed = local.wheelvault("entra", "token", "--role", "read")
    assert printed.returncode == 0, printed.output
    token = printed.stdout.strip()
    assert token.startswith("eyJ")
    assert "principal 'reader' (Packages.Read)" in printed.stderr
    python = clients.new_venv(tmp_path / "venv", local.home)
    run = clients.pip(
        python, local.home, "install", "--index-url", local.simple(f"x:{token}"), SEEDED
    )
    assert run.returncode == 0, run.output
    assert clients.installed_version(python, SEEDED, local.home) == "1.0"
    nobody = local.wheelvault("entra", "token", "--principal", "nobody").stdout.strip()
    mark = local.mark()
    index = local.simple(f"x:{nobody}")
    refused = clients.pip(python, local.home, "install", "--index-url", index, "entra-other")
    assert refused.returncode != 0
    assert "GET /simple/entra-other/ 403" in local.answered(mark)


# -- publishing as the publisher -------------------------------------------------------------


def twine(local: Local, path: Path, env: dict[str, str] | None) -> clients.Run:
    """`twine upload -u entra` with no password: twine asks keyring for it."""
    command = [str(TWINE), "upload", "--non-interactive", "--disable-progress-bar", "--verbose"]
    options = ["--repository-url", local.legacy(), "-u", "entra", str(path)]
    return clients.run([*command, *options], local.home, extra_env=env)


def test_twine_publishes_as_the_publisher_and_not_as_the_reader(
    local: Local, tmp_path: Path
) -> None:
    path = fresh_wheel(tmp_path, "entra-twine")
    without = twine(local, path, None)
    assert without.returncode != 0, without.output  # no password: keyring had none to give
    as_reader = twine(local, path, local.signed_in_as("--role", "read"))
    assert as_reader.returncode != 0
    flat = " ".join(as_reader.output.split())
    assert "403 Forbidden" in flat
    assert "publishing needs the Packages.Publish role" in flat
    assert path.name not in local.listed("entra-twine")
    run = twine(local, path, local.signed_in_as("--role", "publish"))
    assert run.returncode == 0, run.output
    assert path.name in local.listed("entra-twine")
    assert_no_token(run)
    assert_no_token(as_reader)


def test_uv_publish_with_the_keyring_command_publishes_as_the_publisher(
    local: Local, tmp_path: Path
) -> None:
    path = fresh_wheel(tmp_path, "entra-uv")

    def uv_publish(env: dict[str, str]) -> clients.Run:
        command = [clients.UV, "publish", "--no-config", "--publish-url", local.legacy()]
        options = ["--keyring-provider", "subprocess", "--username", "entra", str(path)]
        return clients.run([*command, *options], local.home, extra_env=env)

    as_reader = uv_publish(local.signed_in_as("--role", "read"))
    assert as_reader.returncode != 0
    assert "Packages.Publish" in as_reader.output
    run = uv_publish(local.signed_in_as("--role", "publish"))
    assert run.returncode == 0, run.output
    assert path.name in local.listed("entra-uv")
    assert_no_token(run)


# -- the wheelvault command ------------------------------------------------------------------


def test_wheelvault_upload_and_sas_sign_in_with_entra(local: Local, tmp_path: Path) -> None:
    """Locally, --entra signs in as the stand-in's publisher (upload) or reader (sas)."""
    path = fresh_wheel(tmp_path, "entra-cli")
    # A vault that does not answer: no local wheelvault token could stand in for the sign-in.
    no_vault = ("--vault-url", "https://127.0.0.1:9")
    uploaded = local.wheelvault(*no_vault, "upload", "--entra", "--wait", str(path))
    assert uploaded.returncode == 0, uploaded.output
    assert f"{path.name}: published" in uploaded.stdout
    urls = local.wheelvault(*no_vault, "sas", "--entra", "entra-cli")
    assert urls.returncode == 0, urls.output
    assert path.name in urls.stdout
    without = local.wheelvault(*no_vault, "sas", "entra-cli")
    assert without.returncode == 1
    assert "no --token given and the local token 'local-reader' could not be read" in without.stderr
    assert_no_token(uploaded)
    assert_no_token(urls)


def test_wheelvault_entra_follows_default_azure_credential(local: Local, tmp_path: Path) -> None:
    """With the scope (here from `entra env`), --entra is DefaultAzureCredential's identity:
    the reader's is refused for publishing, the publisher's publishes."""
    path = fresh_wheel(tmp_path, "entra-dac")
    as_reader = local.wheelvault(
        "upload", "--entra", str(path), env=local.signed_in_as("--role", "read")
    )
    assert as_reader.returncode == 1
    assert "403 forbidden" in as_reader.stderr
    assert "Packages.Publish" in as_reader.stderr
    publisher = local.signed_in_as("--role", "publish")
    uploaded = local.wheelvault("upload", "--entra", "--wait", str(path), env=publisher)
    assert uploaded.returncode == 0, uploaded.output
    assert f"{path.name}: published" in uploaded.stdout
    other_app = local.wheelvault(
        "sas", "--entra-scope", "api://other-app/.default", "entra-dac", env=publisher
    )
    assert other_app.returncode == 1  # a token for another app is not one for the index
    assert "401 unauthorized" in other_app.stderr
    assert_no_token(as_reader)
    assert_no_token(other_app)
