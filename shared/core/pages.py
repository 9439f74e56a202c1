"""Simple-index pages: PEP 503/629/658/714/592 HTML and PEP 691/700 JSON.

One plain data structure per page (`ProjectPage`, `RootPage`) feeds both renderers, so the HTML
and JSON views cannot drift apart. Output is deterministic: the same records give the same bytes,
which is what lets `reindex` prove an index is correct by changing nothing.

The stored JSON is the truth. `parse_project_json` / `parse_root_json` are the renderers' exact
inverses (typed, strict), so a publish can read a page, change one file (`with_file`,
`without_file`) and write it back without reading the records; the result is byte for byte what
a full render from the records gives. The HTML view is rendered from the parsed JSON.

Wheels and sdists share a page, ordered by version then filename. An sdist has no PEP 658
metadata file, so its link carries no `data-core-metadata` (HTML) and no `core-metadata` key
(JSON): PEP 691 makes the key optional, and its absence tells installers to download the file.
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import quote

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from shared.core.distribution import parse_filename
from shared.core.records import FileRecord, format_upload_time

API_VERSION = "1.1"


@dataclass(frozen=True)
class FileLink:
    """One file as a page shows it. `yanked`: None if not yanked, else the reason ("" = none).
    `core_metadata_sha256`: None for a file without a `.metadata` file (an sdist).
    `size`, `upload_time`: None only for an upstream file whose index did not say (an HTML
    upstream); the JSON page then leaves the key out, as clients read both as optional."""

    filename: str
    url: str
    sha256: str
    requires_python: str | None
    core_metadata_sha256: str | None
    size: int | None
    upload_time: str | None
    yanked: str | None


@dataclass(frozen=True)
class ProjectPage:
    name: NormalizedName
    versions: tuple[str, ...]
    files: tuple[FileLink, ...]

    def file(self, filename: str) -> FileLink | None:
        return next((f for f in self.files if f.filename == filename), None)


@dataclass(frozen=True)
class RootPage:
    projects: tuple[NormalizedName, ...]


class PageFormatError(ValueError):
    """A stored page is not what the renderer writes: `reindex` rebuilds it from the records."""


def file_url(project: NormalizedName, filename: str) -> str:
    """Relative to /simple/{project}/, stable, and never carrying a SAS."""
    return f"../../files/{quote(project, safe='')}/{quote(filename, safe='+!')}"


def build_project_page(project: NormalizedName, records: Iterable[FileRecord]) -> ProjectPage:
    links = []
    for record in records:
        if record.project != project:
            raise ValueError(f"record {record.filename!r} belongs to {record.project!r}")
        links.append(file_link(record))
    return project_page(project, links)


@functools.lru_cache(maxsize=1 << 16)
def _version(filename: str) -> tuple[Version, str]:
    """A file's version and its spelling. Cached: a publish places one file among thousands."""
    version = parse_filename(filename)[1]
    return version, str(version)


def _order(filename: str) -> tuple[Version, str]:
    """Where a file goes on its page: by version, then filename."""
    return _version(filename)[0], filename


def file_version(filename: str) -> Version:
    """A file's version as its filename says: publishing made it equal to the record's."""
    return _version(filename)[0]


def project_page(
    project: NormalizedName, links: Iterable[FileLink], *, ordered: bool = False
) -> ProjectPage:
    """The page for these files: ordered by version, then filename; `versions` derived.

    Both the full render (from records) and a one-file change (from the stored page) end
    here, which is why they give the same bytes. `ordered`: the links are in order already.
    """
    files = list(links) if ordered else sorted(links, key=lambda f: _order(f.filename))
    versions: dict[Version, str] = {}
    for link in files:  # equal versions spelled apart (1.0, 1.0.0): the first one's spelling
        version, spelling = _version(link.filename)
        versions.setdefault(version, spelling)
    return ProjectPage(name=project, versions=tuple(versions.values()), files=tuple(files))


def with_file(page: ProjectPage, link: FileLink) -> ProjectPage:
    """`page` with `link` added, or replacing the link of the same filename.

    A stored page is in order already, so the new link is placed by bisection instead of
    sorting thousands of files again.
    """
    files = [f for f in page.files if f.filename != link.filename]
    at = bisect.bisect_left(files, _order(link.filename), key=lambda f: _order(f.filename))
    files.insert(at, link)
    return project_page(page.name, files, ordered=True)


def without_file(page: ProjectPage, filename: str) -> ProjectPage:
    return project_page(page.name, [f for f in page.files if f.filename != filename], ordered=True)


def file_link(record: FileRecord) -> FileLink:
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


def with_project(page: RootPage, project: NormalizedName) -> RootPage:
    return build_root_page([*page.projects, project])


def without_project(page: RootPage, project: NormalizedName) -> RootPage:
    return build_root_page(p for p in page.projects if p != project)


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
        if f.core_metadata_sha256 is not None:
            attrs += _attr("data-core-metadata", f"sha256={f.core_metadata_sha256}")
            attrs += _attr("data-dist-info-metadata", f"sha256={f.core_metadata_sha256}")
        if f.yanked is not None:
            attrs += _attr("data-yanked", f.yanked)
        links.append(f"<a{attrs}>{escape(f.filename)}</a>")
    return _html_document(f"Links for {page.name}", links)


def project_page_data(page: ProjectPage) -> dict[str, Any]:
    return {
        "meta": {"api-version": API_VERSION},
        "name": page.name,
        "versions": list(page.versions),
        "files": [_file_data(f) for f in page.files],
    }


