"""Streaming RGB frames into an H.264 mp4 (with the speech muxed as AAC) through ffmpeg.

ffmpeg is the binary imageio-ffmpeg ships, driven directly rather than through
``imageio_ffmpeg.write_frames`` so that its exit status is checked, its messages are captured
for the error (a library must not print to the user's terminal), and the audio is trimmed to the
video's length: the video always holds exactly the frames written.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np

from ..atomic import atomic_output
from ..errors import RenderError

#: x264 speed/size trade-off: "superfast" leaves the CPU to the renderer; at crf 20 it looks the
#: same as "veryfast" (both ~45 dB PSNR on a clay head) in files about twice the size (~0.7 Mbit/s).
DEFAULT_PRESET = "superfast"
#: Constant-quality factor; ~20 is visually clean for flat-shaded clay.
DEFAULT_CRF = 20
#: AAC is resampled to a rate every player handles (16 kHz AAC trips up some).
AUDIO_RATE = 48000


def ffmpeg_exe() -> str:
    """The path of the ffmpeg binary bundled with imageio-ffmpeg (or the one it was told to use)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # RuntimeError when no binary is found, ImportError if missing
        raise RenderError(f"ffmpeg is not available for video encoding ({exc}).") from None


def fps_fraction(fps: float) -> Fraction:
    """``fps`` as an exact ratio (29.97 → 2997/100) so ffmpeg's timestamps do not drift."""
    return Fraction(fps).limit_denominator(1001 * 1000)


def _last_line(text: str, keep: int = 2) -> str:
    """ffmpeg's last ``keep`` messages as one short clause, without ``[component @ 0x…]`` tags."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", line.strip()).rstrip(".")
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines[-keep:]) if lines else "no message"


def ffmpeg_command(
    path: Path,
    width: int,
    height: int,
    fps: float,
    total_frames: int,
    *,
    audio_wav: Path | None = None,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
) -> list[str]:
    """The ffmpeg argument list: raw RGB24 on stdin → H.264 yuv420p (+ AAC) mp4 at ``path``.

    The audio is trimmed to the video's duration with an *input* ``-t`` rather than
    ``-shortest``, which could instead drop video frames when the speech ends early.
    """
    rate = fps_fraction(fps)
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
        "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
    ]  # fmt: skip
    if audio_wav is not None:
        duration = total_frames * rate.denominator / rate.numerator
        cmd += ["-t", f"{duration:.6f}", "-i", str(audio_wav)]
    cmd += [
        "-map", "0:v:0", "-c:v", "libx264", "-preset", preset, "-crf", str(int(crf)),
        "-pix_fmt", "yuv420p", "-movflags", "+faststart",
    ]  # fmt: skip
    if audio_wav is not None:
        cmd += ["-map", "1:a:0", "-c:a", "aac", "-b:a", "128k", "-ar", str(AUDIO_RATE)]
    cmd += ["-f", "mp4", str(path)]
    return cmd


class VideoWriter:
    """One ffmpeg process encoding raw RGB24 frames from its stdin to ``path``.

    Use it from one thread at a time; :meth:`finish` or :meth:`abort` must end it.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        total_frames: int,
        *,
        audio_wav: Path | None = None,
        preset: str = DEFAULT_PRESET,
        crf: int = DEFAULT_CRF,
    ) -> None:
        if width % 2 or height % 2:
            raise RenderError(f"Video size {width}×{height} must be even in both directions for H.264.")
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.frames = 0
        cmd = ffmpeg_command(
            self.path, self.width, self.height, fps, total_frames, audio_wav=audio_wav, preset=preset, crf=crf
        )
        # ffmpeg's messages go to a file, not a pipe nobody drains (which could deadlock it).
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                # Own session: a Ctrl-C reaches only Python, which then stops ffmpeg itself.
                start_new_session=sys.platform != "win32",
            )
        except OSError as exc:
            self._stderr.close()
            raise RenderError(f"Could not start ffmpeg: {exc}.") from None

    def write(self, frame: np.ndarray) -> None:
        """Send one (H, W, 3) uint8 frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise RenderError(
                f"Frame has shape {frame.shape} {frame.dtype}; expected ({self.height}, {self.width}, 3) uint8."
            )
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except (BrokenPipeError, OSError, ValueError):
            raise RenderError(f"ffmpeg stopped while encoding: {self._reason()}.") from None
        self.frames += 1

    def _reason(self) -> str:
        """ffmpeg's last message, once it has exited (or after a short wait)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        with contextlib.suppress(ValueError, OSError):
            self._stderr.seek(0)
            return _last_line(self._stderr.read().decode("utf-8", "replace"))
        return "no message"

    def finish(self) -> None:
        """Close the stream and wait for ffmpeg; :class:`RenderError` if it did not succeed."""
        proc = self._proc
        try:
            if proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError, OSError):
                    proc.stdin.close()
            code = proc.wait()
            if code != 0:
                raise RenderError(f"ffmpeg failed (exit status {code}): {self._reason()}.")
            if self.frames == 0:
                raise RenderError("No frames were rendered, so no video was written.")
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop ffmpeg at once (if still running) and release its pipes; safe to call twice."""
        proc = self._proc
        if proc.poll() is None:
            proc.kill()
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        proc.wait()
        self._stderr.close()


@contextlib.contextmanager
def open_video(
    out_path: Path,
    width: int,
    height: int,
    fps: float,
    total_frames: int,
    *,
    audio_wav: Path | None = None,
    force: bool = False,
    preset: str = DEFAULT_PRESET,
    crf: int = DEFAULT_CRF,
) -> Iterator[VideoWriter]:
    """Yield a writer whose video appears at ``out_path`` only if the block completes.

    Encoding goes into a temporary sibling file (:func:`kmtalk_cli.atomic.atomic_output`), so an
    error or Ctrl-C leaves neither a partial mp4 nor a damaged existing one.
    """
    if audio_wav is not None and not Path(audio_wav).is_file():
        raise RenderError(f"Audio file {audio_wav} for the video does not exist.")
    with atomic_output(Path(out_path), force=force) as tmp:
        writer = VideoWriter(
            tmp, width, height, fps, total_frames, audio_wav=audio_wav, preset=preset, crf=crf
        )
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.finish()


def has_audio_stream(path: Path) -> bool:
    """Whether ffmpeg sees an audio stream in ``path`` (imageio-ffmpeg ships no ffprobe)."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    return "Audio:" in result.stderr.decode("utf-8", "replace")


