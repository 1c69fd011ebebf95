"""Render functions that fail once across worker processes (a marker file says "done").

A module of its own, importing little: decode workers import it to unpickle the function.
"""

from __future__ import annotations

import os
import time
from typing import Any

from imagify.adapters.pillow import render_in_worker


def _first_time(marker: str) -> bool:
    """True for the first caller in any process."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def crash_once(marker: str, source: str | bytes, height: int, output: str | None = None) -> Any:
    if _first_time(marker):
        raise MemoryError("cannot allocate the decode buffer")
    return render_in_worker(source, height, output)


def hang_once(marker: str, source: str | bytes, height: int, output: str | None = None) -> Any:
    if _first_time(marker):
        time.sleep(2.5)
    return render_in_worker(source, height, output)


def deleted_first(source: str | bytes, height: int, output: str | None = None) -> Any:
    """A delete of the image landing just before the worker opens its original."""
    if isinstance(source, str):
        os.unlink(source)
    return render_in_worker(source, height, output)
