"""The upstream core: pages read from PEP 691 JSON and PEP 503 HTML, hostile pages, the policy
(names and files), our page of upstream files, and the values of the upstream settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from packaging.utils import NormalizedName, canonicalize_name

from shared.core import upstream
from shared.core.pages import parse_project_json, render_project_html, render_project_json
from shared.core.upstream import (
    UpstreamFile,
    UpstreamPage,
    UpstreamPageError,
    UpstreamPolicy,
    parse_duration,
    parse_patterns,
    parse_upstream_page,
    parse_upstream_urls,
    split_list,
    strip_credentials,
    upstream_page_url,
    upstream_project_page,
    with_credentials_of,
)

PROJECT = canonicalize_name("acme-core")
PAGE_URL = "https://up.example/simple/acme-core/"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
WHEEL = "acme_core-1.0-py3-none-any.whl"
SDIST = "acme_core-1.0.tar.gz"
SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64
NOW = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC)


def html_page(*links: str, head: str = "") -> bytes:
    body = "\n".join(f"    {link}<br>" for link in links)
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n{body}\n</body></html>\n".encode()


def parse_html(data: bytes, content_type: str = "text/html; charset=utf-8") -> UpstreamPage:
    return parse_upstream_page(data, content_type, PAGE_URL, PROJECT)


def pypi_file(name: str, **changes: Any) -> dict[str, Any]:
    """A file entry as PyPI's JSON API (api-version 1.3) writes it, PEP 700 fields included."""
    entry: dict[str, Any] = {
        "core-metadata": {"sha256": SHA_B},
        "data-dist-info-metadata": {"sha256": SHA_B},
        "filename": name,
        "hashes": {"sha256": SHA_A},
        "provenance": None,
        "requires-python": ">=3.9",
        "size": 12345,
        "upload-time": "2026-11-01T10:20:30.123456Z",
        "url": f"https://files.example/packages/ab/cd/{name}",
        "yanked": False,
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not ...}


def json_page(*files: object, name: str = "acme-core", version: str = "1.3") -> bytes:
    document = {
        "files": list(files),
        "meta": {"_last-serial": 123, "api-version": version},
        "name": name,
        "project-status": {"status": "active"},
        "versions": ["1.0"],
    }
    return json.dumps(document).encode()


def parse_json(data: bytes) -> UpstreamPage:
    return parse_upstream_page(data, JSON_TYPE, PAGE_URL, PROJECT)


def only(page: UpstreamPage) -> UpstreamFile:
    (file,) = page.files
    return file


def upstream_file(filename: str = WHEEL, **changes: Any) -> UpstreamFile:
    values: dict[str, Any] = {
        "filename": filename,
        "url": f"https://files.example/{filename}",
        "sha256": SHA_A,
        "requires_python": None,
        "yanked": False,
        "upload_time": NOW - timedelta(days=30),
        "size": 10,
        "core_metadata": True,
        "core_metadata_sha256": SHA_B,
    }
    return UpstreamFile(**(values | changes))


# --- PEP 691 JSON ---------------------------------------------------------------------------


def test_pypi_json_shape_gives_every_field() -> None:
    file = only(parse_json(json_page(pypi_file(WHEEL))))
    assert file == UpstreamFile(
        filename=WHEEL,
        url=f"https://files.example/packages/ab/cd/{WHEEL}",
        sha256=SHA_A,
        requires_python=">=3.9",
        yanked=False,
        upload_time=datetime(2026, 11, 1, 10, 20, 30, 123456, tzinfo=UTC),
        size=12345,
        core_metadata=True,
        core_metadata_sha256=SHA_B,
    )


def test_json_media_type_with_parameters_and_plain_json_are_read() -> None:
    data = json_page(pypi_file(WHEEL))
    for content_type in (f"{JSON_TYPE}; charset=utf-8", "Application/JSON"):
        assert only(parse_upstream_page(data, content_type, PAGE_URL, PROJECT)).filename == WHEEL


