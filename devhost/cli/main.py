"""`wheelvault`: the command line for operators (installed into .venv by make).

    wheelvault token create NAME --scope read|publish [--rotate-after P30D] [--overlap P7D]
    wheelvault token list | show NAME | url NAME | rotate NAME | revoke NAME
    wheelvault upload FILE_OR_DIR... [--wait] [--skip-existing] [--entra [--entra-scope S]]
    wheelvault sas REQUIREMENT [--entra [--entra-scope SCOPE]]
    wheelvault entra token --role read|publish | --principal NAME
    wheelvault entra env [--role read|publish | --principal NAME]
    wheelvault status FILE...                 wheelvault yank|unyank PROJECT --version V|--file F
    wheelvault delete PROJECT FILE            wheelvault reindex
    wheelvault upstream list [PROJECT...]     wheelvault upstream drop PROJECT...|--all

Where each command goes, per endpoint (storage, vault, front door): an explicit flag, else the
WHEELVAULT_* environment variable, else the running local stack of this checkout (the one
`make run` started, found in `.local/stack.json`), else a one-line error. Never a default port:
whatever listens on :10000 may be another checkout's stack, whose index a command would change.
local.settings.json is the host's settings file and plays no part here. A real Key Vault is
reached with DefaultAzureCredential (`az login`, a managed identity, ...).
User errors print one line and exit non-zero; there are no tracebacks for them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, ClientAuthenticationError
from pydantic import ValidationError

from devhost.cli.entra import (
    EntraCliError,
    LocalEntra,
    add_entra_commands,
    add_entra_options,
    run_entra,
    sign_in,
)
from devhost.cli.index import (
    TOKEN_ENV,
    BearerToken,
    FrontDoorToken,
    IndexCliError,
    run_index_command,
)
from devhost.cli.upstream import add_upstream_commands
from devhost.stack.state import is_live
from devhost.standins.keyvault.credential import LocalVaultCredential
from shared.adapters.blobstore import blob_endpoint, unreachable
from shared.adapters.secretstore import SecretStore, VaultUnavailable, secret_client_from_settings
from shared.core.errors import NotFound
from shared.core.redact import redact_text, redact_url
from shared.core.tokens import DEFAULT_OVERLAP, DEFAULT_ROTATE_AFTER, Policy, Scope, TokenError
from shared.services.tokens import Tokens
from shared.settings import Settings, SettingsError, describe

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = Path(".local") / "stack.json"
"""Written by the supervisor (`make run`, devhost/stack/state.py) once every child is ready,
removed on a clean stop; its staleness rule (`is_live`) is the supervisor's own."""
STACK_FILE_VERSION = 1
EXIT_ERROR = 1
EXIT_USAGE = 2
STORAGE_COMMANDS = ("status", "yank", "unyank", "delete", "reindex", "upstream")
INDEX_URL_ACTIONS = ("create", "rotate", "url")
"""Token actions that write or read the companion index URL, which needs the public URL."""
DURATION_HELP = "an ISO 8601 duration: P30D (days), P1W (weeks), PT12H (hours)"


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def package_version() -> str:
    try:
        return metadata.version("wheelvault")
    except metadata.PackageNotFoundError:  # run from a checkout without `make` (pip install -e)
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wheelvault",
        description="Operate a wheelvault private index: the local stack of this checkout "
        "(`make run`) unless flags or WHEELVAULT_* variables name another.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {package_version()}",
        help="print wheelvault's version and exit",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        metavar="CHECKOUT",
        help="the checkout whose running stack (CHECKOUT/.local/stack.json) is used for what no "
        "flag or variable sets (default: the one wheelvault is installed from, %(default)s)",
    )
    parser.add_argument(
        "--vault-url",
        metavar="URL",
        help="Key Vault URL, e.g. https://NAME.vault.azure.net (default: WHEELVAULT_VAULT_URL, "
        "else the local stack's vault)",
    )
    parser.add_argument(
        "--vault-ca",
        metavar="PEM",
        help="CA certificate of a local vault stand-in (then no Azure credential is used)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the index's public base URL, put into index URLs (default: WHEELVAULT_PUBLIC_URL, "
        "else the local stack's when its vault is used)",
    )
    parser.add_argument(
        "--storage-url",
        metavar="URL",
        help="blob endpoint for status/yank/unyank/delete/reindex/upstream and upload --wait, "
        "with your "
        "Azure login, e.g. https://ACCOUNT.blob.core.windows.net (default: WHEELVAULT_STORAGE, "
        "else the local stack's Azurite)",
    )
    groups = parser.add_subparsers(
        dest="group", required=True, parser_class=_Parser, metavar="COMMAND", help="what to do"
    )

    token = groups.add_parser("token", help="access tokens in Key Vault")
    actions = token.add_subparsers(
        dest="action", required=True, parser_class=_Parser, metavar="ACTION", help="what to do"
    )
    create = actions.add_parser("create", help="create a token and print its value (once)")
    create.add_argument("name", metavar="NAME", help=_NAME_HELP)
    create.add_argument(
        "--scope",
        required=True,
        choices=[s.value for s in Scope],
        help="read: install with pip/uv; publish: upload too (publish implies read)",
    )
    create.add_argument(
        "--rotate-after",
        default=DEFAULT_ROTATE_AFTER,
        metavar="DURATION",
        help=f"make a new value this long after the last one; {DURATION_HELP} "
        "(default: %(default)s)",
    )
    create.add_argument(
        "--overlap",
        default=DEFAULT_OVERLAP,
        metavar="DURATION",
        help=f"how long an old value keeps working after a rotation; {DURATION_HELP} "
        "(default: %(default)s)",
    )
    create.add_argument(
        "--description", default="", metavar="TEXT", help="a note for operators (who uses it)"
    )
    listing = actions.add_parser("list", help="list tokens (never their values)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for action, text in (
        ("show", "print the token's current value"),
        ("url", "print the ready-made index URL (https://NAME:TOKEN@host/simple/)"),
        ("rotate", "create a new value now; old values work until they expire"),
        ("revoke", "disable every value of the token at once"),
    ):
        actions.add_parser(action, help=text).add_argument("name", metavar="NAME", help=_NAME_HELP)
    _add_index_commands(groups)
    add_upstream_commands(groups)
    add_entra_commands(groups)
    return parser


