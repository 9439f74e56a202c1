"""`wheelvault entra token|env`, and the Entra ID sign-in of `upload --entra` and `sas --entra`.

Locally the Entra ID stand-in of `make run` plays Entra: `.local/stack.json` says where it is
(devhost/stack/entra.py) and names its ``entra.json``, where the principals' secrets stay. Tokens
come through the real azure-identity credentials, as they would from Entra: a principal's client
secret (`ClientSecretCredential` against the stand-in's authority), or `DefaultAzureCredential`
with the scope of a deployed index, which on a laptop is `az login` and on Azure a managed or
workload identity. `entra env` prints the variables that make the stand-in this shell's
managed identity, so DefaultAzureCredential and the wheelvault keyring backend sign in there.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from devhost.standins.entra.principals import DirectoryError, LocalPrincipal, read_directory
from shared.core.clock import iso_z
from shared.core.redact import redact_text

SCOPE_ENV = "WHEELVAULT_ENTRA_SCOPE"
DAC_SOURCE = "DefaultAzureCredential"
DAC_HINT = "`az login`, or run where a managed or workload identity is available"
ROLE_PRINCIPALS = {"read": "reader", "publish": "publisher"}
"""The stand-in's principal holding exactly that role (Packages.Read, Packages.Publish)."""
DEFAULT_PRINCIPAL = "developer"
"""Both roles: whom `entra env` makes the managed identity when no role is asked for."""
CLEARED = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_TOKEN_CREDENTIALS",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "IDENTITY_SERVER_THUMBPRINT",
)
"""Variables that would make DefaultAzureCredential pick a credential before the managed
identity (environment, workload identity) or another managed-identity source."""


class EntraCliError(Exception):
    """A user-facing failure to sign in: one line, exit status 1, never a token or secret."""


@dataclass(frozen=True)
class LocalEntra:
    """The "entra" entry of stack.json: the running stand-in, without secrets."""

    url: str
    ca: str
    ca_bundle: str
    tenant_id: str
    scope: str
    identity_endpoint: str
    principals: str

    @classmethod
    def from_state(cls, entry: Any) -> LocalEntra | None:
        """None for a stack.json without the entry (a stack started by an older wheelvault)."""
        if not isinstance(entry, dict):
            return None
        fields = ("url", "ca", "ca_bundle", "tenant_id", "scope", "identity_endpoint")
        values = {name: entry[name] for name in (*fields, "principals")}
        if not all(isinstance(value, str) and value for value in values.values()):
            raise ValueError("an Entra ID endpoint is missing")
        return cls(**values)

    def principal(self, name: str) -> LocalPrincipal:
        try:
            principals = read_directory(Path(self.principals)).principals
        except DirectoryError as error:
            raise EntraCliError(str(error)) from None
        if name not in principals:
            known = ", ".join(sorted(principals))
            raise EntraCliError(f"the local Entra ID stand-in has no principal {name!r} ({known})")
        return principals[name]

    def identity_header(self) -> str:
        try:
            return read_directory(Path(self.principals)).identity_header
        except DirectoryError as error:
            raise EntraCliError(str(error)) from None


def add_entra_commands(groups: Any) -> None:
    entra = groups.add_parser(
        "entra", help="Entra ID sign-in against the local stack's Entra ID stand-in"
    )
    actions = entra.add_subparsers(
        dest="action", required=True, parser_class=type(entra), metavar="ACTION", help="what to do"
    )
    token = actions.add_parser(
        "token", help="print an access token of a local principal (client-credentials sign-in)"
    )
    _who(token, required=True)
    environment = actions.add_parser(
        "env",
        help="print the `export` lines that make the stand-in this shell's managed identity, for "
        'DefaultAzureCredential and the wheelvault keyring backend: eval "$(wheelvault entra env)"',
    )
    _who(environment, required=False)


def _who(command: argparse.ArgumentParser, *, required: bool) -> None:
    who = command.add_mutually_exclusive_group(required=required)
    who.add_argument(
        "--role",
        choices=sorted(ROLE_PRINCIPALS),
        help="read: the principal `reader` (Packages.Read); publish: `publisher` "
        "(Packages.Publish, which implies read)"
        + ("" if required else f" (default: `{DEFAULT_PRINCIPAL}`, both roles)"),
    )
    who.add_argument(
        "--principal",
        metavar="NAME",
        help="a principal by name: developer (both roles), reader, publisher, nobody (no role)",
    )


def add_entra_options(command: argparse.ArgumentParser) -> None:
    """`--entra` and `--entra-scope` for upload and sas."""
    command.add_argument(
        "--entra",
        action="store_true",
        help="sign in with Entra ID instead of a wheelvault token, sent as Authorization: Bearer "
        "(DefaultAzureCredential: az login, a managed or workload identity; with the local stack "
        "and no scope: its stand-in's publisher or reader principal)",
    )
    command.add_argument(
        "--entra-scope",
        metavar="SCOPE",
        help=f"the index app's scope, e.g. api://wheelvault-prod/.default (default: ${SCOPE_ENV}; "
        "implies --entra)",
    )


