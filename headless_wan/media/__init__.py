"""Media I/O: FFmpeg encode/decode of RGB frames, images, and downloads of task inputs.

Modules here depend only on `headless_wan.errors`/`headless_wan.domain`, numpy, PIL, httpx and the ffmpeg/ffprobe
binaries; never on torch, the engine, the queue or the worker. Import submodules directly
(`from headless_wan.media.video_io import encode_video`); this package imports nothing on its own.
"""
