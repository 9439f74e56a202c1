"""The README's publishing instructions, snippet by snippet, with the real clients against the
upload API of the local functions host (the stack of tests/e2e/test_upload_api.py).

The marked blocks of "### The upload API: twine, uv publish, poetry publish" and "### Publishing
from CI" are taken from README.md, `https://pkgs.example.com` made the local host over plain
HTTP, and run in bash in a directory whose dist/ holds a freshly built wheel and sdist, with a
clean environment, a private HOME and no network but loopback. The PATH holds only `python`
(this checkout's .venv, where requirements-dev.txt pins twine), twine, uv and poetry
(.venv-poetry); the tokens are real: `$PUBLISH_TOKEN` and `$READ_TOKEN` in the environment, the
CI secrets (`${{ secrets.WHEELVAULT_PUBLISH_TOKEN }}`, `$(WHEELVAULT_PUBLISH_TOKEN)`) put in as
the CI system would. Each run must publish its files (listed on the project's index page), and a
rerun must pass and change nothing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import requests

from devhost.wheels import build_sdist, build_wheel
from tests.e2e.test_upload_api import POETRY, TWINE, Stack, stack
from tests.support import clients
from tests.support.readme import CiStep, ci_step, localize, snippets, subsection

pytestmark = pytest.mark.e2e

__all__ = ["stack"]  # the module-scoped local host with a publish token, from test_upload_api

UPLOAD_API = "### The upload API: twine, uv publish, poetry publish"
FROM_CI = "### Publishing from CI"
# Every snippet this file runs; a snippet the README adds there must be run here or say why not.
RUN = {"publish-clients", "ci-github-twine", "ci-github-uv", "ci-azure"}
CLIENTS = ("twine", "uv", "poetry")  # the clients of "publish-clients", in its order
CI_SECRETS = ("${{ secrets.WHEELVAULT_PUBLISH_TOKEN }}", "$(WHEELVAULT_PUBLISH_TOKEN)")


def publishing_snippets() -> dict[str, str]:
    found = {**snippets(subsection(UPLOAD_API)), **snippets(subsection(FROM_CI))}
    return {name: s.body for name, s in found.items() if s.why_not_run is None}


def test_every_snippet_is_run_or_says_why_not() -> None:
    for heading in (UPLOAD_API, FROM_CI):
        for name, snip in snippets(subsection(heading)).items():
            if snip.why_not_run is None:
                assert name in RUN, f"snippet {name} is not run by this file and does not say why"
            else:
                assert snip.why_not_run.startswith("not run: "), name
                assert name not in RUN, f"{name} is run, its marker says not"
    assert publishing_snippets().keys() >= RUN, "a snippet this file runs is gone from README.md"


# ---------------------------------------------------------------- where the snippets run


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bin directory with python (this checkout's), twine, uv and poetry only."""
    if not POETRY.exists():
        pytest.fail(f"{POETRY} is missing: run `make poetry-tool` (make test does)")
    tools = tmp_path_factory.mktemp("publish-tools")
    python = tools / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (tools / "twine").symlink_to(TWINE)
    (tools / "uv").symlink_to(clients.UV)
    (tools / "poetry").symlink_to(POETRY)
    return tools


def project_dir(where: Path, name: str, version: str) -> list[str]:
    """`where` as a project `name` `version` (poetry publishes only files named for the project
    in pyproject.toml) with a fresh wheel and sdist in dist/; their filenames."""
    dist = where / "dist"
    dist.mkdir(parents=True)
    (where / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
        '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n'
    )
    wheel, sdist = build_wheel(name, version), build_sdist(name, version)
    (dist / wheel.filename).write_bytes(wheel.data)
    (dist / sdist.filename).write_bytes(sdist.data)
    return sorted([wheel.filename, sdist.filename])


def bash(script: str, cwd: Path, tools: Path, stack: Stack, **env: str) -> clients.Run:
    home = cwd / "home"
    return clients.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        home,
        cwd=cwd,
        extra_env={
            "PATH": f"{tools}:/usr/bin:/bin",
            "PUBLISH_TOKEN": stack.publisher,
            "READ_TOKEN": stack.reader,
            "POETRY_CONFIG_DIR": str(home / "poetry-config"),
            "POETRY_CACHE_DIR": str(home / "poetry-cache"),
            "POETRY_DATA_DIR": str(home / "poetry-data"),
            "POETRY_KEYRING_ENABLED": "false",
            "POETRY_NO_INTERACTION": "1",  # a prompt would be a failure, not a hang
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            # offline: anything but loopback goes to a proxy that is not there
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            **env,
        },
    )


