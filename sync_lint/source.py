"""Reading and writing the files sync-lint checks: one decoder, one atomic writer.

A file is read and decoded once per run (PEP 263: a BOM or a coding cookie, else
UTF-8); when fixes change it, the new text is encoded the same way (a UTF-8 BOM
is kept) and written atomically, only if the file on disk is still what was read.
"""

from __future__ import annotations

import os
import stat
import tempfile
import tokenize
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path


class SourceError(Exception):
    """A file could not be read or decoded; the message says why (without the path)."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    data: bytes  # the bytes as read, to detect a change on disk before writing
    text: str
    encoding: str  # `utf-8-sig` keeps a BOM on re-encoding


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding) per PEP 263; raises SourceError."""
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
        return data.decode(encoding), encoding
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"cannot decode file: {exc}") from None


def read_source(path: str) -> SourceFile:
    """Read and decode `path`; raises SourceError with a message fit for the user."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SourceError("no such file") from None
    except IsADirectoryError:
        raise SourceError("is a directory") from None
    except OSError as exc:
        raise SourceError(f"cannot read file: {exc.strerror or exc}") from None
    text, encoding = decode(data)
    return SourceFile(path, data, text, encoding)


def write_source(original: SourceFile, text: str) -> str | None:
    """Replace the file's contents with `text`; an error message, or None on success.

    The write is atomic (a temporary file in the same directory, then `os.replace`),
    keeps the mode bits and owner, and refuses read-only files and files that
    changed on disk since they were read.
    """
    try:
        data = text.encode(original.encoding)
    except UnicodeEncodeError as exc:
        return f"the fixed text cannot be encoded as {original.encoding} ({exc.reason}); fixes not written"
    real = os.path.realpath(original.path)
    try:
        info = os.stat(real)
    except OSError as exc:
        return f"cannot write file: {exc.strerror or exc}"
    if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(real, os.W_OK):
        return "file is read-only; fixes not written"
    try:
        current = Path(real).read_bytes()
    except OSError as exc:
        return f"cannot re-read file: {exc.strerror or exc}"
    if current != original.data:
        return "file changed on disk while it was being fixed; fixes not written"
    return write_atomic(real, data, mode=stat.S_IMODE(info.st_mode), owner=(info.st_uid, info.st_gid))


def write_atomic(path: str, data: bytes, mode: int | None = None, owner: tuple[int, int] | None = None) -> str | None:
    """Write `data` to `path` through a temporary file and `os.replace`; an error message or None.

    A crash mid-write leaves the old file intact. Without `mode`, an existing file
    keeps its mode and a new one gets the usual `0o666 & ~umask` (not the 0600 a
    temporary file is created with).
    """
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    directory = os.path.dirname(path) or "."
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".sync-lint.tmp", dir=directory)
    except OSError as exc:
        return f"cannot write file: {exc.strerror or exc}"
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        if owner is not None and hasattr(os, "chown") and owner != (os.getuid(), os.getgid()):
            try:
                os.chown(temp, *owner)
            except OSError:
                pass
        os.replace(temp, path)
    except BaseException as exc:  # an OSError, or Ctrl-C mid-write: never leave the temporary behind
        try:
            os.unlink(temp)
        except OSError:
            pass
        if not isinstance(exc, OSError):
            raise
        return f"cannot write file: {exc.strerror or exc}"
    return None
