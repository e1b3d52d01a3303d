"""Reading a CSV file: opening, encodings, line endings, the delimiter."""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from journey.errors import JourneyError


@dataclass
class _Reader:
    """Physical lines of a UTF-8 file, decoded one by one.

    Decoding per line (UTF-8 never splits a character across a newline) turns a
    stray Latin-1 byte into an error on its own line instead of an exception
    that aborts the file, and counts the bytes read for the progress bar.
    """

    file: str
    handle: BinaryIO
    bytes_done: int = 0
    bad_lines: dict[int, str] = field(default_factory=dict)
    # The file's SHA-256, computed while it is read: an import knows whether it
    # saw this exact file before (journey.imports.run's marker) at no extra pass.
    digest: Any = field(default_factory=hashlib.sha256)

    def lines(self) -> Iterator[str]:
        update = self.digest.update
        for number, raw in enumerate(self.handle, start=1):
            self.bytes_done += len(raw)
            update(raw)
            if b"\x00" in raw and number > 1:
                self.bad_lines[number] = "contains a NUL character (is this a binary file?)"
            if number == 1:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise JourneyError(
                        f"{self.file} is UTF-16 text; save it as 'CSV UTF-8' and import again."
                    )
                raw = raw.removeprefix(codecs.BOM_UTF8)
                if b"\r" in raw.rstrip(b"\r\n"):
                    raise JourneyError(
                        f"{self.file} ends its lines with a bare carriage return (old Mac "
                        "format); save it as 'CSV UTF-8' with standard line endings."
                    )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if number == 1:
                    raise JourneyError(
                        f"{self.file} is not UTF-8 text (byte 0x{raw[exc.start]:02X} in the "
                        "header); save it as 'CSV UTF-8' and import again."
                    ) from exc
                self.bad_lines[number] = (
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02X} at position "
                    f"{exc.start + 1}); save the file as 'CSV UTF-8'"
                )
                text = raw.decode("utf-8", errors="replace")
            yield text


def _delimiter(header_line: str) -> str:
    """Comma, unless the header clearly uses semicolons or tabs (spreadsheet exports)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        if path.is_dir():
            raise JourneyError(f"{path} is a directory; give the path of a CSV file.")
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise JourneyError(f"There is no file {path}.") from exc
    except PermissionError as exc:
        raise JourneyError(f"{path} cannot be read (permission denied).") from exc
    size = os.fstat(handle.fileno()).st_size
    return handle, size
