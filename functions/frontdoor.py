"""HTTP front door: the simple index for pip/uv/poetry, file redirects, SAS on request, health.

Host-level auth is anonymous because pip and uv can send HTTP Basic credentials but not a
function key; every route but /health checks a wheelvault token in code. The routes only
translate between HTTP and `shared.services.frontdoor`; errors become JSON bodies there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.adapters.blobstore import unreachable
from shared.adapters.secretstore import VaultUnavailable
from shared.core.redact import redact_url
from shared.core.tokens import Scope
from shared.services.frontdoor import FrontDoor, HttpProblem, Reply
from shared.services.wiring import get_services
from shared.settings import SettingsError

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves __init__ unannotated
log = logging.getLogger("wheelvault.http")

ANONYMOUS = func.AuthLevel.ANONYMOUS


def _response(reply: Reply, method: str) -> func.HttpResponse:
    headers = dict(reply.headers)
    if reply.content_type:
        headers["Content-Type"] = reply.content_type
    body = b"" if method == "HEAD" else reply.body
    return func.HttpResponse(body=body, status_code=reply.status, headers=headers)


def _handle(req: func.HttpRequest, action: Callable[[FrontDoor], Reply]) -> func.HttpResponse:
    """Run one front-door action; map every failure to a JSON error, never a traceback."""
    try:
        reply = action(get_services().front_door)
    except HttpProblem as problem:
        reply = problem.reply()
    except SettingsError as error:
        log.error("misconfigured: %s", error)
        reply = HttpProblem(500, "misconfigured", "the index is misconfigured").reply()
    except VaultUnavailable as error:
        # Bounded (the vault client's deadlines): the client hears within seconds, not minutes.
        log.warning(
            "vault unavailable for %s %s: %s", req.method, redact_url(req.url), error.reason
        )
        reply = HttpProblem(
            503,
            "unavailable",
            "the token vault did not answer, so the token could not be checked; try again shortly",
            {"Retry-After": "5"},
        ).reply()
    except AzureError as error:
        log.warning(
            "backend unavailable for %s %s: %s",
            req.method,
            redact_url(req.url),
            type(error).__name__,
        )
        down = unreachable(error)  # the vault's outages are VaultUnavailable, handled above
        message = (
            "the index's storage did not answer; try again shortly"
            if down is not None
            else "storage or the vault refused the request"
        )
        reply = HttpProblem(503, "unavailable", message, {"Retry-After": "5"}).reply()
    return _response(reply, req.method)


def _route(req: func.HttpRequest, name: str) -> str:
    value = str(req.route_params.get(name, ""))
    if not value or "/" in value or value in (".", "..") or "\\" in value:
        raise HttpProblem(400, "bad-path", f"invalid {name} in the path")
    return value


@bp.function_name("simple_root")
@bp.route(route="simple", methods=["GET", "HEAD"], auth_level=ANONYMOUS)
def simple_root(req: func.HttpRequest) -> func.HttpResponse:
    def action(door: FrontDoor) -> Reply:
        door.authorize(req.headers.get("Authorization"), Scope.READ)
        return door.page(
            None,
            accept=req.headers.get("Accept"),
            if_none_match=req.headers.get("If-None-Match"),
            request_url=req.url,
        )

    return _handle(req, action)


@bp.function_name("simple_project")
@bp.route(route="simple/{project}", methods=["GET", "HEAD"], auth_level=ANONYMOUS)
def simple_project(req: func.HttpRequest) -> func.HttpResponse:
    def action(door: FrontDoor) -> Reply:
        door.authorize(req.headers.get("Authorization"), Scope.READ)
        return door.page(
            _route(req, "project"),
            accept=req.headers.get("Accept"),
            if_none_match=req.headers.get("If-None-Match"),
            request_url=req.url,
        )

    return _handle(req, action)


@bp.function_name("files")
@bp.route(route="files/{project}/{filename}", methods=["GET", "HEAD"], auth_level=ANONYMOUS)
def files(req: func.HttpRequest) -> func.HttpResponse:
    def action(door: FrontDoor) -> Reply:
        door.authorize(req.headers.get("Authorization"), Scope.READ)
        return door.file(_route(req, "project"), _route(req, "filename"))

    return _handle(req, action)


@bp.function_name("sas_install")
@bp.route(route="sas/install", methods=["POST"], auth_level=ANONYMOUS)
def sas_install(req: func.HttpRequest) -> func.HttpResponse:
    def action(door: FrontDoor) -> Reply:
        door.authorize(req.headers.get("Authorization"), Scope.READ)
        return door.install_sas(req.get_body())

    return _handle(req, action)


@bp.function_name("sas_upload")
@bp.route(route="sas/upload", methods=["POST"], auth_level=ANONYMOUS)
def sas_upload(req: func.HttpRequest) -> func.HttpResponse:
    def action(door: FrontDoor) -> Reply:
        door.authorize(req.headers.get("Authorization"), Scope.PUBLISH)
        return door.upload_sas(req.get_body())

    return _handle(req, action)


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 when storage and the vault answer, else 503, within HEALTH_SECONDS. No auth; says
    which backend failed and the kind of failure, never an endpoint or a message."""
    try:
        checks = get_services().health()
    except SettingsError:
        checks = {"settings": "error: SettingsError"}
    healthy = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if healthy else "unhealthy", **checks}
    return func.HttpResponse(
        body=json.dumps(body),
        status_code=200 if healthy else 503,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
