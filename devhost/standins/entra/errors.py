"""Refusals shaped as Entra and App Service send them, so the real clients report them as usual.

The token endpoint answers an OAuth error: ``error`` (the OAuth code MSAL branches on), an
``error_description`` that starts with the ``AADSTS`` code and ends with the trace and
correlation ids and a timestamp, ``error_codes``, ``timestamp``, ``trace_id``,
``correlation_id`` and ``error_uri``. azure-identity raises ``ClientAuthenticationError`` with
the description in its message. The App Service managed-identity endpoint answers
``{"statusCode", "message"}`` instead. No refusal ever quotes a secret the client sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.core.clock import utc_now


@dataclass(frozen=True)
class EntraResponse:
    """One HTTP response; ``body=None`` means no content."""

    status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class EntraError(Exception):
    """A refusal in the token endpoint's shape: ``raise aadsts(...)`` anywhere in a handler."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description

    def response(self, authority: str, correlation_id: str | None) -> EntraResponse:
        """The body Entra sends; ``correlation_id`` is the client's ``client-request-id``."""
        trace_id = str(uuid.uuid4())
        correlation = _guid(correlation_id) or str(uuid.uuid4())
        stamp = _entra_timestamp(utc_now())
        description = (
            f"AADSTS{self.code}: {self.description}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
        )
        body = {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"{authority}/error?code={self.code}",
        }
        return EntraResponse(self.status, body)


class ManagedIdentityError(Exception):
    """A refusal by the App Service managed-identity endpoint."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> EntraResponse:
        return EntraResponse(self.status, {"statusCode": self.status, "message": self.message})


def missing_parameter(name: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def unknown_tenant(tenant: str) -> EntraError:
    return EntraError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{_shown(tenant)}' not found. Check to make sure you have the correct tenant ID "
        "and are signing into the correct cloud.",
    )


def unsupported_grant_type() -> EntraError:
    return EntraError(
        400,
        "unsupported_grant_type",
        70003,
        "The app requested an unsupported grant type; the stand-in serves client_credentials.",
    )


def unknown_client(client_id: str, tenant_id: str) -> EntraError:
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{_shown(client_id)}' was not found in the directory "
        f"'{tenant_id}'. This can happen if the application has not been installed by the "
        "administrator of the tenant. You may have sent your authentication request to the "
        "wrong tenant.",
    )


def no_client_secret() -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the "
        "'client_credentials' grant type.",
    )


def wrong_client_secret(client_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
    )


def scope_not_default(scope: str) -> EntraError:
    return EntraError(
        400,
        "invalid_scope",
        1002012,
        f"The provided value for scope {_shown(scope)} is not valid. Client credential flows "
        "must have a scope value with /.default suffixed to the resource identifier "
        "(application ID URI).",
    )


def unknown_resource(resource: str, tenant_id: str) -> EntraError:
    return EntraError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {_shown(resource)} was not found in the tenant named "
        f"{tenant_id}. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You might have "
        "sent your authentication request to the wrong tenant.",
    )


def _guid(value: str | None) -> str | None:
    """The client's ``client-request-id`` (MSAL sends one), which Entra echoes as the
    correlation id, if it is a GUID; anything else is not repeated back."""
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _entra_timestamp(moment: datetime) -> str:
    """Entra's own format in error bodies (``2024-12-03 13:51:30Z``), not wheelvault's iso_z."""
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _shown(value: str) -> str:
    """Client input quoted in a description: capped, one line."""
    return "".join(c if c.isprintable() else "?" for c in value[:200])
