"""The `wheelvault` commands that work on the index: upload, sas, status, yank, unyank, delete,
reindex, upstream (devhost/cli/upstream.py). Uploads and SAS go through the front door with a
token, as any publisher would; the management commands talk to storage directly, with the
operator's own access."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from packaging.utils import NormalizedName

from devhost.cli.upstream import run_upstream, upstream_state
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.distribution import SDIST_SUFFIX, WHEEL_SUFFIX, parse_filename
from shared.core.records import FileRecord
from shared.core.redact import redact_url
from shared.services.wiring import build_services
from shared.settings import Settings

TOKEN_ENV = "WHEELVAULT_TOKEN"  # noqa: S105 - the name of a variable, not a value
FRONT_DOOR_TIMEOUT = 15.0
"""Seconds per connect or read for the front door's SAS endpoints: it answers within 10 s even
when its vault or storage does not (then with a 503 that says so)."""


class IndexCliError(Exception):
    """A user-facing failure: one line, exit status 1."""


class Refused(IndexCliError):
    """The front door said no: its HTTP status and stable error code come with the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if code else f"HTTP {status}")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class BearerToken:
    """An Entra ID access token (`--entra`): sent as `Authorization: Bearer`, where a wheelvault
    token goes as the Basic password."""

    value: str = field(repr=False)


FrontDoorToken = str | BearerToken


def authorization(token: FrontDoorToken) -> str:
    """The Authorization header that presents `token` to the front door."""
    if isinstance(token, BearerToken):
        return f"Bearer {token.value}"
    return "Basic " + base64.b64encode(f"wheelvault-cli:{token}".encode()).decode()


class ProgressReader:
    """A file wrapper that reports how much of it was read (http.client reads it in blocks)."""

    def __init__(self, stream: IO[bytes], total: int, report: Callable[[int, int], None]):
        self.stream = stream
        self.total = total
        self.done = 0
        self.report = report

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.done += len(chunk)
        self.report(self.done, self.total)
        return chunk


