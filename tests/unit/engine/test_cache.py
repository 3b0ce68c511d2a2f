"""PipelineCache with a fake loader: reuse, switching, failed loads (no torch)."""

from __future__ import annotations

import pytest

from headless_wan.engine.cache import PipelineCache


class Loads:
    def __init__(self) -> None:
        self.frees = 0
        self.built: list[str] = []

    def free(self) -> None:
        self.frees += 1

    def loader(self, key: str):
        def load() -> dict:
            self.built.append(key)
            return {"key": key}

        return load


def test_same_key_reuses_without_reloading() -> None:
    loads = Loads()
    cache: PipelineCache[str, dict] = PipelineCache(loads.free)
    first = cache.get("a", loads.loader("a"))
    second = cache.get("a", loads.loader("a"))
    assert not first.reused and second.reused
    assert second.value is first.value and second.load_s == 0.0
    assert cache.load_count == 1 and loads.built == ["a"]


def test_switching_releases_the_old_value_before_loading() -> None:
    loads = Loads()
    cache: PipelineCache[str, dict] = PipelineCache(loads.free)
    cache.get("a", loads.loader("a"))
    order: list[str] = []

    def load_b() -> dict:
        order.append(f"load with current={cache.current}")
        return {"key": "b"}

    cache.get("b", load_b)
    assert order == ["load with current=None"]  # "a" was dropped first
    assert loads.frees == 1 and cache.key == "b" and cache.load_count == 2


def test_failed_load_leaves_the_cache_empty_and_usable() -> None:
    loads = Loads()
    cache: PipelineCache[str, dict] = PipelineCache(loads.free)
    cache.get("a", loads.loader("a"))

    def broken() -> dict:
        raise OSError("weights missing")

    with pytest.raises(OSError, match="weights missing"):
        cache.get("b", broken)
    assert cache.current is None and cache.key is None
    assert loads.frees == 2  # released "a", then cleaned up after the failure
    hit = cache.get("a", loads.loader("a"))
    assert not hit.reused and hit.value == {"key": "a"}


def test_clear_releases() -> None:
    loads = Loads()
    cache: PipelineCache[str, dict] = PipelineCache(loads.free)
    cache.clear()
    assert loads.frees == 0
    cache.get("a", loads.loader("a"))
    cache.clear()
    assert cache.current is None and loads.frees == 1