def listed(stack: Stack, project: str) -> list[str]:
    """The filenames on the project's index page (PEP 691 JSON), as a reader sees it."""
    session = requests.Session()
    session.trust_env = False  # no proxy from this machine's environment
    response = session.get(
        f"{stack.url}/simple/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        auth=("__token__", stack.reader),
        timeout=30,
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return sorted(file["filename"] for file in response.json()["files"])


def assert_publishes_and_reruns(
    stack: Stack, run: clients.Run, rerun: clients.Run, files: list[str], listed_after: list[str]
) -> None:
    assert run.returncode == 0, run.output
    assert set(files) <= set(listed_after), (files, listed_after)
    assert rerun.returncode == 0, rerun.output
    stack.assert_clean(run.output + rerun.output)


# ---------------------------------------------------------------- the upload API snippet


def commands(script: str) -> list[str]:
    """The script's commands, a line ending in a backslash joined to the next, as bash reads it."""
    found: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        current.append(line)
        if not line.endswith("\\"):
            found.append("\n".join(current))
            current = []
    assert not current, "the script ends in a continuation line"
    return found


def program(command: str) -> str:
    """The command's program: its first word that is no `NAME=value` assignment."""
    words = [w for w in command.split() if w != "\\" and not re.match(r"[A-Z_][A-Z0-9_]*=", w)]
    return words[0]


def by_client() -> dict[str, str]:
    """ "publish-clients" split into each client's commands; together they are the whole block."""
    grouped: dict[str, list[str]] = {}
    for command in commands(publishing_snippets()["publish-clients"]):
        grouped.setdefault(program(command), []).append(command)
    assert tuple(grouped) == CLIENTS, f"the block's clients changed: {list(grouped)}"
    return {client: "\n".join(lines) + "\n" for client, lines in grouped.items()}


@pytest.mark.parametrize("client", CLIENTS)
def test_the_upload_api_snippet(client: str, stack: Stack, tools: Path, tmp_path: Path) -> None:
    """Each client's commands of the block, on a project of its own, so each one publishes."""
    project = f"readme-{client}"
    files = project_dir(tmp_path, project, "1.0")
    script = localize(by_client()[client], stack.url.removeprefix("http://"))
    assert "pkgs.example.com" not in script
    assert listed(stack, project) == []
    run = bash(script, tmp_path, tools, stack)
    after = listed(stack, project)
    before_rerun = stack.index()
    rerun = bash(script, tmp_path, tools, stack)
    assert_publishes_and_reruns(stack, run, rerun, files, after)
    assert after == files
    assert stack.index() == before_rerun, "a rerun changed the index"


# ---------------------------------------------------------------- the CI snippets


def ci_script(name: str, stack: Stack) -> tuple[CiStep, str, dict[str, str]]:
    """The step, its shell body and its env, with the secret and the local host put in."""
    step = ci_step(publishing_snippets()[name])

    def fill(text: str) -> str:
        for secret in CI_SECRETS:
            text = text.replace(secret, stack.publisher)
        return localize(text, stack.url.removeprefix("http://"))

    env = {key: fill(value) for key, value in step.env.items()}
    body = fill(step.body)
    left = body + "".join(env.values())
    for placeholder in ("${{", "$(", "pkgs.example.com"):
        assert placeholder not in left, f"{name}: {placeholder} left in"
    return step, body, env


@pytest.mark.parametrize(
    ("name", "version"), [("ci-github-twine", "1.0"), ("ci-github-uv", "2.0"), ("ci-azure", "3.0")]
)
def test_the_ci_snippet_publishes_a_new_version_and_a_rerun_passes(
    name: str, version: str, stack: Stack, tools: Path, tmp_path: Path
) -> None:
    files = project_dir(tmp_path, "readme-ci", version)
    step, body, env = ci_script(name, stack)
    assert not set(files) & set(listed(stack, "readme-ci"))
    # A CI runner would download the README's `pip install twine==X` pin; here it must already
    # be .venv's (requirements-dev.txt pins the same version, tests/unit/test_readme.py checks
    # that): pip gets no index, and a dry run leaves this checkout's venv as it is.
    offline_pip = {"PIP_NO_INDEX": "1", "PIP_DRY_RUN": "1"}
    run = bash(body, tmp_path, tools, stack, **offline_pip, **env)
    after = listed(stack, "readme-ci")
    before_rerun = stack.index()
    rerun = bash(body, tmp_path, tools, stack, **offline_pip, **env)
    assert_publishes_and_reruns(stack, run, rerun, files, after)
    assert stack.index() == before_rerun, "a rerun changed the index"
    if "pip install twine==" in step.body:
        assert "Requirement already satisfied: twine==" in run.output, run.output