def test_json_older_key_dist_info_metadata_is_read_when_core_metadata_is_absent() -> None:
    entry = pypi_file(WHEEL, **{"core-metadata": ..., "data-dist-info-metadata": ...})
    entry["dist-info-metadata"] = {"sha256": SHA_C}
    assert only(parse_json(json_page(entry))).core_metadata_sha256 == SHA_C


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, (True, None)),
        (False, (False, None)),
        ({"md5": "0" * 32}, (True, None)),
        ({"sha256": SHA_C.upper()}, (True, SHA_C)),
        ({"sha256": "not-a-hash"}, (True, None)),
    ],
)
def test_json_core_metadata_forms(value: object, expected: tuple[bool, str | None]) -> None:
    file = only(parse_json(json_page(pypi_file(WHEEL, **{"core-metadata": value}))))
    assert (file.core_metadata, file.core_metadata_sha256) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, False), (True, True), ("broken on 3.12", "broken on 3.12"), ("", True)],
)
def test_json_yanked_and_its_reason(value: object, expected: bool | str) -> None:
    assert only(parse_json(json_page(pypi_file(WHEEL, yanked=value)))).yanked == expected


@pytest.mark.parametrize(
    ("hashes", "expected"),
    [
        ({"sha256": SHA_C}, SHA_C),
        ({"SHA256": SHA_C.upper()}, SHA_C),
        ({"md5": "0" * 32}, None),
        ({}, None),
        ({"sha256": "abc"}, None),
        ("sha256=" + SHA_C, None),
    ],
)
def test_json_hashes(hashes: object, expected: str | None) -> None:
    assert only(parse_json(json_page(pypi_file(WHEEL, hashes=hashes)))).sha256 == expected


def test_json_without_pep_700_fields_has_no_size_or_upload_time() -> None:
    file = only(parse_json(json_page(pypi_file(WHEEL, size=..., **{"upload-time": ...}))))
    assert (file.size, file.upload_time) == (None, None)


@pytest.mark.parametrize("size", [True, -1, "12", 1.5, None])
def test_json_size_that_is_not_a_count_is_unknown(size: object) -> None:
    assert only(parse_json(json_page(pypi_file(WHEEL, size=size)))).size is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01T10:20:30Z", datetime(2026, 11, 1, 10, 20, 30, tzinfo=UTC)),
        ("2026-11-01T12:20:30+02:00", datetime(2026, 11, 1, 10, 20, 30, tzinfo=UTC)),
        ("2026-11-01T10:20:30", None),  # no zone: its moment is unknown
        ("yesterday", None),
        (1700000000, None),
    ],
)
def test_json_upload_time(value: object, expected: datetime | None) -> None:
    file = only(parse_json(json_page(pypi_file(WHEEL, **{"upload-time": value}))))
    assert file.upload_time == expected


def test_json_requires_python_blank_or_not_text_is_none() -> None:
    for value in ("", "  ", 3, None):
        file = only(parse_json(json_page(pypi_file(WHEEL, **{"requires-python": value}))))
        assert file.requires_python is None


def test_a_requires_python_too_long_to_be_real_skips_the_file() -> None:
    long = ">=3.9," * 200
    page = parse_json(json_page(pypi_file(WHEEL, **{"requires-python": long})))
    assert (page.files, page.skipped) == ((), 1)
    fits = long[: upstream.MAX_REQUIRES_PYTHON]
    assert only(parse_json(json_page(pypi_file(WHEEL, **{"requires-python": fits})))) is not None


def test_json_filename_must_be_the_urls_last_segment() -> None:
    other = "acme_core-2.0-py3-none-any.whl"
    page = parse_json(json_page(pypi_file(WHEEL, filename=other), pypi_file(SDIST, filename=...)))
    assert [f.filename for f in page.files] == [SDIST]
    assert page.skipped == 1


def test_json_relative_urls_resolve_against_the_page_url() -> None:
    entries = [
        pypi_file(WHEEL, url=f"../../packages/{WHEEL}"),
        pypi_file(SDIST, url=f"/other/{SDIST}"),
    ]
    urls = [f.url for f in parse_json(json_page(*entries)).files]
    assert urls == [f"https://up.example/packages/{WHEEL}", f"https://up.example/other/{SDIST}"]


def test_json_name_spelled_differently_but_equal_when_normalised_is_the_project() -> None:
    assert parse_json(json_page(pypi_file(WHEEL), name="Acme_Core")).project == PROJECT


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (json_page(pypi_file(WHEEL), name="acme-other"), "not for acme-core"),
        (json_page(pypi_file(WHEEL), version="2.0"), "not 1.x"),
        (json.dumps({"name": "acme-core", "files": []}).encode(), "not 1.x"),
        (b"[1, 2]", "not a JSON object"),
        (b"{nope", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),  # nesting deep enough to recurse out
        (json.dumps({"meta": {"api-version": "1.0"}, "name": "acme-core"}).encode(), "'files'"),
        ('{"name": "acme-core", "x": "é"}'.encode("latin-1"), "not valid 'utf-8'"),
    ],
)
def test_json_garbage_is_a_page_error(data: bytes, message: str) -> None:
    with pytest.raises(UpstreamPageError, match=message):
        parse_json(data)


