"""The README's "Installing from the index" section, snippet by snippet, with real pip, uv and
poetry; and dependency confusion measured with each client.

Every fenced code block in that section is marked `<!-- snippet: NAME -->` ... `<!-- /snippet -->`
(or `<!-- snippet: NAME (not run: WHY) -->`). Each run snippet is taken from README.md, its
placeholders replaced (`https://pkgs.example.com` by the local host, over plain HTTP;
`TOKEN` by a real read token; `demo-pkg` is published as it is) and run in bash against the
local host of tests/e2e/test_clients.py, with a PATH that holds only pip (this checkout's,
installing into a fresh venv), uv, keyring and poetry (.venv-poetry, see the Makefile).

"Public PyPI" is a pypiserver on loopback (no fallback to the real PyPI): it holds `six 99.0`
and `public-only 1.0`; the private index holds `six 0.9.0`, `acme-lib 1.0` (requires six),
`acme-app 1.0` (requires acme-lib) and `acme-strict 1.0` (requires six>=1). The stand-in
takes PyPI's place through each client's own setting for its default index (PIP_INDEX_URL,
UV_DEFAULT_INDEX); poetry's `PyPI` source has a fixed URL, so there the README line that adds it
is replaced by one that adds the stand-in.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.front_door import PypiServer
from devhost.wheels import build_wheel
from tests.e2e.test_clients import Stack, module, stack
from tests.support import clients
from tests.support.readme import SNIPPET, Snippet

pytestmark = pytest.mark.e2e

__all__ = ["stack"]  # the module-scoped local host fixture, shared with test_clients.py

ROOT = Path(__file__).resolve().parents[2]
POETRY = ROOT / ".venv-poetry" / "bin" / "poetry"
KEYRING = Path(sys.executable).parent / "keyring"
# Every snippet this file runs; a snippet the README adds must be run here or say why not.
RUN = {
    "pip-oneoff",
    "pip-conf",
    "pip-env",
    "uv-pip",
    "uv-project",
    "uv-credentials",
    "poetry",
    "netrc",
    "netrc-install",
    "keyring-set",
    "keyring-install",
}
POETRY_PYPI_LINE = "poetry source add --priority=supplemental PyPI"


def section() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^## Installing from the index\n(.*?)^## ", readme, re.S | re.M)
    assert found, "README.md lost its 'Installing from the index' section"
    return found[1]


def snippets() -> dict[str, Snippet]:
    return {
        m["name"]: Snippet(m["name"], m["lang"], m["body"], m["why"])
        for m in SNIPPET.finditer(section())
    }


# ---------------------------------------------------------------- the section's own shape


def test_every_code_block_in_the_section_is_a_marked_snippet() -> None:
    text = section()
    names = [m["name"] for m in SNIPPET.finditer(text)]
    assert len(names) == len(set(names)), f"a snippet name is used twice: {names}"
    rest = SNIPPET.sub("", text)
    assert "```" not in rest, "a fenced block without <!-- snippet: NAME --> ... <!-- /snippet -->"
    assert "<!-- snippet" not in rest, "a broken snippet marker"
    assert "<!-- /snippet" not in rest, "a broken snippet marker"


def test_the_clients_are_offline(place: Place) -> None:
    """Anything but loopback goes to a proxy that is not there (HTTP(S)_PROXY in Place.env)."""
    pypi = "https://pypi.org/simple/"
    pip = place.sh(f"pip download -vv --retries 0 --no-deps -d . --index-url {pypi} six")
    assert pip.returncode != 0
    assert "Unable to connect to proxy" in pip.output, pip.output
    uv = place.sh(f"echo six | uv pip compile --no-cache --index-url {pypi} -", UV_HTTP_RETRIES="0")
    assert uv.returncode != 0
    assert "tunnel error" in uv.output, uv.output
    assert not list(place.project.glob("*.whl"))


def test_every_snippet_is_run_or_says_why_not() -> None:
    for name, snip in snippets().items():
        if snip.why_not_run is not None:
            assert snip.why_not_run.startswith("not run: "), name
            assert name not in RUN, f"{name} is run, its marker says not"
        else:
            assert name in RUN, f"snippet {name} is not run by this file and does not say why"
    assert snippets().keys() >= RUN, f"snippets gone from README.md: {RUN - snippets().keys()}"


# ---------------------------------------------------------------- fixtures


@dataclass
class Indexes:
    stack: Stack
    public: PypiServer
    tools: Path  # a bin directory with pip, uv, keyring and poetry only
    base: Path

    @property
    def public_url(self) -> str:
        return f"http://{self.public.authority}/simple/"

    @property
    def host(self) -> str:
        return self.stack.url.removeprefix("http://")


@pytest.fixture(scope="module")
def indexes(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexes]:
    base = tmp_path_factory.mktemp("readme-clients")
    stack.publish(build_wheel("demo-pkg", "1.0", modules=module("demo_pkg", "1.0")))
    stack.publish(build_wheel("six", "0.9.0", modules=module("six", "0.9.0-private")))
    stack.publish(
        build_wheel("acme-lib", "1.0", requires_dist=["six"], modules=module("acme_lib", "1.0"))
    )
    stack.publish(
        build_wheel(
            "acme-app", "1.0", requires_dist=["acme-lib"], modules=module("acme_app", "1.0")
        )
    )
    stack.publish(
        build_wheel(
            "acme-strict",
            "1.0",
            requires_dist=["six>=1"],  # no private six matches
            modules=module("acme_strict", "1.0"),
        )
    )
    packages = base / "public-packages"
    packages.mkdir()
    for wheel in (
        build_wheel("six", "99.0", modules=module("six", "99.0-public")),
        build_wheel("public-only", "1.0", modules=module("public_only", "1.0")),
    ):
        (packages / wheel.filename).write_bytes(wheel.data)
    tools = base / "bin"
    tools.mkdir()
    pip_shim = tools / "pip"
    pip_shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pip --python "$VIRTUAL_ENV" "$@"\n')
    pip_shim.chmod(0o755)
    (tools / "uv").symlink_to(clients.UV)
    (tools / "keyring").symlink_to(KEYRING)
    if POETRY.exists():
        (tools / "poetry").symlink_to(POETRY)
    with PypiServer(packages, base / "pypiserver.log") as public:
        yield Indexes(stack, public, tools, base)


@dataclass
class Place:
    """One isolated client run: a fresh HOME, a fresh venv, a project directory."""

    indexes: Indexes
    home: Path
    venv: Path
    project: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        env = clients.clean_env(self.home)
        env.update(
            {
                "PATH": f"{self.indexes.tools}:/usr/bin:/bin",
                "VIRTUAL_ENV": str(self.venv),
                "XDG_DATA_HOME": str(self.home / ".local" / "share"),
                "XDG_CONFIG_DIRS": str(self.home / "no-system-config"),
                "POETRY_CONFIG_DIR": str(self.home / "poetry-config"),
                "POETRY_CACHE_DIR": str(self.home / "poetry-cache"),
                "POETRY_DATA_DIR": str(self.home / "poetry-data"),
                "POETRY_VIRTUALENVS_IN_PROJECT": "true",
                "POETRY_VIRTUALENVS_USE_POETRY_PYTHON": "true",
                "POETRY_VIRTUALENVS_OPTIONS_NO_PIP": "true",
                "POETRY_KEYRING_ENABLED": "false",
                "POETRY_NO_INTERACTION": "1",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
                # offline: anything but loopback goes to a proxy that is not there
                "HTTP_PROXY": "http://127.0.0.1:9",
                "HTTPS_PROXY": "http://127.0.0.1:9",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        env.update(extra)
        return env

    def sh(self, script: str, stdin: str | None = None, **extra: str) -> clients.Run:
        env = self.env(**extra)
        for name in [k for k, v in env.items() if v == "<unset>"]:
            del env[name]
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            env=env,
            cwd=self.project,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return clients.Run(done.returncode, done.stdout, done.stderr)

    def version(self, distribution: str, python: Path | None = None) -> str | None:
        return clients.installed_version(python or self.python, distribution, self.home)

    def project_version(self, distribution: str) -> str | None:
        return self.version(distribution, self.project / ".venv" / "bin" / "python")

    def write_project(self, extra: str = "", dependencies: str = "") -> None:
        (self.project / "pyproject.toml").write_text(
            "[project]\n"
            'name = "consumer"\n'
            'version = "0.1.0"\n'
            'requires-python = ">=3.11"\n'
            f"dependencies = [{dependencies}]\n" + extra
        )


@pytest.fixture
def place(indexes: Indexes, tmp_path: Path) -> Place:
    home = tmp_path / "home"
    venv = tmp_path / "venv"
    clients.new_venv(venv, home)
    project = tmp_path / "project"
    project.mkdir()
    return Place(indexes, home, venv, project)


def snippet(name: str, indexes: Indexes, *, host_only: bool = False) -> str:
    """The README's snippet with the local host and a real token in place of the placeholders."""
    body = snippets()[name].body
    host = indexes.host.split(":")[0] if host_only else indexes.host
    return (
        body.replace("https://", "http://")  # the local host speaks plain HTTP
        .replace("pkgs.example.com", host)
        .replace("TOKEN", indexes.stack.reader)
    )


