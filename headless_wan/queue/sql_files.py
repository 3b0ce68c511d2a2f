"""Named SQL statements kept in `.sql` files, loaded once per file."""

from __future__ import annotations

import functools
import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@functools.cache
def load_queries(filename: str) -> dict[str, str]:
    text = resources.files("headless_wan.queue").joinpath("sql", filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
