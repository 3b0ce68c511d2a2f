"""Guide + mask build time for one travel segment (default 81 frames at 832x480, chained, overlap 10).

    .venv/bin/python benchmarks/travel_guide.py [--quick] [--repeats 10]

Times `build_guide` (grey fill, predecessor tail, end anchor, mask) for a chained segment and for an
independent one (two anchors, no overlap), and the anchor resize (`fit_image`, Lanczos) separately.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="33 frames at 416x240")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--overlap", type=int, default=10)
    args = parser.parse_args()
    frames, width, height = (33, 416, 240) if args.quick else (81, 832, 480)

    import numpy as np
    from PIL import Image

    from headless_wan.handlers import planning
    from headless_wan.media.guide import build_guide, fit_image

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8))
    tail = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(args.overlap)]

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - started)
        return statistics.median(runs) * 1000

    anchor_ms = timed(lambda: fit_image(photo, width, height))
    end = fit_image(photo, width, height)
    chained = planning.guide_layout(frames, args.overlap, chained=True, has_end_image=True)
    independent = planning.guide_layout(frames, 0, chained=False, has_end_image=True)
    chained_ms = timed(lambda: build_guide(chained, width, height, end=end, overlap=tail))
    independent_ms = timed(lambda: build_guide(independent, width, height, start=end, end=end))
    guide = build_guide(chained, width, height, end=end, overlap=tail)
    size_mb = (guide.frames.nbytes + guide.mask.nbytes) / 2**20

    print(f"{frames} frames at {width}x{height} (guide + mask {size_mb:.0f} MiB), median of {args.repeats}")
    print(f"  chained guide+mask (overlap {args.overlap}):  {chained_ms:8.1f} ms")
    print(f"  independent guide+mask (2 anchors):   {independent_ms:8.1f} ms")
    print(f"  anchor 1920x1080 -> {width}x{height} Lanczos: {anchor_ms:8.1f} ms")
    print(f"  chained / independent ratio:          {chained_ms / independent_ms:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