def assert_ok(result: clients.Run, indexes: Indexes) -> None:
    assert result.returncode == 0, result.output
    assert indexes.stack.reader not in result.output, "the token reached the client's output"


# ---------------------------------------------------------------- the snippets


def test_pip_oneoff(place: Place, indexes: Indexes) -> None:
    result = place.sh(snippet("pip-oneoff", indexes))
    assert_ok(result, indexes)
    assert place.version("demo-pkg") == "1.0"


def test_pip_conf_in_the_user_config_file(place: Place, indexes: Indexes) -> None:
    conf = place.home / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(snippet("pip-conf", indexes))
    result = place.sh("pip install -v demo-pkg", PIP_CONFIG_FILE="<unset>")
    assert_ok(result, indexes)
    assert str(conf) in result.output or "Looking in indexes: http://reader:****@" in result.output
    assert place.version("demo-pkg") == "1.0"


def test_pip_index_url_from_the_environment(place: Place, indexes: Indexes) -> None:
    result = place.sh(snippet("pip-env", indexes))
    assert_ok(result, indexes)
    assert place.version("demo-pkg") == "1.0"


def test_uv_pip(place: Place, indexes: Indexes) -> None:
    result = place.sh(snippet("uv-pip", indexes))
    assert_ok(result, indexes)
    assert place.version("demo-pkg") == "1.0"


