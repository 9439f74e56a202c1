"""Crash-safe file writes for a stand-in's data dir, and the lock that keeps it to one process.

State and key material are rewritten in place while the server runs; a crash or a kill in the
middle of a plain ``write_bytes`` would leave a truncated file that the next start cannot read.
Writing a sibling temp file and renaming it over the target means readers only ever see the old
or the new content. Files are created ``0600`` because they hold secret values and private keys.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO

try:  # POSIX only; on other platforms the data dir is simply not locked.
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
LOCK_FILE = ".lock"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) readable only by the current user if it does not exist."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)


def lock_dir(path: Path) -> IO[str]:
    """Hold ``path/.lock`` exclusively while the returned file stays open: a second process on
    the same data dir would silently overwrite the first one's state. ``OSError`` when another
    process holds it."""
    lock_file = (path / LOCK_FILE).open("a", encoding="utf-8")
    if fcntl is not None:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_file.close()
            raise
    return lock_file


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same dir + ``os.replace``)."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp_path = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Persist the rename itself; best effort because not every platform can open a directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
