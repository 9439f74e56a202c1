"""METADATA: strict where installers and the index act on a field, lenient elsewhere.

A bad Name, Version, Metadata-Version, Requires-Python or Requires-Dist refuses the
wheel; what packaging and Warehouse find wrong in any other field becomes a warning.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Mapping

import packaging.version
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidName, canonicalize_name

from shared.core.errors import RejectCode, Rejection
from shared.core.wheel.distinfo import DistInfo
from shared.core.wheel.names import WheelName, parse_version
from shared.core.wheel.text import problem_list, show

# What Warehouse accepts. packaging has no "2.0" (never standardised, but emitted by old
# tools), so such files are validated by the 2.1 rules.
_SUPPORTED_METADATA_VERSIONS = ("1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5")
_SUMMARY_LIMIT = 512  # Warehouse's limit
_CONTENT_TYPES = "text/plain, text/x-rst or text/markdown (GFM or CommonMark), in UTF-8"
# The fields installers and the index act on; a bad value in one refuses the wheel. Every
# other field only informs people, so what packaging finds wrong there (a License-File
# under Metadata-Version 2.1, an unknown Description-Content-Type, a repeated Summary...)
# is a warning: PyPI published 135 of 966 sampled wheels that packaging's strict
# validation refuses. Requires-Dist stays strict: resolvers read it from the index's
# .metadata file, pip (24.1 on) and uv refuse a distribution whose Requires-Dist does not
# parse, and a direct URL reference would make installs fetch code from outside the index.
_STRICT_FIELDS = frozenset(
    {"metadata-version", "name", "version", "requires-python", "requires-dist"}
)


def read_metadata(dist: DistInfo, limit: int) -> tuple[zipfile.ZipInfo, bytes]:
    """The METADATA member and its bytes, read whole up to ``limit``."""
    metadata_file, metadata = dist.read("METADATA", RejectCode.METADATA_MISSING, limit)
    if metadata is None:
        raise Rejection(
            RejectCode.METADATA_TOO_LARGE,
            f"METADATA is over the limit of {limit} bytes (it declares {metadata_file.file_size})",
        )
    return metadata_file, metadata


def check_metadata(
    content: bytes, wheel: WheelName, dist_info: str, files: Mapping[str, zipfile.ZipInfo]
) -> tuple[str, str | None, list[str]]:
    """Validate METADATA; return (display name, Requires-Python, warnings)."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection(
            RejectCode.METADATA_INVALID, f"METADATA is not valid UTF-8 (at byte {exc.start})"
        ) from exc
    try:
        raw, unparsed = parse_email(content)
    except (ValueError, LookupError, TypeError, AssertionError) as exc:
        raise Rejection(RejectCode.METADATA_INVALID, "METADATA cannot be parsed") from exc
    requires_python = _check_requires_python(raw, unparsed)
    name, version = _check_strict_fields(raw, unparsed)
    if canonicalize_name(name) != wheel.project:
        raise Rejection(
            RejectCode.NAME_MISMATCH,
            f"METADATA Name {show(name)} does not match the filename's project {wheel.project!r}",
        )
    if version != wheel.version:
        raise Rejection(
            RejectCode.VERSION_MISMATCH,
            f"METADATA Version {str(version)!r} does not match the filename's "
            f"version {str(wheel.version)!r}",
        )
    warnings = _lenient_findings(raw, unparsed) + _warehouse_rules(raw, dist_info, files)
    return name, requires_python, [f"METADATA: {text}" for text in warnings]


def _check_requires_python(raw: RawMetadata, unparsed: Mapping[str, list[str]]) -> str | None:
    """Validate Requires-Python on its own, so a bad one gets its own reject code."""
    if "requires-python" in unparsed:
        raise Rejection(
            RejectCode.REQUIRES_PYTHON_INVALID,
            "Requires-Python is given more than once: installers could read either",
        )
    value = raw.get("requires_python")
    if value is None or not value.strip():
        return None
    try:
        SpecifierSet(value)
    except ValueError as exc:
        raise Rejection(
            RejectCode.REQUIRES_PYTHON_INVALID,
            f"Requires-Python {show(value)} is not a valid version specifier set",
        ) from exc
    return value.strip()


