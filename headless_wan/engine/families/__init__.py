"""Pipeline families by name (a preset's `family`). Add a family: one module, one line below."""

from __future__ import annotations

from collections.abc import Mapping

from headless_wan.engine.families.base import Family
from headless_wan.engine.families.i2v import I2V_FAMILY
from headless_wan.engine.families.qwen import QWEN_IMAGE_FAMILY
from headless_wan.engine.families.qwen_edit import QWEN_EDIT_FAMILY, QWEN_EDIT_PLUS_FAMILY
from headless_wan.engine.families.t2v import T2V_FAMILY
from headless_wan.engine.families.vace import VACE_FAMILY
from headless_wan.engine.families.zimage import ZIMAGE_FAMILY
from headless_wan.errors import ConfigError

FAMILIES: Mapping[str, Family] = {
    family.name: family
    for family in (
        VACE_FAMILY,
        I2V_FAMILY,
        ZIMAGE_FAMILY,
        QWEN_IMAGE_FAMILY,
        QWEN_EDIT_FAMILY,
        QWEN_EDIT_PLUS_FAMILY,
        T2V_FAMILY,
    )
}


def get_family(name: str) -> Family:
    family = FAMILIES.get(name)
    if family is None:
        raise ConfigError(f"unknown pipeline family {name!r} (known: {sorted(FAMILIES)})")
    return family


__all__ = ["FAMILIES", "Family", "get_family"]