_NAME_HELP = "the token's name: 1-64 letters, digits and inner hyphens, e.g. ci-publisher"


def _add_index_commands(groups: Any) -> None:
    def front_door(command: argparse.ArgumentParser, scope: str, local_token: str) -> None:
        command.add_argument(
            "--url",
            help="the front door, e.g. https://pkgs.example.com (default: --public-url, "
            "WHEELVAULT_PUBLIC_URL, else the local stack's host)",
        )
        command.add_argument(
            "--token",
            help=f"a {scope} token (default: ${TOKEN_ENV}, else the local stack's "
            f"{local_token} token)",
        )

    upload = groups.add_parser("upload", help="upload wheels and sdists through an upload SAS")
    upload.add_argument(
        "files",
        nargs="+",
        metavar="FILE_OR_DIR",
        help="a wheel or an sdist, or a directory such as dist/: the wheels (*.whl) and sdists "
        "(*.tar.gz) directly in it are uploaded, other files in it are skipped with a note",
    )
    front_door(upload, "publish", "local-publisher")
    add_entra_options(upload)
    upload.add_argument("--wait", action="store_true", help="wait until each is published")
    upload.add_argument(
        "--skip-existing",
        action="store_true",
        help="a file already published with the same contents (sha256) counts as uploaded; "
        "a different file under that name still fails",
    )
    upload.add_argument(
        "--timeout",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="how long --wait waits for all the files, in seconds (default: %(default)g)",
    )
    shown = upload.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", help="progress even when not a TTY")
    shown.add_argument("--quiet", action="store_true", help="no progress output")

    sas = groups.add_parser("sas", help="print SAS install URLs for a requirement")
    sas.add_argument(
        "requirement",
        metavar="REQUIREMENT",
        help='a PEP 508 requirement: "demo", "demo>=1.2" or "demo==1.2.0"',
    )
    front_door(sas, "read", "local-reader")
    add_entra_options(sas)
    sas.add_argument("--json", action="store_true", help="the whole answer as JSON")

    status = groups.add_parser(
        "status", help="wait until uploads are published or quarantined (never uploaded: at once)"
    )
    status.add_argument(
        "uploads",
        nargs="+",
        metavar="FILE_OR_NAME",
        help="an uploaded file's name, or its local path (only the name is used)",
    )
    status.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for pending uploads, in seconds (default: %(default)g)",
    )

    for name, text in (("yank", "yank a file or a release"), ("unyank", "undo a yank")):
        command = groups.add_parser(name, help=text)
        command.add_argument("project", metavar="PROJECT", help="the project's name, e.g. demo-pkg")
        which = command.add_mutually_exclusive_group(required=True)
        which.add_argument("--version", help=f"{name} every file of this version")
        which.add_argument("--file", metavar="FILENAME", help=f"{name} this one file")
        if name == "yank":
            command.add_argument(
                "--reason", default="", help="shown to installers (PEP 592 yanked reason)"
            )

    delete = groups.add_parser("delete", help="delete a file for good (tombstoned)")
    delete.add_argument("project", metavar="PROJECT", help="the project's name, e.g. demo-pkg")
    delete.add_argument(
        "file", metavar="FILENAME", help="the file's name; it can never be published again"
    )
    delete.add_argument("--reason", default="", help="kept with the tombstone, for operators")

    groups.add_parser("reindex", help="rebuild every page from the records")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


