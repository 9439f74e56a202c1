"""The few lines `make run` prints once everything answers: what to paste, where to look."""

from __future__ import annotations

import shlex

from devhost.stack.config import REPO_ROOT, stack_values
from devhost.stack.entra import SETTINGS as ENTRA_SETTINGS
from devhost.stack.provision import PUBLISHER, READER
from devhost.stack.supervisor import Stack


def banner(stack: Stack) -> str:
    paths = stack.paths
    wheelvault = paths.shown(REPO_ROOT / ".venv" / "bin" / "wheelvault")
    lines = [f"wheelvault is running (ready in {stack.started_in or 0:.1f} s)", ""]
    lines += _index_lines(stack)
    lines += [
        f"  upload    {wheelvault} upload dist/*.whl",
        "            or as a plain blob into `uploads` (the host publishes it):",
        '            az storage blob upload --connection-string "$CONN" -c uploads -f FILE.whl',
        f"  storage   CONN={shlex.quote(stack.storage_connection_string)}",
        f"  tokens    {READER} (read), {PUBLISHER} (publish): {wheelvault} token show NAME",
    ]
    lines += _entra_lines(stack, wheelvault)
    lines += _cli_environment(stack)
    lines += [
        f"  services  host {stack.public_url}  blob http://127.0.0.1:{stack.ports.blob}"
        f"  vault {stack.vault_url}  entra {stack.entra.url}",
        f"  data      {paths.shown(paths.local)}/ (packages and tokens survive a restart)",
        "  logs      " + ", ".join(paths.shown(paths.log(name)) for name in stack.children),
    ]
    if stack.wrote_user_settings:
        lines.append(f"  settings  wrote {paths.shown(paths.user_settings)} from the sample")
    return "\n".join([*lines, "", "Ctrl-C to stop."])


def _index_lines(stack: Stack) -> list[str]:
    if stack.reader_token is None:
        return [
            f"  index     token {READER} has no usable value (revoked or expired); "
            f"`wheelvault token rotate {READER}` gives it one",
        ]
    return [
        f"  index     {stack.index_url}",
        f'  install   pip install --index-url "{stack.index_url}" PACKAGE',
    ]


def _entra_lines(stack: Stack, wheelvault: str) -> list[str]:
    """How to sign in with Entra ID locally. The principals' secrets stay in the stand-in's
    data dir, where the `wheelvault entra` commands read them: none is printed here."""
    if stack.paths.root != REPO_ROOT:
        wheelvault += f" --root {shlex.quote(str(stack.paths.root))}"
    return [
        "  entra     sign in with the Entra ID stand-in as principal reader, publisher, developer "
        "(both roles) or nobody",
        f"            a token   {wheelvault} entra token --role read|publish",
        f'            keyring   eval "$({wheelvault} entra env --role read)"  '
        "(DefaultAzureCredential too)",
    ]


def _cli_environment(stack: Stack) -> list[str]:
    """How the `wheelvault` command finds this stack.

    It reads `.local/stack.json` of the repository (written once the stack is ready, see
    state.py), and falls back to local.settings.json, which names the default ports. A stack
    elsewhere, or a CLI run with other settings in its environment, needs every endpoint
    setting exported, storage included: these are the values the host itself got.
    """
    found = [f"  cli       {stack.paths.shown(stack.paths.state)} describes this stack"]
    if stack.uses_default_ports and stack.paths.root == REPO_ROOT:
        return found
    assert stack.endpoints is not None  # the banner is printed once the stack is running
    variables = stack_values(stack.endpoints)
    exported = " ".join(
        f"{name}={shlex.quote(value)}"
        for name, value in variables.items()
        # AzureWebJobsStorage and the Entra settings are the host's alone: the CLI finds the
        # stand-in through stack.json (`--root`)
        if name.startswith("WHEELVAULT_") and name not in ENTRA_SETTINGS
    )
    return [*found, f"  cli env   export {exported}"]
