"""MP4 writing: exact frame rate, and a crash keeps what was written."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from worldwalk.app.video import VideoWriter, read_video

ROOT = Path(__file__).resolve().parents[2]


def test_frames_and_rate(tmp_path):
    with VideoWriter(tmp_path / "a.mp4", 16, (64, 48)) as w:
        for i in range(20):
            w.write(np.full((48, 64, 3), 10 * i, np.uint8))
    frames, fps = read_video(tmp_path / "a.mp4")
    assert frames.shape == (20, 48, 64, 3) and fps == 16
    assert abs(int(frames[7].mean()) - 70) <= 2


def test_a_crash_keeps_the_recording(tmp_path):
    """The process dies without closing the file: all complete one-second fragments still play."""
    code = textwrap.dedent(f"""
        import os, sys, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from worldwalk.app.video import VideoWriter
        w = VideoWriter({str(tmp_path / "crash.mp4")!r}, 16, (64, 48))
        for i in range(40):
            w.write(np.full((48, 64, 3), 5 * i, np.uint8))
        os._exit(1)
    """)
    subprocess.run([sys.executable, "-c", code], timeout=60)
    frames, fps = read_video(tmp_path / "crash.mp4")
    assert fps == 16 and len(frames) >= 32


@pytest.mark.parametrize("args,msg", [(("x.avi", 16, (64, 48)), "expected a .mp4"),
                                      (("x.mp4", 16, (63, 48)), "even width and height"),
                                      (("nodir/x.mp4", 16, (64, 48)), "no such folder")])
def test_bad_arguments(tmp_path, args, msg):
    with pytest.raises(ValueError, match=msg):
        VideoWriter(tmp_path / args[0], *args[1:])
