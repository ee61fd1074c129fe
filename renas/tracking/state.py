"""The resumable search state (``state.pt``): a snapshot of the whole search, written atomically
every ``snapshot.every`` evaluations or ``snapshot.seconds`` seconds (and at the start and the
end); ``history.jsonl`` is the journal after it (see :meth:`renas.search.loop.Search.expect`).

Saved with ``torch.save`` and loaded with ``torch.load(weights_only=True)``: plain Python types
and tensors only, so loading a state file can never run code.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import torch

from renas.errors import RenasError
from renas.tracking.files import atomic_write_bytes
from renas.tracking.run_folder import STATE_FILE

FORMAT = 1


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    atomic_write_bytes(Path(run_dir) / STATE_FILE, buf.getvalue())


def _reason(error: Exception) -> str:
    """The first sentence of a load error, shortened at a word (torch's run on for lines)."""
    text = str(error).splitlines()[0] if str(error).strip() else ""
    text = text.split(". ")[0].rstrip(".")
    if len(text) < 20:  # a bare key or number (a file that is not a torch archive): say what raised it
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return textwrap.shorten(text, 120, placeholder=" ...")


def load_state(run_dir: Path) -> dict[str, Any]:
    """Read a state file; a missing, truncated or foreign file is one clear error."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise RenasError(f"{path} not found: {run_dir} is not a search run folder (or it was started by an older version)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = _reason(e)
        raise RenasError(f"{path} is corrupt or truncated and cannot be read ({reason}); the run folder was left as it is") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "search" not in state or "config" not in state:
        raise RenasError(f"{path} is not a renas search state (format {FORMAT})")
    return state