def _file_data(f: FileLink) -> dict[str, Any]:
    metadata = {"sha256": f.core_metadata_sha256}
    return {
        "filename": f.filename,
        "url": f.url,
        "hashes": {"sha256": f.sha256},
        "requires-python": f.requires_python,
        **(
            {"core-metadata": metadata, "dist-info-metadata": metadata}
            if f.core_metadata_sha256 is not None
            else {}
        ),
        **({"size": f.size} if f.size is not None else {}),
        **({"upload-time": f.upload_time} if f.upload_time is not None else {}),
        "yanked": (f.yanked or True) if f.yanked is not None else False,
    }


def _json_document(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=1, ensure_ascii=True, sort_keys=False).encode() + b"\n"


def render_project_json(page: ProjectPage) -> bytes:
    """`_json_document(project_page_data(page))`, byte for byte, about ten times faster.

    json.dumps with an indent runs its pure-Python encoder; a publish into a project of 10,000
    files renders a 6 MB page, so the file entries are written from a template instead, with
    the C string encoder json itself uses. A unit test holds the two equal.
    """
    if not page.files or not page.versions:
        return _json_document(project_page_data(page))
    versions = ",\n".join(f"  {_s(v)}" for v in page.versions)
    files = ",\n".join(_file_entry(f) for f in page.files)
    return (
        f'{{\n "meta": {{\n  "api-version": {_s(API_VERSION)}\n }},\n "name": {_s(page.name)},\n'
        f' "versions": [\n{versions}\n ],\n "files": [\n{files}\n ]\n}}\n'
    ).encode()


def _file_entry(f: FileLink) -> str:
    requires_python = "null" if f.requires_python is None else _s(f.requires_python)
    yanked = "false" if f.yanked is None else "true" if not f.yanked else _s(f.yanked)
    metadata = ""  # an sdist: no keys at all, as project_page_data leaves them out
    if f.core_metadata_sha256 is not None:
        digest = f'{{\n    "sha256": {_s(f.core_metadata_sha256)}\n   }}'
        metadata = f'   "core-metadata": {digest},\n   "dist-info-metadata": {digest},\n'
    size = "" if f.size is None else f'   "size": {int(f.size)},\n'
    upload_time = "" if f.upload_time is None else f'   "upload-time": {_s(f.upload_time)},\n'
    return (
        f'  {{\n   "filename": {_s(f.filename)},\n   "url": {_s(f.url)},\n'
        f'   "hashes": {{\n    "sha256": {_s(f.sha256)}\n   }},\n'
        f'   "requires-python": {requires_python},\n{metadata}{size}{upload_time}'
        f'   "yanked": {yanked}\n  }}'
    )


def _s(value: str) -> str:
    """A JSON string exactly as json.dumps(ensure_ascii=True) writes it."""
    return encode_basestring_ascii(value)


def render_root_html(page: RootPage) -> bytes:
    links = [f"<a{_attr('href', quote(p, safe='') + '/')}>{escape(p)}</a>" for p in page.projects]
    return _html_document("Simple index", links)


def render_root_json(page: RootPage) -> bytes:
    return _json_document(
        {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in page.projects]}
    )


# -- the inverse: stored JSON back into pages ------------------------------------------------


def parse_project_json(data: bytes) -> ProjectPage:
    """The ProjectPage that `render_project_json` wrote as `data`; PageFormatError otherwise."""
    document = _object(_load(data), "the page")
    name = _string(document, "name")
    if canonicalize_name(name) != name:
        raise PageFormatError(f"page name {name!r} is not normalised")
    versions = tuple(_text(v, "a version") for v in _array(document, "versions"))
    files = tuple(_parse_link(_object(f, "a file")) for f in _array(document, "files"))
    return ProjectPage(name=canonicalize_name(name), versions=versions, files=files)


def parse_root_json(data: bytes) -> RootPage:
    """The RootPage that `render_root_json` wrote as `data`; PageFormatError otherwise."""
    entries = _array(_object(_load(data), "the root page"), "projects")
    names = [_string(_object(e, "a project"), "name") for e in entries]
    return RootPage(projects=tuple(canonicalize_name(n) for n in names))


def _parse_link(entry: dict[str, Any]) -> FileLink:
    yanked = entry.get("yanked")
    if not isinstance(yanked, bool | str):
        raise PageFormatError(f"'yanked' is {yanked!r}")
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
        raise PageFormatError(f"'size' is {size!r}")
    upload_time = entry.get("upload-time")
    if upload_time is not None and not isinstance(upload_time, str):
        raise PageFormatError(f"'upload-time' is {upload_time!r}")
    requires_python = entry.get("requires-python")
    if requires_python is not None and not isinstance(requires_python, str):
        raise PageFormatError(f"'requires-python' is {requires_python!r}")
    return FileLink(
        filename=_string(entry, "filename"),
        url=_string(entry, "url"),
        sha256=_string(_object(entry.get("hashes"), "'hashes'"), "sha256"),
        requires_python=requires_python,
        core_metadata_sha256=_core_metadata(entry),
        size=size,
        upload_time=upload_time,
        # The renderer writes False, True (yanked, no reason) or the reason.
        yanked=None if yanked is False else "" if yanked is True else yanked,
    )


def _core_metadata(entry: dict[str, Any]) -> str | None:
    """The metadata file's hash; None when the renderer left the key out (an sdist)."""
    if "core-metadata" not in entry:
        return None
    return _string(_object(entry["core-metadata"], "'core-metadata'"), "sha256")


def _load(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError as error:
        raise PageFormatError(f"not JSON: {error}") from None


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PageFormatError(f"{what} is not a JSON object")
    return value


def _array(document: dict[str, Any], key: str) -> list[object]:
    value = document.get(key)
    if not isinstance(value, list):
        raise PageFormatError(f"{key!r} is not a JSON array")
    return value


def _string(document: dict[str, Any], key: str) -> str:
    return _text(document.get(key), repr(key))


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise PageFormatError(f"{what} is {value!r}, not a string")
    return value
