"""Travel stitch: our streaming crossfade vs a hand-written `ffmpeg` xfade filter graph, and peak memory.

    .venv/bin/python benchmarks/travel_stitch.py [--quick]

1. Speed: S segments of F frames at WxH (default 5 x 81 at 832x480, overlap 10) stitched by
   `stitch_videos` (decode → cosine crossfade + unsharp → one libx264 encode) and by one ffmpeg command
   chaining `xfade=fade` joins with the same encoder settings. Both outputs must have Σ len − Σ overlap
   frames; the times and their ratio are printed.
2. Memory: the stitch of 2, 5 and 10 segments, each in a fresh Python process; its peak RSS (ffmpeg
   children excluded, they run one at a time with fixed buffers) must stay flat as segments are added.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_segment(path: Path, frames: int, width: int, height: int, seed: int) -> None:
    """A moving gradient with noise: cheap to make, not trivially compressible."""
    import numpy as np

    from headless_wan.media.video_io import encode_video

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 24, (height, width, 3), dtype=np.uint8)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]

    def gen():  # type: ignore[no-untyped-def]
        for index in range(frames):
            phase = (index * 4 + seed * 50) % 256
            base = (x * 0.6 + y * 0.3 + phase) % 256
            frame = np.concatenate([base, 255 - base, (base + 85) % 256], axis=2).astype(np.uint8)
            yield frame ^ noise

    encode_video(gen(), path, 16)


def ffmpeg_xfade(paths: list[Path], frames: int, overlap: int, fps: int, output: Path) -> None:
    """One ffmpeg call: [0][1]xfade → [v1]; [v1][2]xfade → [v2] ... with our encoder settings."""
    duration = overlap / fps
    inputs: list[str] = []
    for path in paths:
        inputs += ["-i", str(path)]
    parts, previous, offset = [], "0:v", 0.0
    for index in range(1, len(paths)):
        offset += (frames - overlap) / fps
        label = f"v{index}"
        parts.append(
            f"[{previous}][{index}:v]xfade=transition=fade:duration={duration}:offset={offset}[{label}]"
        )
        previous = label
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs, "-filter_complex", ";".join(parts)]
    args += [
        "-map",
        f"[{previous}]",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-crf",
        "18",
        "-preset",
        "medium",
    ]
    args += ["-r", str(fps), str(output)]
    subprocess.run(args, check=True)


def stitch_once(paths: list[Path], overlap: int, output: Path) -> float:
    from headless_wan.handlers.travel_stitch import stitch_videos

    started = time.perf_counter()
    stitch_videos(paths, [overlap] * (len(paths) - 1), output, fps=16)
    return time.perf_counter() - started


def memory_child(paths: list[str], overlap: int, output: str) -> None:
    """Runs in a fresh interpreter: stitch, then print the peak RSS of this process."""
    import resource

    stitch_once([Path(p) for p in paths], overlap, Path(output))
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure_memory(segment: Path, count: int, overlap: int, folder: Path) -> float:
    paths = [str(segment)] * count  # the same file S times: memory depends on the count, not the content
    code = (
        "import json,sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/benchmarks']; "
        "from travel_stitch import memory_child; memory_child(json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4])"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(REPO),
            json.dumps(paths),
            str(overlap),
            str(folder / f"mem{count}.mp4"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 x 33 frames at 416x240")
    parser.add_argument("--segments", type=int, default=5)
    parser.add_argument("--overlap", type=int, default=10)
    args = parser.parse_args()
    frames, width, height = (33, 416, 240) if args.quick else (81, 832, 480)

    from headless_wan.media.video_io import count_frames

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = [folder / f"seg{i}.mp4" for i in range(args.segments)]
        for index, path in enumerate(paths):
            make_segment(path, frames, width, height, index)
        expected = args.segments * frames - (args.segments - 1) * args.overlap
        print(f"{args.segments} segments x {frames} frames at {width}x{height}, overlap {args.overlap}")

        ours_s = stitch_once(paths, args.overlap, folder / "ours.mp4")
        started = time.perf_counter()
        ffmpeg_xfade(paths, frames, args.overlap, 16, folder / "xfade.mp4")
        xfade_s = time.perf_counter() - started
        ours_n, xfade_n = count_frames(folder / "ours.mp4"), count_frames(folder / "xfade.mp4")
        print(f"{'':28}{'time s':>9}{'frames':>8}")
        print(f"{'stitch_videos (ours)':28}{ours_s:9.2f}{ours_n:8d}")
        print(f"{'ffmpeg xfade filter graph':28}{xfade_s:9.2f}{xfade_n:8d}")
        print(f"ratio ours / ffmpeg: {ours_s / xfade_s:.2f}x   (expected frames {expected})")

        print("\npeak RSS of the stitch process (ffmpeg children excluded)")
        results = {count: measure_memory(paths[0], count, args.overlap, folder) for count in (2, 5, 10)}
        for count, rss in results.items():
            print(f"  {count:2d} segments: {rss:7.1f} MiB   ({rss / results[2]:.2f}x of 2 segments)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