def progress_printer(name: str, *, enabled: bool) -> Callable[[int, int], None]:
    last = [-1]

    def report(done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        if enabled and percent != last[0]:
            last[0] = percent
            end = "\n" if done >= total else ""
            print(
                f"\r  {name}: {percent:3d}% ({done / 1e6:.1f} of {total / 1e6:.1f} MB)",
                end=end,
                file=sys.stderr,
                flush=True,
            )

    return report


def _http_url(url: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise IndexCliError(f"{redact_url(url)} is not an http(s) URL")
    return url


def _call(base_url: str, path: str, token: FrontDoorToken, body: dict[str, str]) -> dict[str, Any]:
    url = _http_url(base_url.rstrip("/") + path)
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    request.add_header("Authorization", authorization(token))
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=FRONT_DOOR_TIMEOUT) as reply:  # noqa: S310
            answer: dict[str, Any] = json.loads(reply.read())
            return answer
    except urllib.error.HTTPError as error:
        raise _refusal(error) from None
    except (urllib.error.URLError, TimeoutError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else "timed out"
        raise IndexCliError(
            f"the front door at {redact_url(base_url)} did not answer ({reason}): start the "
            "local stack with `make run`, or pass --url (or set WHEELVAULT_PUBLIC_URL)"
        ) from None


def _refusal(error: urllib.error.HTTPError) -> Refused:
    try:
        detail = json.loads(error.read())["error"]
        return Refused(error.code, str(detail["code"]), str(detail["message"]))
    except (ValueError, KeyError, TypeError):
        return Refused(error.code, "", "")


def distributions(arguments: list[str]) -> list[Path]:
    """The files to upload, all checked before the first upload: each FILE as given, and the
    wheels and sdists directly in each directory — the dist/ of a normal build (its other files
    are skipped with a note: the index would only refuse them)."""
    files: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files.extend(_distributions_in(path))
        elif path.is_file():
            files.append(path)
        else:
            raise IndexCliError(f"{path}: no such file or directory")
    unique = {path.resolve(): path for path in reversed(files)}  # dist/ and dist/*.whl: once
    return [path for path in files if unique[path.resolve()] is path]


def _distributions_in(directory: Path) -> list[Path]:
    found = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name.endswith((WHEEL_SUFFIX, SDIST_SUFFIX)):
            found.append(path)
        elif path.is_file() and not path.name.startswith("."):  # hatch writes dist/.gitignore
            print(
                f"skipping {path}: not a wheel or an sdist (the index takes *.whl and *.tar.gz)",
                file=sys.stderr,
            )
    if not found:
        raise IndexCliError(f"{directory}: no wheels (*.whl) or sdists (*.tar.gz) in it")
    return found


def upload(
    files: list[Path],
    *,
    base_url: str,
    token: FrontDoorToken,
    progress: bool,
    skip_existing: bool = False,
) -> list[str]:
    """Upload each file through a create-only SAS from the front door; returns the names."""
    names = []
    for path in files:
        try:
            answer = _call(base_url, "/sas/upload", token, {"filename": path.name})
        except Refused as refusal:
            if not (skip_existing and refusal.code == "file-exists"):
                raise
            _check_identical(path, base_url=base_url, token=token, refusal=refusal)
            names.append(path.name)
            print(f"skipped {path.name}: already published, identical", file=sys.stderr)
            continue
        _put(path, str(answer["url"]), progress=progress)
        names.append(path.name)
    return names


def _put(path: Path, url: str, *, progress: bool) -> None:
    size = path.stat().st_size
    with path.open("rb") as stream:
        body = ProgressReader(stream, size, progress_printer(path.name, enabled=progress))
        request = urllib.request.Request(_http_url(url), data=body, method="PUT")  # noqa: S310
        request.add_header("Content-Length", str(size))
        request.add_header("x-ms-blob-type", "BlockBlob")
        request.add_header("Content-Type", "application/octet-stream")
        try:
            with urllib.request.urlopen(request, timeout=600) as reply:  # noqa: S310
                reply.read()
        except urllib.error.HTTPError as error:
            if error.code == 409:
                raise IndexCliError(f"{path.name}: an upload of that name is pending") from None
            raise IndexCliError(f"{path.name}: upload refused (HTTP {error.code})") from None
    print(f"uploaded {path.name} ({size} bytes)", file=sys.stderr)


def _check_identical(path: Path, *, base_url: str, token: FrontDoorToken, refusal: Refused) -> None:
    """Like twine's --skip-existing, but by content: the same name with other bytes still fails.

    The published file's sha256 comes from the front door (a publish token may read), so this
    works against a deployed index as well as the local one."""
    try:
        project = str(parse_filename(path.name)[0])
        answer = _call(base_url, "/sas/install", token, {"project": project, "filename": path.name})
        published = str(answer["files"][0]["sha256"])
    except (ValueError, Refused, KeyError, IndexError, TypeError):
        # Published under another spelling of the same distribution: not this file.
        raise refusal from None
    if published != _sha256(path):
        raise IndexCliError(
            f"{path.name} is already published with different contents (sha256 "
            f"{published[:12]}…, this file {_sha256(path)[:12]}…); files are immutable, "
            "publish a new version instead"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def install_urls(requirement: str, *, base_url: str, token: FrontDoorToken) -> dict[str, Any]:
    return _call(base_url, "/sas/install", token, {"requirement": requirement})


FINAL = ("published", "quarantined", "deleted", "cached from upstream", "not uploaded")
"""States an upload does not leave on its own; only "published" is success."""


def upload_state(store: BlobStore, name: str) -> tuple[str, str] | None:
    """(state, detail) once the upload was handled, or never made; None while it is pending.

    The pending upload is looked at first: the publisher removes it only after writing the
    outcome, so a name that is neither pending then nor handled after was never uploaded."""
    pending = store.info(layout.UPLOADS, name) is not None
    reason = _newest_reason(store, name)
    if reason is not None:
        return "quarantined", f"{reason.get('code')}: {reason.get('message')}"
    if pending:
        return None
    try:
        project = parse_filename(name)[0]
    except ValueError:  # neither a wheel's nor an sdist's name: it cannot have been published
        return "not uploaded", "nothing pending or quarantined under that name"
    if store.info(layout.INDEX, layout.file_path(project, name)) is not None:
        return "published", _warnings(store, project, name)
    if store.info(layout.INDEX, layout.tombstone_path(name)) is not None:
        return "deleted", "deleted for good; publish a new version"
    cached = upstream_state(store, project, name)
    if cached is not None:
        return cached
    return "not uploaded", "nothing pending, published or quarantined under that name"


def _warnings(store: BlobStore, project: NormalizedName, name: str) -> str:
    """What the validator found odd but harmless about a published file, as one line."""
    stored = store.get(layout.INDEX, layout.record_path(project, name))
    warnings = FileRecord.from_json(stored.data).warnings if stored is not None else ()
    return f"warnings: {'; '.join(warnings)}" if warnings else ""


def _newest_reason(store: BlobStore, name: str) -> dict[str, Any] | None:
    newest: dict[str, Any] | None = None
    for info in store.list(layout.QUARANTINE, name):
        quarantined = info.name.removesuffix(".reason.json")
        if not info.name.endswith(".reason.json") or not (
            quarantined == name or quarantined.removeprefix(name + ".").isdigit()
        ):
            continue
        stored = store.get(layout.QUARANTINE, info.name)
        if stored is None:
            continue
        reason: dict[str, Any] = json.loads(stored.data)
        if newest is None or str(reason.get("at", "")) > str(newest.get("at", "")):
            newest = reason
    return newest


def wait_for(store: BlobStore, names: list[str], timeout: float) -> dict[str, tuple[str, str]]:
    """Poll until every upload is published or quarantined, or the time is up."""
    deadline = time.monotonic() + timeout
    states: dict[str, tuple[str, str]] = {}
    while True:
        for name in names:
            if name not in states:
                state = upload_state(store, name)
                if state is not None:
                    states[name] = state
        if len(states) == len(names) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def run_index_command(
    args: Any,
    settings: Settings,
    front_door: str | None,
    token_for: Callable[[str], FrontDoorToken],
) -> int:
    """Dispatch the non-token commands; returns the exit status. `front_door`: the base URL
    for upload and sas; `token_for(name)`: the local token `name`'s value when no token is
    given, or with --entra an Entra ID token for that token's role."""
    base_url = front_door or ""
    if args.group == "upload":
        files = distributions(args.files)
        token = _given_token(args) or token_for("local-publisher")
        names = upload(
            files,
            base_url=base_url,
            token=token,
            progress=args.progress or (not args.quiet and sys.stderr.isatty()),
            skip_existing=args.skip_existing,
        )
        if args.wait:
            return _report(build_services(settings).store, names, args.timeout)
        return 0
    if args.group == "sas":
        token = _given_token(args) or token_for("local-reader")
        answer = install_urls(args.requirement, base_url=base_url, token=token)
        if args.json:
            print(json.dumps(answer, indent=2))
        else:
            for entry in answer["files"]:
                print(entry["url"])
        return 0
    services = build_services(settings)
    if args.group == "upstream":
        return run_upstream(args, services.store)
    if args.group == "status":
        return _report(services.store, [Path(n).name for n in args.uploads], args.timeout)
    if args.group in ("yank", "unyank"):
        if args.group == "yank":
            changed = services.manager.yank(
                args.project, version=args.version, filename=args.file, reason=args.reason
            )
        else:
            changed = services.manager.unyank(
                args.project, version=args.version, filename=args.file
            )
        for filename in changed:
            print(f"{args.group}ed {filename}")
        return 0
    if args.group == "delete":
        services.manager.delete_file(args.project, args.file, reason=args.reason)
        print(f"deleted {args.file}; the filename can never be published again")
        return 0
    if args.group == "reindex":
        changed = services.manager.reindex()
        print("reindex: nothing to change" if not changed else f"reindexed: {', '.join(changed)}")
        return 0
    raise IndexCliError(f"unknown command {args.group!r}")


def _given_token(args: Any) -> str | None:
    """--token, else $WHEELVAULT_TOKEN; neither with --entra (then the sign-in decides)."""
    if args.entra:
        return None
    return str(args.token or os.environ.get(TOKEN_ENV) or "") or None


def _report(store: BlobStore, names: list[str], timeout: float) -> int:
    states = wait_for(store, names, timeout)
    status = 0
    for name in names:
        state, reason = states.get(name, ("pending", f"not handled within {timeout:g} s"))
        print(f"{name}: {state}" + (f" ({reason})" if reason else ""))
        status = status or (0 if state == "published" else 1)
    return status
