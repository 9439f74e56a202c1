"""The Entra ID endpoints the stand-in serves, independent of the HTTP server that carries them.

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and the v1 document at
  ``GET /{tenant}/.well-known/openid-configuration``;
* the JWKS at ``/{tenant}/discovery/v2.0/keys`` and ``/{tenant}/discovery/keys`` (each request
  is counted, so tests can prove how often a verifier fetched the keys);
* ``POST /{tenant}/oauth2/v2.0/token``: the client-credentials grant, as MSAL (and so
  azure-identity's ``ClientSecretCredential``) uses it, and its v1 form at
  ``/{tenant}/oauth2/token`` (``resource=`` instead of ``scope=``). Tokens are v2 either way, as
  for an app registration with ``accessTokenAcceptedVersion: 2``. Interactive flows (the
  ``authorization_endpoint`` the documents name) are not served;
* ``GET /msi/token``: App Service's managed-identity endpoint (``IDENTITY_ENDPOINT``), guarded by
  the ``X-IDENTITY-HEADER`` secret (``IDENTITY_HEADER``), as ``ManagedIdentityCredential`` and so
  ``DefaultAzureCredential`` call it;
* ``POST /admin/rotate`` and ``GET /admin/key-fetches``, behind the same header: the stand-in's
  own controls.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devhost.standins.https import log_internal_error

from . import errors
from .errors import EntraError, EntraResponse, ManagedIdentityError
from .keys import KeyRing
from .principals import DEFAULT_PRINCIPAL, Directory, LocalApp, LocalPrincipal
from .tokens import IssuedToken, issue_access_token

logger = logging.getLogger(__name__)

IDENTITY_HEADER = "X-IDENTITY-HEADER"
MSI_API_VERSION = "2019-08-01"
DEFAULT_SUFFIX = "/.default"
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
# Scopes MSAL may add to any request; they say nothing about the resource.
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(frozen=True)
class EntraRequest:
    """One HTTP request as the endpoints see it; ``headers`` keys are lower case."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""


_Handler = Callable[[EntraRequest, Mapping[str, list[str]]], EntraResponse]


