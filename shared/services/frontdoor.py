"""The front door: what pip, uv and poetry talk to.

Pages are served from stored JSON (HTML rendered from it), negotiated per PEP 691, with ETags and
private caching. Files are never proxied: each download is a 302 to a short-lived, read-only SAS
for exactly that blob, on another host, so clients drop their Basic credentials there. Every
answer is a `Reply`; every refusal an `HttpProblem` with a status, a stable code and a message
that never echoes a token.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from shared.adapters.blobstore import BlobStore
from shared.adapters.sas import SasSigner
from shared.core import layout
from shared.core.clock import iso_z
from shared.core.distribution import WHEEL_SUFFIX, check_upload_name
from shared.core.entra import ROLE_PUBLISH, ROLE_READ, EntraRefusal, looks_like_jwt
from shared.core.errors import Rejection
from shared.core.negotiate import Representation, negotiate
from shared.core.pages import (
    FileLink,
    ProjectPage,
    build_root_page,
    file_version,
    parse_project_json,
    render_root_html,
    render_root_json,
)
from shared.core.tokens import Scope, presented_token
from shared.services.entra import EntraVerifier
from shared.services.pages import page_view
from shared.services.upstream import UpstreamIndex, UpstreamProblem
from shared.services.verifier import TokenVerifier

PROJECT_SEGMENT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")
FILE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}$")
MAX_JSON_BODY = 64 * 1024
REALM = 'Basic realm="wheelvault"'
ENTRA_OFF = (
    "Entra ID sign-in is not enabled on this index: send a wheelvault token as the password "
    "of HTTP Basic auth"
)
log = logging.getLogger("wheelvault.http")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpProblem(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        body = json.dumps({"error": {"code": self.code, "message": self.message}}).encode()
        return Reply(self.status, body + b"\n", "application/json", self.headers)


def json_reply(data: Any, status: int = 200, **headers: str) -> Reply:
    body = json.dumps(data, indent=2).encode() + b"\n"
    return Reply(status, body, "application/json", {"Cache-Control": "no-store", **headers})


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


class FrontDoor:
    def __init__(
        self,
        store: BlobStore,
        signer: SasSigner,
        verifier: Callable[[], TokenVerifier],
        *,
        sas_lifetime: timedelta,
        page_cache_seconds: int,
        upstream: UpstreamIndex | None = None,
        entra: Callable[[], EntraVerifier | None] = lambda: None,
    ) -> None:
        self.store = store
        self._entra = entra  # returns None while Entra ID sign-in is off
        self.upstream = upstream  # None: private pages and files only, as before upstreams
        self.signer = signer
        self._verifier = verifier
        self.sas_lifetime = sas_lifetime
        self.page_cache_seconds = page_cache_seconds

    # -- auth -------------------------------------------------------------------------------

    def authorize(self, authorization: str | None, scope: Scope) -> str:
        """Who may act with `scope`: a wheelvault token's name, or `entra:{object_id}` for an
        Entra ID access token (a credential that looks like a JWT). Else a 401; a valid
        credential that may only read, where publishing is asked, is a 403.

        A wheelvault token's refusal says nothing about why (unknown, malformed and expired look
        alike); an Entra ID token's says why, as its checks are public rules, not secrets."""
        presented = presented_token(authorization)
        if presented is not None and looks_like_jwt(presented):
            return self._authorize_entra(presented, scope)
        name = self._verifier().verify(authorization, scope)
        if name is not None:
            return name
        if scope is Scope.PUBLISH and self._verifier().verify(authorization, Scope.READ):
            raise HttpProblem(
                403, "forbidden", "this token may only read: publishing needs a publish token"
            )
        message = (
            "a valid token is required: send it as the password of HTTP Basic auth"
            if scope is Scope.READ
            else "a valid token with publish scope is required"
        )
        raise HttpProblem(401, "unauthorized", message, {"WWW-Authenticate": REALM})

    def _authorize_entra(self, token: str, scope: Scope) -> str:
        """An Entra ID token: 401 saying why it was refused, 403 when its app roles do not
        allow `scope`. EntraUnavailable (the tenant's keys cannot be read) goes up: a 503."""
        verifier = self._entra()
        if verifier is None:
            raise HttpProblem(401, "unauthorized", ENTRA_OFF, {"WWW-Authenticate": REALM})
        try:
            principal = verifier.verify(token)
        except EntraRefusal as refusal:
            log.info("Entra ID token refused: %s", refusal.code)
            message = f"the Entra ID token was refused: {refusal.message}"
            raise HttpProblem(401, "unauthorized", message, {"WWW-Authenticate": REALM}) from None
        if principal.scope is None:
            log.info("Entra ID principal %s has no wheelvault role", principal.display)
            raise HttpProblem(
                403,
                "forbidden",
                f"this identity has no wheelvault app role: it needs {ROLE_READ} to install, "
                f"{ROLE_PUBLISH} to publish",
            )
        if not principal.scope.allows(scope):
            raise HttpProblem(
                403,
                "forbidden",
                f"this identity may only read: publishing needs the {ROLE_PUBLISH} role",
            )
        return f"entra:{principal.object_id}"

    # -- pages ------------------------------------------------------------------------------

    def page(
        self,
        project: str | None,
        *,
        accept: str | None,
        if_none_match: str | None,
        request_url: str,
    ) -> Reply:
        """The root page (`project` None) or a project's page, as the Accept header asks."""
        if project is not None:
            _path_value(project, "project")  # a bad path is a 400 before a 406
        representation = _representation(accept)
        if project is None:
            return self._root(representation, if_none_match)
        name = self._project(project)
        if name != project:
            return self._moved(request_url, name)
        path = layout.project_json(name)  # the one stored truth; HTML is rendered from it
        stored = self.store.get(layout.INDEX, path)
        if stored is None:
            if self.upstream is not None:  # no private file at all: upstream may have it
                return self._upstream_page(self.upstream, name, representation, if_none_match)
            raise HttpProblem(404, "not-found", f"no project named {name!r} in this index")
        data, etag = page_view(path, stored, html=not representation.is_json)
        return self._page_reply(representation, data, etag, if_none_match)

    def _upstream_page(
        self,
        upstream: UpstreamIndex,
        name: NormalizedName,
        representation: Representation,
        if_none_match: str | None,
    ) -> Reply:
        html = not representation.is_json
        data, etag = _upstream_answer(lambda: upstream.page_view(name, html=html))
        return self._page_reply(representation, data, etag, if_none_match)

    def _root(self, representation: Representation, if_none_match: str | None) -> Reply:
        stored = self.store.get(layout.INDEX, layout.ROOT_JSON)
        if stored is None:  # nothing published yet: an empty index, not an error
            empty = build_root_page([])
            data = render_root_json(empty) if representation.is_json else render_root_html(empty)
            return self._page_reply(representation, data, '"empty"', if_none_match)
        data, etag = page_view(layout.ROOT_JSON, stored, html=not representation.is_json)
        return self._page_reply(representation, data, etag, if_none_match)

    def _page_reply(
        self, representation: Representation, data: bytes, etag: str, if_none_match: str | None
    ) -> Reply:
        content_type = representation.media_type
        if not representation.is_json:
            content_type += "; charset=utf-8"
        headers = {
            "ETag": _quoted(etag),
            "Vary": "Accept",
            "Cache-Control": f"private, max-age={self.page_cache_seconds}",
        }
        if _etag_matches(if_none_match, _quoted(etag)):
            return Reply(304, b"", None, headers)
        return Reply(200, data, content_type, headers)

    def _moved(self, request_url: str, name: str) -> Reply:
        path = urlsplit(request_url).path
        base = (
            path[: path.rfind("/simple/") + len("/simple/")] if "/simple/" in path else "/simple/"
        )
        return Reply(301, b"", None, {"Location": f"{base}{name}/", "Cache-Control": "no-store"})

    # -- files ------------------------------------------------------------------------------

    def file(self, project: str, filename: str) -> Reply:
        """A 302 to a read-only SAS for the file (or its `.metadata` sidecar)."""
        _path_value(project, "project")
        _path_value(filename, "filename")
        name = self._project(project)
        if not FILE_SEGMENT.match(filename) or ".." in filename:
            raise HttpProblem(400, "bad-filename", "not a valid distribution filename")
        path = layout.file_path(name, filename)  # `….metadata` sidecars live beside their file
        if self.store.info(layout.INDEX, path) is None:
            path = self._upstream_file(name, filename)
        signed = self.signer.read_url(layout.INDEX, path, self.sas_lifetime)
        return Reply(302, b"", None, {"Location": signed.url, "Cache-Control": "no-store"})

    def _upstream_file(self, name: NormalizedName, filename: str) -> str:
        """A file of a project with no private page, from upstream (copied on first download)."""
        upstream = self.upstream
        private = upstream is not None and self.store.info(layout.INDEX, layout.project_json(name))
        if upstream is None or private:  # a private project never mixes in upstream files
            raise HttpProblem(404, "not-found", f"no file {filename!r} in project {name!r}")
        return _upstream_answer(lambda: upstream.file(name, filename))

    # -- SAS on request ---------------------------------------------------------------------

    def install_sas(self, body: bytes) -> Reply:
        """Read SAS URLs for one requirement's best version, or for one named file."""
        project, version, links = self._install_files(_json_object(body))
        signed = [self._signed_file(project, link) for link in links]
        return json_reply({"project": project, "version": version, "files": signed})

    def _install_files(self, request: dict[str, Any]) -> tuple[NormalizedName, str, list[FileLink]]:
        if "requirement" in request:
            return self._resolve(_string(request, "requirement"))
        if "project" in request and "filename" in request:
            project = self._project(_string(request, "project"))
            return self._one_file(project, _string(request, "filename"))
        raise HttpProblem(
            400,
            "bad-request",
            'send {"requirement": "name==1.0"} or {"project": "...", "filename": "..."}',
        )

    def _signed_file(self, project: NormalizedName, link: FileLink) -> dict[str, Any]:
        path = layout.file_path(project, link.filename)
        url = self.signer.read_url(layout.INDEX, path, self.sas_lifetime)
        return {
            "filename": link.filename,
            "url": url.url,
            "sha256": link.sha256,
            "size": link.size,
            "expires_on": iso_z(url.expires_on),
        }

    def upload_sas(self, body: bytes) -> Reply:
        """A create-only SAS for one new wheel or sdist in the uploads container."""
        filename = _string(_json_object(body), "filename")
        self._check_new_upload(filename)
        signed = self.signer.create_url(layout.UPLOADS, filename, self.sas_lifetime)
        return json_reply(
            {
                "filename": filename,
                "url": signed.url,
                "method": "PUT",
                "headers": {"x-ms-blob-type": "BlockBlob"},
                "expires_on": iso_z(signed.expires_on),
            }
        )

    def _check_new_upload(self, filename: str) -> None:
        try:
            check_upload_name(filename)
        except Rejection as rejection:
            raise HttpProblem(400, rejection.code.value, rejection.message) from None
        if self.store.info(layout.INDEX, layout.tombstone_path(filename)) is not None:
            raise HttpProblem(409, "filename-tombstoned", f"{filename} was deleted for good")
        # The claim, not the exact filename: a respelling of a published distribution
        # (Demo_Pkg-1.0.0-… beside demo_pkg-1.0-…, demo_pkg-1.0.0.tar.gz beside
        # demo_pkg-1.0.tar.gz) would be refused when published.
        if self.store.info(layout.INDEX, layout.claim_path(filename)) is not None:
            raise HttpProblem(409, "file-exists", f"{filename} is already published")

    def _resolve(self, text: str) -> tuple[NormalizedName, str, list[FileLink]]:
        """The newest version matching a PEP 508 requirement, and its wheels.

        Yanked files count only when the requirement pins a version (PEP 592). Sdists count
        when choosing the version, as pip's do, so this never answers with an older release
        than the index would install; a chosen release with no wheel is a 409 naming its
        sdist: `pip install <url>` of an sdist builds it, which this endpoint does not promise.
        Ask for the sdist by name (`{"project", "filename"}`) to get its URL anyway.
        """
        requirement = _requirement(text)
        project = canonicalize_name(requirement.name)
        by_version = self._files_by_version(project)
        pinned = any(
            s.operator in ("==", "===") and "*" not in s.version for s in requirement.specifier
        )
        candidates = {
            v: [f for f in links if pinned or f.yanked is None] for v, links in by_version.items()
        }
        allowed = list(requirement.specifier.filter(v for v, f in candidates.items() if f))
        if not allowed:
            raise HttpProblem(
                404,
                "no-match",
                f"no non-yanked version of {project!r} matches "
                f"{str(requirement.specifier) or 'any version'}",
            )
        best = max(allowed)
        wheels = [f for f in candidates[best] if f.filename.endswith(WHEEL_SUFFIX)]
        if not wheels:
            raise _no_wheel(project, best, candidates[best])
        return project, str(best), sorted(wheels, key=lambda f: f.filename)

    def _one_file(
        self, project: NormalizedName, filename: str
    ) -> tuple[NormalizedName, str, list[FileLink]]:
        link = self._stored_page(project).file(filename)
        version = _file_version(filename) if link is not None else None
        if link is None or version is None:
            raise HttpProblem(404, "not-found", f"no file {filename!r} in project {project!r}")
        return project, str(version), [link]

    def _files_by_version(self, project: NormalizedName) -> dict[Version, list[FileLink]]:
        """The page's wheels and sdists by version, in page order."""
        grouped: dict[Version, list[FileLink]] = {}
        for link in self._stored_page(project).files:
            version = _file_version(link.filename)
            if version is not None:
                grouped.setdefault(version, []).append(link)
        return grouped

    def _stored_page(self, project: NormalizedName) -> ProjectPage:
        stored = self.store.get(layout.INDEX, layout.project_json(project))
        if stored is None:
            raise HttpProblem(404, "not-found", f"no project named {project!r} in this index")
        return parse_project_json(stored.data)

    def _project(self, project: str) -> NormalizedName:
        if not PROJECT_SEGMENT.match(project):
            raise HttpProblem(400, "bad-project", "not a valid project name")
        return canonicalize_name(project)