def test_json_entries_that_are_not_file_objects_are_skipped() -> None:
    data = json_page(pypi_file(WHEEL), "a string", {"filename": SDIST}, pypi_file(SDIST, url=3))
    page = parse_json(data)
    assert [f.filename for f in page.files] == [WHEEL]
    assert page.skipped == 3


# --- PEP 503 HTML ---------------------------------------------------------------------------


def pypiserver_page(*filenames: str, digest: str = f"sha256={SHA_A}") -> bytes:
    """What pypiserver 2.4 answers for /simple/acme-core/ (its template, its link form)."""
    links = "\n".join(
        f'            <a href="/packages/{f}#{digest}">{f}</a><br>' for f in filenames
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n    <head>\n        <meta charset="utf-8">\n'
        '        <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "        <title>Links for acme-core</title>\n    </head>\n    <body>\n"
        f"        <h1>Links for acme-core</h1>\n{links}\n    </body>\n</html>\n    "
    ).encode()


def test_pypiserver_html_shape() -> None:
    page = parse_upstream_page(
        pypiserver_page(SDIST, WHEEL),
        "text/html; charset=UTF-8",
        "http://127.0.0.1:8080/simple/acme-core/",
        PROJECT,
    )
    # An HTML page says nothing of sizes, upload times or metadata files.
    assert page.files == tuple(
        UpstreamFile(
            filename=name,
            url=f"http://127.0.0.1:8080/packages/{name}",
            sha256=SHA_A,
            requires_python=None,
            yanked=False,
            upload_time=None,
            size=None,
            core_metadata=False,
            core_metadata_sha256=None,
        )
        for name in (SDIST, WHEEL)
    )


def test_pypiserver_with_md5_hashes_gives_files_without_sha256() -> None:
    page = parse_html(pypiserver_page(WHEEL, digest="md5=" + "0" * 32))
    assert only(page).sha256 is None


def test_pypi_html_shape_with_escaped_attributes() -> None:
    link = (
        f'<a href="https://files.example/packages/ab/{WHEEL}#sha256={SHA_A}" '
        'data-requires-python="&gt;=3.8, !=3.9.*&lt;4" '
        f'data-dist-info-metadata="sha256={SHA_B}" data-core-metadata="sha256={SHA_B}" '
        'data-yanked="use 1.1 &amp; later">'
        f"{WHEEL}</a>"
    )
    head = '<meta name="pypi:repository-version" content="1.3">'
    file = only(parse_html(html_page(link, head=head)))
    assert file.url == f"https://files.example/packages/ab/{WHEEL}"
    assert file.requires_python == ">=3.8, !=3.9.*<4"
    assert file.yanked == "use 1.1 & later"
    assert (file.core_metadata, file.core_metadata_sha256) == (True, SHA_B)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ("", (False, None)),
        ("data-core-metadata", (True, None)),
        ('data-core-metadata="true"', (True, None)),
        ('data-core-metadata="false"', (False, None)),
        (f'data-dist-info-metadata="sha256={SHA_C}"', (True, SHA_C)),
        (f'data-core-metadata="sha256={SHA_B}" data-dist-info-metadata="true"', (True, SHA_B)),
        ('data-core-metadata="md5=abc"', (True, None)),
    ],
)
def test_html_core_metadata_attributes(attributes: str, expected: tuple[bool, str | None]) -> None:
    file = only(parse_html(html_page(f'<a href="{WHEEL}#sha256={SHA_A}" {attributes}>x</a>')))
    assert (file.core_metadata, file.core_metadata_sha256) == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [("", False), ("data-yanked", True), ('data-yanked=""', True), ('data-yanked="bad"', "bad")],
)
def test_html_yanked(attributes: str, expected: bool | str) -> None:
    file = only(parse_html(html_page(f'<a href="{WHEEL}#sha256={SHA_A}" {attributes}>x</a>')))
    assert file.yanked == expected


