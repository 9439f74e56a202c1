"""The upload's gzip stream, inflated on demand with every byte counted.

tarfile reads an uncompressed archive from a file object; :class:`GzipStream` is that
object. It is forward-only: tarfile's "r:" mode only seeks forward (to skip member data),
and a skip inflates and discards, so every byte is produced, counted and CRC-checked
with bounded memory — nothing is ever held whole or written to disk.
"""

from __future__ import annotations

import io
import typing
import zlib

from shared.core.errors import RejectCode, Rejection
from shared.core.sdist.limits import SdistBudget
from shared.core.text import one_line

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip member: header, deflate data, CRC-32 and size
_CHUNK = 64 * 1024  # compressed bytes read, and decompressed bytes produced, at a time


class GzipStream:
    """The decompressed bytes of a gzip file, as a forward-only binary file object."""

    def __init__(self, data: typing.BinaryIO, budget: SdistBudget) -> None:
        data.seek(0)
        if data.read(len(_GZIP_MAGIC)) != _GZIP_MAGIC:
            raise Rejection(
                RejectCode.NOT_GZIP,
                "the upload is not gzip-compressed (a .tar.gz must be: PEP 625)",
            )
        data.seek(0)
        self._data = data
        self._budget = budget
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._input = b""  # compressed bytes the inflater has not taken yet
        self._output = bytearray()  # decompressed bytes not yet read
        self._position = 0
        self._finished = False  # the last gzip member ended and only padding followed
        self.last_read = b""  # what the latest read returned: the tar's last header block

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._output) < size) and not self._finished:
            self._inflate()
        size = len(self._output) if size < 0 else size
        chunk = bytes(self._output[:size])
        del self._output[:size]
        self._position += len(chunk)
        self.last_read = chunk
        return chunk

    def peek(self, size: int) -> bytes:
        """Up to ``size`` bytes ahead, without consuming them."""
        while len(self._output) < size and not self._finished:
            self._inflate()
        return bytes(self._output[:size])

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset + (self._position if whence == io.SEEK_CUR else 0)
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self._position:
            raise Rejection(
                RejectCode.CORRUPT_SDIST,
                "the tar headers point backwards (a negative size or a link to an earlier "
                "member's data)",
            )
        while target > self._position and self.read(min(target - self._position, _CHUNK)):
            pass
        return self._position

    def tell(self) -> int:
        return self._position

    def write(self, data: bytes, /) -> int:  # tarfile's file protocol; never called
        raise io.UnsupportedOperation("the upload is read, never written")

    def close(self) -> None:
        """The upload belongs to the caller, who closes it."""

    def _inflate(self) -> None:
        if self._inflater.eof:
            self._next_member()
            return
        if not self._input:
            self._input = self._data.read(_CHUNK)
            if not self._input:
                raise Rejection(
                    RejectCode.CORRUPT_SDIST, "the gzip stream is truncated (no end record)"
                )
        try:
            produced = self._inflater.decompress(self._input, _CHUNK)
        except zlib.error as exc:
            raise Rejection(
                RejectCode.CORRUPT_SDIST, f"the gzip stream is damaged: {one_line(str(exc))}"
            ) from exc
        inflater = self._inflater
        self._input = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        self._budget.spend(len(produced))
        self._output += produced

    def _next_member(self) -> None:
        """After a gzip member: zero padding ends the file, another member continues it.

        That is what gzip.GzipFile (which pip's tarfile uses) reads; anything else after
        the stream is refused, as no installer reads it.
        """
        while True:
            self._input = self._input.lstrip(b"\0")
            if len(self._input) >= len(_GZIP_MAGIC):
                break
            more = self._data.read(_CHUNK)
            if not more:
                if self._input:
                    break
                self._finished = True
                return
            self._input += more
        if not self._input.startswith(_GZIP_MAGIC):
            raise Rejection(RejectCode.CORRUPT_SDIST, "the upload has bytes after its gzip stream")
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
