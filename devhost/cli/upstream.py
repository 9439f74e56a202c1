"""`wheelvault upstream list|drop`: the operator's view of the upstream cache.

Files copied from upstream indexes on their first download, and the upstream pages as we serve
them, live under `upstream/` in the `index` container (shared/core/layout.py); private files,
records, claims, pages and tombstones never do. So these commands list and delete only under
that prefix, and check every name they delete against it as well. Dropping a project makes its
next page request and download go to the upstream again, as on the first day.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from shared.adapters.blobstore import BlobInfo, BlobStore
from shared.core import layout
from shared.core.clock import iso_z

CACHED = "cached from upstream"
"""What `wheelvault status` says of a file copied from an upstream index."""
METADATA_SUFFIX = ".metadata"


class NotUpstream(ValueError):
    """A name outside the upstream prefix reached the delete: it is not deleted (one line)."""


@dataclass(frozen=True)
class CachedProject:
    project: NormalizedName
    page_fetched_at: datetime | None
    """None: no stored page (dropped, or only files left from before)."""
    files: tuple[BlobInfo, ...]


def add_upstream_commands(groups: Any) -> None:
    upstream = groups.add_parser(
        "upstream",
        help="the cache of files copied from upstream indexes (never touches private packages)",
    )
    actions = upstream.add_subparsers(
        dest="action",
        required=True,
        parser_class=type(upstream),
        metavar="ACTION",
        help="what to do",
    )
    listing = actions.add_parser(
        "list", help="list cached upstream projects, their files, sizes and when they were cached"
    )
    listing.add_argument(
        "projects",
        nargs="*",
        metavar="PROJECT",
        help="only these projects, e.g. requests (default: every cached project)",
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    drop = actions.add_parser(
        "drop",
        help="delete cached upstream files and pages (the next request fetches them again)",
    )
    drop.add_argument(
        "projects",
        nargs="*",
        metavar="PROJECT",
        help="the projects whose upstream copies to delete; their private files are never touched",
    )
    drop.add_argument(
        "--all", action="store_true", help="delete the whole upstream cache instead of PROJECTs"
    )


def run_upstream(args: argparse.Namespace, store: BlobStore) -> int:
    if args.action == "list":
        projects = cached_projects(store, _names(args.projects) or None)
        if args.json:
            print(json.dumps([_project_json(p) for p in projects], indent=2))
        else:
            _print_listing(projects, requested=bool(args.projects))
        return 0
    if args.all == bool(args.projects):
        raise ValueError("name the PROJECTs whose upstream copies to drop, or pass --all")
    removed = drop(store, None if args.all else _names(args.projects))
    for info in removed:
        print(f"removed {info.name} ({info.size} bytes)")
    total = sum(info.size for info in removed)
    print(
        f"dropped {len(removed)} blobs ({_size(total)}) from the upstream cache; "
        "no private file, record, claim, page or tombstone was touched",
        file=sys.stderr,
    )
    return 0


def _names(projects: Sequence[str]) -> list[NormalizedName]:
    """Valid project names, normalised; an invalid one is a one-line error (ValueError)."""
    return [canonicalize_name(name, validate=True) for name in projects]


# -- what is cached -----------------------------------------------------------------------------


def cached_projects(
    store: BlobStore, projects: Sequence[NormalizedName] | None = None
) -> list[CachedProject]:
    """The upstream cache per project, sorted; `projects` None: every project in it."""
    pages = {
        _page_project(info.name): info
        for info in store.list(layout.INDEX, layout.UPSTREAM_PAGES_PREFIX)
    }
    files: dict[str, list[BlobInfo]] = {}
    for info in store.list(layout.INDEX, layout.UPSTREAM_FILES_PREFIX):
        project = info.name.removeprefix(layout.UPSTREAM_FILES_PREFIX).split("/", 1)[0]
        files.setdefault(project, []).append(info)
    names = sorted(set(pages) | set(files)) if projects is None else list(projects)
    return [
        CachedProject(
            NormalizedName(name),
            pages[name].last_modified if name in pages else None,
            tuple(files.get(name, ())),
        )
        for name in names
    ]


def _page_project(blob_name: str) -> str:
    return blob_name.removeprefix(layout.UPSTREAM_PAGES_PREFIX).removesuffix(".json")


def _files_prefix(project: NormalizedName) -> str:
    """`upstream/files/{project}/`: the trailing slash keeps `foo` from matching `foo-bar`."""
    return layout.upstream_file_path(project, "")


def upstream_state(store: BlobStore, project: NormalizedName, name: str) -> tuple[str, str] | None:
    """`wheelvault status` of a file copied from upstream: (state, detail), None if not one."""
    info = store.info(layout.INDEX, layout.upstream_file_path(project, name))
    if info is None:
        return None
    sha256 = info.metadata.get("sha256", "")
    when = f"copied {iso_z(info.last_modified, 'seconds')}, " if info.last_modified else ""
    return CACHED, (
        f"{when}{info.size} bytes, sha256 {sha256[:12]}…; not a private upload "
        f"(`wheelvault upstream drop {project}` removes the copy)"
    )


# -- dropping -----------------------------------------------------------------------------------


def drop(store: BlobStore, projects: Sequence[NormalizedName] | None) -> list[BlobInfo]:
    """Delete the upstream copies of `projects` (None: all of them); returns what was removed.

    Only blobs under `upstream/` are listed, and each name is checked again before it is
    deleted, so a private blob cannot be reached whatever a project name holds."""
    if projects is None:
        found = list(store.list(layout.INDEX, layout.UPSTREAM_PREFIX))
    else:
        found = []
        for project in projects:
            cached = _project_blobs(store, project)
            if not cached:
                print(f"{project}: nothing cached from upstream", file=sys.stderr)
            found.extend(cached)
    return [info for info in found if _delete(store, info)]


def _project_blobs(store: BlobStore, project: NormalizedName) -> list[BlobInfo]:
    found = list(store.list(layout.INDEX, _files_prefix(project)))
    page = store.info(layout.INDEX, layout.upstream_page_path(project))
    return found + ([page] if page is not None else [])


def _delete(store: BlobStore, info: BlobInfo) -> bool:
    if not info.name.startswith(layout.UPSTREAM_PREFIX):
        raise NotUpstream(f"refusing to delete {info.name}: not under {layout.UPSTREAM_PREFIX}")
    return store.delete(layout.INDEX, info.name)  # False: gone meanwhile (another drop)


# -- output -------------------------------------------------------------------------------------


def _project_json(cached: CachedProject) -> dict[str, Any]:
    return {
        "project": cached.project,
        "source": "upstream",
        "page-fetched-at": _when(cached.page_fetched_at),
        "files": [
            {
                "filename": _filename(info),
                "metadata": info.name.endswith(METADATA_SUFFIX),
                "size": info.size,
                "cached-at": _when(info.last_modified),
                "blob": info.name,
            }
            for info in cached.files
        ],
    }


def _print_listing(projects: list[CachedProject], *, requested: bool) -> None:
    print("UPSTREAM CACHE: copies from upstream indexes (private packages are not listed here)")
    shown = [p for p in projects if p.files or p.page_fetched_at]
    for cached in projects:
        if cached not in shown:
            print(f"{cached.project}: nothing cached from upstream")
            continue
        page = (
            f"page fetched {_when(cached.page_fetched_at)}"
            if cached.page_fetched_at
            else ("no stored page")
        )
        print(f"{cached.project} (upstream; {page})")
        for info in cached.files:
            print(
                f"  {_filename(info):60} {_size(info.size):>10}  cached {_when(info.last_modified)}"
            )
    if not shown and not requested:
        print("the upstream cache is empty")
        return
    files = [info for p in shown for info in p.files]
    print(
        f"{len(shown)} projects, {len(files)} files, {_size(sum(i.size for i in files))} "
        "cached from upstream"
    )


def _filename(info: BlobInfo) -> str:
    return info.name.rsplit("/", 1)[-1]


def _when(moment: datetime | None) -> str | None:
    return iso_z(moment, "seconds") if moment is not None else None


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    return f"{size / 1e3:.1f} kB" if size < 1_000_000 else f"{size / 1e6:.1f} MB"