@pytest.mark.parametrize(
    ("href", "url"),
    [
        (WHEEL, f"https://up.example/simple/acme-core/{WHEEL}"),
        (f"../../files/{WHEEL}", f"https://up.example/files/{WHEEL}"),
        (f"/abs/{WHEEL}", f"https://up.example/abs/{WHEEL}"),
        (f"//cdn.example/p/{WHEEL}", f"https://cdn.example/p/{WHEEL}"),
        (f"http://other.example:8080/p/{WHEEL}?x=1", f"http://other.example:8080/p/{WHEEL}?x=1"),
        (f"https://user:secret@cdn.example/p/{WHEEL}", f"https://cdn.example/p/{WHEEL}"),
    ],
)
def test_html_relative_and_absolute_urls(href: str, url: str) -> None:
    file = only(parse_html(html_page(f'<a href="{href}#sha256={SHA_A}">x</a>')))
    assert file.url == url


def test_credentials_of_the_page_url_never_reach_a_file_url() -> None:
    page = parse_upstream_page(
        html_page(f'<a href="{WHEEL}#sha256={SHA_A}">x</a>'),
        "text/html",
        "https://user:s3cret@up.example/simple/acme-core/",
        PROJECT,
    )
    assert only(page).url == f"https://up.example/simple/acme-core/{WHEEL}"


def test_html_base_element_is_where_links_resolve() -> None:
    head = '<base href="https://mirror.example/root/">'
    file = only(parse_html(html_page(f'<a href="p/{WHEEL}#sha256={SHA_A}">x</a>', head=head)))
    assert file.url == f"https://mirror.example/root/p/{WHEEL}"


def test_html_filename_is_the_url_path_not_the_anchor_text() -> None:
    page = parse_html(html_page(f'<a href="x/{WHEEL}#sha256={SHA_A}">acme_core-9.9.tar.gz</a>'))
    assert only(page).filename == WHEEL


def test_html_percent_encoded_filename_is_decoded() -> None:
    name = "acme_core-1.0+local-py3-none-any.whl"
    file = only(parse_html(html_page('<a href="acme_core-1.0%2Blocal-py3-none-any.whl">x</a>')))
    assert file.filename == name


@pytest.mark.parametrize(
    "href",
    [
        f"javascript:alert(1)//{WHEEL}",
        f"JavaScript:alert(1)//{WHEEL}",
        f"data:text/plain,{WHEEL}",
        f"file:///etc/{WHEEL}",
        f"ftp://up.example/{WHEEL}",
        f"https://up.example:99999/{WHEEL}",
        f"https://[::1/{WHEEL}",
        f"x%2F..%2F{WHEEL}",  # decodes to a path: not one safe name
    ],
)
def test_links_that_are_not_http_or_not_one_name_are_skipped(href: str) -> None:
    page = parse_html(html_page(f'<a href="{href}#sha256={SHA_A}">{WHEEL}</a>'))
    assert (page.files, page.skipped) == ((), 1)


@pytest.mark.parametrize(
    "filename",
    [
        "acme_other-1.0-py3-none-any.whl",  # another project's wheel
        "acme_core_extra-1.0.tar.gz",  # another project's sdist
        "acme_core-1.0-py3.11.egg",
        "acme_core-1.0.zip",
        "acme_core-1.0.tar.bz2",
        "Acme-Core-1.0.tar.gz",  # a legacy sdist spelling (PEP 625 refuses it)
        "acme_core-1.0.win32.exe",
        "acme_core-1.0-py3-none-any.whl.metadata",
        "index.html",
        "acme_core-notaversion-py3-none-any.whl",
    ],
)
def test_files_that_are_not_a_distribution_of_the_project_are_skipped(filename: str) -> None:
    page = parse_html(html_page(f'<a href="{filename}#sha256={SHA_A}">x</a>'))
    assert (page.files, page.skipped) == ((), 1)


def test_anchors_without_href_are_ignored_and_a_repeated_filename_keeps_the_first() -> None:
    page = parse_html(
        html_page(
            "<a>no link</a>",
            '<a name="top"></a>',
            f'<a href="one/{WHEEL}#sha256={SHA_A}">x</a>',
            f'<a href="two/{WHEEL}#sha256={SHA_C}">x</a>',
        )
    )
    assert only(page).sha256 == SHA_A
    assert page.skipped == 1


