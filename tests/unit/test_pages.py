"""Page rendering: every PEP 503/629/658/714/592 attribute in HTML, the PEP 691/700 JSON shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from packaging.utils import canonicalize_name

from shared.adapters.blobstore import StoredBlob
from shared.core import layout
from shared.core.negotiate import JSON_V1
from shared.core.pages import (
    PageFormatError,
    build_project_page,
    build_root_page,
    file_link,
    parse_project_json,
    parse_root_json,
    project_page_data,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
    with_file,
    without_file,
)
from shared.core.records import FileRecord
from shared.services.pages import PageViews

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def record(
    filename: str,
    version: str,
    *,
    project: str = "demo-pkg",
    requires_python: str | None = ">=3.9",
    yanked: bool = False,
    reason: str | None = None,
    sha: str = "a",
) -> FileRecord:
    """A wheel's record, or an sdist's (no metadata hash) when `filename` ends in .tar.gz."""
    return FileRecord(
        project=project,
        name="Demo_Pkg",
        version=version,
        filename=filename,
        sha256=sha * 64,
        size=1234,
        upload_time=T0,
        requires_python=requires_python,
        metadata_sha256=None if filename.endswith(".tar.gz") else "b" * 64,
        yanked=yanked,
        yanked_reason=reason,
    )


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.meta: dict[str, str | None] = {}
        self._open: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), ""
        if tag == "meta":
            found = dict(attrs)
            self.meta[found["name"] or ""] = found["content"]

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open, self._text))
            self._open = None


def parse(html: bytes) -> Anchors:
    parser = Anchors()
    parser.feed(html.decode("utf-8"))
    return parser


RECORDS = [
    record("demo_pkg-1.10-py3-none-any.whl", "1.10", sha="c"),
    record("demo_pkg-1.2-py3-none-any.whl", "1.2", requires_python=None),
    record("demo_pkg-1.2-cp311-cp311-manylinux_2_17_x86_64.whl", "1.2", yanked=True),
    record("demo_pkg-1.9-py3-none-any.whl", "1.9", yanked=True, reason="broken <b>build</b>"),
]
SDISTS = [
    record("demo_pkg-1.2.tar.gz", "1.2", requires_python=">=3.8", sha="d"),
    record("demo_pkg-1.11.tar.gz", "1.11", yanked=True, reason="no wheel yet", sha="e"),
]


def test_html_has_every_attribute_and_relative_links() -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), RECORDS)
    parsed = parse(render_project_html(page))
    assert parsed.meta == {"pypi:repository-version": "1.1"}
    by_name = {text: attrs for attrs, text in parsed.anchors}
    # Ordered by version (1.2 < 1.9 < 1.10), then filename.
    assert [text for _, text in parsed.anchors] == [
        "demo_pkg-1.2-cp311-cp311-manylinux_2_17_x86_64.whl",
        "demo_pkg-1.2-py3-none-any.whl",
        "demo_pkg-1.9-py3-none-any.whl",
        "demo_pkg-1.10-py3-none-any.whl",
    ]
    newest = by_name["demo_pkg-1.10-py3-none-any.whl"]
    assert newest == {
        "href": "../../files/demo-pkg/demo_pkg-1.10-py3-none-any.whl#sha256=" + "c" * 64,
        "data-requires-python": ">=3.9",
        "data-core-metadata": "sha256=" + "b" * 64,
        "data-dist-info-metadata": "sha256=" + "b" * 64,
    }
    assert "data-requires-python" not in by_name["demo_pkg-1.2-py3-none-any.whl"]
    assert by_name["demo_pkg-1.2-cp311-cp311-manylinux_2_17_x86_64.whl"]["data-yanked"] == ""
    assert by_name["demo_pkg-1.9-py3-none-any.whl"]["data-yanked"] == "broken <b>build</b>"


def test_json_follows_pep_691_and_700() -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), RECORDS)
    data = json.loads(render_project_json(page))
    assert set(data) == {"meta", "name", "versions", "files"}
    assert data["meta"] == {"api-version": "1.1"}
    assert data["name"] == "demo-pkg"
    assert data["versions"] == ["1.2", "1.9", "1.10"]
    first, _, yanked_reason, newest = data["files"]
    assert newest == {
        "filename": "demo_pkg-1.10-py3-none-any.whl",
        "url": "../../files/demo-pkg/demo_pkg-1.10-py3-none-any.whl",
        "hashes": {"sha256": "c" * 64},
        "requires-python": ">=3.9",
        "core-metadata": {"sha256": "b" * 64},
        "dist-info-metadata": {"sha256": "b" * 64},
        "size": 1234,
        "upload-time": "2026-01-02T03:04:05.678901Z",
        "yanked": False,
    }
    assert first["yanked"] is True
    assert yanked_reason["yanked"] == "broken <b>build</b>"


def test_html_and_json_list_the_same_files() -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), RECORDS)
    html_files = [text for _, text in parse(render_project_html(page)).anchors]
    json_files = [f["filename"] for f in json.loads(render_project_json(page))["files"]]
    assert html_files == json_files


def test_rendering_is_deterministic_whatever_the_record_order() -> None:
    project = canonicalize_name("demo-pkg")
    forward = build_project_page(project, RECORDS)
    backward = build_project_page(project, list(reversed(RECORDS)))
    assert render_project_html(forward) == render_project_html(backward)
    assert render_project_json(forward) == render_project_json(backward)


@pytest.mark.parametrize(
    "hostile",
    [
        '"><script>alert(1)</script>',
        "<img src=x onerror=alert(1)>",
        "' onmouseover='alert(1)",
    ],
)
def test_hostile_values_never_reach_the_html_unescaped(hostile: str) -> None:
    page = build_project_page(
        canonicalize_name("demo-pkg"),
        [
            record(
                "demo_pkg-1.0-py3-none-any.whl",
                "1.0",
                requires_python=hostile,
                yanked=True,
                reason=hostile,
            )
        ],
    )
    html = render_project_html(page).decode()
    assert "<script" not in html
    assert "<img" not in html
    assert "' onmouseover" not in html
    ((attrs, _),) = parse(render_project_html(page)).anchors
    assert attrs["data-requires-python"] == hostile  # escaped in transit, intact when parsed
    assert attrs["data-yanked"] == hostile
    assert json.loads(render_project_json(page))["files"][0]["requires-python"] == hostile


def test_root_page_lists_normalised_projects_in_order() -> None:
    page = build_root_page(["Zeta_Pkg", "alpha", "Beta.Thing", "alpha"])
    assert page.projects == ("alpha", "beta-thing", "zeta-pkg")
    parsed = parse(render_root_html(page))
    assert parsed.meta == {"pypi:repository-version": "1.1"}
    assert [(a["href"], text) for a, text in parsed.anchors] == [
        ("alpha/", "alpha"),
        ("beta-thing/", "beta-thing"),
        ("zeta-pkg/", "zeta-pkg"),
    ]
    assert json.loads(render_root_json(page)) == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "alpha"}, {"name": "beta-thing"}, {"name": "zeta-pkg"}],
    }


def test_a_record_of_another_project_is_refused() -> None:
    with pytest.raises(ValueError, match="belongs to"):
        build_project_page(canonicalize_name("other"), RECORDS)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Foo.Bar", "foo-bar"), ("foo__bar", "foo-bar"), ("FOO-_.bar", "foo-bar"), ("x", "x")],
)
def test_name_normalisation(raw: str, normalised: str) -> None:
    assert canonicalize_name(raw) == normalised


def test_record_refuses_non_normalised_project_and_naive_time() -> None:
    with pytest.raises(ValueError, match="not normalised"):
        record("demo_pkg-1.0-py3-none-any.whl", "1.0", project="Demo_Pkg")
    with pytest.raises(ValueError, match="timezone"):
        FileRecord.model_validate(
            {
                **record("a-1.0-py3-none-any.whl", "1.0").model_dump(),
                "upload_time": "2026-01-01T00:00:00",
            }
        )


def test_record_json_round_trip() -> None:
    original = record("demo_pkg-1.0-py3-none-any.whl", "1.0", yanked=True, reason="r")
    assert FileRecord.from_json(original.to_json()) == original


# -- the stored JSON is the truth: its typed inverse, one-file changes, the HTML view ----------


def test_the_stored_json_parses_back_into_the_very_same_page() -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), RECORDS)
    parsed = parse_project_json(render_project_json(page))
    assert parsed == page
    assert render_project_html(parsed) == render_project_html(page)
    root = build_root_page(["alpha", "beta-thing"])
    assert parse_root_json(render_root_json(root)) == root


def test_one_file_changes_give_the_bytes_of_a_full_render() -> None:
    project = canonicalize_name("demo-pkg")
    page = build_project_page(project, [])
    for one in RECORDS:  # added one at a time, through the stored bytes each time
        page = with_file(parse_project_json(render_project_json(page)), file_link(one))
    assert render_project_json(page) == render_project_json(build_project_page(project, RECORDS))
    yanked = record("demo_pkg-1.10-py3-none-any.whl", "1.10", sha="c", yanked=True, reason="x")
    changed = with_file(page, file_link(yanked))
    assert changed == build_project_page(project, [*RECORDS[1:], yanked])
    removed = without_file(changed, "demo_pkg-1.9-py3-none-any.whl")
    assert removed == build_project_page(project, [RECORDS[1], RECORDS[2], yanked])
    assert removed.versions == ("1.2", "1.10")


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"name": "Demo_Pkg", "versions": [], "files": []}',
        b'{"name": "demo", "versions": [1], "files": []}',
        b'{"name": "demo", "versions": [], "files": [{"filename": "x"}]}',
    ],
)
def test_a_page_no_renderer_wrote_is_refused(data: bytes) -> None:
    with pytest.raises(PageFormatError):
        parse_project_json(data)


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("hello_wheelvault-1.0.0-py3-none-any.whl", "Hello_WheelVault-1.0-py3-none-any.whl", True),
        (
            "hello_wheelvault-1.0-py3-none-any.whl",
            "hello.wheelvault-1.0.0.0-py3-none-any.whl",
            True,
        ),
        ("a-1.0-py2.py3-none-any.whl", "a-1.0-py3.py2-none-any.whl", True),
        ("a-1.0-py3-none-any.whl", "a-1.0-1-py3-none-any.whl", False),
        ("a-1.0-1-py3-none-any.whl", "a-1.0-2-py3-none-any.whl", False),
        ("a-1.0-py3-none-any.whl", "a-1.0-py2.py3-none-any.whl", False),
        ("a-1.0-py3-none-any.whl", "a-1.0.1-py3-none-any.whl", False),
        ("a-1.0-py3-none-any.whl", "b-1.0-py3-none-any.whl", False),
        ("demo_pkg-1.0.tar.gz", "demo_pkg-1.0.0.tar.gz", True),
        ("demo_pkg-1.0.tar.gz", "demo_pkg-1.0.1.tar.gz", False),
        ("demo_pkg-1.0.tar.gz", "demo_pkg-1.0.post1.tar.gz", False),
        ("demo_pkg-1.0.tar.gz", "other-1.0.tar.gz", False),
        # A wheel and the sdist of one release are two distributions, whatever the tags.
        ("demo_pkg-1.0.tar.gz", "demo_pkg-1.0-py3-none-any.whl", False),
        ("a-1.0.tar.gz", "a-1.0-1-sdist-none-any.whl", False),
    ],
)
def test_the_distribution_key_ignores_spelling_only(first: str, second: str, same: bool) -> None:
    assert (layout.distribution_key(first) == layout.distribution_key(second)) is same
    assert (layout.claim_path(first) == layout.claim_path(second)) is same
    assert (layout.tombstone_path(first) == layout.tombstone_path(second)) is same


def test_the_html_view_is_rendered_from_the_json_and_cached_per_etag() -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), RECORDS)
    path = layout.project_json(page.name)
    stored = StoredBlob(render_project_json(page), '"0x1"', JSON_V1)
    views = PageViews(max_bytes=1)
    assert views.view(path, stored, html=False) == (stored.data, '"0x1"')
    html, etag = views.view(path, stored, html=True)
    assert html == render_project_html(page)
    assert etag == '"0x1-html"'
    assert views.view(path, stored, html=True)[0] is html  # cached
    newer = StoredBlob(render_project_json(build_project_page(page.name, RECORDS[:1])), '"0x2"', "")
    assert views.view(path, newer, html=True) == (
        render_project_html(build_project_page(page.name, RECORDS[:1])),
        '"0x2-html"',
    )
    root = StoredBlob(render_root_json(build_root_page(["a"])), '"r"', "")
    assert views.view(layout.ROOT_JSON, root, html=True)[0] == render_root_html(
        build_root_page(["a"])
    )


@pytest.mark.parametrize(
    "records",
    [
        RECORDS,
        RECORDS[:1],
        [],
        [
            record(
                "demo_pkg-1.0-py3-none-any.whl",
                "1.0",
                requires_python='<"é\u2028\\\\>',
                yanked=True,
                reason="\u00e9\n\t\"'<b>",
            )
        ],
        [*RECORDS, *SDISTS],
        SDISTS[:1],
    ],
    ids=["many", "one", "none", "odd-characters", "with-sdists", "one-sdist"],
)
def test_the_fast_json_renderer_writes_what_json_dumps_writes(records: list[FileRecord]) -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), records)
    generic = json.dumps(project_page_data(page), indent=1, ensure_ascii=True).encode() + b"\n"
    assert render_project_json(page) == generic


# -- sdists: listed beside the wheels, without core metadata ----------------------------------


def test_sdists_are_listed_by_version_beside_the_wheels() -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), [*RECORDS, *SDISTS])
    assert page.versions == ("1.2", "1.9", "1.10", "1.11")  # 1.11 has only its sdist
    html = [text for _, text in parse(render_project_html(page)).anchors]
    assert html == [
        "demo_pkg-1.2-cp311-cp311-manylinux_2_17_x86_64.whl",
        "demo_pkg-1.2-py3-none-any.whl",
        "demo_pkg-1.2.tar.gz",
        "demo_pkg-1.9-py3-none-any.whl",
        "demo_pkg-1.10-py3-none-any.whl",
        "demo_pkg-1.11.tar.gz",
    ]
    assert [f["filename"] for f in json.loads(render_project_json(page))["files"]] == html


def test_an_sdist_has_every_field_but_core_metadata() -> None:
    page = build_project_page(canonicalize_name("demo-pkg"), [RECORDS[0], *SDISTS])
    anchors = {text: attrs for attrs, text in parse(render_project_html(page)).anchors}
    assert anchors["demo_pkg-1.2.tar.gz"] == {
        "href": "../../files/demo-pkg/demo_pkg-1.2.tar.gz#sha256=" + "d" * 64,
        "data-requires-python": ">=3.8",
    }
    assert anchors["demo_pkg-1.11.tar.gz"]["data-yanked"] == "no wheel yet"
    assert "data-core-metadata" not in anchors["demo_pkg-1.11.tar.gz"]
    assert anchors["demo_pkg-1.10-py3-none-any.whl"]["data-core-metadata"] == "sha256=" + "b" * 64
    files = {f["filename"]: f for f in json.loads(render_project_json(page))["files"]}
    assert files["demo_pkg-1.2.tar.gz"] == {
        "filename": "demo_pkg-1.2.tar.gz",
        "url": "../../files/demo-pkg/demo_pkg-1.2.tar.gz",
        "hashes": {"sha256": "d" * 64},
        "requires-python": ">=3.8",
        "size": 1234,
        "upload-time": "2026-01-02T03:04:05.678901Z",
        "yanked": False,
    }
    assert files["demo_pkg-1.11.tar.gz"]["yanked"] == "no wheel yet"
    assert files["demo_pkg-1.10-py3-none-any.whl"]["core-metadata"] == {"sha256": "b" * 64}


def test_pages_with_sdists_parse_back_and_change_one_file_at_a_time() -> None:
    project = canonicalize_name("demo-pkg")
    everything = [*RECORDS, *SDISTS]
    page = build_project_page(project, [])
    for one in reversed(everything):
        page = with_file(parse_project_json(render_project_json(page)), file_link(one))
    assert render_project_json(page) == render_project_json(build_project_page(project, everything))
    assert parse_project_json(render_project_json(page)) == page
    removed = without_file(page, "demo_pkg-1.11.tar.gz")
    assert removed.versions == ("1.2", "1.9", "1.10")


def test_a_stored_core_metadata_that_is_not_an_object_is_refused() -> None:
    page = json.loads(
        render_project_json(build_project_page(canonicalize_name("demo-pkg"), SDISTS))
    )
    page["files"][0]["core-metadata"] = None
    with pytest.raises(PageFormatError, match="core-metadata"):
        parse_project_json(json.dumps(page).encode())


def test_a_record_has_a_metadata_hash_exactly_when_it_is_a_wheel() -> None:
    sdist = SDISTS[0]
    assert sdist.metadata_sha256 is None
    assert FileRecord.from_json(sdist.to_json()) == sdist
    assert b'"metadata_sha256": null' in sdist.to_json()
    with pytest.raises(ValueError, match="an sdist has no metadata_sha256"):
        FileRecord.model_validate({**sdist.model_dump(), "metadata_sha256": "b" * 64})
    wheel = RECORDS[0].model_dump()
    with pytest.raises(ValueError, match="a wheel needs its metadata_sha256"):
        FileRecord.model_validate({**wheel, "metadata_sha256": None})


def test_a_record_written_before_sdists_still_reads() -> None:
    """The stored form of a wheel's record is unchanged (record_version 1), so old ones parse."""
    stored = RECORDS[0].to_json()
    assert json.loads(stored)["record_version"] == 1
    assert json.loads(stored)["metadata_sha256"] == "b" * 64
    assert FileRecord.from_json(stored) == RECORDS[0]
