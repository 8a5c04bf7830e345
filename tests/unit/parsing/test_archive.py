from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from soredi_sync.config import GuardSettings
from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing.archive import _GuardedReader, open_member
from tests.support.sor_writer import write_zip

CONTENT = b"LocationCode;EDITypeId\r\n5790000121441;1\r\n" * 50


def read_all(path: Path, member: str, guards: GuardSettings) -> bytes:
    with open_member(path, member, guards) as stream:
        return stream.read()


def corrupt_first_member_data(path: Path) -> None:
    """Flip bytes in the middle of the first member's packed data (headers left intact)."""
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[26:30])
    start = 30 + name_length + extra_length
    with zipfile.ZipFile(path) as archive:
        size = archive.infolist()[0].compress_size
    for offset in range(start + size // 3, start + size // 3 + 4):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


class TestOpenMember:
    def test_reads_a_member_by_name(self, tmp_path: Path, guards: GuardSettings) -> None:
        path = write_zip(tmp_path / "a.zip", {"EDITypes.csv": CONTENT, "Other.csv": b"x"})
        assert read_all(path, "EDITypes.csv", guards) == CONTENT

    def test_name_match_ignores_case_and_folders(
        self, tmp_path: Path, guards: GuardSettings
    ) -> None:
        path = write_zip(tmp_path / "a.zip", {"export/2025-06-01/SOR.XML": b"<x/>"})
        assert read_all(path, "Sor.xml", guards) == b"<x/>"

    def test_macos_resource_forks_do_not_make_a_name_ambiguous(
        self, tmp_path: Path, guards: GuardSettings
    ) -> None:
        path = write_zip(tmp_path / "a.zip", {"Sor.xml": b"<x/>", "__MACOSX/._Sor.xml": b"junk"})
        assert read_all(path, "Sor.xml", guards) == b"<x/>"

    def test_a_name_found_twice_is_refused(self, tmp_path: Path, guards: GuardSettings) -> None:
        path = write_zip(tmp_path / "a.zip", {"a/Sor.xml": b"<x/>", "b/Sor.xml": b"<y/>"})
        with pytest.raises(InvalidSourceData, match="more than once"):
            read_all(path, "Sor.xml", guards)

    def test_stored_members_are_read_too(self, tmp_path: Path, guards: GuardSettings) -> None:
        path = write_zip(tmp_path / "a.zip", {"Sor.xml": CONTENT}, compression=zipfile.ZIP_STORED)
        assert read_all(path, "Sor.xml", guards) == CONTENT

    def test_missing_member_lists_what_is_there(
        self, tmp_path: Path, guards: GuardSettings
    ) -> None:
        path = write_zip(tmp_path / "a.zip", {"EDITypes.csv": b"x", "LocationsCodes.csv": b"y"})
        with pytest.raises(InvalidSourceData) as caught:
            read_all(path, "LocationsCodeEDITypeMap.csv", guards)
        assert "no member 'LocationsCodeEDITypeMap.csv'" in str(caught.value)
        assert "EDITypes.csv, LocationsCodes.csv" in str(caught.value)

    def test_empty_member_is_refused(self, tmp_path: Path, guards: GuardSettings) -> None:
        path = write_zip(tmp_path / "a.zip", {"Sor.xml": b""})
        with pytest.raises(InvalidSourceData, match="empty"):
            read_all(path, "Sor.xml", guards)

    def test_missing_file_is_refused(self, tmp_path: Path, guards: GuardSettings) -> None:
        with pytest.raises(InvalidSourceData, match="does not exist"):
            read_all(tmp_path / "nothing.zip", "Sor.xml", guards)

    def test_a_file_that_is_not_a_zip_is_refused(
        self, tmp_path: Path, guards: GuardSettings
    ) -> None:
        path = tmp_path / "sor.zip"
        path.write_text("<html>503 Service Unavailable</html>")
        with pytest.raises(InvalidSourceData, match="not a readable zip"):
            read_all(path, "Sor.xml", guards)

    def test_truncated_zip_is_refused(self, tmp_path: Path, guards: GuardSettings) -> None:
        path = write_zip(tmp_path / "a.zip", {"Sor.xml": CONTENT})
        path.write_bytes(path.read_bytes()[:-30])
        with pytest.raises(InvalidSourceData, match="not a readable zip"):
            read_all(path, "Sor.xml", guards)

    def test_corrupt_member_data_raises_while_reading(
        self, tmp_path: Path, guards: GuardSettings
    ) -> None:
        path = write_zip(tmp_path / "a.zip", {"Sor.xml": bytes(range(256)) * 400})
        corrupt_first_member_data(path)
        with pytest.raises(InvalidSourceData, match="corrupt"):
            read_all(path, "Sor.xml", guards)

    def test_bad_crc_of_stored_member_raises_while_reading(
        self, tmp_path: Path, guards: GuardSettings
    ) -> None:
        path = write_zip(tmp_path / "a.zip", {"Sor.xml": CONTENT}, compression=zipfile.ZIP_STORED)
        corrupt_first_member_data(path)
        with pytest.raises(InvalidSourceData, match="CRC"):
            read_all(path, "Sor.xml", guards)

    def test_the_stream_is_closed_afterwards(self, tmp_path: Path, guards: GuardSettings) -> None:
        path = write_zip(tmp_path / "a.zip", {"Sor.xml": CONTENT})
        with open_member(path, "Sor.xml", guards) as stream:
            stream.read(10)
        assert stream.closed


class TestZipBombs:
    def test_too_high_compression_ratio_is_refused(self, tmp_path: Path) -> None:
        path = write_zip(tmp_path / "bomb.zip", {"Sor.xml": b"\0" * 2_000_000})
        with pytest.raises(InvalidSourceData, match="zip bomb"):
            read_all(path, "Sor.xml", GuardSettings(max_compression_ratio=100))

    def test_too_large_declared_size_is_refused(self, tmp_path: Path) -> None:
        path = write_zip(tmp_path / "big.zip", {"Sor.xml": CONTENT})
        with pytest.raises(InvalidSourceData, match="declares .* more than the 100 allowed"):
            read_all(path, "Sor.xml", GuardSettings(max_unpacked_bytes=100))

    def test_a_header_that_understates_the_size_does_not_get_past_the_guard(
        self, tmp_path: Path
    ) -> None:
        # Rewrite the declared sizes in both headers: zipfile then trusts them, we must not.
        payload = b"A" * 50_000
        path = write_zip(tmp_path / "liar.zip", {"Sor.xml": payload})
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            info = archive.infolist()[0]
        real = struct.pack("<I", info.file_size)
        fake = struct.pack("<I", 10)
        assert data.count(real) == 2  # local header and central directory
        path.write_bytes(bytes(data).replace(real, fake))
        with pytest.raises(InvalidSourceData):
            read_all(path, "Sor.xml", GuardSettings())

    def test_reading_past_the_limit_raises_whatever_the_headers_said(self) -> None:
        # zipfile itself stops at the declared size; the count is the second line of defence,
        # for a stream that produces more than it should.
        class Endless(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
                buffer[: len(buffer)] = b"A" * len(buffer)
                return len(buffer)

        raw = _GuardedReader(
            io.BufferedReader(Endless()), "bomb.zip:Sor.xml", 5_000, "a test limit"
        )
        stream = io.BufferedReader(raw, buffer_size=1024)
        with pytest.raises(InvalidSourceData, match="more than 5000 bytes"):
            while stream.read(1024):
                pass
        assert raw.bytes_read <= 5_001
