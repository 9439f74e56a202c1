"""Simple-index pages: PEP 503/629/658/714/592 HTML and PEP 691/700 JSON.

One plain data structure per page (`ProjectPage`, `RootPage`) feeds both renderers, so the HTML
and JSON views cannot drift apart. Output is deterministic: the same records give the same bytes,
which is what lets `reindex` prove an index is correct by changing nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from packaging.utils import NormalizedName, canonicalize_name

from shared.core.records import FileRecord, format_upload_time

API_VERSION = "1.1"


@dataclass(frozen=True)
class FileLink:
    """One file as a page shows it. `yanked`: None if not yanked, else the reason ("" = none)."""

    filename: str
    url: str
    sha256: str
    requires_python: str | None
    core_metadata_sha256: str
    size: int
    upload_time: str
    yanked: str | None


@dataclass(frozen=True)
class ProjectPage:
    name: NormalizedName
    versions: tuple[str, ...]
    files: tuple[FileLink, ...]


@dataclass(frozen=True)
class RootPage:
    projects: tuple[NormalizedName, ...]


def file_url(project: NormalizedName, filename: str) -> str:
    """Relative to /simple/{project}/, stable, and never carrying a SAS."""
    return f"../../files/{quote(project, safe='')}/{quote(filename, safe='+!')}"


def build_project_page(project: NormalizedName, records: Iterable[FileRecord]) -> ProjectPage:
    ordered = sorted(records, key=lambda r: (r.parsed_version, r.filename))
    for record in ordered:
        if record.project != project:
            raise ValueError(f"record {record.filename!r} belongs to {record.project!r}")
    versions = sorted({r.parsed_version for r in ordered})
    return ProjectPage(
        name=project,
        versions=tuple(str(v) for v in versions),
        files=tuple(_link(r) for r in ordered),
    )


def _link(record: FileRecord) -> FileLink:
    return FileLink(
        filename=record.filename,
        url=file_url(record.normalized_project, record.filename),
        sha256=record.sha256,
        requires_python=record.requires_python,
        core_metadata_sha256=record.metadata_sha256,
        size=record.size,
        upload_time=format_upload_time(record.upload_time),
        yanked=(record.yanked_reason or "") if record.yanked else None,
    )


def build_root_page(projects: Iterable[str]) -> RootPage:
    return RootPage(projects=tuple(sorted({canonicalize_name(p) for p in projects})))


def _html_document(title: str, links: list[str]) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        f"    <title>{escape(title)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>{escape(title)}</h1>",
        *(f"    {link}<br>" for link in links),
        "  </body>",
        "</html>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _attr(name: str, value: str) -> str:
    return f' {name}="{escape(value, quote=True)}"'


def render_project_html(page: ProjectPage) -> bytes:
    links = []
    for f in page.files:
        attrs = _attr("href", f"{f.url}#sha256={f.sha256}")
        if f.requires_python:
            attrs += _attr("data-requires-python", f.requires_python)
        attrs += _attr("data-core-metadata", f"sha256={f.core_metadata_sha256}")
        attrs += _attr("data-dist-info-metadata", f"sha256={f.core_metadata_sha256}")
        if f.yanked is not None:
            attrs += _attr("data-yanked", f.yanked)
        links.append(f"<a{attrs}>{escape(f.filename)}</a>")
    return _html_document(f"Links for {page.name}", links)


def project_page_data(page: ProjectPage) -> dict[str, Any]:
    files = [
        {
            "filename": f.filename,
            "url": f.url,
            "hashes": {"sha256": f.sha256},
            "requires-python": f.requires_python,
            "core-metadata": {"sha256": f.core_metadata_sha256},
            "dist-info-metadata": {"sha256": f.core_metadata_sha256},
            "size": f.size,
            "upload-time": f.upload_time,
            "yanked": (f.yanked or True) if f.yanked is not None else False,
        }
        for f in page.files
    ]
    return {
        "meta": {"api-version": API_VERSION},
        "name": page.name,
        "versions": list(page.versions),
        "files": files,
    }


def _json_document(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=1, ensure_ascii=True, sort_keys=False).encode() + b"\n"


def render_project_json(page: ProjectPage) -> bytes:
    return _json_document(project_page_data(page))


def render_root_html(page: RootPage) -> bytes:
    links = [f"<a{_attr('href', quote(p, safe='') + '/')}>{escape(p)}</a>" for p in page.projects]
    return _html_document("Simple index", links)


def render_root_json(page: RootPage) -> bytes:
    return _json_document(
        {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in page.projects]}
    )
