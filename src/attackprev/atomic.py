"""Writing files and folders atomically, so a failed run never leaves half a result."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Significant figures of every float the project writes to JSON (see :func:`round_floats`).
JSON_DIGITS = 6


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same folder and ``os.replace``.

    Newlines are written as given (no translation), so a patched file keeps its line endings.
    """
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def round_floats(obj: Any, digits: int = JSON_DIGITS) -> Any:
    """``obj`` with every float rounded to ``digits`` significant figures (for files people diff).

    The last digits of a float computed with vectorised maths can differ between processors
    (the exact engine's figures moved in the 12th digit between two machines); no number the
    project reports is known to better than about five significant figures, so a written
    float keeps ``digits`` of them and the same computation writes the same file anywhere.
    """
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [round_floats(v, digits) for v in obj]
    return obj


def json_text(obj: Any) -> str:
    """The project's JSON: indented, UTF-8 as is, floats rounded by :func:`round_floats`, a final newline."""
    return json.dumps(round_floats(obj), indent=2, ensure_ascii=False) + "\n"


def write_folder_atomic(target: str | Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmpdir)`` and swap the result into ``target``.

    The new folder is built beside ``target``; the old one (if any) is renamed away, the
    new one renamed in, and only then is the old one deleted. If ``write`` raises, the
    temporary folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        tmp.chmod(0o755)
        write(tmp)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
