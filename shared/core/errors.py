"""Why an upload is refused: one code per failure, stable and machine-readable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from shared.core.text import one_line


class RejectCode(StrEnum):
    """Reason codes written to ``quarantine/{name}.reason.json``. Values never change."""

    BAD_FILENAME = "bad-filename"  # not a bare, safe name (slash, "..", control chars, too long)
    NOT_A_WHEEL = "not-a-wheel"  # sdist or any other non-wheel file: only wheels are published
    INVALID_WHEEL_FILENAME = "invalid-wheel-filename"  # ends in .whl but is not a valid wheel name
    TOO_LARGE = "too-large"  # over WHEELVAULT_MAX_UPLOAD_BYTES
    NOT_A_ZIP = "not-a-zip"  # no zip structure at all
    CORRUPT_ZIP = "corrupt-zip"  # truncated, unreadable central directory, bad CRC
    UNSAFE_PATH = "unsafe-path"  # absolute member path, "..", backslash, drive letter
    DUPLICATE_MEMBER = "duplicate-member"  # the same path twice in the archive
    ZIP_BOMB = "zip-bomb"  # total uncompressed size, overall ratio or member count over the cap
    # A member whose unix mode (high 16 bits of the external attributes) says symbolic link:
    # unzip recreates it as a link, so a later member can be written through it anywhere.
    SYMLINK_MEMBER = "symlink-member"
    # A device, fifo, socket or unknown unix file type: no installer can need one, and
    # unzip as root would create a device node. Its own code, not unsafe-path (the path is
    # fine) nor symlink-member (no write escapes through it): the fix differs too.
    SPECIAL_FILE_MEMBER = "special-file-member"
    DIST_INFO_MISSING = "dist-info-missing"  # no {name}-{version}.dist-info directory
    DIST_INFO_MULTIPLE = "dist-info-multiple"  # more than one *.dist-info directory
    WHEEL_FILE_MISSING = "wheel-file-missing"  # no .dist-info/WHEEL
    WHEEL_FILE_INVALID = "wheel-file-invalid"  # WHEEL unreadable or Wheel-Version not 1.x
    METADATA_MISSING = "metadata-missing"  # no .dist-info/METADATA
    METADATA_TOO_LARGE = "metadata-too-large"  # METADATA over the byte limit
    METADATA_INVALID = "metadata-invalid"  # METADATA does not parse or fails validation
    NAME_MISMATCH = "name-mismatch"  # METADATA Name differs from the filename's (normalised)
    VERSION_MISMATCH = "version-mismatch"  # METADATA Version differs from the filename's
    REQUIRES_PYTHON_INVALID = "requires-python-invalid"  # not a valid PEP 440 specifier set
    RECORD_MISSING = "record-missing"  # no .dist-info/RECORD
    RECORD_INVALID = "record-invalid"  # RECORD is not valid CSV of path,hash,size
    RECORD_MISMATCH = "record-mismatch"  # any file's hash or size differs, or one side lacks it
    FILE_EXISTS = "file-exists"  # the filename is published already, with different bytes
    FILENAME_TOMBSTONED = "filename-tombstoned"  # the filename was deleted and cannot come back
    HANDLER_FAILED = "handler-failed"  # the publish function kept failing (local host poison path)
    # Source distributions: a PEP 625 name, `{name}-{version}.tar.gz`, and a gzip'd tar.
    INVALID_SDIST_FILENAME = "invalid-sdist-filename"  # not {name}-{version}.tar.gz, parsed
    # Parses, but is not the PEP 625 spelling (lower case, "_" for runs of "-_.", the
    # normalised version): PyPI refuses such uploads too, and names the right one.
    SDIST_NAME_NOT_NORMALIZED = "sdist-name-not-normalized"
    LEGACY_SDIST_FORMAT = "legacy-sdist-format"  # .zip, .tar.bz2, .tgz, .tar...: not .tar.gz
    EGG_NOT_ACCEPTED = "egg-not-accepted"  # .egg: a legacy format PyPI no longer accepts (PEP 715)
    NOT_GZIP = "not-gzip"  # a .tar.gz whose bytes are not a gzip stream
    NOT_A_TAR = "not-a-tar"  # a gzip stream that does not hold a tar archive
    CORRUPT_SDIST = "corrupt-sdist"  # truncated or damaged gzip or tar, or data after the tar's end
    # Over a cap on the work an sdist costs: decompressed bytes, expansion ratio, members,
    # or an extended (PAX or GNU long-name) header.
    SDIST_BOMB = "sdist-bomb"
    # A symbolic or hard link whose target is absolute or resolves outside the top-level
    # directory, or a member that would be written through a symbolic link.
    UNSAFE_LINK = "unsafe-link"
    SDIST_TOP_LEVEL_INVALID = "sdist-top-level-invalid"  # not one top-level directory holding all
    PKG_INFO_MISSING = "pkg-info-missing"  # no {top}/PKG-INFO regular file
    # The upload API (PyPI's `/legacy/` form): what the request says about its file is checked.
    DIGEST_MISMATCH = "digest-mismatch"  # an md5/sha256/blake2_256 digest sent is not the file's
    FORM_MISMATCH = "form-mismatch"  # the form's name or version is not the file's metadata


class Rejection(ValueError):
    """An upload that can never be published as it is. Retrying cannot fix it."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


@contextmanager
def converting(errors: tuple[type[Exception], ...], code: RejectCode, what: str) -> Iterator[None]:
    """Turn what a parser raises on damaged input into one Rejection, ``"{what}: {error}"``.

    A Rejection passes unchanged. OSError never belongs in ``errors``: it comes from the
    file object, not from the upload, and a retry may cure it.
    """
    try:
        yield
    except Rejection:
        raise
    except errors as exc:
        raise Rejection(code, f"{what}: {one_line(str(exc))}") from exc


class NotFound(LookupError):
    """A management operation named a project, version or file the index does not hold."""