# -- where the commands go ----------------------------------------------------------------------


@dataclass(frozen=True)
class LocalStack:
    """The running stack of a checkout, as its `.local/stack.json` describes it."""

    host_url: str
    public_url: str
    storage: str
    storage_api_version: str
    vault_url: str
    vault_ca: str
    entra: LocalEntra | None = None


def find_stack(root: Path) -> tuple[LocalStack | None, str]:
    """The running stack of `root`, or None and why not: the start of a one-line error."""
    path = root / STACK_FILE
    not_running = f"no local stack is running for {root}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{not_running} (start it with `make run`)"
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return None, f"{not_running} ({path} cannot be read: {type(error).__name__})"
    try:
        stack = _parse_stack(data, root)
    except (KeyError, TypeError, ValueError) as error:
        return None, f"{not_running} ({path} is not one this wheelvault reads: {error})"
    if not is_live(data):
        # The supervisor was killed before it could remove the file: its ports mean nothing.
        return None, (
            f"{not_running} ({STACK_FILE} names pid {data['pid']}, which has exited; "
            "start it with `make run`)"
        )
    return stack, ""


def _parse_stack(data: Any, root: Path) -> LocalStack:
    if not isinstance(data, dict) or data.get("version") != STACK_FILE_VERSION:
        raise ValueError(f"version {data.get('version') if isinstance(data, dict) else None!r}")
    # A copied checkout carries a copy of the file: its stack is the original's, not ours.
    if Path(str(data["root"])).resolve() != root.resolve():
        raise ValueError(f"it belongs to {data['root']}")
    fields = ("host_url", "public_url", "storage", "storage_api_version", "vault_url", "vault_ca")
    values = {name: data[name] for name in fields}
    if not all(isinstance(value, str) and value for value in values.values()):
        raise ValueError("an endpoint is missing")
    return LocalStack(**values, entra=LocalEntra.from_state(data.get("entra")))