def test_html_tags_and_attributes_as_html_reads_them() -> None:
    page = parse_html(
        html_page(
            f"<!-- <a href='acme_core-0.1.tar.gz#sha256={SHA_A}'>commented out</a> -->",
            f"<A HREF='acme_core-1.0.tar.gz#sha256={SHA_A}' Data-Yanked='a > b'>x</A>",
            f"<a href=acme_core-2.0.tar.gz#sha256={SHA_A} data-requires-python=&gt;=3.9>x</a>",
            f'<a href="acme_core-3.0.tar.gz#sha256={SHA_A}" href="acme_core-4.0.tar.gz">x</a>',
            f'<abbr href="acme_core-5.0.tar.gz#sha256={SHA_A}">not a link</abbr>',
        )
    )
    assert [(f.filename, f.yanked, f.requires_python) for f in page.files] == [
        ("acme_core-1.0.tar.gz", "a > b", None),
        ("acme_core-2.0.tar.gz", False, ">=3.9"),
        ("acme_core-3.0.tar.gz", False, None),  # a repeated attribute: the first wins
    ]


def test_a_tag_or_comment_that_never_ends_drops_the_rest_of_the_page() -> None:
    good = f'<a href="{WHEEL}#sha256={SHA_A}">x</a>'
    for unended in (f'<a href="{SDIST}#sha256={SHA_A}" title="open', "<!-- open"):
        page = parse_html(html_page(good, unended, f'<a href="{SDIST}#sha256={SHA_A}">x</a>'))
        assert only(page).filename == WHEEL


@pytest.mark.parametrize("unit", ["<a ", "<!", "</", "<?", "<![", '<a x="', "<a x=y ", "&#"])
def test_hostile_html_shapes_are_read_in_one_pass(unit: str) -> None:
    """Shapes on which the stdlib HTMLParser rescans from every `<` (60 KB of "<a " took it
    40 s): a few MB of each gives an empty page, not a hung worker."""
    page = parse_html((unit * (3_000_000 // len(unit))).encode())
    assert page.files == ()


def test_html_charset_from_the_content_type_is_used() -> None:
    data = html_page(f'<a href="{WHEEL}#sha256={SHA_A}" data-yanked="é">x</a>').decode()
    page = parse_html(data.encode("latin-1"), "text/html; charset=ISO-8859-1")
    assert only(page).yanked == "é"


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        ("<a data-yanked='é'>".encode("latin-1"), "text/html", "not valid 'utf-8'"),
        (b"<a>", "text/html; charset=no-such-charset", "not valid 'no-such-charset'"),
        (
            html_page(head='<meta name="pypi:repository-version" content="2.0">'),
            "text/html",
            "not 1.x",
        ),
        (b"<a href='x'>", "text/plain", "'text/plain' is not a simple-index page"),
        (b"PK\x03\x04", "application/octet-stream", "not a simple-index page"),
        (b"", "", "'' is not a simple-index page"),
    ],
)
def test_html_garbage_is_a_page_error(data: bytes, content_type: str, message: str) -> None:
    with pytest.raises(UpstreamPageError, match=message):
        parse_html(data, content_type)


def test_an_html_page_without_links_is_an_empty_page() -> None:
    page = parse_html(b"<html><body><h1>nothing</h1></body></html>")
    assert (page.project, page.files, page.skipped) == (PROJECT, (), 0)


def test_a_page_over_the_size_cap_is_refused_before_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = html_page(f'<a href="{WHEEL}#sha256={SHA_A}">x</a>')
    monkeypatch.setattr(upstream, "MAX_PAGE_BYTES", len(data))
    assert only(parse_html(data)).filename == WHEEL
    monkeypatch.setattr(upstream, "MAX_PAGE_BYTES", len(data) - 1)
    with pytest.raises(UpstreamPageError, match="over"):
        parse_html(data)


def test_a_page_listing_too_many_files_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "MAX_FILES", 2)
    links = [f'<a href="acme_core-{n}.0.tar.gz#sha256={SHA_A}">x</a>' for n in range(3)]
    with pytest.raises(UpstreamPageError, match="over 2 files"):
        parse_html(html_page(*links))


def test_the_real_size_cap_holds_pypis_largest_pages() -> None:
    assert upstream.MAX_PAGE_BYTES >= 32 * 1024 * 1024
    assert upstream.MAX_FILES >= 50_000


