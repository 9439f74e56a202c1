"""Upstream simple indexes: their pages read, and the policy that decides what is offered.

Pure: bytes in, values out. Fetching is `shared.adapters.upstream`'s, storing and serving
`shared.services.upstream`'s. An upstream page is hostile input like an upload is: its size is
capped, its encoding strict, every file it lists is checked, and anything that is not a wheel or
a PEP 625 sdist of the page's own project is skipped (eggs, `.zip` and other legacy sdists, other
projects' files, names that are not one safe path component, links that are not http(s)).

A file URL never carries credentials here: they are removed from every resolved URL so that
nothing derived from a page (a stored page, a log line) can hold them. `with_credentials_of`
puts back those of the configured upstream for a URL on that same origin, at fetch time.

The policy (`UpstreamPolicy`) refuses by name (reserved, deny, allow; patterns match the
normalised name with fnmatch) and by file (no sha256, younger than the minimum age, and — with
a minimum age set — no upload time: fail closed). Yanked files are offered, and stay yanked.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Final
from urllib.parse import SplitResult, unquote, urljoin, urlsplit, urlunsplit

from packaging.utils import NormalizedName, canonicalize_name

from shared.core import tokens
from shared.core.distribution import check_upload_name, is_sdist
from shared.core.errors import Rejection
from shared.core.pages import FileLink, ProjectPage, file_url, project_page
from shared.core.records import format_upload_time
from shared.core.text import show

MAX_PAGE_BYTES: Final = 64 * 1024 * 1024
"""The largest upstream page read (PyPI's biggest pages are tens of MB of JSON)."""
MAX_FILES: Final = 200_000
MAX_REQUIRES_PYTHON: Final = 1024

JSON_TYPES: Final = ("application/vnd.pypi.simple.v1+json", "application/json")
HTML_TYPES: Final = ("text/html", "application/vnd.pypi.simple.v1+html")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PATTERN = re.compile(r"[a-z0-9*?\[\]!-]+")


class UpstreamPageError(ValueError):
    """An upstream page that cannot be read as a simple-index page at all."""


@dataclass(frozen=True)
class UpstreamFile:
    """One file an upstream page lists. `yanked`: False, True (no reason) or the reason.
    `url`: absolute http(s), without credentials or fragment."""

    filename: str
    url: str
    sha256: str | None
    requires_python: str | None
    yanked: bool | str
    upload_time: datetime | None
    size: int | None
    core_metadata: bool
    core_metadata_sha256: str | None


@dataclass(frozen=True)
class UpstreamPage:
    """An upstream project page: the files of `project` it lists, in its order.
    `skipped`: how many links were not a wheel or sdist of the project (for a log line)."""

    project: NormalizedName
    files: tuple[UpstreamFile, ...]
    skipped: int = field(default=0, compare=False)


# --- settings values ------------------------------------------------------------------------


def split_list(text: str) -> tuple[str, ...]:
    """A setting's list: entries separated by commas or whitespace."""
    return tuple(item for item in re.split(r"[\s,]+", text) if item)


def parse_patterns(text: str) -> tuple[str, ...]:
    """Name patterns (`acme-*`), normalised as names are; ValueError naming the bad entry's
    position (never its text: a setting's value is not echoed)."""
    patterns = []
    for position, item in enumerate(split_list(text), start=1):
        pattern = re.sub(r"[-_.]+", "-", item).lower()
        if not _PATTERN.fullmatch(pattern) or not _balanced(pattern):
            raise ValueError(
                f"pattern {position} is not a name pattern (letters, digits, -_. and * ? [...])"
            )
        patterns.append(pattern)
    return tuple(patterns)


def _balanced(pattern: str) -> bool:
    depth = 0
    for ch in pattern:
        depth += ch == "["
        depth -= ch == "]"
        if depth not in (0, 1):
            return False
    return depth == 0


def parse_duration(text: str) -> timedelta | None:
    """A positive ISO 8601 duration (`P7D`, `PT12H`, `P1W`), read as token policies read
    theirs; None for empty. ValueError without the value."""
    if not text.strip():
        return None
    try:
        return tokens.parse_duration(text.strip())
    except ValueError:
        raise ValueError("not a positive ISO 8601 duration such as P7D or PT12H") from None


def parse_upstream_urls(text: str) -> tuple[str, ...]:
    """The upstream base URLs, in order, each ending in `/`; ValueError naming the bad entry's
    position only (a URL may hold credentials)."""
    urls = []
    for position, item in enumerate(split_list(text), start=1):
        try:
            parts = urlsplit(item)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"entry {position} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError(f"entry {position} has a query or fragment; give the index base URL")
        urls.append(item if item.endswith("/") else item + "/")
    return tuple(urls)


def upstream_page_url(base: str, project: str) -> str:
    """Where `base` (a simple-index base ending in `/`) lists `project` (PEP 503)."""
    return f"{base}{project}/"


def strip_credentials(url: str) -> str:
    """`url` without user name and password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(SplitResult(parts.scheme, host, parts.path, parts.query, parts.fragment))


def with_credentials_of(url: str, base: str) -> str:
    """`url` with `base`'s credentials when both are on the same origin; else `url` as it is
    (credentials for one upstream are never sent to another host)."""
    target, source = urlsplit(url), urlsplit(base)
    if "@" not in source.netloc or _origin(target) != _origin(source):
        return url
    userinfo = source.netloc.rpartition("@")[0]
    host = target.netloc.rpartition("@")[2]
    netloc = f"{userinfo}@{host}"
    return urlunsplit(SplitResult(target.scheme, netloc, target.path, target.query, ""))


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), parts.port or default


# --- the policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamPolicy:
    """What may come from upstream. Patterns as `parse_patterns` gives them; `allow` empty
    means every name not reserved or denied."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    reserved: tuple[str, ...] = ()
    min_age: timedelta | None = None

    def name_refusal(self, project: NormalizedName) -> str | None:
        """Why `project` is never taken from upstream, or None when it may be."""
        if pattern := _matching(project, self.reserved):
            return (
                f"{project} is reserved for the private index (WHEELVAULT_UPSTREAM_RESERVED "
                f"pattern {pattern!r}): it is never taken from upstream"
            )
        if pattern := _matching(project, self.deny):
            return f"{project} is denied by WHEELVAULT_UPSTREAM_DENY pattern {pattern!r}"
        if self.allow and not _matching(project, self.allow):
            return f"{project} matches no WHEELVAULT_UPSTREAM_ALLOW pattern"
        return None

    def file_refusal(self, file: UpstreamFile, now: datetime) -> str | None:
        """Why this file is not offered, or None when it is."""
        if file.sha256 is None:
            return f"{show(file.filename)} has no sha256 hash upstream, so it cannot be verified"
        if self.min_age is None:
            return None
        if file.upload_time is None:
            return (
                f"{show(file.filename)} has no upload time upstream and "
                "WHEELVAULT_UPSTREAM_MIN_AGE is set, so its age is unknown"
            )
        age = now - file.upload_time
        if age < self.min_age:
            return (
                f"{show(file.filename)} was uploaded at {format_upload_time(file.upload_time)}, "
                f"younger than WHEELVAULT_UPSTREAM_MIN_AGE ({_show_age(self.min_age)})"
            )
        return None

    def offered(
        self, page: UpstreamPage, now: datetime
    ) -> tuple[list[UpstreamFile], dict[str, str]]:
        """The files offered, and for each refused one (by filename) the rule that refused it."""
        name_refusal = self.name_refusal(page.project)
        if name_refusal is not None:
            return [], {f.filename: name_refusal for f in page.files}
        files, refusals = [], {}
        for file in page.files:
            reason = self.file_refusal(file, now)
            if reason is None:
                files.append(file)
            else:
                refusals[file.filename] = reason
        return files, refusals


def _matching(project: str, patterns: tuple[str, ...]) -> str | None:
    return next((p for p in patterns if fnmatchcase(project, p)), None)


def _show_age(age: timedelta) -> str:
    days, seconds = age.days, age.seconds
    return f"P{days}DT{seconds}S" if seconds else f"P{days}D"


# --- our page of upstream files -------------------------------------------------------------


def upstream_project_page(project: NormalizedName, files: Iterable[UpstreamFile]) -> ProjectPage:
    """Our page for offered upstream files: our `/files/…` URLs, never the upstream's.

    Core metadata is linked only for a wheel whose upstream gives its hash (the copy is
    verified against it); sizes and upload times only where the upstream gave them.
    """
    return project_page(project, [_link(project, f) for f in files])


def _link(project: NormalizedName, file: UpstreamFile) -> FileLink:
    if file.sha256 is None:
        raise ValueError(f"{show(file.filename)} has no sha256: not an offered file")
    metadata = file.core_metadata_sha256 if file.core_metadata else None
    return FileLink(
        filename=file.filename,
        url=file_url(project, file.filename),
        sha256=file.sha256,
        requires_python=file.requires_python,
        core_metadata_sha256=None if is_sdist(file.filename) else metadata,
        size=file.size,
        upload_time=None if file.upload_time is None else format_upload_time(file.upload_time),
        yanked=None if file.yanked is False else "" if file.yanked is True else file.yanked,
    )


# --- reading upstream pages -----------------------------------------------------------------


def parse_upstream_page(
    data: bytes, content_type: str, page_url: str, project: NormalizedName
) -> UpstreamPage:
    """The files of `project` that an upstream page lists (PEP 691 JSON or PEP 503 HTML).

    Relative URLs are resolved against `page_url`. UpstreamPageError for a page that is too
    large, in an unknown format or encoding, of another API major version, or for another
    project; single links that are not a distribution of `project` are skipped.
    """
    if len(data) > MAX_PAGE_BYTES:
        raise UpstreamPageError(f"the page is over {MAX_PAGE_BYTES} bytes")
    media, charset = _media_type(content_type)
    entries: Sequence[_Entry | None]
    if media in JSON_TYPES:
        entries = _json_entries(_decode(data, "utf-8"), project)
    elif media in HTML_TYPES:
        entries, base = _html_entries(_decode(data, charset or "utf-8"))
        page_url = urljoin(page_url, base) if base else page_url
    else:
        raise UpstreamPageError(f"content type {show(media)} is not a simple-index page")
    return _page(project, entries, page_url)


def _media_type(content_type: str) -> tuple[str, str | None]:
    media, *params = (part.strip() for part in content_type.split(";"))
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.lower(), charset


def _decode(data: bytes, charset: str) -> str:
    try:
        codecs.lookup(charset)
        return data.decode(charset)  # strict: a page in another encoding is refused
    except (LookupError, UnicodeDecodeError):
        raise UpstreamPageError(f"the page is not valid {show(charset)}") from None


@dataclass
class _Entry:
    """One link as a page gives it, before any check."""

    href: str
    hashes: dict[str, str]
    filename: object = None  # JSON names the file; HTML leaves it to the URL
    requires_python: object = None
    yanked: object = False
    core_metadata: object = None
    size: object = None
    upload_time: object = None


def _page(project: NormalizedName, entries: Sequence[_Entry | None], page_url: str) -> UpstreamPage:
    if len(entries) > MAX_FILES:
        raise UpstreamPageError(f"the page lists over {MAX_FILES} files")
    files: dict[str, UpstreamFile] = {}
    for entry in entries:
        file = _file(project, entry, page_url)
        if file is not None and file.filename not in files:
            files[file.filename] = file
    return UpstreamPage(project, tuple(files.values()), skipped=len(entries) - len(files))


def _file(project: NormalizedName, entry: _Entry | None, page_url: str) -> UpstreamFile | None:
    """The entry as an UpstreamFile, or None when it is not a distribution of `project`."""
    if entry is None:
        return None
    url, fragment = _resolve(page_url, entry.href)
    filename = None if url is None else _filename(project, entry, url)
    if url is None or filename is None or _too_long(entry.requires_python):
        return None
    hashes = entry.hashes or _fragment_hashes(fragment)
    metadata_available, metadata_sha256 = _core_metadata(entry.core_metadata)
    return UpstreamFile(
        filename=filename,
        url=url,
        sha256=_sha256(hashes),
        requires_python=_requires_python(entry.requires_python),
        yanked=_yanked(entry.yanked),
        upload_time=_upload_time(entry.upload_time),
        size=_size(entry.size),
        core_metadata=metadata_available,
        core_metadata_sha256=metadata_sha256,
    )


def _filename(project: NormalizedName, entry: _Entry, url: str) -> str | None:
    """The URL's last path segment, when it is a wheel or PEP 625 sdist name of `project` and
    (JSON) the name the entry gives: what is stored and what is fetched cannot differ."""
    filename = unquote(urlsplit(url).path.rpartition("/")[2])
    if entry.filename is not None and entry.filename != filename:
        return None
    try:
        return filename if check_upload_name(filename).project == project else None
    except Rejection:
        return None


def _too_long(requires_python: object) -> bool:
    """A Requires-Python nobody writes: not dropped (that would offer the file to every
    Python), the file is skipped."""
    return isinstance(requires_python, str) and len(requires_python) > MAX_REQUIRES_PYTHON


def _resolve(page_url: str, href: str) -> tuple[str | None, str]:
    """(absolute http(s) URL without credentials or fragment, the fragment); None if the
    link goes anywhere else (javascript:, data:, file:, …) or cannot be parsed."""
    try:
        parts = urlsplit(urljoin(page_url, href.strip()))
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None, ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None, ""
    bare = SplitResult(parts.scheme, parts.netloc, parts.path, parts.query, "")
    return strip_credentials(urlunsplit(bare)), parts.fragment


def _fragment_hashes(fragment: str) -> dict[str, str]:
    name, _, value = fragment.partition("=")
    return {name.lower(): value} if value else {}


def _sha256(hashes: dict[str, str]) -> str | None:
    value = str(hashes.get("sha256", "")).lower()
    return value if _SHA256.fullmatch(value) else None


def _requires_python(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _yanked(value: object) -> bool | str:
    """PEP 592/691: False, True, or a reason (an empty reason is yanked without one)."""
    if isinstance(value, str):
        return value or True
    return bool(value)


def _core_metadata(value: object) -> tuple[bool, str | None]:
    """PEP 658/714: available, and its sha256 when given. HTML gives `true` or
    `sha256=…`; JSON gives a boolean or a dict of hashes."""
    if isinstance(value, dict):
        return True, _sha256({str(k).lower(): str(v) for k, v in value.items()})
    if isinstance(value, str):
        if value.strip().lower() == "false":
            return False, None
        return True, _sha256(_fragment_hashes(value.strip()))
    return value is True, None


def _upload_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --- PEP 691 JSON ---------------------------------------------------------------------------


def _json_entries(text: str, project: NormalizedName) -> list[_Entry | None]:
    """The page's file entries; None for one that is not a file object (skipped, counted)."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise UpstreamPageError("the page is not JSON") from None
    if not isinstance(document, dict):
        raise UpstreamPageError("the page is not a JSON object")
    _check_api_version(_dig(document, "meta", "api-version"))
    name = document.get("name")
    if not isinstance(name, str) or canonicalize_name(name) != project:
        raise UpstreamPageError(f"the page is not for {project}")
    files = document.get("files")
    if not isinstance(files, list):
        raise UpstreamPageError("the page's 'files' is not a list")
    return [_json_entry(item) for item in files]


def _dig(document: dict[str, Any], *keys: str) -> object:
    value: object = document
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _json_entry(item: object) -> _Entry | None:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        return None
    hashes = item.get("hashes")
    metadata = item.get("core-metadata", item.get("dist-info-metadata"))
    return _Entry(
        href=item["url"],
        filename=item.get("filename"),
        hashes={str(k).lower(): str(v) for k, v in hashes.items()}
        if isinstance(hashes, dict)
        else {},
        requires_python=item.get("requires-python"),
        yanked=item.get("yanked", False),
        core_metadata=metadata,
        size=item.get("size"),
        upload_time=item.get("upload-time"),
    )


def _check_api_version(value: object) -> None:
    """PEP 629: a major version other than 1 is a format this reader does not know."""
    if not isinstance(value, str) or value.partition(".")[0] != "1":
        raise UpstreamPageError(f"API version {show(str(value))} is not 1.x")


# --- PEP 503 HTML ---------------------------------------------------------------------------


# The stdlib HTMLParser is not used: on Python 3.11 it rescans an unclosed tag from each `<`
# (60 KB of "<a " took 40 s), and a page is hostile input. This scanner reads only what a
# simple-index page needs (`<a>`, `<base>`, `<meta>` start tags, and comments to skip) in one
# forward pass: a tag is everything up to the first `>` outside quotes, and a tag or comment
# that never ends runs to the end of the page and is dropped, as an HTML5 tokenizer does.
_HTML_TOKEN = re.compile(r"<!--|<(a|base|meta)(?=[\s/>])", re.IGNORECASE)
_TAG_REST = re.compile(r"""(?:[^>"']++|"[^"]*+"|'[^']*+')*+>""")
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _html_entries(text: str) -> tuple[list[_Entry], str | None]:
    """The page's links, and its `<base href>` if it has one (links resolve against it)."""
    entries: list[_Entry] = []
    base: str | None = None
    for tag, values in _html_tags(text):
        if tag == "base" and values.get("href") and base is None:
            base = values["href"]
        elif tag == "meta" and values.get("name") == "pypi:repository-version":
            _check_api_version(values.get("content") or "")
        elif tag == "a" and values.get("href"):
            entries.append(_html_entry(values))
    return entries, base


def _html_tags(text: str) -> Iterator[tuple[str, dict[str, str | None]]]:
    """(tag name, attributes) of each `<a>`, `<base>` and `<meta>` outside comments."""
    position = 0
    while (token := _HTML_TOKEN.search(text, position)) is not None:
        if token.group(1) is None:  # a comment: skip to its end
            end = text.find("-->", token.end())
            if end < 0:
                return
            position = end + 3
            continue
        rest = _TAG_REST.match(text, token.end())
        if rest is None:
            return
        position = rest.end()
        yield token.group(1).lower(), _attributes(text[token.end() : position - 1])


def _attributes(source: str) -> dict[str, str | None]:
    """A tag's attributes, values unescaped; the first of a repeated name wins (HTML5)."""
    values: dict[str, str | None] = {}
    for match in _ATTRIBUTE.finditer(source):
        name, *quoted = match.groups()
        value = next((v for v in quoted if v is not None), None)
        values.setdefault(name.lower(), None if value is None else html.unescape(value))
    return values


def _html_entry(values: dict[str, str | None]) -> _Entry:
    href = values["href"] or ""
    metadata = values.get("data-core-metadata", values.get("data-dist-info-metadata"))
    present = "data-core-metadata" in values or "data-dist-info-metadata" in values
    return _Entry(
        href=href,
        hashes={},
        requires_python=values.get("data-requires-python"),
        # A bare attribute (`data-yanked`) is yanked without a reason.
        yanked=(values["data-yanked"] or True) if "data-yanked" in values else False,
        core_metadata=(metadata or "true") if present else None,
    )
