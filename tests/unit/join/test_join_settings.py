"""Pure tables of the join orchestrator's per-join merge and loop rule, and of the stitch's audio layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_wan.domain.join_params import JoinDetails, JoinStitchParams
from headless_wan.errors import InvalidTaskParams
from headless_wan.handlers.bridge_audio import stitch_audio
from headless_wan.handlers.bridge_planning import JoinSpec
from headless_wan.handlers.join_orchestrator import (
    PlayedClip,
    join_generation,
    join_size,
    join_specs,
    played_clips,
)
from headless_wan.media.audio import AudioSpan


def details(clips: list[str], **fields: object) -> JoinDetails:
    return JoinDetails.model_validate({"clip_list": [{"url": url} for url in clips], **fields})


@pytest.mark.parametrize(
    ("clips", "loop", "played"),
    [
        (["a", "b", "c"], False, [("a", False), ("b", False), ("c", False)]),
        (["a", "a"], False, [("a", False), ("a", False)]),
        (["a"], True, [("a", False), ("a", True)]),
        (["a", "a"], True, [("a", False), ("a", True)]),  # the app sends its one clip twice
    ],
)
def test_played_clips(clips: list[str], loop: bool, played: list[tuple[str, bool]]) -> None:
    assert played_clips(details(clips, loop_first_clip=loop)) == tuple(PlayedClip(*p) for p in played)


@pytest.mark.parametrize(
    ("clips", "needle"),
    [(["a", "b"], r"2 clip\(s\) with 2 distinct"), (["a", "a", "a"], r"3 clip\(s\)"), ([], r"0 clip\(s\)")],
)
def test_loop_of_anything_but_one_clip_is_refused(clips: list[str], needle: str) -> None:
    with pytest.raises(InvalidTaskParams, match=r"clip_list: loop_first_clip loops one clip.*" + needle):
        played_clips(details(clips, loop_first_clip=True))


def test_per_join_overrides_merge_over_the_run() -> None:
    run = details(
        ["a", "b", "c"],
        model="vace_run", num_inference_steps=4, guidance_scale=2.0, seed=3, prompt="run",
        context_frame_count=8, gap_frame_count=21, replace_mode=True, additional_loras={"x": 1, "y": 1},
        per_join_settings=[
            {"model": "vace_b", "num_inference_steps": 9, "guidance_scale": 0, "gap_frame_count": 9,
             "replace_mode": False, "additional_loras": {"y": 0.5, "z": 2}, "resolution": [100, 70]},
        ],
    )  # fmt: skip
    assert join_specs(run, 2) == [JoinSpec(8, 9, False), JoinSpec(8, 21, True)]
    first, second = join_generation(run, 0), join_generation(run, 1)
    # guidance 0 is a value, not "unset"
    assert (first["model"], first["num_inference_steps"], first["guidance_scale"]) == ("vace_b", 9, 0)
    assert first["additional_loras"] == {"x": 1, "y": 0.5, "z": 2}
    assert (second["model"], second["num_inference_steps"], second["guidance_scale"]) == ("vace_run", 4, 2.0)
    assert (first["seed"], first["prompt"]) == (3, "run")
    assert join_size(run, 0, (64, 64)) == (96, 64)  # snapped down to multiples of 16
    assert join_size(run, 1, (64, 64)) == (64, 64)
    with pytest.raises(InvalidTaskParams, match=r"per_join_settings: 1 entries for 0 join"):
        join_specs(run, 0)


def _stitch(
    replaced: list[tuple[int, int]], gaps: list[int], reversed_last: bool = False
) -> JoinStitchParams:
    clips = [
        {"url": "a", "start": 0, "end": 20},
        {"url": "b", "start": 4, "end": 30, "reversed": reversed_last and len(gaps) == 1},
    ]
    return JoinStitchParams.model_validate({
        "clips": clips, "join_task_ids": ["j0"], "gap_offsets": [(4, gaps[0])], "replaced": replaced,
        "width": 64, "height": 64, "fps": 16, "expected_frames": 46,
    })  # fmt: skip


A, B = Path("a.mp4"), Path("b.mp4")


@pytest.mark.parametrize(
    ("params", "read_fps", "spans"),
    [
        # replace mode: the gap took 6 frames from A's end and 4 from B's start: their audio
        (_stitch([(6, 4)], [10]), [16, 16],
         [(A, 0, 20), (A, 20 / 16, 6), (B, 0, 4), (B, 4 / 16, 26)]),
        # insert mode: nothing was replaced, the gap is silent
        (_stitch([(0, 0)], [9]), [16, 16], [(A, 0, 20), (None, 0, 9), (B, 4 / 16, 26)]),
        # a gap longer than what it replaced (an edit portion made longer): silent
        (_stitch([(4, 0)], [9]), [16, 16], [(A, 0, 20), (None, 0, 9), (B, 4 / 16, 26)]),
        # a loop's backwards clip is silent, also where the gap took its frames
        (_stitch([(6, 4)], [10], reversed_last=True), [16, 16],
         [(A, 0, 20), (A, 20 / 16, 6), (None, 0, 4), (None, 0, 26)]),
        # clips read at their own rate (use_input_video_fps): times at that rate, lengths at the output's
        (_stitch([(0, 0)], [9]), [32, 8], [(A, 0, 20), (None, 0, 9), (B, 4 / 8, 26)]),
    ],
)  # fmt: skip
def test_stitch_audio_layout(params: JoinStitchParams, read_fps: list[float], spans: list[tuple]) -> None:
    # (file, start in seconds, frames at the output's 16 fps)
    expected = [AudioSpan(path, start_s, frames / 16) for path, start_s, frames in spans]
    assert stitch_audio(params, [A, B], read_fps) == expected