def test_uv_project_with_credentials_from_the_environment(place: Place, indexes: Indexes) -> None:
    place.write_project("\n" + snippet("uv-project", indexes))
    result = place.sh(
        snippet("uv-credentials", indexes),
        UV_PYTHON=sys.executable,  # the project's interpreter (never VIRTUAL_ENV's install target)
        UV_NO_CONFIG="<unset>",
        UV_DEFAULT_INDEX=indexes.public_url,
    )
    assert_ok(result, indexes)
    assert place.project_version("demo-pkg") == "1.0"
    lock = (place.project / "uv.lock").read_text()
    assert f"http://{indexes.host}/files/demo-pkg/" in lock
    assert "?" not in "".join(re.findall(r'url = "([^"]+)"', lock)), "a query in uv.lock"
    assert indexes.stack.reader not in lock
    assert indexes.stack.reader not in (place.project / "pyproject.toml").read_text()


def poetry_script(name: str, indexes: Indexes) -> str:
    script = snippet(name, indexes)
    assert POETRY_PYPI_LINE in script
    return script.replace(
        POETRY_PYPI_LINE,
        f"poetry source add --priority=supplemental public {indexes.public_url}",
    )


def require_poetry() -> None:
    if not POETRY.exists():
        pytest.fail(f"{POETRY} is missing: run `make poetry-tool` (make test does)")


