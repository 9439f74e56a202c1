"""Core metadata — a wheel's METADATA, an sdist's PKG-INFO: strict where installers and the
index act on a field, lenient elsewhere.

A bad Name, Version, Metadata-Version, Requires-Python or Requires-Dist refuses the
upload; what packaging and Warehouse find wrong in any other field becomes a warning.
Where the file sits and how it is read is each distribution kind's business; the rules
for its content are the same for both, so they live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import packaging.version
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from shared.core.errors import RejectCode, Rejection
from shared.core.text import problem_list, show

# What Warehouse accepts. packaging has no "2.0" (never standardised, but emitted by old
# tools), so such files are validated by the 2.1 rules.
SUPPORTED_METADATA_VERSIONS = ("1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5")
_SUMMARY_LIMIT = 512  # Warehouse's limit
_CONTENT_TYPES = "text/plain, text/x-rst or text/markdown (GFM or CommonMark), in UTF-8"
# The fields installers and the index act on; a bad value in one refuses the upload. Every
# other field only informs people, so what packaging finds wrong there (a License-File
# under Metadata-Version 2.1, an unknown Description-Content-Type, a repeated Summary...)
# is a warning: PyPI published 135 of 966 sampled wheels that packaging's strict
# validation refuses. Requires-Dist stays strict: resolvers read it from the index's
# .metadata file, pip (24.1 on) and uv refuse a distribution whose Requires-Dist does not
# parse, and a direct URL reference would make installs fetch code from outside the index.
_STRICT_FIELDS = frozenset(
    {"metadata-version", "name", "version", "requires-python", "requires-dist"}
)

LicenseFileCheck = Callable[[str, bool], "str | None"]
"""(a License-File path, whether Metadata-Version is 2.4 or later) -> a warning when the
distribution does not hold that file where it should, else None."""


def check_core_metadata(
    content: bytes,
    project: NormalizedName,
    version: packaging.version.Version,
    *,
    label: str,
    license_file_missing: LicenseFileCheck,
) -> tuple[str, str | None, list[str]]:
    """Validate core metadata against the filename's project and version.

    Returns (display name, Requires-Python, warnings); ``label`` names the file in
    messages ("METADATA", "PKG-INFO").
    """
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection(
            RejectCode.METADATA_INVALID, f"{label} is not valid UTF-8 (at byte {exc.start})"
        ) from exc
    try:
        raw, unparsed = parse_email(content)
    except (ValueError, LookupError, TypeError, AssertionError) as exc:
        raise Rejection(RejectCode.METADATA_INVALID, f"{label} cannot be parsed") from exc
    requires_python = _check_requires_python(raw, unparsed)
    name, found_version = _check_strict_fields(raw, unparsed, label)
    if canonicalize_name(name) != project:
        raise Rejection(
            RejectCode.NAME_MISMATCH,
            f"{label} Name {show(name)} does not match the filename's project {project!r}",
        )
    if found_version != version:
        raise Rejection(
            RejectCode.VERSION_MISMATCH,
            f"{label} Version {str(found_version)!r} does not match the filename's "
            f"version {str(version)!r}",
        )
    warnings = _lenient_findings(raw, unparsed) + _warehouse_rules(raw, license_file_missing)
    return name, requires_python, [f"{label}: {text}" for text in warnings]


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
    raw: RawMetadata, unparsed: Mapping[str, list[str]], label: str
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
    elif metadata_version is not None and metadata_version not in SUPPORTED_METADATA_VERSIONS:
        problems.append(
            f"Metadata-Version {show(metadata_version)} is not supported "
            f"(supported: {', '.join(SUPPORTED_METADATA_VERSIONS)})"
        )
    name = raw.get("name") or ""
    if not _is_valid_name(name) and "name" not in repeated:
        problems.append(f"'name' {show(name)} is missing or not a valid project name")
    version = _parse_version(raw.get("version") or "")
    if version is None and "version" not in repeated:
        problems.append(f"'version' {show(raw.get('version') or '')} is missing or invalid")
    problems += [
        f"Requires-Dist {show(value)} {problem}"
        for value in raw.get("requires_dist") or []
        if (problem := _requirement_problem(value)) is not None
    ]
    if problems or version is None:
        raise Rejection(RejectCode.METADATA_INVALID, problem_list(f"{label} is invalid", problems))
    return name, version


def _parse_version(value: str) -> packaging.version.Version | None:
    try:
        return packaging.version.Version(value)
    except packaging.version.InvalidVersion:
        return None


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


def _warehouse_rules(raw: RawMetadata, license_file_missing: LicenseFileCheck) -> list[str]:
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
    return findings + _license_file_findings(raw, license_file_missing)


def _license_file_findings(raw: RawMetadata, license_file_missing: LicenseFileCheck) -> list[str]:
    """License-File entries the distribution does not hold: odd, harmless, so only noted."""
    # Only a supported Metadata-Version gets this far: the tuple is in order.
    order = SUPPORTED_METADATA_VERSIONS.index
    pep639 = order(raw.get("metadata_version") or "1.0") >= order("2.4")
    findings = [license_file_missing(path, pep639) for path in raw.get("license_files") or []]
    return [finding for finding in findings if finding is not None]


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
