"""Opening one member of a downloaded zip without trusting the zip.

Every way a pulled archive can be broken ends in :class:`~soredi_sync.errors.InvalidSourceData`:
not a zip, truncated, a corrupt member (bad CRC or deflate stream, seen only while reading), a
missing or empty member, or a zip bomb. Bombs are refused twice: up front from the sizes the
central directory declares, and again while reading, by counting the bytes actually produced,
because those declared sizes are written by whoever made the file.
"""

from __future__ import annotations

import io
import logging
import lzma
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from soredi_sync.config import GuardSettings
from soredi_sync.errors import InvalidSourceData

logger = logging.getLogger(__name__)

# What zipfile and its decompressors raise for damaged data. OSError covers bz2's
# "Invalid data stream" and short reads of a truncated file; RuntimeError is an encrypted member;
# NotImplementedError an unknown compression method.
_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
)

_LISTED_MEMBERS = 20
_BUFFER_SIZE = 256 * 1024


class _GuardedReader(io.RawIOBase):
    """A raw stream over a zip member that counts what it hands out and stops at ``limit``.

    Errors of the underlying decompressor become :class:`InvalidSourceData` here, so callers
    (lxml, csv) see one kind of failure whatever layer broke.
    """

    def __init__(self, stream: IO[bytes], label: str, limit: int, limit_reason: str) -> None:
        super().__init__()
        self._stream = stream
        self._label = label
        self._limit = limit
        self._limit_reason = limit_reason
        self._count = 0

    @property
    def bytes_read(self) -> int:
        return self._count

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if len(buffer) == 0:
            return 0
        # Ask for at most one byte more than the limit allows: enough to know it was crossed.
        wanted = min(len(buffer), self._limit - self._count + 1)
        try:
            data = self._stream.read(wanted)
        except InvalidSourceData:
            raise
        except _ZIP_ERRORS as exc:
            raise InvalidSourceData(
                f"{self._label} is corrupt after {self._count} bytes: {type(exc).__name__}: {exc}"
            ) from exc
        size = len(data)
        self._count += size
        if self._count > self._limit:
            raise InvalidSourceData(
                f"{self._label} unpacks to more than {self._limit} bytes ({self._limit_reason}); "
                "refused as a possible zip bomb"
            )
        if size == 0 and self._count == 0:
            raise InvalidSourceData(f"{self._label} is empty")
        buffer[:size] = data
        return size

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


def _is_listable(info: zipfile.ZipInfo) -> bool:
    """Skip folders and the resource-fork litter macOS adds to zips it makes."""
    if info.is_dir():
        return False
    name = info.filename.replace("\\", "/")
    return not (name.startswith("__MACOSX/") or _basename(name).startswith("._"))


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _find_member(archive: zipfile.ZipFile, zip_path: Path, member_name: str) -> zipfile.ZipInfo:
    wanted = _basename(member_name).casefold()
    members = [info for info in archive.infolist() if _is_listable(info)]
    found = [info for info in members if _basename(info.filename).casefold() == wanted]
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidSourceData(
            f"{zip_path.name} holds {member_name!r} more than once",
            [f"candidates: {', '.join(info.filename for info in found)}"],
        )
    names = [info.filename for info in members[:_LISTED_MEMBERS]]
    if len(members) > _LISTED_MEMBERS:
        names.append(f"... {len(members) - _LISTED_MEMBERS} more")
    raise InvalidSourceData(
        f"{zip_path.name} has no member {member_name!r}",
        [f"members: {', '.join(names) if names else '(none)'}"],
    )


@contextmanager
def open_member(
    zip_path: Path | str, member_name: str, guards: GuardSettings
) -> Iterator[IO[bytes]]:
    """Open ``member_name`` inside ``zip_path`` for reading, as a buffered binary stream.

    The name is matched case-insensitively on its last path component, so a member kept in a
    folder inside the zip is found too.

    :param guards: ``max_unpacked_bytes`` and ``max_compression_ratio`` bound the member
    :raises InvalidSourceData: the file is missing, not a zip, truncated or corrupt; the member
        is missing, ambiguous or empty; it is (or, while reading, turns out to be) too large or
        too tightly packed. Reading a corrupt member raises it too.
    """
    path = Path(zip_path)
    try:
        archive_size = path.stat().st_size
        archive = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise InvalidSourceData(f"{path} does not exist") from exc
    except _ZIP_ERRORS as exc:
        raise InvalidSourceData(
            f"{path.name} is not a readable zip archive (truncated or corrupt?): {exc}"
        ) from exc
    with archive:
        info = _find_member(archive, path, member_name)
        label = f"{path.name}:{info.filename}"
        if info.file_size == 0:
            raise InvalidSourceData(f"{label} is empty")
        if info.file_size > guards.max_unpacked_bytes:
            raise InvalidSourceData(
                f"{label} declares {info.file_size} bytes unpacked, more than the "
                f"{guards.max_unpacked_bytes} allowed; refused as a possible zip bomb"
            )
        # The packed size is capped by the archive's real size: a header can lie about it too.
        packed = max(1, min(info.compress_size, archive_size))
        ratio = info.file_size / packed
        if ratio > guards.max_compression_ratio:
            raise InvalidSourceData(
                f"{label} is packed {ratio:.0f}:1, tighter than the "
                f"{guards.max_compression_ratio:.0f}:1 allowed; refused as a possible zip bomb"
            )
        ratio_limit = int(guards.max_compression_ratio * packed)
        if ratio_limit < guards.max_unpacked_bytes:
            limit, reason = ratio_limit, f"compression ratio above {guards.max_compression_ratio:g}"
        else:
            limit, reason = guards.max_unpacked_bytes, "the max_unpacked_bytes guard"
        try:
            raw_member = archive.open(info)
        except _ZIP_ERRORS as exc:
            raise InvalidSourceData(f"{label} cannot be opened: {exc}") from exc
        raw = _GuardedReader(raw_member, label, limit, reason)
        stream = io.BufferedReader(raw, buffer_size=_BUFFER_SIZE)
        logger.debug(
            "Opened %s (%d bytes packed, %d declared unpacked)",
            label,
            info.compress_size,
            info.file_size,
        )
        try:
            yield stream
        finally:
            stream.close()