def _check_strict_fields(
    raw: RawMetadata, unparsed: Mapping[str, list[str]]
) -> tuple[str, packaging.version.Version]:
    """Refuse a bad Metadata-Version, Name, Version or Requires-Dist; return name and version.

    parse_email leaves a repeated (or unreadable) field out of ``raw`` and names it in
    ``unparsed``: an installer could read either value, so that is refused too.
    """
    repeated = _STRICT_FIELDS & set(unparsed)
    problems = [f"{field!r} is repeated or unreadable" for field in sorted(repeated)]
    metadata_version = raw.get("metadata_version")
    if metadata_version is None and "metadata-version" not in repeated:
        problems.append("'metadata-version' is missing")
    elif metadata_version is not None and metadata_version not in _SUPPORTED_METADATA_VERSIONS:
        problems.append(
            f"Metadata-Version {show(metadata_version)} is not supported "
            f"(supported: {', '.join(_SUPPORTED_METADATA_VERSIONS)})"
        )
    name = raw.get("name") or ""
    if not _is_valid_name(name) and "name" not in repeated:
        problems.append(f"'name' {show(name)} is missing or not a valid project name")
    version = parse_version(raw.get("version") or "")
    if version is None and "version" not in repeated:
        problems.append(f"'version' {show(raw.get('version') or '')} is missing or invalid")
    problems += [
        f"Requires-Dist {show(value)} {problem}"
        for value in raw.get("requires_dist") or []
        if (problem := _requirement_problem(value)) is not None
    ]
    if problems or version is None:
        raise Rejection(RejectCode.METADATA_INVALID, problem_list("METADATA is invalid", problems))
    return name, version


def _is_valid_name(name: str) -> bool:
    try:
        canonicalize_name(name, validate=True)
    except InvalidName:
        return False
    return True


def _lenient_findings(raw: RawMetadata, unparsed: Mapping[str, list[str]]) -> list[str]:
    """What packaging's full validation finds outside the strict fields, as warnings.

    The strict fields passed already, so whatever packaging still says about one of them
    is only that it was introduced in a later Metadata-Version, which installers ignore.
    """
    findings = [
        f"field {field!r} is unknown, repeated or unreadable (ignored)"
        for field in sorted(set(unparsed) - _STRICT_FIELDS)
    ]
    validated = raw.copy()
    if validated.get("metadata_version") == "2.0":
        validated["metadata_version"] = "2.1"
    try:
        Metadata.from_raw(validated, validate=True)
    except ExceptionGroup as group:
        findings += sorted(_describe(exc, raw) for exc in _flatten(group))  # set order varies
    except (ValueError, TypeError, LookupError) as exc:
        findings.append(f"could not be fully validated: {exc}")
    return findings


def _warehouse_rules(
    raw: RawMetadata, dist_info: str, files: Mapping[str, zipfile.ZipInfo]
) -> list[str]:
    """Warehouse's checks on top of packaging's that need no third-party data, as warnings.

    Classifier, e-mail and URL checks are left out (they need trove-classifiers,
    email-validator and rfc3986), and so is the ban on local versions, which a private
    index relies on. Direct URL Requires-Dist is a strict field's problem, found earlier.
    """
    findings: list[str] = []
    summary = raw.get("summary")
    if summary is not None and len(summary) > _SUMMARY_LIMIT:
        findings.append(f"Summary is over {_SUMMARY_LIMIT} characters ({len(summary)})")
    if raw.get("license") and raw.get("license_expression"):
        findings.append("License and License-Expression are both given (they exclude each other)")
    for field, values in (
        ("Provides-Dist", raw.get("provides_dist")),
        ("Obsoletes-Dist", raw.get("obsoletes_dist")),
    ):
        for value in values or []:
            problem = _requirement_problem(value)
            if problem is not None:
                findings.append(f"{field} {show(value)} {problem}")
    return findings + _license_file_findings(raw, dist_info, files)


def _license_file_findings(
    raw: RawMetadata, dist_info: str, files: Mapping[str, zipfile.ZipInfo]
) -> list[str]:
    """License-File entries the wheel does not hold: odd, harmless, so only noted.

    Metadata-Version 2.4 (PEP 639) puts them under ``.dist-info/licenses/``. Before it,
    hatchling already did, while setuptools wrote License-File and bdist_wheel copied the
    file into ``.dist-info`` itself, under its relative path (or only its file name, in
    older versions of wheel).
    """
    # Only a supported Metadata-Version gets this far: the tuple is in order.
    order = _SUPPORTED_METADATA_VERSIONS.index
    pep639 = order(raw.get("metadata_version") or "1.0") >= order("2.4")
    findings = []
    for path in raw.get("license_files") or []:
        places = [f"{dist_info}/licenses/{path}"]
        if not pep639:
            places += [f"{dist_info}/{path}", f"{dist_info}/{path.rsplit('/', 1)[-1]}"]
        if not any(place in files for place in places):
            findings.append(f"License-File {show(path)} is not in the wheel at {show(places[0])}")
    return findings


def _requirement_problem(value: str) -> str | None:
    try:
        requirement = Requirement(value)
    except InvalidRequirement:
        return "is not a valid requirement"
    return None if requirement.url is None else "is a direct (URL) reference"


def _describe(exc: BaseException, raw: RawMetadata) -> str:
    """packaging's message, prefixed with the field when the message does not name it."""
    message = str(exc)
    field = exc.field if isinstance(exc, InvalidMetadata) else None
    if field == "description-content-type":  # packaging lists the choices in set order
        value = show(raw.get("description_content_type") or "")
        return f"Description-Content-Type {value} is not {_CONTENT_TYPES} (ignored)"
    if field and field.lower() not in message.lower():
        return f"{field}: {message}"
    return message


def _flatten(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _flatten(exc)
        else:
            yield exc
