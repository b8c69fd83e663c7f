"""Writing walks to H.264 MP4 with PyAV: incrementally, so a crash keeps what was written before it.

PyAV is imported on first use, so the commands that write no video (train, info) run where it is not installed."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def _av():
    try:
        import av
    except ImportError:
        raise ValueError("video: PyAV is not installed; expected it for MP4 files (pip install 'av>=14,<20')") from None
    return av


def require_pyav() -> None:
    """Raise the one-line ValueError when PyAV is missing: a command that will write video checks this before it
    loads or starts a world (which can take half a minute on a machine's first run)."""
    _av()


class VideoWriter:
    """MP4 (H.264, yuv420p) at an exact frame rate; frames go to disk as they come.

    The MP4 is fragmented (a key frame and a fragment every `gop` frames), so if the process dies the file at `path`
    still plays, up to the last complete fragment (at most a second at 16 fps).
    """

    def __init__(self, path: str | Path, fps: int, size_wh: tuple[int, int], crf: int = 18, gop: int | None = None):
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"output: {self.path}: expected a .mp4 file name")
        if not self.path.parent.exists():
            raise ValueError(f"output: {self.path.parent}: no such folder")
        W, H = size_wh
        if W % 2 or H % 2:
            raise ValueError(f"output: frame size {W}x{H}: H.264 yuv420p needs even width and height")
        av = _av()
        self.container = av.open(str(self.path), mode="w",
                                 options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps))
        self.stream.codec_context.gop_size = gop or fps
        self.stream.width, self.stream.height = W, H
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = Fraction(1, fps)
        self.stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency", "sc_threshold": "0"}
        self.frames = 0
        self.size_wh = (W, H)
        self._av = av

    def write(self, frames: np.ndarray) -> None:
        """frames (N, H, W, 3) or (H, W, 3) uint8."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.size_wh[1], self.size_wh[0], 3):
            raise ValueError(f"frames: expected uint8 (N, {self.size_wh[1]}, {self.size_wh[0]}, 3), "
                             f"got {frames.dtype} {frames.shape}")
        for f in frames:
            vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = self.frames
            for packet in self.stream.encode(vf):
                self.container.mux(packet)
            self.frames += 1

    def close(self) -> Path:
        if self.container is None:
            return self.path
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        self.container = None
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """-> (frames (N, H, W, 3) uint8, fps). For tests and tools."""
    with _av().open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return np.stack(frames), float(s.average_rate)
