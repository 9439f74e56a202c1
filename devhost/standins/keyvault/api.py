"""The Key Vault secrets protocol, independent of the HTTP server that carries it.

:class:`VaultApi` turns one request (method, target, ``Authorization``, ``Host``, body) into one
response (status, JSON body, headers). Keeping it free of sockets makes the routing, challenge
and validation rules easy to read in one place; ``server.py`` only moves bytes.

Rules that ``SecretClient`` relies on:

* The challenge handshake: a request without a bearer token gets 401 with a
  ``WWW-Authenticate`` naming an authority and the ``https://vault.azure.net`` resource. The SDK
  sends its first request without body or token to provoke it, so this check comes before
  anything else. Any non-empty bearer token is accepted afterwards.
* Paging: ``nextLink`` is an absolute URL the SDK follows verbatim (adding its own
  ``api-version``), so it must carry the page size and an opaque ``$skiptoken``.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from devhost.listening import trusted_host
from devhost.standins.https import log_internal_error

from . import bundles
from .errors import VaultError, bad_parameter, secret_disabled, secret_not_found
from .store import NAME_PATTERN, VERSION_PATTERN, SecretStore, VersionProperties

logger = logging.getLogger(__name__)

TENANT_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE = "https://vault.azure.net"
AUTHORITY_HOST = "https://login.microsoftonline.com"
CHALLENGE = f'Bearer authorization="{AUTHORITY_HOST}/{TENANT_ID}", resource="{RESOURCE}"'
MAX_PAGE_SIZE = 25
MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE_CHARS = 255
MAX_TAGS = 15
MAX_TAG_NAME_CHARS = 512
MAX_TAG_VALUE_CHARS = 256
_MAX_UNIX_TIME = 253402300799  # 9999-12-31T23:59:59Z, the last time datetime can hold

_SKIP_TOKEN = re.compile(r"[0-9a-z-]{1,127}")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request as the protocol sees it. ``target`` is the raw path plus query."""

    method: str
    target: str
    authorization: str | None
    host: str | None
    body: bytes = b""


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP response; ``body=None`` means no content (e.g. 204 after a purge)."""

    status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Call:
    """A routed request: decoded path parameters plus what handlers need from the request."""

    base_url: str
    path: str
    params: Mapping[str, str]
    query: Mapping[str, list[str]]
    body: bytes

    def name(self) -> str:
        name = self.params["name"]
        if not NAME_PATTERN.fullmatch(name):
            # The offending name is not echoed: it is client input of any shape.
            raise bad_parameter(
                "The request URI contains an invalid name. Secret names are 1-127 characters "
                "of 0-9, a-z, A-Z and '-'."
            )
        return name

    def version(self, name: str) -> str:
        version = self.params.get("version", "")
        if version and not VERSION_PATTERN.fullmatch(version.lower()):
            raise secret_not_found(name, version)
        return version

    def query_value(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[-1] if values else None


_Handler = Callable[[_Call], ApiResponse]


class VaultApi:
    """Routes Key Vault secrets requests to a :class:`SecretStore`."""

    def __init__(
        self,
        store: SecretStore,
        *,
        public_url: str,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        self._store = store
        self._public_url = public_url.rstrip("/")
        self._page_size = page_size
        routes: list[tuple[str, dict[str, _Handler]]] = [
            ("/secrets", {"GET": self._list_secrets}),
            ("/secrets/", {"GET": self._list_secrets}),
            (
                "/secrets/{name}",
                {"GET": self._get_secret, "PUT": self._set_secret, "DELETE": self._delete_secret},
            ),
            ("/secrets/{name}/versions", {"GET": self._list_versions}),
            ("/secrets/{name}/{version}", {"GET": self._get_secret, "PATCH": self._update}),
            ("/deletedsecrets", {"GET": self._list_deleted}),
            ("/deletedsecrets/", {"GET": self._list_deleted}),
            ("/deletedsecrets/{name}", {"GET": self._get_deleted, "DELETE": self._purge}),
            ("/deletedsecrets/{name}/recover", {"POST": self._recover}),
        ]
        self._routes = [(tuple(pattern.split("/")[1:]), methods) for pattern, methods in routes]

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request. Never raises; unexpected failures become a bodyless-detail 500."""
        try:
            return self._handle(request)
        except VaultError as exc:
            return ApiResponse(exc.status, exc.to_json(), exc.headers)
        except Exception as exc:
            log_internal_error(logger, exc, request.method)
            error = VaultError(500, "InternalServerError", "The stand-in failed unexpectedly.")
            return ApiResponse(500, error.to_json())

    def _handle(self, request: ApiRequest) -> ApiResponse:
        if not _has_bearer_token(request.authorization):
            return ApiResponse(
                401,
                {
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10000: Request is missing a Bearer or PoP token.",
                    }
                },
                {"WWW-Authenticate": CHALLENGE},
            )
        split = urllib.parse.urlsplit(request.target)
        segments = split.path.split("/")[1:] if split.path.startswith("/") else None
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        handler, params = self._route(request.method, segments or [])
        call = _Call(self._base_url(request.host), split.path, params, query, request.body)
        if not call.query_value("api-version"):
            raise bad_parameter("The 'api-version' query parameter is missing.")
        return handler(call)

    def _route(self, method: str, segments: Sequence[str]) -> tuple[_Handler, dict[str, str]]:
        allowed: set[str] = set()
        for pattern, methods in self._routes:
            params = _match(pattern, segments)
            if params is None:
                continue
            handler = methods.get(method)
            if handler is not None:
                return handler, params
            allowed.update(methods)
        if allowed:
            raise VaultError(
                405,
                "MethodNotAllowed",
                f"The method {method} is not allowed for this resource.",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        raise VaultError(404, "NotFound", "The requested resource does not exist.")

    def _base_url(self, host: str | None) -> str:
        """Ids use the authority the client addressed, like Key Vault's vault URL."""
        trusted = trusted_host(host)
        return f"https://{trusted}" if trusted else self._public_url

    # -- secrets ------------------------------------------------------------------------------

    def _set_secret(self, call: _Call) -> ApiResponse:
        name = call.name()
        view = self._store.set_secret(name, *_parse_set_body(call.body))
        return ApiResponse(200, bundles.secret_bundle(call.base_url, view, include_value=True))

    def _get_secret(self, call: _Call) -> ApiResponse:
        name = call.name()
        view = self._store.get_secret(name, call.version(name))
        if not view.version.enabled:
            raise secret_disabled()
        return ApiResponse(200, bundles.secret_bundle(call.base_url, view, include_value=True))

    def _update(self, call: _Call) -> ApiResponse:
        name = call.name()
        version = call.version(name)
        view = self._store.update_secret(name, version, _properties(_json_object(call.body)))
        return ApiResponse(200, bundles.secret_bundle(call.base_url, view, include_value=False))

    def _list_secrets(self, call: _Call) -> ApiResponse:
        views = self._store.list_secrets()
        return self._page(
            call,
            [(v.name.lower(), v) for v in views],
            lambda v: bundles.secret_item(call.base_url, v, versioned=False),
        )

    def _list_versions(self, call: _Call) -> ApiResponse:
        views = self._store.list_versions(call.name())
        return self._page(
            call,
            # Creation order; zero-padded positions sort like the list and never change,
            # because versions are only ever appended.
            [(f"{index:06d}", v) for index, v in enumerate(views)],
            lambda v: bundles.secret_item(call.base_url, v, versioned=True),
        )

    # -- soft delete --------------------------------------------------------------------------

    def _delete_secret(self, call: _Call) -> ApiResponse:
        view = self._store.delete_secret(call.name())
        return ApiResponse(200, bundles.deleted_bundle(call.base_url, view))

    def _get_deleted(self, call: _Call) -> ApiResponse:
        view = self._store.get_deleted(call.name())
        return ApiResponse(200, bundles.deleted_bundle(call.base_url, view))

    def _list_deleted(self, call: _Call) -> ApiResponse:
        views = self._store.list_deleted()
        return self._page(
            call,
            [(v.name.lower(), v) for v in views],
            lambda v: bundles.deleted_item(call.base_url, v),
        )

    def _purge(self, call: _Call) -> ApiResponse:
        self._store.purge_deleted(call.name())
        return ApiResponse(204)

    def _recover(self, call: _Call) -> ApiResponse:
        view = self._store.recover_deleted(call.name())
        return ApiResponse(200, bundles.secret_bundle(call.base_url, view, include_value=False))

    # -- paging -------------------------------------------------------------------------------

    def _page(
        self,
        call: _Call,
        keyed: Sequence[tuple[str, _T]],
        render: Callable[[_T], dict[str, Any]],
    ) -> ApiResponse:
        """One page of ``keyed`` (sorted by key) after the ``$skiptoken`` key, with a nextLink.

        The token is the key of the last item served, so secrets created or deleted between
        pages neither repeat nor shift the rest of the listing.
        """
        size = self._page_size
        raw_size = call.query_value("maxresults")
        if raw_size is not None:
            if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
                raise bad_parameter(f"maxresults must be an integer from 1 to {MAX_PAGE_SIZE}.")
            size = int(raw_size)
        after = call.query_value("$skiptoken")
        if after is not None and not _SKIP_TOKEN.fullmatch(after):
            raise bad_parameter("The $skiptoken query parameter is not valid.")
        remaining = [(key, item) for key, item in keyed if after is None or key > after]
        page = remaining[:size]
        next_link = None
        if len(remaining) > size:
            query = urllib.parse.urlencode(
                {
                    "api-version": call.query_value("api-version") or "",
                    "$skiptoken": page[-1][0],
                    "maxresults": str(size),
                },
                safe="$",
            )
            next_link = f"{call.base_url}{call.path}?{query}"
        return ApiResponse(
            200, {"value": [render(item) for _, item in page], "nextLink": next_link}
        )


def _match(pattern: Sequence[str], segments: Sequence[str]) -> dict[str, str] | None:
    """Path parameters if ``segments`` fit ``pattern``; only ``{version}`` may be empty."""
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for expected, raw in zip(pattern, segments, strict=True):
        if expected.startswith("{"):
            value = urllib.parse.unquote(raw)
            if not value and expected != "{version}":
                return None
            params[expected[1:-1]] = value
        elif raw.lower() != expected:
            return None
    return params


def _has_bearer_token(authorization: str | None) -> bool:
    if not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


# -- request bodies ----------------------------------------------------------------------------
# Error messages name the offending property only; they never quote the body.


def _parse_set_body(body: bytes) -> tuple[str, VersionProperties]:
    data = _json_object(body)
    value = data.get("value")
    if not isinstance(value, str):
        raise bad_parameter("Property 'value' is required and must be a string.")
    if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise bad_parameter(f"Property 'value' exceeds {MAX_VALUE_BYTES} bytes.")
    return value, _properties(data)


def _properties(data: Mapping[str, Any]) -> VersionProperties:
    """What a set or update body says about the version, besides its value."""
    enabled, not_before, expires = _attributes(data.get("attributes"))
    return VersionProperties(
        content_type=_content_type(data.get("contentType")),
        tags=_tags(data.get("tags")),
        enabled=enabled,
        not_before=not_before,
        expires=expires,
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise bad_parameter("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise bad_parameter("The request body must be a JSON object.")
    return data


def _content_type(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_CONTENT_TYPE_CHARS:
        raise bad_parameter(
            f"Property 'contentType' must be a string of at most {MAX_CONTENT_TYPE_CHARS} chars."
        )
    return raw


def _tags(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) > MAX_TAGS:
        raise bad_parameter(f"Property 'tags' must be an object with at most {MAX_TAGS} tags.")
    for key, value in raw.items():
        if not isinstance(value, str) or not key or len(key) > MAX_TAG_NAME_CHARS:
            raise bad_parameter("Property 'tags' must map non-empty names to string values.")
        if len(value) > MAX_TAG_VALUE_CHARS:
            raise bad_parameter(f"Tag values are limited to {MAX_TAG_VALUE_CHARS} characters.")
    return dict(raw)


def _attributes(raw: Any) -> tuple[bool | None, int | None, int | None]:
    """``(enabled, nbf, exp)``; ``None`` for anything absent or null."""
    if raw is None:
        return None, None, None
    if not isinstance(raw, dict):
        raise bad_parameter("Property 'attributes' must be an object.")
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise bad_parameter("Property 'attributes.enabled' must be a boolean.")
    return enabled, _unix_time(raw, "nbf"), _unix_time(raw, "exp")


def _unix_time(attributes: Mapping[str, Any], key: str) -> int | None:
    raw = attributes.get(key)
    if raw is None:
        return None
    # The range check also rejects NaN and infinities, which compare false/out of range.
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= _MAX_UNIX_TIME:
        raise bad_parameter(f"Property 'attributes.{key}' must be a unix time in seconds.")
    return int(raw)