def test_poetry(place: Place, indexes: Indexes) -> None:
    require_poetry()
    place.write_project("\n[tool.poetry]\npackage-mode = false\n")
    result = place.sh(poetry_script("poetry", indexes))
    assert_ok(result, indexes)
    assert place.version("demo-pkg") == "1.0"  # poetry installs into the active VIRTUAL_ENV
    lock = (place.project / "poetry.lock").read_text()
    assert "demo-pkg" in lock
    assert indexes.stack.reader not in lock
    assert indexes.stack.reader not in (place.project / "pyproject.toml").read_text()


def each_line(place: Place, script: str, **extra: str) -> list[tuple[str, clients.Run, Path]]:
    """Each command of `script` on its own: a fresh venv and fresh pip/uv caches, so a later
    line cannot pass on what an earlier one installed or cached."""
    runs: list[tuple[str, clients.Run, Path]] = []
    for number, line in enumerate(script.splitlines()):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = place.home.parent / f"line-{number}-{len(runs)}-{extra.get('tag', '')}"
        python = clients.new_venv(where / "venv", place.home)
        result = place.sh(
            line,
            VIRTUAL_ENV=str(where / "venv"),
            PIP_CACHE_DIR=str(where / "pip-cache"),
            UV_CACHE_DIR=str(where / "uv-cache"),
            **{k: v for k, v in extra.items() if k != "tag"},
        )
        runs.append((line, result, python))
    return runs


def test_netrc_with_pip_and_uv(place: Place, indexes: Indexes) -> None:
    netrc = place.home / ".netrc"
    netrc.write_text(snippet("netrc", indexes, host_only=True))
    netrc.chmod(0o600)
    assert "TOKEN" not in snippets()["netrc-install"].body
    runs = each_line(place, snippet("netrc-install", indexes), tag="netrc")
    assert [line.split()[0] for line, _, _ in runs] == ["pip", "uv"]
    for line, result, python in runs:
        assert_ok(result, indexes)
        assert clients.installed_version(python, "demo-pkg", place.home) == "1.0", line
    # the same lines without the netrc are refused: it was the netrc that authenticated
    netrc.unlink()
    for line, result, python in each_line(place, snippet("netrc-install", indexes), tag="none"):
        assert result.returncode != 0, line
        assert clients.installed_version(python, "demo-pkg", place.home) is None, line


def test_keyring_with_pip_and_uv(place: Place, indexes: Indexes) -> None:
    plaintext = "keyrings.alt.file.PlaintextKeyring"
    stored = place.sh(
        snippet("keyring-set", indexes),
        stdin=indexes.stack.reader + "\n",
        PYTHON_KEYRING_BACKEND=plaintext,
    )
    assert stored.returncode == 0, stored.output
    assert "TOKEN" not in snippets()["keyring-install"].body
    script = snippet("keyring-install", indexes)
    runs = each_line(place, script, tag="keyring", PYTHON_KEYRING_BACKEND=plaintext)
    assert [line.split()[0] for line, _, _ in runs] == ["pip", "uv"]
    for line, result, python in runs:
        assert_ok(result, indexes)
        assert clients.installed_version(python, "demo-pkg", place.home) == "1.0", line
    # with keyring's null backend (nothing stored) the same lines are refused
    for line, result, python in each_line(place, script, tag="null"):
        assert result.returncode != 0, line
        assert clients.installed_version(python, "demo-pkg", place.home) is None, line


# ---------------------------------------------------------------- dependency confusion
#
# private: six 0.9.0, acme-lib 1.0 (requires six), acme-app 1.0 (requires acme-lib),
#          acme-strict 1.0 (requires six>=1, which no private six matches)
# public:  six 99.0, public-only 1.0


