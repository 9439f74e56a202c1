"""Where everything lives in Blob Storage. The one place that spells out blob paths.

`index` container:
    files/{project}/{filename}            the distribution, immutable once written
    files/{project}/{filename}.metadata   PEP 658 core metadata (exact METADATA bytes)
    records/{project}/{filename}.json     one record per file: the source of truth for pages
    simple/index.html|json                the root page
    simple/{project}/index.html|json      one page per project
    tombstones/{filename}                 a deleted filename, never published again
"""

from __future__ import annotations

from typing import Final

from packaging.utils import NormalizedName

UPLOADS: Final = "uploads"
INDEX: Final = "index"
QUARANTINE: Final = "quarantine"
CONTAINERS: Final = (UPLOADS, INDEX, QUARANTINE)

ROOT_HTML: Final = "simple/index.html"
ROOT_JSON: Final = "simple/index.json"
RECORDS_PREFIX: Final = "records/"

HTML_TYPE: Final = "text/html; charset=utf-8"
JSON_PAGE_TYPE: Final = "application/vnd.pypi.simple.v1+json"
BINARY_TYPE: Final = "application/octet-stream"
JSON_TYPE: Final = "application/json"


def file_path(project: NormalizedName, filename: str) -> str:
    return f"files/{project}/{filename}"


def metadata_path(project: NormalizedName, filename: str) -> str:
    return f"files/{project}/{filename}.metadata"


def record_prefix(project: NormalizedName) -> str:
    return f"{RECORDS_PREFIX}{project}/"


def record_path(project: NormalizedName, filename: str) -> str:
    return f"{record_prefix(project)}{filename}.json"


def project_html(project: NormalizedName) -> str:
    return f"simple/{project}/index.html"


def project_json(project: NormalizedName) -> str:
    return f"simple/{project}/index.json"


def tombstone_path(filename: str) -> str:
    return f"tombstones/{filename}"


def reason_path(quarantined_name: str) -> str:
    return f"{quarantined_name}.reason.json"