def test_json_and_html_of_the_same_page_give_the_same_files_where_html_can_say() -> None:
    entries = [pypi_file(SDIST, size=..., **{"upload-time": ..., "core-metadata": ...})]
    entries[0].pop("data-dist-info-metadata")
    entries.append(pypi_file(WHEEL, size=..., **{"upload-time": ...}))
    entries[1].pop("data-dist-info-metadata")
    html = html_page(
        f'<a href="https://files.example/packages/ab/cd/{SDIST}#sha256={SHA_A}" '
        'data-requires-python="&gt;=3.9">x</a>',
        f'<a href="https://files.example/packages/ab/cd/{WHEEL}#sha256={SHA_A}" '
        f'data-requires-python="&gt;=3.9" data-core-metadata="sha256={SHA_B}">x</a>',
    )
    assert parse_json(json_page(*entries)) == parse_html(html)


# --- the policy -----------------------------------------------------------------------------


def names(text: str) -> tuple[str, ...]:
    return parse_patterns(text)


def test_name_rules_in_order_reserved_then_deny_then_allow() -> None:
    policy = UpstreamPolicy(
        allow=names("acme-*, requests"), deny=names("acme-bad*"), reserved=names("acme-core")
    )
    reserved = policy.name_refusal(PROJECT)
    assert reserved is not None
    assert "reserved" in reserved
    assert "WHEELVAULT_UPSTREAM_RESERVED" in reserved
    denied = policy.name_refusal(canonicalize_name("acme-bad-thing"))
    assert denied is not None
    assert "WHEELVAULT_UPSTREAM_DENY" in denied
    assert "'acme-bad*'" in denied
    not_allowed = policy.name_refusal(canonicalize_name("numpy"))
    assert not_allowed == "numpy matches no WHEELVAULT_UPSTREAM_ALLOW pattern"
    assert policy.name_refusal(canonicalize_name("requests")) is None
    assert policy.name_refusal(canonicalize_name("acme-tools")) is None


def test_an_empty_allow_list_allows_every_name_not_reserved_or_denied() -> None:
    policy = UpstreamPolicy(deny=names("evil"))
    assert policy.name_refusal(canonicalize_name("anything")) is None
    assert policy.name_refusal(canonicalize_name("evil")) is not None


def test_patterns_match_normalised_names_whatever_their_spelling() -> None:
    policy = UpstreamPolicy(reserved=names("Acme_*  corp.internal-?"))
    for name in ("acme-core", "ACME.Utils", "corp_internal_x", "Corp-Internal.2"):
        assert policy.name_refusal(canonicalize_name(name)) is not None, name
    for name in ("acme", "corp-internal-xx", "not-acme-core"):
        assert policy.name_refusal(canonicalize_name(name)) is None, name


def test_character_classes_work_in_patterns() -> None:
    policy = UpstreamPolicy(deny=names("lib[0-9]*, [!a]x"))
    assert policy.name_refusal(canonicalize_name("lib3")) is not None
    assert policy.name_refusal(canonicalize_name("libx")) is None
    assert policy.name_refusal(canonicalize_name("bx")) is not None
    assert policy.name_refusal(canonicalize_name("ax")) is None


def test_a_file_without_sha256_is_not_offered() -> None:
    refused = upstream_file(sha256=None)
    page = UpstreamPage(PROJECT, (upstream_file(SDIST), refused))
    offered, refusals = UpstreamPolicy().offered(page, NOW)
    assert [f.filename for f in offered] == [SDIST]
    assert list(refusals) == [WHEEL]
    assert "no sha256" in refusals[WHEEL]


def test_minimum_age() -> None:
    policy = UpstreamPolicy(min_age=timedelta(days=7))
    files = (
        upstream_file("acme_core-1.0.tar.gz", upload_time=NOW - timedelta(days=8)),
        upstream_file("acme_core-2.0.tar.gz", upload_time=NOW - timedelta(days=7)),  # exactly
        upstream_file("acme_core-3.0.tar.gz", upload_time=NOW - timedelta(days=6, hours=23)),
        upstream_file("acme_core-4.0.tar.gz", upload_time=NOW + timedelta(hours=1)),  # future
        upstream_file("acme_core-5.0.tar.gz", upload_time=None),
    )
    offered, refusals = policy.offered(UpstreamPage(PROJECT, files), NOW)
    assert [f.filename for f in offered] == ["acme_core-1.0.tar.gz", "acme_core-2.0.tar.gz"]
    young = refusals["acme_core-3.0.tar.gz"]
    assert "younger than WHEELVAULT_UPSTREAM_MIN_AGE (P7D)" in young
    assert "2026-11-29T09:00:00.000000Z" in young
    assert "younger" in refusals["acme_core-4.0.tar.gz"]
    assert "no upload time" in refusals["acme_core-5.0.tar.gz"]