def run_entra(
    args: argparse.Namespace, local: LocalEntra | None, index_origin: str, no_stack: str
) -> int:
    """`wheelvault entra token|env`: both need the local stack's stand-in; `index_origin` is
    the stack's front door (the only origin the keyring backend is to send tokens to)."""
    if local is None:
        raise EntraCliError(
            no_stack or "the local stack has no Entra ID stand-in: restart it with `make run`"
        )
    name = ROLE_PRINCIPALS[args.role] if args.role else args.principal or DEFAULT_PRINCIPAL
    if args.action == "token":
        token = principal_token(local, name)
        print(token.token)
        print(f"{_described(local, name)}; expires {_expiry(token)}", file=sys.stderr)
        return 0
    print(managed_identity_env(local, name, index_origin=index_origin))
    return 0


def managed_identity_env(local: LocalEntra, name: str, *, index_origin: str) -> str:
    """Shell lines that make the stand-in's principal `name` the managed identity of the shell
    (the App Service protocol: IDENTITY_ENDPOINT and IDENTITY_HEADER), and the wheelvault keyring
    backend ask it for tokens for the index at `index_origin`."""
    principal = local.principal(name)
    exported = {
        "IDENTITY_ENDPOINT": local.identity_endpoint,
        "IDENTITY_HEADER": local.identity_header(),
        "AZURE_CLIENT_ID": principal.client_id,
        "REQUESTS_CA_BUNDLE": local.ca_bundle,
        "WHEELVAULT_KEYRING_INDEXES": f"{index_origin}={local.scope}",
        SCOPE_ENV: local.scope,
    }
    lines = [
        f"# the local Entra ID stand-in as this shell's managed identity: "
        f"{_described(local, name)}",
        f"unset {' '.join(CLEARED)}",
        *(f"export {key}={shlex.quote(value)}" for key, value in exported.items()),
    ]
    return "\n".join(lines)


def principal_token(local: LocalEntra, name: str) -> AccessToken:
    """A token of the stand-in's principal `name`, through the client-credentials flow."""
    principal = local.principal(name)
    credential = ClientSecretCredential(
        local.tenant_id,
        principal.client_id,
        principal.client_secret,
        authority=local.url,
        disable_instance_discovery=True,
        connection_verify=local.ca,
    )
    with credential:
        return _get_token(credential, local.scope, f"the local Entra ID stand-in at {local.url}")


def sign_in(
    args: argparse.Namespace,
    local: LocalEntra | None,
    role: str,
    environ: Mapping[str, str] = os.environ,
) -> str:
    """The access token `upload --entra` / `sas --entra` send: DefaultAzureCredential for the
    given scope; without one, the local stand-in's principal for `role` (only when the command
    talks to the local stack: `local` is None otherwise)."""
    scope = args.entra_scope or environ.get(SCOPE_ENV)
    if scope:
        with (
            _identity_warnings_muted(),
            DefaultAzureCredential(exclude_interactive_browser_credential=True) as credential,
        ):
            return _get_token(credential, scope, DAC_SOURCE).token
    if local is None:
        raise EntraCliError(
            f"--entra needs the index's scope: pass --entra-scope (the app's Application ID URI "
            f"and /.default, e.g. api://wheelvault-prod/.default) or set {SCOPE_ENV}"
        )
    return principal_token(local, ROLE_PRINCIPALS[role]).token


@contextlib.contextmanager
def _identity_warnings_muted() -> Iterator[None]:
    """DefaultAzureCredential logs a warning of a dozen lines when no credential works; the
    error this command prints says it in one (user errors are one line)."""
    identity = logging.getLogger("azure.identity")
    level = identity.level
    identity.setLevel(logging.ERROR)
    try:
        yield
    finally:
        identity.setLevel(level)


def _get_token(credential: Any, scope: str, source: str) -> AccessToken:
    try:
        token: AccessToken = credential.get_token(scope)
    except ClientAuthenticationError as error:
        first = redact_text(str(error.message or error)).strip().splitlines()[:1]
        raise EntraCliError(
            f"could not sign in with Entra ID for {scope} ({source}): "
            f"{first[0] if first else type(error).__name__}"
            + (f" ({DAC_HINT})" if source == DAC_SOURCE else "")
        ) from None
    return token


def _described(local: LocalEntra, name: str) -> str:
    roles = ", ".join(local.principal(name).roles) or "no wheelvault role"
    return f"principal {name!r} ({roles}) for {local.scope}"


def _expiry(token: AccessToken) -> str:
    return iso_z(datetime.fromtimestamp(token.expires_on, UTC), "seconds")