class EntraApi:
    """Routes requests for one tenant; ``clock`` gives epoch seconds (tokens' ``iat``)."""

    def __init__(
        self,
        directory: Directory,
        keys: KeyRing,
        *,
        public_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = directory
        self._keys = keys
        self._url = public_url.rstrip("/")
        self._clock = clock
        self._key_fetches = 0
        self._fetch_lock = threading.Lock()
        tenant = directory.tenant_id
        self._routes: dict[tuple[str, str], _Handler] = {
            ("GET", f"/{tenant}/v2.0/.well-known/openid-configuration"): self._v2_metadata,
            ("GET", f"/{tenant}/.well-known/openid-configuration"): self._v1_metadata,
            ("GET", f"/{tenant}/discovery/v2.0/keys"): self._jwks,
            ("GET", f"/{tenant}/discovery/keys"): self._jwks,
            ("POST", f"/{tenant}/oauth2/v2.0/token"): self._token,
            ("POST", f"/{tenant}/oauth2/token"): self._v1_token,
            ("GET", "/msi/token"): self._msi_token,
            ("POST", "/admin/rotate"): self._rotate,
            ("GET", "/admin/key-fetches"): self._fetch_count,
        }

    @property
    def issuer(self) -> str:
        return f"{self._url}/{self._directory.tenant_id}/v2.0"

    @property
    def key_fetches(self) -> int:
        """JWKS requests served so far (both URIs)."""
        with self._fetch_lock:
            return self._key_fetches

    def rotate_keys(self, *, retire_previous: bool = False) -> str:
        """A new signing key; its kid (logged: a kid is public, it is in every token header)."""
        kid = self._keys.rotate(retire_previous=retire_previous)
        logger.info("signing key rotated: kid %s (older keys retired: %s)", kid, retire_previous)
        return kid

    def handle(self, request: EntraRequest) -> EntraResponse:
        """Answer one request. Never raises; unexpected failures become a detail-free 500."""
        try:
            return self._handle(request)
        except EntraError as exc:
            return exc.response(self._url, request.headers.get("client-request-id"))
        except ManagedIdentityError as exc:
            return exc.response()
        except Exception as exc:
            log_internal_error(logger, exc, request.method)
            return EntraResponse(500, {"error": "server_error"})

    def _handle(self, request: EntraRequest) -> EntraResponse:
        split = urllib.parse.urlsplit(request.target)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        handler = self._routes.get((request.method, split.path))
        if handler is not None:
            return handler(request, query)
        tenant = split.path.strip("/").split("/", 1)[0]
        if tenant and tenant.lower() != self._directory.tenant_id and _is_tenant_route(split.path):
            raise errors.unknown_tenant(tenant)
        if any(path == split.path for _, path in self._routes):
            return EntraResponse(405, {"error": "method_not_allowed"})
        return EntraResponse(404, {"error": "not_found"})

    # -- discovery ------------------------------------------------------------------------------

    def _v2_metadata(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        base = f"{self._url}/{self._directory.tenant_id}"
        return EntraResponse(
            200,
            {
                **_metadata_common(),
                "issuer": self.issuer,
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
            },
        )

    def _v1_metadata(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        base = f"{self._url}/{self._directory.tenant_id}"
        return EntraResponse(
            200,
            {
                **_metadata_common(),
                "issuer": f"{base}/",
                "jwks_uri": f"{base}/discovery/keys",
                "token_endpoint": f"{base}/oauth2/token",
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "end_session_endpoint": f"{base}/oauth2/logout",
            },
        )

    def _jwks(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        with self._fetch_lock:
            self._key_fetches += 1
        return EntraResponse(200, {"keys": [key.public_jwk() for key in self._keys.published()]})

    # -- tokens ---------------------------------------------------------------------------------

    def _token(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        """The v2 endpoint: the app is named by ``scope={resource}/.default``."""
        form = _form(request)
        principal = self._client(form, "scope")
        issued = self._issue(principal, self._app_for_scope(form["scope"]))
        body = {
            "token_type": "Bearer",
            "expires_in": issued.lifetime,
            "ext_expires_in": issued.lifetime,
            "access_token": issued.access_token,
        }
        return EntraResponse(200, body, _NO_STORE)

    def _v1_token(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        """The v1 endpoint: the app is named by ``resource``; numbers are sent as strings."""
        form = _form(request)
        principal = self._client(form, "resource")
        app = self._directory.app_for(form["resource"])
        if app is None:
            raise errors.unknown_resource(form["resource"], self._directory.tenant_id)
        issued = self._issue(principal, app)
        body = {
            "token_type": "Bearer",
            "expires_in": str(issued.lifetime),
            "ext_expires_in": str(issued.lifetime),
            "expires_on": str(issued.expires_on),
            "not_before": str(issued.expires_on - issued.lifetime),
            "resource": form["resource"],
            "access_token": issued.access_token,
        }
        return EntraResponse(200, body, _NO_STORE)

    def _client(self, form: Mapping[str, str], target: str) -> LocalPrincipal:
        """The principal a client-credentials request signs in as, its secret checked."""
        if _required(form, "grant_type") != "client_credentials":
            raise errors.unsupported_grant_type()
        client_id = _required(form, "client_id")
        _required(form, target)
        principal = self._directory.principal_by_client_id(client_id)
        if principal is None:
            raise errors.unknown_client(client_id, self._directory.tenant_id)
        secret = form.get("client_secret", "")
        if not secret:
            raise errors.no_client_secret()
        if not hmac.compare_digest(secret.encode(), principal.client_secret.encode()):
            raise errors.wrong_client_secret(client_id)
        return principal

    def _app_for_scope(self, scope: str) -> LocalApp:
        """The one app a client-credentials ``scope`` names as ``{resource}/.default``."""
        wanted = [s for s in scope.split() if s not in _OIDC_SCOPES]
        if len(wanted) != 1 or not wanted[0].endswith(DEFAULT_SUFFIX):
            raise errors.scope_not_default(scope)
        resource = wanted[0].removesuffix(DEFAULT_SUFFIX)
        app = self._directory.app_for(resource)
        if app is None:
            raise errors.unknown_resource(resource, self._directory.tenant_id)
        return app

    def _msi_token(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        self._check_identity_header(request)
        if _last(query, "api-version") != MSI_API_VERSION:
            raise ManagedIdentityError(400, f"api-version must be {MSI_API_VERSION}.")
        resource = _last(query, "resource")
        if not resource:
            raise ManagedIdentityError(400, "The resource parameter is required.")
        principal = self._managed_identity(query)
        app = self._directory.app_for(resource.removesuffix(DEFAULT_SUFFIX))
        if app is None:
            raise ManagedIdentityError(
                400, "AADSTS500011: The resource principal was not found in the tenant."
            )
        issued = self._issue(principal, app)
        return EntraResponse(
            200,
            {
                "access_token": issued.access_token,
                "expires_on": str(issued.expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": principal.client_id,
            },
        )

    def _managed_identity(self, query: Mapping[str, list[str]]) -> LocalPrincipal:
        """The identity a request names by ``client_id`` or ``object_id``; else the default."""
        if _last(query, "mi_res_id"):
            raise ManagedIdentityError(400, "The stand-in knows identities by client or object id.")
        client_id, object_id = _last(query, "client_id"), _last(query, "object_id")
        if client_id:
            principal = self._directory.principal_by_client_id(client_id)
        elif object_id:
            principal = self._directory.principal_by_object_id(object_id)
        else:
            principal = self._directory.principals[DEFAULT_PRINCIPAL]
        if principal is None:
            raise ManagedIdentityError(400, "No managed identity with that id is assigned here.")
        return principal

    def _issue(self, principal: LocalPrincipal, app: LocalApp) -> IssuedToken:
        return issue_access_token(
            self._keys.signing_key,
            issuer=self.issuer,
            tenant_id=self._directory.tenant_id,
            app=app,
            principal=principal,
            roles_for_app=app == self._directory.wheelvault,
            now=int(self._clock()),
        )

    # -- the stand-in's own controls ----------------------------------------------------------

    def _rotate(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        self._check_identity_header(request)
        try:
            options = json.loads(request.body or b"{}")
        except ValueError:
            options = None
        if not isinstance(options, dict) or not isinstance(
            options.get("retire_previous", False), bool
        ):
            return EntraResponse(400, {"error": "invalid_request"})
        kid = self.rotate_keys(retire_previous=options.get("retire_previous", False))
        return EntraResponse(200, {"kid": kid})

    def _fetch_count(self, request: EntraRequest, query: Mapping[str, list[str]]) -> EntraResponse:
        self._check_identity_header(request)
        return EntraResponse(200, {"key_fetches": self.key_fetches})

    def _check_identity_header(self, request: EntraRequest) -> None:
        presented = request.headers.get(IDENTITY_HEADER.lower(), "")
        expected = self._directory.identity_header
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise ManagedIdentityError(401, f"The {IDENTITY_HEADER} header is missing or wrong.")


def _metadata_common() -> dict[str, Any]:
    return {
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "ver"],
        "request_uri_parameter_supported": False,
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
    }


def _is_tenant_route(path: str) -> bool:
    """Paths under a tenant: discovery, keys and tokens (a mistyped tenant gets AADSTS90002)."""
    return any(part in path for part in ("/.well-known/", "/discovery/", "/oauth2/"))


def _form(request: EntraRequest) -> dict[str, str]:
    """The token request's form fields (the last of a repeated one)."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.missing_parameter("grant_type") from None
    fields = urllib.parse.parse_qs(text, keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise errors.missing_parameter(name)
    return value


def _last(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None