def test_without_a_minimum_age_files_without_upload_time_are_offered() -> None:
    page = UpstreamPage(PROJECT, (upstream_file(upload_time=None),))
    assert UpstreamPolicy().offered(page, NOW) == ([page.files[0]], {})


def test_a_refused_name_refuses_every_file_with_the_name_rule() -> None:
    page = UpstreamPage(PROJECT, (upstream_file(), upstream_file(SDIST)))
    offered, refusals = UpstreamPolicy(deny=names("acme-*")).offered(page, NOW)
    assert offered == []
    assert set(refusals) == {WHEEL, SDIST}
    assert all("WHEELVAULT_UPSTREAM_DENY" in r for r in refusals.values())


def test_yanked_files_are_offered_and_stay_yanked() -> None:
    page = UpstreamPage(PROJECT, (upstream_file(yanked="broken"),))
    offered, _ = UpstreamPolicy().offered(page, NOW)
    assert offered[0].yanked == "broken"
    assert upstream_project_page(PROJECT, offered).files[0].yanked == "broken"


def test_refusal_messages_show_hostile_filenames_safely() -> None:
    file = upstream_file("acme_core-1.0-py3-none-any.whl", sha256=None)
    hostile = UpstreamFile(**{**file.__dict__, "filename": "x\nFORGED LOG LINE"})
    reason = UpstreamPolicy().file_refusal(hostile, NOW)
    assert reason is not None
    assert "\n" not in reason


# --- our page of upstream files -------------------------------------------------------------


def test_our_page_has_our_urls_and_every_known_field() -> None:
    files = [
        upstream_file(
            WHEEL,
            requires_python=">=3.9",
            upload_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            size=99,
        ),
        upstream_file(SDIST, yanked=True, size=None, upload_time=None, core_metadata=False),
    ]
    page = upstream_project_page(PROJECT, files)
    assert page.versions == ("1.0",)
    assert [f.filename for f in page.files] == [WHEEL, SDIST]  # our order: version, filename
    wheel, sdist = page.files
    assert wheel.url == f"../../files/acme-core/{WHEEL}"
    assert (wheel.sha256, wheel.requires_python, wheel.size) == (SHA_A, ">=3.9", 99)
    assert wheel.upload_time == "2026-01-02T03:04:05.000000Z"
    assert (wheel.core_metadata_sha256, wheel.yanked) == (SHA_B, None)
    assert (sdist.size, sdist.upload_time, sdist.yanked) == (None, None, "")
    assert sdist.core_metadata_sha256 is None


def test_core_metadata_is_linked_only_for_a_wheel_whose_hash_is_known() -> None:
    files = [
        upstream_file("acme_core-1.0-py3-none-any.whl", core_metadata_sha256=None),
        upstream_file("acme_core-2.0-py3-none-any.whl", core_metadata=False),
        upstream_file("acme_core-3.0.tar.gz"),  # an sdist has no .metadata file here
        upstream_file("acme_core-4.0-py3-none-any.whl"),
    ]
    links = upstream_project_page(PROJECT, files).files
    assert [f.core_metadata_sha256 for f in links] == [None, None, None, SHA_B]


def test_our_json_page_leaves_out_what_the_upstream_did_not_say_and_parses_back() -> None:
    files = [upstream_file(SDIST, size=None, upload_time=None), upstream_file(WHEEL)]
    page = upstream_project_page(PROJECT, files)
    data = render_project_json(page)
    wheel, sdist = json.loads(data)["files"]
    assert "size" not in sdist
    assert "upload-time" not in sdist
    assert wheel["size"] == 10
    assert wheel["upload-time"].endswith("Z")
    assert parse_project_json(data) == page
    html = render_project_html(page).decode()
    assert f'href="../../files/acme-core/{WHEEL}#sha256={SHA_A}"' in html
    assert "files.example" not in html
    assert "files.example" not in data.decode()


def test_a_file_without_sha256_cannot_be_put_on_our_page() -> None:
    with pytest.raises(ValueError, match="no sha256"):
        upstream_project_page(PROJECT, [upstream_file(sha256=None)])


