"""Join clips end to end on the tiny VACE model: wall time and peak RSS of a 5-clip run against a 2-clip run.

    .venv/bin/python benchmarks/join_clips.py [--quick] [--steps 2]

Each run (orchestrator → one `join_clips_segment` per join → `join_final_stitch`, in-process over the
in-memory queue, real FFmpeg) happens in a fresh Python process, whose peak RSS (`ru_maxrss`, FFmpeg
children excluded: they run one at a time with fixed buffers) is printed with the wall time. Default:
clips of 81 frames at 832x480, context 8, gap 53 (the app's defaults); `--quick`: 33 frames at 416x240,
context 4, gap 13. The tiny model caps generation at 65536 pixels, so the joined video is 256x144 (the
clips are decoded at full size and conformed on the way in). Goal: memory stays flat as clips are added (5 clips / 2 clips <= 1.2), because every
stage streams frames and holds at most one bridge.
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
OUTPUT_SIZE = (256, 144)
"""The tiny model's pixel cap is 65536, so the run generates (and outputs) at 256x144: the clips are still
decoded at full size and conformed (scaled, centre-cropped) by FFmpeg on the way in."""
sys.path.insert(0, str(REPO))


def make_clip(path: Path, frames: int, width: int, height: int, seed: int) -> None:
    import numpy as np

    from headless_wan.media.video_io import encode_video

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)

    def frame(index: int) -> np.ndarray:
        out = np.empty((height, width, 3), dtype=np.uint8)
        out[..., 0] = 128 + 100 * np.sin(x / 23.0 + index * 0.1 + seed)
        out[..., 1] = 128 + 100 * np.cos(y / 17.0 - index * 0.1)
        out[..., 2] = (seed * 50 + index * 2) % 256
        return out

    encode_video((frame(i) for i in range(frames)), path, 16)


def run_join(clips: list[str], context: int, gap: int, steps: int, workdir: str) -> dict[str, float]:
    """In a fresh process: the whole join run; returns wall time, output frames and peak RSS."""
    import logging
    import resource

    from headless_wan.domain.tasks import NewTask
    from headless_wan.engine import Engine, EngineConfig
    from headless_wan.handlers.base import CancelToken, TaskContext
    from headless_wan.handlers.join import JoinConfig, join_handlers
    from headless_wan.handlers.travel_inputs import TravelConfig
    from headless_wan.media.video_io import count_frames
    from headless_wan.queue.memory import InMemoryQueue
    from headless_wan.storage.local import LocalStorage
    from headless_wan.worker.context import QueueChildTasks
    from headless_wan.worker.dispatch import validate_params

    class Quiet:
        def report(self, stage: str, step: int, total: int, message: str = "") -> None:
            pass

    root = Path(workdir)
    engine = Engine(EngineConfig(device="cpu", model_override="tiny", lora_cache_dir=root / "loras"))
    handlers = {
        h.task_type: h for h in join_handlers(engine, JoinConfig(TravelConfig(allow_local_inputs=True)))
    }
    queue = InMemoryQueue(LocalStorage(root / "out"))
    details = {
        "clip_list": [{"url": c} for c in clips], "context_frame_count": context, "gap_frame_count": gap,
        "replace_mode": True, "num_inference_steps": steps, "seed": 1, "run_id": "bench",
        "resolution": list(OUTPUT_SIZE),
    }  # fmt: skip
    orchestrator = queue.enqueue(NewTask("join_clips_orchestrator", {"orchestrator_details": details}))
    started = time.perf_counter()
    while (claim := queue.claim("bench", set(handlers))) is not None:
        handler = handlers[claim.task_type]
        work = root / "work" / claim.id
        work.mkdir(parents=True)
        ctx = TaskContext(
            task=claim.task, workdir=work, cancel=CancelToken(), progress=Quiet(),
            children=QueueChildTasks(queue, claim), mark_started=lambda model=None, c=claim: queue.mark_started(c),
            log=logging.LoggerAdapter(logging.getLogger("bench")), lookup=queue,
        )  # fmt: skip
        result = handler.run(ctx, validate_params(handler.params_model, claim.task_type, claim.task.params))
        if result.waiting:
            queue.mark_waiting(claim, result.message or "waiting")
        else:
            queue.complete(claim, result)
    wall = time.perf_counter() - started
    task = queue.get(orchestrator)
    frames = count_frames(Path(task.output_location or "")) if task and task.output_location else 0
    engine.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s": wall, "frames": float(frames), "peak_rss_mb": peak}


def measure(clips: list[Path], context: int, gap: int, steps: int, folder: Path) -> dict[str, float]:
    code = (
        "import json,sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/benchmarks']; "
        "from join_clips import run_join; "
        "print(json.dumps(run_join(json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), "
        "int(sys.argv[5]), sys.argv[6])))"
    )
    work = folder / f"run{len(clips)}"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO), json.dumps([str(c) for c in clips]),
         str(context), str(gap), str(steps), str(work)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the {len(clips)}-clip run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="33 frames at 416x240, context 4, gap 13")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    frames, width, height, context, gap = (33, 416, 240, 4, 13) if args.quick else (81, 832, 480, 8, 53)

    from headless_wan.handlers.bridge_planning import JoinSpec, plan_chain

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = [folder / f"clip{i}.mp4" for i in range(5)]
        for index, path in enumerate(clips):
            make_clip(path, frames, width, height, index)
        print(
            f"clips of {frames} frames at {width}x{height}, context {context}, gap {gap}, {args.steps} steps"
        )
        print(f"{'':10}{'wall s':>9}{'frames':>8}{'expected':>10}{'peak RSS MiB':>14}")
        results = {}
        for count in (2, 5):
            result = measure(clips[:count], context, gap, args.steps, folder)
            expected = plan_chain(
                [frames] * count, [JoinSpec(context, gap, True)] * (count - 1)
            ).output_frames
            results[count] = result
            print(
                f"{count} clips {result['wall_s']:9.1f}{int(result['frames']):8d}{expected:10d}"
                f"{result['peak_rss_mb']:14.1f}"
            )
        ratio = results[5]["peak_rss_mb"] / results[2]["peak_rss_mb"]
        print(f"peak RSS 5 clips / 2 clips: {ratio:.2f}x (goal <= 1.2)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
