"""`wheelvault`: the command line for operators (installed into .venv by make).

    wheelvault token create NAME --scope read|publish [--rotate-after P30D] [--overlap P7D]
    wheelvault token list | show NAME | url NAME | rotate NAME | revoke NAME
    wheelvault upload FILE... [--wait]        wheelvault sas REQUIREMENT
    wheelvault status FILE...                 wheelvault yank|unyank PROJECT --version V|--file F
    wheelvault delete PROJECT FILE            wheelvault reindex

It talks to the local stack by default (settings from the environment, then
local.settings.json, then local.settings.sample.json) and to a real Key Vault when given
`--vault-url` (authenticated with DefaultAzureCredential: `az login`, a managed identity, ...).
User errors print one line and exit non-zero; there are no tracebacks for them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, ClientAuthenticationError
from pydantic import ValidationError

from devhost.cli_index import IndexCliError, run_index_command
from shared.adapters.blobstore import blob_endpoint, unreachable
from shared.adapters.secretstore import SecretStore, VaultUnavailable, secret_client_from_settings
from shared.core.errors import NotFound
from shared.core.redact import redact_text, redact_url
from shared.core.tokens import DEFAULT_OVERLAP, DEFAULT_ROTATE_AFTER, Policy, Scope
from shared.services.tokens import TokenError, Tokens
from shared.settings import Settings, SettingsError, describe

ROOT = Path(__file__).resolve().parent.parent
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wheelvault", description="Operate a wheelvault private index.")
    parser.add_argument(
        "--vault-url",
        help="Key Vault URL (default: WHEELVAULT_VAULT_URL, else the local stand-in)",
    )
    parser.add_argument(
        "--vault-ca",
        help="CA certificate of a local vault stand-in (then no Azure credential is used)",
    )
    parser.add_argument("--public-url", help="the index's public base URL, for index URLs")
    parser.add_argument(
        "--storage-url",
        help="blob endpoint for yank/delete/reindex/status in Azure (identity-based access)",
    )
    groups = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)

    token = groups.add_parser("token", help="access tokens in Key Vault")
    actions = token.add_subparsers(dest="action", required=True, parser_class=_Parser)
    create = actions.add_parser("create", help="create a token and print its value (once)")
    create.add_argument("name")
    create.add_argument("--scope", required=True, choices=[s.value for s in Scope])
    create.add_argument("--rotate-after", default=DEFAULT_ROTATE_AFTER, metavar="DURATION")
    create.add_argument("--overlap", default=DEFAULT_OVERLAP, metavar="DURATION")
    create.add_argument("--description", default="")
    listing = actions.add_parser("list", help="list tokens (never their values)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    for action, text in (
        ("show", "print the token's current value"),
        ("url", "print the ready-made index URL (https://NAME:TOKEN@host/simple/)"),
        ("rotate", "create a new value now; old values work until they expire"),
        ("revoke", "disable every value of the token at once"),
    ):
        actions.add_parser(action, help=text).add_argument("name")
    _add_index_commands(groups)
    return parser


def _add_index_commands(groups: Any) -> None:
    def front_door(command: argparse.ArgumentParser, token_kind: str) -> None:
        command.add_argument("--url", help="the front door (default: WHEELVAULT_PUBLIC_URL)")
        command.add_argument(
            "--token",
            help=f"a {token_kind} token (default: $WHEELVAULT_TOKEN, else the local stack's)",
        )

    upload = groups.add_parser("upload", help="upload wheels through an upload SAS")
    upload.add_argument("files", nargs="+", metavar="FILE")
    front_door(upload, "publish")
    upload.add_argument("--wait", action="store_true", help="wait until each is published")
    upload.add_argument("--timeout", type=float, default=120.0)
    shown = upload.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", help="progress even when not a TTY")
    shown.add_argument("--quiet", action="store_true", help="no progress output")

    sas = groups.add_parser("sas", help="print SAS install URLs for a requirement")
    sas.add_argument("requirement")
    front_door(sas, "read")
    sas.add_argument("--json", action="store_true", help="the whole answer as JSON")

    status = groups.add_parser("status", help="wait until uploads are published or quarantined")
    status.add_argument("uploads", nargs="+", metavar="FILE_OR_NAME")
    status.add_argument("--timeout", type=float, default=60.0)

    for name, text in (("yank", "yank a file or a release"), ("unyank", "undo a yank")):
        command = groups.add_parser(name, help=text)
        command.add_argument("project")
        which = command.add_mutually_exclusive_group(required=True)
        which.add_argument("--version")
        which.add_argument("--file")
        if name == "yank":
            command.add_argument("--reason", default="")

    delete = groups.add_parser("delete", help="delete a file for good (tombstoned)")
    delete.add_argument("project")
    delete.add_argument("file")
    delete.add_argument("--reason", default="")

    groups.add_parser("reindex", help="rebuild every page from the records")


def local_settings_values() -> dict[str, str]:
    """The Values of local.settings.json (or the sample), as the local host would load them."""
    for candidate in (ROOT / "local.settings.json", ROOT / "local.settings.sample.json"):
        if candidate.exists():
            values = json.loads(candidate.read_text()).get("Values", {})
            return {str(k): str(v) for k, v in values.items()}
    return {}


def load_cli_settings(args: argparse.Namespace) -> Settings:
    values: dict[str, Any] = {
        k: v for k, v in local_settings_values().items() if k.startswith("WHEELVAULT_")
    }
    values.update({k: v for k, v in os.environ.items() if k.startswith("WHEELVAULT_")})
    if args.vault_url:
        values["WHEELVAULT_VAULT_URL"] = args.vault_url
        values["WHEELVAULT_VAULT_CREDENTIAL"] = "local" if args.vault_ca else "default"
        values.pop("WHEELVAULT_VAULT_CA_BUNDLE", None)
    if args.vault_ca:
        values["WHEELVAULT_VAULT_CA_BUNDLE"] = args.vault_ca
        values["WHEELVAULT_VAULT_CREDENTIAL"] = "local"
    if args.public_url:
        values["WHEELVAULT_PUBLIC_URL"] = args.public_url
    if args.storage_url:
        values.pop("WHEELVAULT_STORAGE", None)
        values.pop("WHEELVAULT_STORAGE_API_VERSION", None)
        values["WHEELVAULT_STORAGE__blobServiceUri"] = args.storage_url
    ca = values.get("WHEELVAULT_VAULT_CA_BUNDLE")
    if ca and not Path(ca).is_absolute():
        values["WHEELVAULT_VAULT_CA_BUNDLE"] = str(ROOT / ca)
    # The token commands need no storage; a placeholder keeps the settings model satisfied.
    if not values.get("WHEELVAULT_STORAGE") and not values.get(
        "WHEELVAULT_STORAGE__blobServiceUri"
    ):
        values["WHEELVAULT_STORAGE"] = "UseDevelopmentStorage=true"
    try:
        settings = Settings.model_validate({k: v for k, v in values.items() if v != ""})
    except ValidationError as error:
        raise CliError(describe(error)) from None
    ca_bundle = settings.vault_ca_bundle
    needs_vault = args.group == "token"  # the others reach the vault only for a local token
    if (
        needs_vault
        and settings.vault_credential == "local"
        and ca_bundle
        and not Path(ca_bundle).exists()
    ):
        raise CliError(
            f"the local vault's CA certificate {settings.vault_ca_bundle} does not exist: "
            "is the local stack running (make run)? For a real vault pass --vault-url"
        )
    return settings


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


def _local_token(settings: Settings, name: str) -> str:
    """The value of one of the local stack's tokens, for commands run without --token."""
    try:
        with secret_client_from_settings(settings) as client:
            return Tokens(SecretStore(client), public_url=settings.public_url).show(name)
    except (TokenError, SettingsError, AzureError, OSError) as error:
        why = (
            f"the vault did not answer: {error.reason}; "
            if isinstance(error, VaultUnavailable)
            else ""
        )
        raise CliError(
            f"no --token given and the local token {name!r} could not be read "
            f"({why}is `make run` up? or set WHEELVAULT_TOKEN)"
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_cli_settings(args)
        if args.group != "token":
            return run_index_command(args, settings, lambda name: _local_token(settings, name))
        with secret_client_from_settings(settings) as client:
            tokens = Tokens(SecretStore(client), public_url=settings.public_url)
            run_token(args, tokens)
    except (CliError, TokenError, SettingsError, IndexCliError, NotFound, ValueError) as error:
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
