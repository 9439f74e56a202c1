"""The upload API twine, uv publish and poetry publish speak: PyPI's `/legacy/` form.

A `POST` of multipart/form-data with `:action=file_upload`, `protocol_version=1`, the file as
`content`, and `name`, `version`, `filetype`, the digests and the rest of the metadata as
fields. The file goes through the very pipeline a blob drop goes through
(`Publisher.publish`): the same validation, the same claim, record and pages, the same
quarantine for what is refused. The answer is synchronous:

* 200 when the file is published, and for an identical re-upload (as PyPI answers);
* 409 when a different file holds the name (`file-exists`): `twine upload --skip-existing`
  skips on 409, and `uv publish --check-url` finds the published file by its hash;
* 413 for a request over the file cap (before the form is parsed) or a file over it;
* 400 for every other refusal, with the rejection's code. A tombstoned name is a 400, not a
  409, so that `--skip-existing` does not report a deleted file as published.

Every error is the front door's JSON `{"error": {"code", "message"}}`. uv prints that body;
twine prints the status line, and the body only with `--verbose` (the Functions host has no
way to set a reason phrase, which is all twine shows without it).

The form is parsed with python-multipart's streaming parser: the file goes to a spooled
temporary file (memory up to SPOOL_IN_MEMORY, disk beyond), every other field into a bounded
buffer; the number of parts, the fields' total size and each header are capped, so a hostile
form costs bounded memory whatever it holds.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from shared.core.errors import RejectCode, Rejection
from shared.services.frontdoor import HttpProblem, Reply, json_reply
from shared.services.publish import DIGESTS, Expected, Publisher, PublishResult

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

SOURCE = "upload-api"
"""Where a file published through this API came from, in its record and quarantine reason."""

ACTION = "file_upload"
PROTOCOL_VERSION = "1"
FILETYPES = {"bdist_wheel": ".whl", "sdist": ".tar.gz"}
"""The `filetype` values this index takes, and the filename ending each one requires."""

FIELDS_MAX_BYTES = 4 * 1024 * 1024  # every part but the file, together (a long description)
FORM_ROOM_BYTES = FIELDS_MAX_BYTES + 1024 * 1024  # those fields plus the parts' framing
MAX_PARTS = 1000
MAX_VALUE_CHARS = 1000  # each field read as one value (name, version, filetype, digests)
SPOOL_IN_MEMORY = 16 * 1024 * 1024
FEED_BYTES = 1024 * 1024  # the body is handed to the parser in slices this long

_HEX = re.compile(r"[0-9a-f]+")
_DIGEST_HEX_CHARS = {"md5": 32, "sha256": 64, "blake2_256": 64}
_STATUS = {RejectCode.FILE_EXISTS: 409, RejectCode.TOO_LARGE: 413}


def check_upload_path(path: str) -> None:
    """The root catch-all route serves the upload API at `/` only; anything else is a 404."""
    if path.strip("/"):
        raise HttpProblem(
            404,
            "not-found",
            "nothing is served here: the upload API is at /legacy/ (or /), the index at /simple/",
        )


@dataclass
class Form:
    """A parsed upload form: each field's values in order, and the one file."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    content: IO[bytes] | None = None

    def one(self, name: str, *, required: bool = True) -> str | None:
        """The single value of field `name`; a 400 if it is repeated or too long (or, when
        `required`, missing or empty)."""
        values = self.fields.get(name, [])
        if len(values) > 1:
            raise _bad_request(f"the form has {len(values)} {name!r} fields; send one")
        value = values[0] if values else ""
        if len(value) > MAX_VALUE_CHARS:
            raise _bad_request(f"{name!r} is over {MAX_VALUE_CHARS} characters")
        if required and not value:
            raise _bad_request(f"the form has no {name!r}")
        return value or None

    def rewound(self) -> IO[bytes]:
        assert self.content is not None
        self.content.seek(0)
        return self.content


@dataclass(frozen=True)
class Upload:
    """What a valid form asks: publish `filename` (bytes in the form), expecting `expected`."""

    filename: str
    expected: Expected


class UploadApi:
    """Turns one upload request into one `Publisher.publish` call and its answer."""

    def __init__(self, publisher: Publisher, *, max_upload_bytes: int) -> None:
        self.publisher = publisher
        self.max_upload_bytes = max_upload_bytes

    @property
    def max_request_bytes(self) -> int:
        """The largest request that can carry a file within the cap (plus the form's fields)."""
        return self.max_upload_bytes + FORM_ROOM_BYTES

    def upload(self, content_type: str | None, body: bytes) -> Reply:
        """Publish the form's file; every refusal is an HttpProblem."""
        self._check_length(len(body))
        with parsed_form(content_type, body) as form:
            upload = read_upload(form)
            _check_name(upload.filename)
            result = self.publisher.publish(
                upload.filename,
                form.rewound(),
                source=SOURCE,
                reread=form.rewound,
                expected=upload.expected,
            )
        return answer(result)

    def _check_length(self, length: int) -> None:
        """413 before the form is parsed when the request cannot hold a file within the cap."""
        if length > self.max_request_bytes:
            raise HttpProblem(
                413,
                RejectCode.TOO_LARGE.value,
                f"the request is {length} bytes: files are limited to {self.max_upload_bytes} "
                "bytes (WHEELVAULT_MAX_UPLOAD_BYTES), on this API as through `wheelvault upload`",
            )


