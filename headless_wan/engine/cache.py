"""PipelineCache: the one owner of loaded pipelines (and so of most GPU memory).

One pipeline is resident at a time (one GPU, one task at a time). A task whose `PipelineSpec`
equals the resident one reuses it with no reload; another spec first releases the resident
pipeline (references dropped, `gc`, CUDA cache emptied) and only then loads, so two models never
need to fit together. A load that fails leaves the cache empty and usable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class CacheHit(Generic[T]):
    value: T
    reused: bool
    load_s: float


class PipelineCache(Generic[K, T]):
    def __init__(
        self, free_memory: Callable[[], None], *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._free_memory = free_memory
        self._clock = clock
        self._lock = threading.Lock()
        self._key: K | None = None
        self._value: T | None = None
        self.load_count = 0
        """Loads started since creation (a test asserts that reuse does not add to it)."""

    @property
    def key(self) -> K | None:
        return self._key

    @property
    def current(self) -> T | None:
        return self._value

    def get(self, key: K, load: Callable[[], T]) -> CacheHit[T]:
        """The resident value for `key`, loading it (after releasing another) when needed."""
        with self._lock:
            if self._value is not None and self._key == key:
                return CacheHit(self._value, reused=True, load_s=0.0)
            self._release_locked()
            self.load_count += 1
            started = self._clock()
            try:
                value = load()
            except BaseException:
                # Whatever the failed load allocated is garbage now; free it before reporting.
                self._free_memory()
                raise
            self._key, self._value = key, value
            return CacheHit(value, reused=False, load_s=self._clock() - started)

    def clear(self) -> None:
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        had_value = self._value is not None
        self._key, self._value = None, None
        if had_value:
            self._free_memory()