def private_url(indexes: Indexes) -> str:
    return indexes.stack.index_url()


def test_confusion_pip_index_url_takes_everything_from_the_private_index(
    place: Place, indexes: Indexes
) -> None:
    result = place.sh(f"pip install --index-url {private_url(indexes)} acme-app")
    assert result.returncode == 0, result.output
    assert place.version("six") == "0.9.0"
    # ... and nothing else: a public-only package is not found
    public = place.sh(f"pip install --index-url {private_url(indexes)} public-only")
    assert public.returncode != 0
    assert place.version("public-only") is None


def test_confusion_pip_extra_index_url_installs_the_public_six(
    place: Place, indexes: Indexes
) -> None:
    result = place.sh(
        f"pip install --extra-index-url {private_url(indexes)} acme-app public-only",
        PIP_INDEX_URL=indexes.public_url,
    )
    assert result.returncode == 0, result.output
    assert place.version("acme-app") == "1.0"
    assert place.version("six") == "99.0"  # the public one: dependency confusion


def test_confusion_uv_pip_extra_index_url_keeps_the_private_six(
    place: Place, indexes: Indexes
) -> None:
    result = place.sh(
        f"uv pip install --extra-index-url {private_url(indexes)} acme-app public-only",
        UV_DEFAULT_INDEX=indexes.public_url,
    )
    assert result.returncode == 0, result.output
    assert place.version("six") == "0.9.0"  # uv's first-index rule: the private index first
    assert place.version("public-only") == "1.0"


def uv_project(place: Place, indexes: Indexes, dependencies: str, extra: str) -> clients.Run:
    place.write_project(extra, dependencies)
    return place.sh(
        "uv sync",
        UV_PYTHON=sys.executable,
        UV_NO_CONFIG="<unset>",
        UV_DEFAULT_INDEX=indexes.public_url,
        UV_INDEX_WHEELVAULT_USERNAME="reader",
        UV_INDEX_WHEELVAULT_PASSWORD=indexes.stack.reader,
    )


def test_confusion_uv_project_index_first_keeps_the_private_six(
    place: Place, indexes: Indexes
) -> None:
    toml = "\n" + snippet("uv-project", indexes)
    result = uv_project(place, indexes, '"acme-app", "public-only"', toml)
    assert result.returncode == 0, result.output
    assert place.project_version("acme-app") == "1.0"
    assert place.project_version("acme-lib") == "1.0"
    assert place.project_version("six") == "0.9.0"
    assert place.project_version("public-only") == "1.0"


def test_confusion_uv_project_index_first_never_falls_through_to_public(
    place: Place, indexes: Indexes
) -> None:
    """A name wheelvault has is never taken from PyPI, even when no private version matches."""
    toml = "\n" + snippet("uv-project", indexes)
    result = uv_project(place, indexes, '"acme-strict"', toml)
    assert result.returncode != 0
    assert "only six==0.9.0 is available" in result.output, result.output
    assert place.project_version("six") is None


EXPLICIT_INDEX = """
[[tool.uv.index]]
name = "wheelvault"
url = "{url}/simple/"
authenticate = "always"
explicit = true

[tool.uv.sources]
{pinned} = {{ index = "wheelvault" }}
"""


def test_confusion_uv_sources_pin_direct_dependencies_only(place: Place, indexes: Indexes) -> None:
    toml = EXPLICIT_INDEX.format(url=indexes.stack.url, pinned="acme-lib")
    result = uv_project(place, indexes, '"acme-lib"', toml)
    assert result.returncode == 0, result.output
    assert place.project_version("acme-lib") == "1.0"
    assert place.project_version("six") == "99.0"  # the transitive six came from public


