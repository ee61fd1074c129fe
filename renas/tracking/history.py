"""``history.jsonl``: one JSON object per evaluation, appended and flushed as soon as known."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from renas.errors import DiskFullError, RenasError, disk_full
from renas.tracking import files

log = logging.getLogger(__name__)


def line(record: dict[str, Any]) -> str:
    """One record as its line of a ``.jsonl`` file."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"


def rewrite_history(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace a ``.jsonl`` file by ``records``, atomically."""
    files.atomic_write_bytes(Path(path), "".join(map(line, records)).encode())


class HistoryWriter:
    """Append-only journal. Each record is one line, flushed to the OS when written, so a
    crash loses at most the line being written (detected and dropped by :func:`read_history`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        try:
            files.write_data(self._f, line(record))
            self._f.flush()
        except OSError as e:  # a torn last line is cut when the search resumes (read_history)
            if disk_full(e):
                raise DiskFullError(self.path) from None
            raise

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()
            except OSError as e:  # the buffered rest of a line that did not fit: cut on resume
                if not disk_full(e):
                    raise


def read_history(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """Read a history file.

    A torn last line (a crash while it was written: no newline at its end) is dropped, and with
    ``repair=True`` cut from the file (a warning says so). A malformed line anywhere else, the
    last one included when it ends with a newline (a complete line, so not torn), is an error:
    the file was edited or is not a history.
    """
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good_end = 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        line = data[pos:] if nl < 0 else data[pos:nl]
        try:
            if nl < 0:
                raise ValueError("no newline")
            records.append(json.loads(line))
            good_end = nl + 1
        except ValueError:
            if nl < 0 or (not line.strip() and not data[nl + 1 :].strip()):
                break  # a torn last line (or blank lines at the end)
            raise RenasError(f"{path}: line {len(records) + 1} is not valid JSON (file edited or corrupt)") from None
        pos = nl + 1
    if repair and good_end < len(data):
        log.warning("%s: cut the %d bytes after its last complete line (a line torn by a crash while it was written)",
                    path, len(data) - good_end)
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return records
