"""Crash-safe file writes: a kill at any instant leaves the old file or the new one; a full disk
is a :class:`~renas.errors.DiskFullError` naming the file, with no temporary file left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from renas.errors import DiskFullError, disk_full


def write_data(f: IO, data: Any) -> None:
    """``f.write(data)``: the one place where the run folder's files get their bytes (tests make
    it fail with ENOSPC at the k-th call)."""
    f.write(data)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    If anything goes wrong before the rename, the temporary file is removed and ``path`` is as
    it was; ENOSPC / EDQUOT becomes a :class:`DiskFullError` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            write_data(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if disk_full(e):
            raise DiskFullError(path) from None
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(x: Any):
    # deferred: numpy only for numpy scalars; renas.compare reads histories without it
    import numpy as np

    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