def answer(result: PublishResult) -> Reply:
    """200 for a published or unchanged file; the rejection's status, code and message else."""
    if result.code is not None:  # rejected
        raise HttpProblem(_STATUS.get(result.code, 400), result.code.value, result.message or "")
    return json_reply(
        {
            "status": result.status,
            "filename": result.upload,
            "project": result.project,
            "version": result.version,
            "sha256": result.sha256,
        }
    )


def read_upload(form: Form) -> Upload:
    """The upload a form asks for, or a 400 naming what is wrong with the form."""
    action = form.one(":action")
    if action != ACTION:
        raise _bad_request(f":action {action!r} is not supported: only {ACTION!r}")
    if form.one("protocol_version") != PROTOCOL_VERSION:
        raise _bad_request(f"protocol_version must be {PROTOCOL_VERSION!r}")
    if form.filename is None:
        raise _bad_request("the form has no file: send it as the 'content' part, with a filename")
    _check_filetype(form.one("filetype") or "", form.filename)
    expected = Expected(name=form.one("name"), version=form.one("version"), digests=_digests(form))
    return Upload(form.filename, expected)


def _check_filetype(filetype: str, filename: str) -> None:
    ending = FILETYPES.get(filetype)
    if ending is None:
        raise _bad_request(
            f"filetype {filetype!r} is not published here: only {', '.join(FILETYPES)}"
        )
    if not filename.endswith(ending):
        raise _bad_request(f"filetype {filetype!r} needs a filename ending in {ending!r}")


def _digests(form: Form) -> dict[str, str]:
    """The digests sent, lower-case; each must be hex of its algorithm's length."""
    sent: dict[str, str] = {}
    for algorithm in DIGESTS:
        value = form.one(f"{algorithm}_digest", required=False)
        if value is None:
            continue
        value = value.lower()
        if len(value) != _DIGEST_HEX_CHARS[algorithm] or not _HEX.fullmatch(value):
            raise _bad_request(
                f"{algorithm}_digest must be {_DIGEST_HEX_CHARS[algorithm]} hex digits"
            )
        sent[algorithm] = value
    return sent


def _check_name(filename: str) -> None:
    """A filename that is no safe blob name is refused here, never quarantined under it."""
    try:
        Publisher.check_name(filename)
    except Rejection as rejection:
        if rejection.code is RejectCode.BAD_FILENAME:
            raise HttpProblem(400, rejection.code.value, rejection.message) from None


def _bad_request(message: str) -> HttpProblem:
    return HttpProblem(400, "bad-request", message)


# -- the multipart form ----------------------------------------------------------------------


@contextmanager
def parsed_form(content_type: str | None, body: bytes) -> Iterator[Form]:
    """The form in `body`; its file lives in a temporary file until the block ends."""
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise HttpProblem(
            415,
            "unsupported-media-type",
            "send multipart/form-data, as twine, uv publish and poetry publish do",
        )
    with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as content:
        reader = _FormReader(content)
        try:
            parser = MultipartParser(boundary, reader.callbacks())
            for start in range(0, len(body), FEED_BYTES):
                parser.write(body[start : start + FEED_BYTES])
        except FormParserError as error:
            raise HttpProblem(400, "bad-form", f"the form does not parse: {error}") from None
        yield reader.finished()


class _FormReader:
    """python-multipart's callbacks: collects the headers, fields and file of each part."""

    def __init__(self, content: IO[bytes]) -> None:
        self.form = Form()
        self.content = content
        self.parts = 0
        self.field_bytes = 0
        self.complete = False
        self._header: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        self._headers: dict[str, str] = {}
        self._part: _Part | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._header[0].extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header[1].extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self._data(data[start:end]),
            "on_part_end": self._end,
            "on_end": self._finish,
        }

    def finished(self) -> Form:
        if not self.complete:
            raise HttpProblem(400, "bad-form", "the form ends before its closing boundary")
        return self.form

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise HttpProblem(400, "bad-form", f"the form has over {MAX_PARTS} parts")
        self._headers = {}

    def _header_end(self) -> None:
        name, value = self._header
        self._headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        self._header = (bytearray(), bytearray())

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition"))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise HttpProblem(400, "bad-form", "every part needs Content-Disposition: form-data")
        filename = options.get(b"filename")
        if name == b"content" and filename is not None:
            if self.form.filename is not None:
                raise _bad_request("the form has more than one 'content' file")
            self.form.filename = _text(filename, "the content's filename")
            self.form.content = self.content
            self._part = _Part("content", file=self.content)
        else:
            self._part = _Part(_text(name, "a part's name"))

    def _data(self, data: bytes) -> None:
        assert self._part is not None
        if self._part.file is None:
            self.field_bytes += len(data)
            if self.field_bytes > FIELDS_MAX_BYTES:
                raise HttpProblem(
                    413, "too-large", f"the form's fields are over {FIELDS_MAX_BYTES} bytes"
                )
        self._part.write(data)

    def _end(self) -> None:
        assert self._part is not None
        if self._part.file is None:
            value = _text(bytes(self._part.value), f"field {self._part.name!r}")
            self.form.fields.setdefault(self._part.name, []).append(value)
        self._part = None

    def _finish(self) -> None:
        self.complete = True


@dataclass
class _Part:
    name: str
    file: IO[bytes] | None = None
    value: bytearray = field(default_factory=bytearray)

    def write(self, data: bytes) -> None:
        if self.file is not None:
            self.file.write(data)
        else:
            self.value.extend(data)


def _text(raw: bytes, what: str) -> str:
    """Header parameters come back as latin-1 bytes of what was sent; fields are UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_request(f"{what} is not UTF-8") from None
