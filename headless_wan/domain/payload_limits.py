"""Size and nesting limits for task payloads, checked before anything parses or walks them deeply.

Python's JSON decoder recurses once per nesting level, so a payload nested a few thousand levels deep
ends in a RecursionError traceback instead of an error message, and so would any code that walks it.
A real task nests a handful of levels (orchestrator_details → phase_config → phases → loras); the limits
here only stop payloads nobody writes on purpose. Task files (`run`, `submit`) are checked as text
before decoding; claimed tasks, which a queue has already decoded, are checked as objects before the
handler's params model sees them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# A JSON string literal (escapes included): its contents never count as nesting.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class PayloadTooLarge(ValueError):
    """A payload over a limit; the message names the limit and the setting that raises it."""


@dataclass(frozen=True)
class PayloadLimits:
    max_bytes: int = 2 * 1024 * 1024
    max_depth: int = 64

    def check_size(self, size: int, what: str) -> None:
        if size > self.max_bytes:
            raise PayloadTooLarge(
                f"{what} is {_kib(size)}, over the {_kib(self.max_bytes)} limit (HW_MAX_TASK_JSON_KB)"
            )

    def check_text(self, text: str, what: str) -> None:
        """Refuse JSON text over the size or nesting limit, without decoding it."""
        self.check_size(len(text.encode("utf-8")), what)
        depth = _text_depth(text)
        if depth > self.max_depth:
            raise PayloadTooLarge(_depth_message(what, depth, self.max_depth))

    def check_object(self, value: Any, what: str) -> None:
        """Refuse a decoded payload over the nesting or size limit (depth first: encoding recurses)."""
        depth = object_depth(value, stop_past=self.max_depth)
        if depth > self.max_depth:
            raise PayloadTooLarge(_depth_message(what, depth, self.max_depth, at_least=True))
        self.check_size(len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")), what)


def object_depth(value: Any, *, stop_past: int | None = None) -> int:
    """Nesting depth of dicts/lists (a scalar is 0, `{}` is 1), without recursion.

    With `stop_past`, the walk ends as soon as the depth exceeds it and returns that depth.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if stop_past is not None and deepest > stop_past:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def _text_depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _depth_message(what: str, depth: int, limit: int, *, at_least: bool = False) -> str:
    levels = f"at least {depth}" if at_least else str(depth)
    return f"{what} nests {levels} levels deep, over the limit of {limit} (HW_MAX_TASK_JSON_DEPTH)"


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB"