def _upstream_answer(call: Callable[[], _T]) -> _T:
    """The upstream's answer, or its refusal as the HTTP problem it stands for."""
    try:
        return call()
    except UpstreamProblem as problem:
        raise HttpProblem(problem.status, problem.code, problem.message) from None


def _path_value(value: str, name: str) -> None:
    """A value routed from the URL path: one segment, never empty, `.`, `..` or a separator."""
    if not value or "/" in value or value in (".", "..") or "\\" in value:
        raise HttpProblem(400, "bad-path", f"invalid {name} in the path")


def _representation(accept: str | None) -> Representation:
    representation = negotiate(accept)
    if representation is None:
        raise HttpProblem(
            406,
            "not-acceptable",
            "this index serves application/vnd.pypi.simple.v1+json, "
            "application/vnd.pypi.simple.v1+html and text/html",
        )
    return representation


def _no_wheel(project: NormalizedName, version: Version, files: list[FileLink]) -> HttpProblem:
    sdist = min(f.filename for f in files)
    named = json.dumps({"project": project, "filename": sdist})
    return HttpProblem(
        409,
        "no-wheel",
        f"{project} {version} has no wheel, only the source distribution {sdist}; install it "
        f"from the index (pip builds it), or ask for the sdist by name: {named}",
    )


def _requirement(text: str) -> Requirement:
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        raise HttpProblem(400, "bad-requirement", f"not a PEP 508 requirement: {error}") from None
    if requirement.marker is not None or requirement.url is not None:
        raise HttpProblem(
            400, "bad-requirement", "environment markers and URLs are not supported here"
        )
    return requirement


def _file_version(filename: str) -> Version | None:
    try:
        return file_version(filename)
    except ValueError:  # a name of neither kind: never published, so never asked for
        return None


def _json_object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_JSON_BODY:
        raise HttpProblem(413, "too-large", f"request bodies are limited to {MAX_JSON_BODY} bytes")
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: deeply nested arrays or objects (`[[[[...`), which no request needs.
        raise HttpProblem(400, "bad-json", "the request body must be a UTF-8 JSON object") from None
    if not isinstance(value, dict):
        raise HttpProblem(400, "bad-json", "the request body must be a JSON object")
    return value


def _string(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > 1000 or not _unicode(value):
        raise HttpProblem(
            400,
            "bad-request",
            f"{key!r} must be a non-empty string (valid Unicode, up to 1000 characters)",
        )
    return value


def _unicode(text: str) -> bool:
    """False for lone surrogates (`"\\ud800"` is valid JSON, not valid text)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