class Endpoints:
    """Each endpoint from a flag, else WHEELVAULT_* variables, else this checkout's running
    stack, else a one-line error. Nothing is read from local.settings.json: it configures the
    host, whose endpoints the supervisor replaces with the ports it actually started."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self.args = args
        self.env = {k: v for k, v in environ.items() if k.startswith("WHEELVAULT_") and v}
        self.stack, self.no_stack = find_stack(args.root)

    def missing(self, variable: str, flag: str) -> CliError:
        return CliError(f"{self.no_stack}, and {variable} is not set (or pass {flag})")

    def storage(self) -> dict[str, str] | None:
        if self.args.storage_url:
            identity = ("WHEELVAULT_STORAGE__credential", "WHEELVAULT_STORAGE__clientId")
            values = {k: v for k, v in self.env.items() if k in identity}
            return {**values, "WHEELVAULT_STORAGE__blobServiceUri": self.args.storage_url}
        if "WHEELVAULT_STORAGE" in self.env or "WHEELVAULT_STORAGE__blobServiceUri" in self.env:
            return {k: v for k, v in self.env.items() if k.startswith("WHEELVAULT_STORAGE")}
        if self.stack is not None:
            return {
                "WHEELVAULT_STORAGE": self.stack.storage,
                "WHEELVAULT_STORAGE_API_VERSION": self.stack.storage_api_version,
            }
        return None

    def require_storage(self) -> dict[str, str]:
        storage = self.storage()
        if storage is None:
            raise self.missing("WHEELVAULT_STORAGE", "--storage-url")
        return storage

    def vault(self) -> tuple[dict[str, str], bool] | None:
        """The vault settings, and whether they are the local stack's."""
        values: dict[str, str]
        if self.args.vault_url:
            values = {
                **{k: v for k, v in self.env.items() if k == "WHEELVAULT_VAULT_CLIENT_ID"},
                "WHEELVAULT_VAULT_URL": self.args.vault_url,
                "WHEELVAULT_VAULT_CREDENTIAL": "default",
            }
        elif "WHEELVAULT_VAULT_URL" in self.env:
            values = {k: v for k, v in self.env.items() if k.startswith("WHEELVAULT_VAULT_")}
        elif self.stack is not None:
            values = {
                "WHEELVAULT_VAULT_URL": self.stack.vault_url,
                "WHEELVAULT_VAULT_CREDENTIAL": "local",
                "WHEELVAULT_VAULT_CA_BUNDLE": self.stack.vault_ca,
            }
        else:
            return None
        if self.args.vault_ca:
            values["WHEELVAULT_VAULT_CA_BUNDLE"] = self.args.vault_ca
            values["WHEELVAULT_VAULT_CREDENTIAL"] = "local"
        local = not self.args.vault_url and "WHEELVAULT_VAULT_URL" not in self.env
        return values, local

    def public_url(self, *, stack_vault: bool) -> str | None:
        """For index URLs. The stack's only with the stack's vault: a URL of this machine must
        not end up in a real vault's index-URL secrets."""
        chosen = self.args.public_url or self.env.get("WHEELVAULT_PUBLIC_URL")
        if chosen is None and stack_vault and self.stack is not None:
            return self.stack.public_url
        return chosen

    def front_door(self) -> str:
        url = (
            getattr(self.args, "url", None)
            or self.args.public_url
            or self.env.get("WHEELVAULT_PUBLIC_URL")
            or (self.stack.host_url if self.stack is not None else None)
        )
        if url is None:
            raise self.missing("WHEELVAULT_PUBLIC_URL", "--url")
        return url


@dataclass(frozen=True)
class Target:
    """What a command talks to: the settings, and the front door when it uses one."""

    settings: Settings
    front_door: str | None
    has_vault: bool
    why_no_vault: str
    local_entra: LocalEntra | None = None
    """The local stand-in, when the command's front door is the local stack's."""


