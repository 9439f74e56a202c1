"""`wheelvault --help` and `python -m devhost.sample --help` explain every argument they take."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from devhost.cli.main import ROOT, _parse, build_parser


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def every_action() -> Iterator[tuple[str, argparse.Action]]:
    for parser in parsers(build_parser()):
        for action in parser._actions:
            yield parser.prog, action


def test_the_walk_reaches_every_command() -> None:
    progs = {prog for prog, _ in every_action()}
    for command in ("upload", "sas", "status", "yank", "unyank", "delete", "reindex"):
        assert f"wheelvault {command}" in progs
    for action in ("create", "list", "show", "url", "rotate", "revoke"):
        assert f"wheelvault token {action}" in progs
    for action in ("list", "drop"):
        assert f"wheelvault upstream {action}" in progs
    for action in ("token", "env"):
        assert f"wheelvault entra {action}" in progs


@pytest.mark.parametrize(
    ("prog", "action"), list(every_action()), ids=lambda x: getattr(x, "dest", x)
)
def test_every_argument_has_help(prog: str, action: argparse.Action) -> None:
    assert action.help, f"{prog}: {action.option_strings or action.dest}"
    assert action.help.strip()
    if not action.option_strings:  # a positional is shown by its name: make it say something
        shown = action.metavar or action.dest
        assert shown, f"{prog}: positional without a name"
        assert shown != argparse.SUPPRESS


def help_of(*command: str) -> str:
    parser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser.format_help()


def test_durations_show_the_form_the_parser_accepts() -> None:
    text = " ".join(help_of("token", "create").split())
    assert "--rotate-after DURATION" in text
    assert "ISO 8601 duration: P30D (days), P1W (weeks), PT12H (hours) (default: P30D)" in text
    assert "(default: P7D)" in text
    assert "read: install with pip/uv; publish: upload too" in text


@pytest.mark.parametrize(("command", "default"), [("upload", "120"), ("status", "60")])
def test_timeouts_say_their_unit(command: str, default: str) -> None:
    text = " ".join(help_of(command).split())
    assert "--timeout SECONDS" in text
    assert f"in seconds (default: {default})" in text


def test_root_defaults_to_this_checkout() -> None:
    assert build_parser().parse_args(["reindex"]).root == ROOT
    assert (ROOT / "pyproject.toml").is_file()


@pytest.mark.parametrize("value", ["-1", "soon", "inf", "nan"])
def test_a_timeout_must_be_seconds(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["status", "--timeout", value, "x"])
    assert stopped.value.code == 2
    assert "is not a number of seconds" in capsys.readouterr().err


def test_version_prints_the_package_version() -> None:
    command = shutil.which("wheelvault", path=str(Path(sys.executable).parent))
    assert command is not None, "make installs the wheelvault command into .venv"
    result = subprocess.run([command, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wheelvault {metadata.version('wheelvault')}"


def test_sample_names_itself_as_it_is_run() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devhost.sample", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "usage: python -m devhost.sample [-h] [--version VERSION] [DIR]"
    )
    assert "where to write the wheel" in result.stdout
    assert "sample.py" not in result.stdout
    assert "__main__.py" not in result.stdout


@pytest.mark.parametrize("command", [["upload", "x.whl"], ["sas", "demo"]])
def test_entra_sign_in_options(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _parse(command).entra is False
    assert _parse([*command, "--entra"]).entra is True
    scoped = _parse([*command, "--entra-scope", "api://wheelvault-prod/.default"])
    assert scoped.entra is True, "a scope means Entra sign-in"
    with pytest.raises(SystemExit) as stopped:
        _parse([*command, "--entra", "--token", "wvt_x"])
    assert stopped.value.code == 2
    assert "--token and --entra exclude each other" in capsys.readouterr().err


def test_entra_token_needs_a_role_or_a_principal(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["entra", "token", "--role", "read"]).role == "read"
    assert parser.parse_args(["entra", "env"]).principal is None  # developer: both roles
    for wrong in (["entra", "token"], ["entra", "token", "--role", "admin"]):
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args(wrong)
        assert stopped.value.code == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["entra", "env", "--role", "read", "--principal", "nobody"])
    assert "not allowed with argument" in capsys.readouterr().err
