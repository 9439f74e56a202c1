"""Where everything lives in Blob Storage. The one place that spells out blob paths.

`index` container:
    files/{project}/{filename}            the distribution, immutable once written
    files/{project}/{filename}.metadata   PEP 658 core metadata (exact METADATA bytes)
    records/{project}/{filename}.json     one record per file: the source of truth for pages
    dists/{project}/{key}.json            the claim: which filename a distribution is published
                                          as; created create-only, first, so it is the guard
    simple/index.json                     the root page (PEP 691 JSON)
    simple/{project}/index.json           one page per project (PEP 691 JSON)
    tombstones/{project}/{key}.json       a deleted distribution, never published again
    upstream/files/{project}/{filename}   a file copied from an upstream index on its first
                                          download (+ `.metadata`), create-only, verified
    upstream/pages/{project}.json         an upstream project's page as we serve it, with when
                                          it was fetched and where its files come from

`{key}` is the distribution's identity (`distribution_key`): for a wheel the normalised version,
the build tag and the sorted set of tags; for an sdist the normalised version and `sdist`.
`Foo-1.0-py3-none-any.whl` and `foo-1.0.0-py3-none-any.whl` are one distribution, so they share a
claim and a tombstone; another build or tag is another file. `foo-1.0.tar.gz` and
`foo-1.0.0.tar.gz` are one sdist; a wheel and the sdist of one version are two distributions.
Sdists have no `.metadata` sidecar (PKG-INFO may say `Dynamic`: it is not PEP 658 metadata).

The stored JSON page is the one truth for both views of a page: the HTML view is rendered from it
when served (cached per ETag), so the two cannot disagree. Blobs named `simple/**/index.html` and
`tombstones/{filename}` are from older versions; `reindex` removes the first and carries the
second over to the keyed form.
"""

from __future__ import annotations

from typing import Final

from packaging.utils import NormalizedName, canonicalize_version, parse_wheel_filename

from shared.core.distribution import is_sdist, parse_filename

UPLOADS: Final = "uploads"
INDEX: Final = "index"
QUARANTINE: Final = "quarantine"
CONTAINERS: Final = (UPLOADS, INDEX, QUARANTINE)

ROOT_HTML: Final = "simple/index.html"
ROOT_JSON: Final = "simple/index.json"
RECORDS_PREFIX: Final = "records/"
PAGES_PREFIX: Final = "simple/"
TOMBSTONES_PREFIX: Final = "tombstones/"
UPSTREAM_PREFIX: Final = "upstream/"
"""Everything copied from an upstream index: outside files/, records/ and simple/, so private
packages and their pages never mix with it, and dropping the prefix drops only the cache."""
UPSTREAM_FILES_PREFIX: Final = f"{UPSTREAM_PREFIX}files/"
UPSTREAM_PAGES_PREFIX: Final = f"{UPSTREAM_PREFIX}pages/"

# Stored content types. A stored page is PEP 691 JSON, stored as its media type `negotiate.JSON_V1`.
HTML_TYPE: Final = "text/html; charset=utf-8"
BINARY_TYPE: Final = "application/octet-stream"
JSON_TYPE: Final = "application/json"


def file_path(project: NormalizedName, filename: str) -> str:
    return f"files/{project}/{filename}"


def metadata_path(project: NormalizedName, filename: str) -> str:
    return f"files/{project}/{filename}.metadata"


def upstream_file_path(project: NormalizedName, filename: str) -> str:
    """A cached upstream file; `{filename}.metadata` names its core-metadata file."""
    return f"{UPSTREAM_FILES_PREFIX}{project}/{filename}"


def upstream_page_path(project: NormalizedName) -> str:
    return f"{UPSTREAM_PAGES_PREFIX}{project}.json"


def record_prefix(project: NormalizedName) -> str:
    return f"{RECORDS_PREFIX}{project}/"


def record_path(project: NormalizedName, filename: str) -> str:
    return f"{record_prefix(project)}{filename}.json"


def legacy_html(project: NormalizedName | None) -> str:
    """Where older versions stored an HTML page (None: the root); now rendered when served."""
    return ROOT_HTML if project is None else f"simple/{project}/index.html"


def project_json(project: NormalizedName) -> str:
    return f"simple/{project}/index.json"


def distribution_key(filename: str) -> tuple[NormalizedName, str]:
    """(project, key): what makes two filenames the same distribution.

    Spellings that name the same thing give the same key: the project is normalised, the
    version canonical without trailing zeros (1.0 == 1.0.0), compressed tag sets expanded and
    sorted. The build tag stays part of it. Raises ValueError for a name of neither kind.
    """
    if is_sdist(filename):
        project, version = parse_filename(filename)
        # A wheel's key always ends in a tag set, `interpreter-abi-platform`, so it holds at
        # least four hyphens; `{version}-sdist` holds one (canonical versions hold none).
        return project, f"{canonicalize_version(version, strip_trailing_zero=True)}-sdist"
    project, version, build, tags = parse_wheel_filename(filename)
    canonical = canonicalize_version(version, strip_trailing_zero=True)
    build_tag = f"{build[0]}{build[1]}" if build else "_"  # build tags start with a digit
    return project, f"{canonical}-{build_tag}-{'.'.join(sorted(str(t) for t in tags))}"


def claim_path(filename: str) -> str:
    project, key = distribution_key(filename)
    return f"dists/{project}/{key}.json"


def claim_prefix(project: NormalizedName) -> str:
    return f"dists/{project}/"


def tombstone_path(filename: str) -> str:
    """The tombstone of `filename`'s distribution, however the filename spells it."""
    project, key = distribution_key(filename)
    return f"{TOMBSTONES_PREFIX}{project}/{key}.json"


def legacy_tombstone_name(blob_name: str) -> str | None:
    """The filename a tombstone of an older version stands for (`tombstones/{filename}`)."""
    rest = blob_name.removeprefix(TOMBSTONES_PREFIX)
    return rest if rest != blob_name and "/" not in rest else None


def reason_path(quarantined_name: str) -> str:
    return f"{quarantined_name}.reason.json"