def resolve(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Target:
    """What the command needs and nothing else, found before it does anything (or one line
    saying what is missing): an upload --wait must not upload, then find no storage."""
    found = Endpoints(args, environ)
    others = ("WHEELVAULT_STORAGE", "WHEELVAULT_VAULT_", "WHEELVAULT_PUBLIC_URL", TOKEN_ENV)
    values = {k: v for k, v in found.env.items() if not k.startswith(others)}
    if args.group in STORAGE_COMMANDS or (args.group == "upload" and args.wait):
        values.update(found.require_storage())
    else:  # a placeholder keeps the settings model satisfied; nothing reads it
        values["WHEELVAULT_STORAGE"] = "UseDevelopmentStorage=true"
    token_given = bool(
        getattr(args, "entra", False) or getattr(args, "token", None) or found.env.get(TOKEN_ENV)
    )
    wants_vault = args.group == "token" or (args.group in ("upload", "sas") and not token_given)
    vault = found.vault() if wants_vault else None
    if vault is None and args.group == "token":
        raise found.missing("WHEELVAULT_VAULT_URL", "--vault-url")
    if vault is not None:
        values.update(vault[0])
    if args.group == "token":
        public_url = found.public_url(stack_vault=vault is not None and vault[1])
        if public_url is not None:
            values["WHEELVAULT_PUBLIC_URL"] = public_url
        elif args.action in INDEX_URL_ACTIONS:
            raise CliError(
                "index URLs need the index's public URL: pass --public-url or set "
                "WHEELVAULT_PUBLIC_URL (only the local stack's own vault implies its URL)"
            )
    front_door = found.front_door() if args.group in ("upload", "sas") else None
    stack = found.stack
    local_entra = (
        stack.entra
        if stack is not None and front_door is not None and _same_origin(front_door, stack.host_url)
        else None
    )
    return Target(_settings(values), front_door, vault is not None, found.no_stack, local_entra)


def _same_origin(url: str, other: str) -> bool:
    return url.rstrip("/") == other.rstrip("/")


def _settings(values: dict[str, str]) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise CliError(describe(error)) from None


def load_cli_settings(args: argparse.Namespace) -> Target:
    target = resolve(args)
    settings = target.settings
    ca_bundle = settings.vault_ca_bundle
    if (
        args.group == "token"  # the others reach the vault only for a local token
        and settings.vault_credential == "local"
        and ca_bundle
        and not Path(ca_bundle).exists()
    ):
        raise CliError(
            f"the local vault's CA certificate {ca_bundle} does not exist: "
            "is the local stack running (make run)? For a real vault pass --vault-url"
        )
    return target


def run_token(args: argparse.Namespace, tokens: Tokens) -> None:
    if args.action == "create":
        try:
            policy = Policy(Scope(args.scope), args.rotate_after, args.overlap, args.description)
        except ValueError as error:
            raise CliError(str(error)) from None
        print(tokens.create(args.name, policy))
        print(
            f"token {args.name!r} created; its value is shown once here "
            f"(`wheelvault token show {args.name}` prints it again)",
            file=sys.stderr,
        )
    elif args.action == "list":
        infos = tokens.list_tokens()
        if args.json:
            print(json.dumps([_info_json(i) for i in infos], indent=2))
            return
        print(f"{'NAME':32} {'SCOPE':8} {'ROTATE':7} {'OVERLAP':7} {'EXPIRES':20} STATE")
        for i in infos:
            expires = (
                i.current_expires_on.strftime("%Y-%m-%d %H:%M") if i.current_expires_on else "-"
            )
            state = "revoked" if i.revoked else f"{i.usable_versions} usable"
            print(f"{i.name:32} {i.scope:8} {i.rotate_after:7} {i.overlap:7} {expires:20} {state}")
    elif args.action == "show":
        print(tokens.show(args.name))
    elif args.action == "url":
        print(tokens.index_url_of(args.name))
    elif args.action == "rotate":
        print(tokens.rotate(args.name))
        print(
            f"token {args.name!r} rotated; earlier values work until they expire", file=sys.stderr
        )
    elif args.action == "revoke":
        count = tokens.revoke(args.name)
        print(f"token {args.name!r} revoked ({count} versions disabled)", file=sys.stderr)


ROLE_OF_LOCAL_TOKEN = {"local-publisher": "publish", "local-reader": "read"}


def _front_door_token(args: argparse.Namespace, target: Target, name: str) -> FrontDoorToken:
    """What upload and sas present when no token is given: with --entra an Entra ID access
    token for the role of the local token `name`, else that local token's value."""
    if args.entra:
        return BearerToken(sign_in(args, target.local_entra, ROLE_OF_LOCAL_TOKEN[name]))
    return _local_token(target, name)


def _local_token(target: Target, name: str) -> str:
    """The value of one of the local stack's tokens, for commands run without --token."""
    if not target.has_vault:  # the stack's local-publisher/local-reader would have done
        raise CliError(f"{target.why_no_vault}, and {TOKEN_ENV} is not set (or pass --token)")
    settings = target.settings
    try:
        with secret_client_from_settings(
            settings, local_credential=LocalVaultCredential()
        ) as client:
            return Tokens(SecretStore(client), public_url=settings.public_url).show(name)
    except (TokenError, SettingsError, AzureError, OSError) as error:
        why = (
            f"the vault did not answer: {error.reason}; "
            if isinstance(error, VaultUnavailable)
            else ""
        )
        raise CliError(
            f"no --token given and the local token {name!r} could not be read "
            f"({why}is `make run` up? or set {TOKEN_ENV})"
        ) from None


def _local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def vault_down(settings: Settings, reason: str) -> str:
    """One line: which vault did not answer, why, and what to do about it."""
    url = redact_url(settings.vault_url or "")
    fix = (
        "start the local stack with `make run`, or set WHEELVAULT_VAULT_URL (or pass --vault-url)"
        if _local(url)
        else "check WHEELVAULT_VAULT_URL or --vault-url, and that this machine can reach it"
    )
    return f"the vault at {url} did not answer ({reason}): {fix}"


def storage_down(settings: Settings, reason: str) -> str:
    """One line: which blob endpoint did not answer, why, and what to do (never the key)."""
    url = redact_url(blob_endpoint(settings))
    fix = (
        "start the local stack with `make run`, or point WHEELVAULT_STORAGE (or --storage-url) "
        "at a storage account that is up"
        if _local(url)
        else "check --storage-url or WHEELVAULT_STORAGE, and that this machine can reach it"
    )
    return f"storage at {url} did not answer ({reason}): {fix}"


def _info_json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "scope": info.scope,
        "rotate_after": info.rotate_after,
        "overlap": info.overlap,
        "description": info.description,
        "current_since": info.current_since.isoformat() if info.current_since else None,
        "current_expires_on": (
            info.current_expires_on.isoformat() if info.current_expires_on else None
        ),
        "usable_versions": info.usable_versions,
        "revoked": info.revoked,
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.group in ("upload", "sas"):
        args.entra = args.entra or bool(args.entra_scope)  # a scope means Entra sign-in
        if args.entra and args.token:
            parser.error("--token and --entra exclude each other: a token or an Entra sign-in")
    return args


def _run_entra(args: argparse.Namespace) -> int:
    stack, no_stack = find_stack(args.root)
    if stack is None:
        return run_entra(args, None, "", no_stack)
    return run_entra(args, stack.entra, stack.host_url, "")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    settings: Settings | None = None
    try:
        if args.group == "entra":
            return _run_entra(args)
        target = load_cli_settings(args)
        settings = target.settings
        if args.group != "token":
            return run_index_command(
                args, settings, target.front_door, lambda n: _front_door_token(args, target, n)
            )
        with secret_client_from_settings(
            settings, local_credential=LocalVaultCredential()
        ) as client:
            tokens = Tokens(SecretStore(client), public_url=settings.public_url)
            run_token(args, tokens)
    except (
        CliError,
        EntraCliError,
        TokenError,
        SettingsError,
        IndexCliError,
        NotFound,
        ValueError,
    ) as error:
        print(f"wheelvault: error: {redact_text(str(error))}", file=sys.stderr)
        return EXIT_ERROR
    except ClientAuthenticationError:
        print(
            "wheelvault: error: could not authenticate to the vault "
            "(for Azure: `az login`, or run where a managed identity is available)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except VaultUnavailable as error:
        assert settings is not None  # no vault call is made before the settings are read
        print(f"wheelvault: error: {vault_down(settings, error.reason)}", file=sys.stderr)
        return EXIT_ERROR
    except AzureError as error:
        down = unreachable(error)
        if down is not None and settings is not None:  # vault outages are VaultUnavailable
            print(f"wheelvault: error: {storage_down(settings, down)}", file=sys.stderr)
            return EXIT_ERROR
        reason = redact_text(str(getattr(error, "message", "") or type(error).__name__))
        print(
            "wheelvault: error: storage or the vault did not answer as expected: "
            f"{reason.splitlines()[0] if reason else type(error).__name__}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except OSError as error:
        print(f"wheelvault: error: {redact_text(str(error))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
