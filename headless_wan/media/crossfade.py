"""Crossfade stitching of travel segments (travel.md §6.2–6.3), streaming.

`Stitcher.frames(segments)` consumes each segment as an iterator of RGB frames and yields the stitched
video frame by frame. It keeps only what a join needs: the last `o'[k]` raw frames of segment k, the
same number of not-yet-emitted output frames (they are replaced by the blend), and at most `o'[k]` head
frames of segment k+1. Memory is therefore bounded by the overlaps, never by the video length.

Join k with n = min(o'[k], len[k], len[k+1]) frames: the output's last n frames (segment k's tail) are
dropped, `blend(tail_k, head_k+1)` is emitted in their place, then segment k+1 continues from frame n.
No frame is emitted twice and n = 0 is a plain append, so the result has Σ len − Σ n frames.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

import cv2
import numpy as np

from headless_wan.errors import MediaError

BLUR_SIGMA = 3.0


def ease_weight(index: int, count: int) -> float:
    """Cosine ease-in-out weight of B for blended frame `index` of `count`; reaches 1 at the last frame."""
    t = (index + 1) / count
    return (1.0 - math.cos(math.pi * t)) / 2.0


def blend_frame(a: np.ndarray, b: np.ndarray, alpha: float, sharp_amount: float) -> np.ndarray:
    """`(1−α)·A + α·B`, then an unsharp mask of strength `sharp_amount·α` (Gaussian σ = 3)."""
    base = (1.0 - alpha) * a.astype(np.float32) + alpha * b.astype(np.float32)
    amount = sharp_amount * alpha
    if amount > 0:
        # ksize (0, 0): OpenCV derives the kernel from sigma, the convention the spec pins.
        blurred = cv2.GaussianBlur(base, (0, 0), BLUR_SIGMA)
        base = base * (1.0 + amount) - blurred * amount
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def crossfade(
    tail: Sequence[np.ndarray],
    head: Sequence[np.ndarray],
    sharp_amount: float,
    *,
    keep_last_anchor: bool = False,
) -> list[np.ndarray]:
    """Blend equal-length runs of frames. `keep_last_anchor` (regenerate_anchors): with n > 1, blend the
    first n−1 frames over n−1 steps and take the last frame from `head` unblended."""
    if len(tail) != len(head):
        raise ValueError(f"crossfade needs equal runs, got {len(tail)} and {len(head)} frames")
    count = len(tail)
    if keep_last_anchor and count > 1:
        blended = [
            blend_frame(a, b, ease_weight(i, count - 1), sharp_amount)
            for i, (a, b) in enumerate(zip(tail[:-1], head[:-1], strict=True))
        ]
        return [*blended, np.ascontiguousarray(head[-1])]
    return [
        blend_frame(a, b, ease_weight(i, count), sharp_amount)
        for i, (a, b) in enumerate(zip(tail, head, strict=True))
    ]


@dataclass(frozen=True)
class Join:
    index: int
    requested: int
    used: int

    @property
    def clamped(self) -> bool:
        return self.used < self.requested


@dataclass
class Stitcher:
    """Streams segments into one video. After `frames()` is exhausted, `lengths` holds each segment's
    decoded frame count and `joins` the overlap actually used at each join."""

    overlaps: Sequence[int]
    sharp_amount: float = 0.3
    keep_last_anchor: bool = False
    lengths: list[int] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    emitted: int = 0

    def frames(self, segments: Iterable[Iterable[np.ndarray]]) -> Iterator[np.ndarray]:
        pending: deque[np.ndarray] = deque()  # output frames a coming join may still replace
        previous_tail: deque[np.ndarray] = deque()  # raw last frames of the previous segment
        for index, segment in enumerate(segments):
            if index > len(self.overlaps):
                raise ValueError(f"got more segments than the {len(self.overlaps) + 1} the overlaps describe")
            hold = self.overlaps[index] if index < len(self.overlaps) else 0
            tail: deque[np.ndarray] = deque(maxlen=hold)
            frames = iter(segment)
            length = 0
            if index > 0:
                blended, head = self._join(index - 1, frames, pending, previous_tail)
                yield from self._drain(pending, 0)
                for frame, raw in zip(blended, head, strict=True):
                    pending.append(frame)
                    tail.append(raw)
                    yield from self._drain(pending, hold)
                length = len(head)
            for frame in frames:
                length += 1
                pending.append(frame)
                tail.append(frame)
                yield from self._drain(pending, hold)
            if length == 0:
                raise MediaError(f"segment {index} has no frames")
            self.lengths.append(length)
            previous_tail = tail
        if len(self.lengths) != len(self.overlaps) + 1:
            raise ValueError(f"expected {len(self.overlaps) + 1} segments, got {len(self.lengths)}")
        yield from self._drain(pending, 0)

    def _join(
        self,
        join: int,
        frames: Iterator[np.ndarray],
        pending: deque[np.ndarray],
        previous_tail: deque[np.ndarray],
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        requested = self.overlaps[join]
        head = list(islice(frames, min(requested, self.lengths[join])))
        used = len(head)  # = min(o', len[k], len[k+1]): a short segment ends the head early
        self.joins.append(Join(join, requested, used))
        if used == 0:
            return [], []
        for _ in range(used):
            pending.pop()  # segment k's tail leaves the output; the blend takes its place
        tail = list(previous_tail)[-used:]
        return crossfade(tail, head, self.sharp_amount, keep_last_anchor=self.keep_last_anchor), head

    def _drain(self, pending: deque[np.ndarray], hold: int) -> Iterator[np.ndarray]:
        while len(pending) > hold:
            self.emitted += 1
            yield pending.popleft()

    @property
    def expected_length(self) -> int:
        return sum(self.lengths) - sum(join.used for join in self.joins)


def stitch_in_memory(
    segments: Sequence[Sequence[np.ndarray]], overlaps: Sequence[int], sharp_amount: float = 0.3
) -> list[np.ndarray]:
    """Convenience for tests and short clips: the stitched frames as a list."""
    return list(Stitcher(overlaps, sharp_amount).frames(segments))
