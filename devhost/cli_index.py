"""The `wheelvault` commands that work on the index: upload, sas, status, yank, unyank, delete,
reindex. Uploads and SAS go through the front door with a token, as any publisher would; the
management commands talk to storage directly, with the operator's own access."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)

from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.records import FileRecord
from shared.core.redact import redact_url
from shared.services.app import build_services
from shared.settings import Settings

TOKEN_ENV = "WHEELVAULT_TOKEN"  # noqa: S105 - the name of a variable, not a value
FRONT_DOOR_TIMEOUT = 15.0
"""Seconds per connect or read for the front door's SAS endpoints: it answers within 10 s even
when its vault or storage does not (then with a 503 that says so)."""


class IndexCliError(Exception):
    """A user-facing failure: one line, exit status 1."""


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


def _call(base_url: str, path: str, token: str, body: dict[str, str]) -> dict[str, Any]:
    url = _http_url(base_url.rstrip("/") + path)
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    credential = base64.b64encode(f"wheelvault-cli:{token}".encode()).decode()
    request.add_header("Authorization", f"Basic {credential}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=FRONT_DOOR_TIMEOUT) as reply:  # noqa: S310
            answer: dict[str, Any] = json.loads(reply.read())
            return answer
    except urllib.error.HTTPError as error:
        raise IndexCliError(_problem(error)) from None
    except (urllib.error.URLError, TimeoutError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else "timed out"
        raise IndexCliError(
            f"the front door at {redact_url(base_url)} did not answer ({reason}): start the "
            "local stack with `make run`, or pass --url (or set WHEELVAULT_PUBLIC_URL)"
        ) from None


def _problem(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read())["error"]
        return f"{error.code} {detail['code']}: {detail['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"


def upload(files: list[Path], *, base_url: str, token: str, progress: bool) -> list[str]:
    """Upload each wheel through a create-only SAS from the front door; returns the names."""
    names = []
    for path in files:
        if not path.is_file():
            raise IndexCliError(f"{path}: no such file")
        answer = _call(base_url, "/sas/upload", token, {"filename": path.name})
        size = path.stat().st_size
        with path.open("rb") as stream:
            body = ProgressReader(stream, size, progress_printer(path.name, enabled=progress))
            target = _http_url(str(answer["url"]))
            request = urllib.request.Request(target, data=body, method="PUT")  # noqa: S310
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
        names.append(path.name)
        print(f"uploaded {path.name} ({size} bytes)", file=sys.stderr)
    return names


def install_urls(requirement: str, *, base_url: str, token: str) -> dict[str, Any]:
    return _call(base_url, "/sas/install", token, {"requirement": requirement})


def upload_state(store: BlobStore, name: str) -> tuple[str, str] | None:
    """("published", "" or its warnings) or ("quarantined", "code: message") once handled."""
    reason = _newest_reason(store, name)
    if reason is not None:
        return "quarantined", f"{reason.get('code')}: {reason.get('message')}"
    try:
        project = canonicalize_name(parse_wheel_filename(name)[0])
    except InvalidWheelFilename:
        return None
    pending = store.info(layout.UPLOADS, name) is not None
    if not pending and store.info(layout.INDEX, layout.file_path(project, name)) is not None:
        return "published", _warnings(store, project, name)
    return None


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


def run_index_command(args: Any, settings: Settings, token_for: Callable[[str], str]) -> int:
    """Dispatch the non-token commands; returns the exit status."""
    base_url = getattr(args, "url", None) or settings.public_url
    if args.group == "upload":
        token = args.token or os.environ.get(TOKEN_ENV) or token_for("local-publisher")
        names = upload(
            [Path(f) for f in args.files],
            base_url=base_url,
            token=token,
            progress=args.progress or (not args.quiet and sys.stderr.isatty()),
        )
        if args.wait:
            return _report(build_services(settings).store, names, args.timeout)
        return 0
    if args.group == "sas":
        token = args.token or os.environ.get(TOKEN_ENV) or token_for("local-reader")
        answer = install_urls(args.requirement, base_url=base_url, token=token)
        if args.json:
            print(json.dumps(answer, indent=2))
        else:
            for entry in answer["files"]:
                print(entry["url"])
        return 0
    services = build_services(settings)
    if args.group == "status":
        return _report(services.store, [Path(n).name for n in args.uploads], args.timeout)
    if args.group in ("yank", "unyank"):
        if args.group == "yank":
            changed = services.admin.yank(
                args.project, version=args.version, filename=args.file, reason=args.reason
            )
        else:
            changed = services.admin.unyank(args.project, version=args.version, filename=args.file)
        for filename in changed:
            print(f"{args.group}ed {filename}")
        return 0
    if args.group == "delete":
        services.admin.delete_file(args.project, args.file, reason=args.reason)
        print(f"deleted {args.file}; the filename can never be published again")
        return 0
    if args.group == "reindex":
        changed = services.admin.reindex()
        print("reindex: nothing to change" if not changed else f"reindexed: {', '.join(changed)}")
        return 0
    raise IndexCliError(f"unknown command {args.group!r}")


def _report(store: BlobStore, names: list[str], timeout: float) -> int:
    states = wait_for(store, names, timeout)
    status = 0
    for name in names:
        state, reason = states.get(name, ("pending", f"not handled within {timeout:g} s"))
        print(f"{name}: {state}" + (f" ({reason})" if reason else ""))
        status = status or (0 if state == "published" else 1)
    return status
