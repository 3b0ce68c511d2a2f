"""Atomic file creation shared by the writers and the downloader.

Readers (other tasks, uploads, a re-run after a crash) must never see a half-written file under its final name, so
every output is written to a hidden sibling and renamed into place only once complete.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_sibling(path: Path) -> Path:
    """A unique hidden name in the same directory (same filesystem, so the final rename is atomic).

    The suffix is kept because FFmpeg and PIL choose the container/format from it.
    """
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.partial{path.suffix}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to `path`, on any error delete it."""
    tmp = temp_sibling(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