def test_confusion_uv_sources_fail_for_a_transitive_private_dependency(
    place: Place, indexes: Indexes
) -> None:
    toml = EXPLICIT_INDEX.format(url=indexes.stack.url, pinned="acme-app")
    result = uv_project(place, indexes, '"acme-app"', toml)
    assert result.returncode != 0
    assert "acme-lib was not found in the package registry" in result.output, result.output


POETRY_SOURCES = """
[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "{first}"
url = "{first_url}"
priority = "{first_priority}"

[[tool.poetry.source]]
name = "{second}"
url = "{second_url}"
priority = "{second_priority}"
"""


def poetry_project(
    place: Place,
    indexes: Indexes,
    wheelvault: str,
    public: str,
    *,
    private_first: bool = True,
    dependencies: str = '"acme-app", "public-only"',
    extra: str = "",
) -> clients.Run:
    require_poetry()
    sources = [
        ("wheelvault", f"{indexes.stack.url}/simple/", wheelvault),
        ("public", indexes.public_url, public),
    ]
    if not private_first:
        sources.reverse()
    (first, first_url, first_priority), (second, second_url, second_priority) = sources
    place.write_project(
        POETRY_SOURCES.format(
            first=first,
            first_url=first_url,
            first_priority=first_priority,
            second=second,
            second_url=second_url,
            second_priority=second_priority,
        )
        + extra,
        dependencies,
    )
    return place.sh(
        "poetry install",
        POETRY_HTTP_BASIC_WHEELVAULT_USERNAME="reader",
        POETRY_HTTP_BASIC_WHEELVAULT_PASSWORD=indexes.stack.reader,
    )


def test_confusion_poetry_snippet_primary_with_public_supplemental_keeps_the_private_six(
    place: Place, indexes: Indexes
) -> None:
    """The README's poetry snippet, with acme-app and public-only for demo-pkg."""
    require_poetry()
    place.write_project("\n[tool.poetry]\npackage-mode = false\n")
    script = poetry_script("poetry", indexes)
    assert "poetry add demo-pkg" in script
    result = place.sh(script.replace("poetry add demo-pkg", "poetry add acme-app public-only"))
    assert result.returncode == 0, result.output
    assert place.version("acme-lib") == "1.0"
    assert place.version("six") == "0.9.0"
    assert place.version("public-only") == "1.0"


def test_confusion_poetry_supplemental_installs_the_public_six(
    place: Place, indexes: Indexes
) -> None:
    result = poetry_project(place, indexes, "supplemental", "primary", private_first=False)
    assert result.returncode == 0, result.output
    assert place.version("acme-lib") == "1.0"
    assert place.version("six") == "99.0"


def test_confusion_poetry_two_primary_sources_install_the_public_six(
    place: Place, indexes: Indexes
) -> None:
    result = poetry_project(place, indexes, "primary", "primary")
    assert result.returncode == 0, result.output
    assert place.version("acme-lib") == "1.0"
    assert place.version("six") == "99.0"


def test_confusion_poetry_explicit_source_pins_direct_dependencies_only(
    place: Place, indexes: Indexes
) -> None:
    result = poetry_project(
        place,
        indexes,
        "explicit",
        "primary",
        dependencies='"acme-lib", "public-only"',
        extra='\n[tool.poetry.dependencies]\nacme-lib = { source = "wheelvault" }\n',
    )
    assert result.returncode == 0, result.output
    assert place.version("acme-lib") == "1.0"
    assert place.version("six") == "99.0"  # the transitive six came from public


def test_confusion_poetry_snippet_falls_through_to_public_when_no_private_version_matches(
    place: Place, indexes: Indexes
) -> None:
    require_poetry()
    place.write_project("\n[tool.poetry]\npackage-mode = false\n")
    script = poetry_script("poetry", indexes)
    result = place.sh(script.replace("poetry add demo-pkg", "poetry add acme-strict"))
    assert result.returncode == 0, result.output
    assert place.version("acme-strict") == "1.0"
    assert place.version("six") == "99.0"  # from the supplemental public source