def test_from_an_upstream_page_to_ours() -> None:
    page = parse_html(pypiserver_page(SDIST, WHEEL))
    offered, refusals = UpstreamPolicy().offered(page, NOW)
    ours = upstream_project_page(page.project, offered)
    assert refusals == {}
    assert [f.url for f in ours.files] == [
        f"../../files/acme-core/{WHEEL}",
        f"../../files/acme-core/{SDIST}",
    ]


# --- setting values -------------------------------------------------------------------------


def test_split_list_takes_commas_and_whitespace() -> None:
    assert split_list(" a, b\n\tc,,d ") == ("a", "b", "c", "d")
    assert split_list("") == ()


def test_patterns_are_normalised() -> None:
    assert parse_patterns("Acme_*, Corp..Internal-?  x[0-9]") == (
        "acme-*",
        "corp-internal-?",
        "x[0-9]",
    )


@pytest.mark.parametrize("text", ["ok, bad/one", "ok, ab]c", "ok, a[bc", "ok, a[[b]]", "ok, ü"])
def test_a_bad_pattern_is_named_by_position_not_by_value(text: str) -> None:
    with pytest.raises(ValueError, match="pattern 2 is not a name pattern") as caught:
        parse_patterns(text)
    assert text.split(", ")[1] not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("P2W", timedelta(weeks=2)),
        ("PT12H", timedelta(hours=12)),
        (" P1DT6H30M15S ", timedelta(days=1, hours=6, minutes=30, seconds=15)),
        ("PT90M", timedelta(minutes=90)),
        ("P1M", timedelta(days=30)),  # as token policies read it
        ("", None),
        ("  ", None),
    ],
)
def test_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["P", "PT", "P0D", "PT0S", "7 days", "P-1D", "-P1D", "7", "p7d", "P99999999999D"]
)
def test_bad_durations_are_refused_without_the_value(text: str) -> None:
    # The whole message is fixed: it cannot hold the value.
    with pytest.raises(
        ValueError, match=r"^not a positive ISO 8601 duration such as P7D or PT12H$"
    ):
        parse_duration(text)


def test_upstream_urls_in_order_each_ending_in_a_slash() -> None:
    assert parse_upstream_urls("https://a.example/simple, http://u:p@b.example:8080/s/\n") == (
        "https://a.example/simple/",
        "http://u:p@b.example:8080/s/",
    )
    assert parse_upstream_urls("") == ()


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://u:s3cret@a.example/simple/",
        "file:///srv/simple/",
        "s3cret.example/simple/",
        "https://u:s3cret@a.example:99999/simple/",
        "https:///simple/",
        "https://u:s3cret@a.example/simple/?token=s3cret",
    ],
)
def test_a_bad_upstream_url_is_named_by_position_never_echoed(bad: str) -> None:
    with pytest.raises(ValueError, match="entry 2 ") as caught:
        parse_upstream_urls(f"https://ok.example/simple/ {bad}")
    assert "s3cret" not in str(caught.value)


def test_upstream_page_url() -> None:
    assert upstream_page_url("https://a.example/simple/", PROJECT) == (
        "https://a.example/simple/acme-core/"
    )


def test_strip_credentials() -> None:
    assert strip_credentials("https://u:p@a.example:8443/x?y#z") == "https://a.example:8443/x?y#z"
    assert strip_credentials("https://a.example/x") == "https://a.example/x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/f/x.whl", "https://u:p@a.example/f/x.whl"),
        ("https://a.example:443/f/x.whl", "https://u:p@a.example:443/f/x.whl"),
        ("https://A.EXAMPLE/f/x.whl", "https://u:p@A.EXAMPLE/f/x.whl"),
        ("https://other.example/f/x.whl", "https://other.example/f/x.whl"),
        ("http://a.example/f/x.whl", "http://a.example/f/x.whl"),  # another scheme
        ("https://a.example:8443/f/x.whl", "https://a.example:8443/f/x.whl"),  # another port
        ("https://a.example.evil/f/x.whl", "https://a.example.evil/f/x.whl"),
    ],
)
def test_credentials_go_back_only_to_the_same_origin(url: str, expected: str) -> None:
    assert with_credentials_of(url, "https://u:p@a.example/simple/") == expected


def test_no_credentials_to_add_leaves_the_url() -> None:
    assert with_credentials_of("https://a.example/x", "https://a.example/simple/") == (
        "https://a.example/x"
    )


def test_normalised_name_type_is_what_the_page_carries() -> None:
    page = parse_json(json_page(pypi_file(WHEEL), name="ACME.core"))
    name: NormalizedName = page.project
    assert name == "acme-core"
