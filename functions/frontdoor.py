"""HTTP front door: the simple index for pip/uv/poetry, file redirects, SAS on request, health,
and PyPI's upload API for twine, uv publish and poetry publish.

Host-level auth is anonymous because pip and uv can send HTTP Basic credentials but not a
function key; every route but /health checks a credential in code (a wheelvault token, or a
Microsoft Entra ID access token when Entra ID sign-in is on). The routes only
translate between HTTP and `shared.services.frontdoor` (which checks the path values and builds
every answer) and turn failures into JSON errors, never tracebacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.adapters.blobstore import unreachable
from shared.adapters.oidc import EntraUnavailable
from shared.adapters.secretstore import VaultUnavailable
from shared.core.redact import redact_url
from shared.core.tokens import Scope
from shared.services.frontdoor import FrontDoor, HttpProblem, Reply
from shared.services.upload_api import check_upload_path
from shared.services.wiring import get_services, health_reply
from shared.settings import SettingsError

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves __init__ unannotated
log = logging.getLogger("wheelvault.http")

ANONYMOUS = func.AuthLevel.ANONYMOUS
RETRY_SHORTLY = {"Retry-After": "5"}

Action = Callable[[FrontDoor], Reply]


@bp.function_name("simple_root")
@bp.route(route="simple", methods=["GET", "HEAD"], auth_level=ANONYMOUS)
def simple_root(req: func.HttpRequest) -> func.HttpResponse:
    return _read(req, lambda door: _page(door, req, None))


@bp.function_name("simple_project")
@bp.route(route="simple/{project}", methods=["GET", "HEAD"], auth_level=ANONYMOUS)
def simple_project(req: func.HttpRequest) -> func.HttpResponse:
    return _read(req, lambda door: _page(door, req, _path(req, "project")))


@bp.function_name("files")
@bp.route(route="files/{project}/{filename}", methods=["GET", "HEAD"], auth_level=ANONYMOUS)
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _read(req, lambda door: door.file(_path(req, "project"), _path(req, "filename")))


@bp.function_name("sas_install")
@bp.route(route="sas/install", methods=["POST"], auth_level=ANONYMOUS)
def sas_install(req: func.HttpRequest) -> func.HttpResponse:
    return _read(req, lambda door: door.install_sas(req.get_body()))


@bp.function_name("sas_upload")
@bp.route(route="sas/upload", methods=["POST"], auth_level=ANONYMOUS)
def sas_upload(req: func.HttpRequest) -> func.HttpResponse:
    return _publish(req, lambda door: door.upload_sas(req.get_body()))


@bp.function_name("upload_legacy")
@bp.route(route="legacy", methods=["POST"], auth_level=ANONYMOUS)
def upload_legacy(req: func.HttpRequest) -> func.HttpResponse:
    """PyPI's upload API, where twine, uv and poetry send files (`--repository-url …/legacy/`)."""
    return _upload(req, "")


@bp.function_name("upload_root")
@bp.route(route="{*path}", methods=["POST"], auth_level=ANONYMOUS)
def upload_root(req: func.HttpRequest) -> func.HttpResponse:
    """The same at `/` (pypiserver's and devpi's users point twine at the root). Azure cannot
    bind an empty route reliably, so this is a POST-only catch-all that serves `/` alone; as
    the least specific route, every other route wins over it."""
    return _upload(req, _path(req, "path"))


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 when storage and the vault answer, else 503, within HEALTH_SECONDS. No auth; says
    which backend failed and the kind of failure, never an endpoint or a message."""
    return _response(health_reply(), req.method)


# -- HTTP in ---------------------------------------------------------------------------------


def _read(req: func.HttpRequest, action: Action) -> func.HttpResponse:
    return _authorized(req, Scope.READ, action)


def _publish(req: func.HttpRequest, action: Action) -> func.HttpResponse:
    return _authorized(req, Scope.PUBLISH, action)


def _upload(req: func.HttpRequest, path: str) -> func.HttpResponse:
    """A path the upload API does not serve is a 404 before any token is looked at."""
    try:
        check_upload_path(path)
    except HttpProblem as problem:
        return _response(problem.reply(), req.method)
    body, content_type = req.get_body(), req.headers.get("Content-Type")
    return _publish(req, lambda _: get_services().upload_api.upload(content_type, body))


def _path(req: func.HttpRequest, name: str) -> str:
    """A routed path value as sent; the front door decides whether it is acceptable."""
    return str(req.route_params.get(name, ""))


def _page(door: FrontDoor, req: func.HttpRequest, project: str | None) -> Reply:
    return door.page(
        project,
        accept=req.headers.get("Accept"),
        if_none_match=req.headers.get("If-None-Match"),
        request_url=req.url,
    )


def _authorized(req: func.HttpRequest, scope: Scope, action: Action) -> func.HttpResponse:
    """Check the token for `scope`, then act; every failure becomes a JSON error."""
    try:
        door = get_services().front_door
        door.authorize(req.headers.get("Authorization"), scope)
        reply = action(door)
    except (HttpProblem, SettingsError, AzureError) as error:  # VaultUnavailable is an AzureError
        reply = _problem(req, error).reply()
    except EntraUnavailable as error:
        reply = _entra_unavailable(req, error).reply()
    return _response(reply, req.method)


# -- HTTP out --------------------------------------------------------------------------------


def _response(reply: Reply, method: str) -> func.HttpResponse:
    headers = dict(reply.headers)
    if reply.content_type:
        headers["Content-Type"] = reply.content_type
    body = b"" if method == "HEAD" else reply.body
    return func.HttpResponse(body=body, status_code=reply.status, headers=headers)


def _problem(req: func.HttpRequest, error: HttpProblem | SettingsError | AzureError) -> HttpProblem:
    if isinstance(error, HttpProblem):
        return error
    if isinstance(error, SettingsError):
        log.error("misconfigured: %s", error)
        return HttpProblem(500, "misconfigured", "the index is misconfigured")
    if isinstance(error, VaultUnavailable):
        # Bounded (the vault client's deadlines): the client hears within seconds, not minutes.
        log.warning(
            "vault unavailable for %s %s: %s", req.method, redact_url(req.url), error.reason
        )
        message = (
            "the token vault did not answer, so the token could not be checked; try again shortly"
        )
        return HttpProblem(503, "unavailable", message, RETRY_SHORTLY)
    return _backend_problem(req, error)


def _entra_unavailable(req: func.HttpRequest, error: EntraUnavailable) -> HttpProblem:
    """Bounded like the vault (the verifier's deadline): the client hears within seconds."""
    log.warning(
        "Entra ID keys unavailable for %s %s: %s", req.method, redact_url(req.url), error.reason
    )
    message = (
        "the Entra ID tenant's signing keys could not be read, so the token could not be "
        "checked; try again shortly"
    )
    return HttpProblem(503, "unavailable", message, RETRY_SHORTLY)


def _backend_problem(req: func.HttpRequest, error: AzureError) -> HttpProblem:
    name = type(error).__name__
    log.warning("backend unavailable for %s %s: %s", req.method, redact_url(req.url), name)
    down = unreachable(error)  # the vault's outages are VaultUnavailable, handled before
    message = (
        "the index's storage did not answer; try again shortly"
        if down is not None
        else "storage or the vault refused the request"
    )
    return HttpProblem(503, "unavailable", message, RETRY_SHORTLY)
