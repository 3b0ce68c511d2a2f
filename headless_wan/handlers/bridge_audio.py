"""The joined clips' own audio, laid out on the output's timeline (used when a run has no `audio_url`).

Rule (join and edit; inpaint keeps its source's audio whole, its window replacing frames one for one):
- a clip's kept span carries that clip's audio for those frames;
- a generated gap carries the audio of the frames it replaced when it replaced exactly as many as it
  has (replace mode, or an edit portion regenerated at its own length): clip A's removed tail, then clip
  B's removed head; otherwise (insert mode, a portion made longer or shorter) the gap is silent;
- a clip played backwards (`loop_first_clip`) is silent (reversed speech is noise), as is a clip with
  no audio track.
Times come from frame indexes at the rate the clip was read at (the run's fps, or the file's own with
`use_input_video_fps`); every span lasts its frames at the output's fps, so audio never drifts from the
picture, only (with mixed input rates) plays at the clip's own pace, cut or padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from headless_wan.domain.join_params import JoinStitchParams, StitchClip
from headless_wan.media.audio import AudioSpan


def stitch_audio(
    params: JoinStitchParams, paths: Sequence[Path], read_fps: Sequence[float]
) -> list[AudioSpan]:
    """One span per piece of the stitch, in order. `paths[i]` / `read_fps[i]`: clip i's local file and
    the rate its frame indexes count at."""
    spans: list[AudioSpan] = []
    for index, clip in enumerate(params.clips):
        spans.append(_clip_span(clip, paths[index], read_fps[index], clip.start, clip.end, params.fps))
        if index < len(params.gap_offsets):
            spans.extend(_gap_spans(params, index, paths, read_fps))
    return spans


def _clip_span(
    clip: StitchClip, path: Path, read_fps: float, start: int, end: int, out_fps: float
) -> AudioSpan:
    duration = (end - start) / out_fps
    if clip.reversed:
        return AudioSpan(None, 0.0, duration)
    return AudioSpan(path, start / read_fps, duration)


def _gap_spans(
    params: JoinStitchParams, join: int, paths: Sequence[Path], read_fps: Sequence[float]
) -> list[AudioSpan]:
    gap = params.gap_offsets[join][1]
    replaced = params.replaced[join] if join < len(params.replaced) else (0, 0)
    if sum(replaced) != gap:
        return [AudioSpan(None, 0.0, gap / params.fps)]
    taken_a, taken_b = replaced
    a, b = params.clips[join], params.clips[join + 1]
    return [
        _clip_span(a, paths[join], read_fps[join], a.end, a.end + taken_a, params.fps),
        _clip_span(b, paths[join + 1], read_fps[join + 1], b.start - taken_b, b.start, params.fps),
    ]
