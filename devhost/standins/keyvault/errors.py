"""Errors shaped like Key Vault's, so SDK callers see the same status codes and error codes.

``azure-keyvault-secrets`` maps 404 to ``ResourceNotFoundError`` and 409 to
``ResourceExistsError`` and exposes ``error.code``; code under test branches on these, so the
stand-in must answer with the same status/code pairs as the real service. Messages never contain
request bodies, because bodies carry secret values.
"""

from __future__ import annotations

from typing import Any


class VaultError(Exception):
    """A failed operation, rendered as ``{"error": {"code", "message", "innererror"?}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        """The response body Key Vault sends for this error."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_code is not None:
            error["innererror"] = {"code": self.inner_code}
        return {"error": error}


def secret_not_found(name: str, version: str | None = None) -> VaultError:
    """404 for a secret (or one of its versions) that does not exist in the active set."""
    target = f"{name}/{version}" if version else name
    return VaultError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {target} was not found in this key vault.",
    )


def deleted_secret_not_found(name: str) -> VaultError:
    """404 for a name that is not in the deleted (soft-deleted) set."""
    return VaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


def bad_parameter(message: str) -> VaultError:
    """400 for a malformed name, query parameter or body. ``message`` must not quote the body."""
    return VaultError(400, "BadParameter", message)


def secret_disabled() -> VaultError:
    """403 when reading the value of a disabled version, as Key Vault does."""
    return VaultError(
        403,
        "Forbidden",
        "Operation get is not allowed on a disabled secret.",
        inner_code="SecretDisabled",
    )


def deleted_name_conflict(name: str) -> VaultError:
    """409 for setting a soft-deleted name: the secret must be recovered or purged first."""
    return VaultError(
        409,
        "Conflict",
        f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
        "reused; in this state, the secret can only be recovered or purged.",
        inner_code="ObjectIsDeletedButRecoverable",
    )
