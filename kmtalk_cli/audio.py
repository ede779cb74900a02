"""Speech input: read any audio file or video's sound track and hand the models 16 kHz mono float32.

Every backbone (FaceFormer, CodeTalker, SelfTalk) consumes wav2vec 2.0 features, which expect
16 kHz mono, so all audio is normalised here once. libsndfile reads WAV, FLAC, OGG, MP3 and
AIFF; anything else (M4A/AAC, the audio track of .mp4/.mov/.mkv) is decoded by the ffmpeg that
imageio-ffmpeg ships. Problems a user can fix (missing or empty file, not audio, too short or
absurdly long, NaN samples) become one-sentence :class:`AudioError`s naming the file, raised
before anything large is allocated; problems that only degrade the result (clipping,
near-silence, channels that cancel in a downmix) become :class:`KmtalkWarning`s.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from .errors import AudioError, KmtalkWarning, OutputError

#: The rate wav2vec 2.0 was trained on; every backbone expects it.
TARGET_RATE = 16_000
#: Shorter clips give the audio encoder too few frames to produce a single animation frame.
MIN_DURATION = 0.2  # seconds

#: Source sample rates accepted (Hz): below 4 kHz nothing of speech is left; above 768 kHz
#: is no recording format, and a typo there (or ``--sample-rate 1`` on raw PCM) would make a
#: small file decode to days of audio.
MIN_RATE = 4_000
MAX_RATE = 768_000
#: Longest audio accepted (seconds); longer input is refused before it is decoded.
MAX_DURATION = 3 * 3600.0
#: Largest decoded size accepted (float32 samples over all channels), checked before decoding.
MAX_DECODED_BYTES = 4 << 30
#: Most channels a raw PCM file may be declared to have.
MAX_CHANNELS = 64
#: A downmix this far (dB) below the mean channel level means the channels cancel each other.
CANCEL_DB = -12.0
#: Seconds an ffmpeg decode may take before it is stopped (hours of audio decode in seconds).
FFMPEG_TIMEOUT = 600.0

#: Suffixes treated as headerless PCM without asking libsndfile to guess.
RAW_SUFFIXES = frozenset({".raw", ".pcm"})
#: A sample this close to full scale is counted as clipped.
CLIP_LEVEL = 0.999
#: Warn about clipping above this share of samples; a few peaks at full scale are normal.
CLIP_SHARE = 0.001
#: RMS below this is too quiet for the models to find speech in.
SILENCE_DBFS = -60.0

# libsndfile's code for "Format not recognised" (SF_ERR_UNRECOGNISED_FORMAT): only this error
# means "no header", so only it may fall back to raw PCM; a damaged WAV must still be reported.
_SF_ERR_UNRECOGNISED_FORMAT = 1


@dataclass(frozen=True, eq=False)
class Audio:
    """Mono float32 samples plus where they came from (for messages and video muxing).

    ``eq=False`` because comparing or hashing numpy arrays field by field is ill-defined.
    """

    samples: np.ndarray
    sample_rate: int
    source: Path | None = None
    original_rate: int | None = None
    original_channels: int | None = None

    @property
    def duration(self) -> float:
        """Length in seconds, from the sample count so it is exact."""
        return self.samples.shape[0] / self.sample_rate


def _describe(source: Path | None) -> str:
    """Name the input in messages so users with many files know which one failed."""
    return f"Audio file {source}" if source is not None else "Audio array"


def _check_rate(rate: object, what: str) -> int:
    """Reject rates that would make resampling meaningless, with a message, not a scipy traceback."""
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioError(f"{what} must be a positive whole number of Hz, got {rate!r}.")
    return int(rate)


def _check_source_rate(rate: object, what: str) -> int:
    """A recording's rate: a positive whole number within :data:`MIN_RATE`-:data:`MAX_RATE`."""
    rate = _check_rate(rate, what)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"{what} {rate} Hz is outside the range of audio recordings ({MIN_RATE}-{MAX_RATE} Hz)."
        )
    return rate


def _check_size(name: str, frames: int, rate: int, channels: int) -> None:
    """Refuse audio too long or too large to decode, before any sample is allocated."""
    duration = frames / rate
    if duration > MAX_DURATION:
        raise AudioError(
            f"{name} would be {duration / 3600:.1f} hours of audio at {rate} Hz; at most "
            f"{MAX_DURATION / 3600:g} hours are accepted (split it, or check the sample rate)."
        )
    size = frames * channels * 4
    if size > MAX_DECODED_BYTES:
        raise AudioError(
            f"{name} would take {size / 2**30:.1f} GiB decoded ({channels} channels at {rate} Hz); "
            f"at most {MAX_DECODED_BYTES / 2**30:g} GiB are accepted (downmix or resample it first)."
        )


def _to_float(samples: np.ndarray, name: str) -> np.ndarray:
    """Bring numeric samples to float32 in nominal [-1, 1]; integer PCM is scaled by its range."""
    kind = samples.dtype.kind
    if kind == "f":
        return samples.astype(np.float32, copy=False)
    if kind == "i":
        scale = float(2 ** (samples.dtype.itemsize * 8 - 1))
        return (samples.astype(np.float64) / scale).astype(np.float32)
    if kind == "u":
        mid = float(2 ** (samples.dtype.itemsize * 8 - 1))
        return ((samples.astype(np.float64) - mid) / mid).astype(np.float32)
    raise AudioError(f"{name} holds {samples.dtype} values; expected numeric audio samples.")


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling along axis 0, float32 out.

    Polyphase filtering (rather than FFT resampling) is fast on minutes of audio and its
    Kaiser-windowed low-pass removes content above the new Nyquist instead of aliasing it.
    """
    from_rate = _check_rate(from_rate, "The source sample rate")
    to_rate = _check_rate(to_rate, "The target sample rate")
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples
    g = math.gcd(from_rate, to_rate)
    from scipy.signal import resample_poly  # imported here: scipy.signal costs ~1 s to import

    out = resample_poly(samples, to_rate // g, from_rate // g, axis=0)
    return np.asarray(out, dtype=np.float32)


def _warn_levels(data: np.ndarray, mono: np.ndarray, name: str) -> None:
    """Warn about input the models will animate poorly, without stopping the run."""
    clipped = int(np.count_nonzero(np.abs(data) >= CLIP_LEVEL))
    share = clipped / data.size
    if share > CLIP_SHARE:
        warnings.warn(
            f"{name} looks clipped: {share:.1%} of samples are at full scale; "
            "distortion may make the lip motion less accurate.",
            KmtalkWarning,
            stacklevel=3,
        )
    peak = float(np.max(np.abs(mono)))
    rms = math.sqrt(float(np.mean(np.square(mono, dtype=np.float64))))
    if peak == 0.0:
        warnings.warn(
            f"{name} is completely silent (all samples are zero); the face will barely move.",
            KmtalkWarning,
            stacklevel=3,
        )
    elif 20.0 * math.log10(rms) < SILENCE_DBFS:
        warnings.warn(
            f"{name} is nearly silent (RMS {20.0 * math.log10(rms):.1f} dBFS, "
            f"peak {20.0 * math.log10(peak):.1f} dBFS); the face will barely move.",
            KmtalkWarning,
            stacklevel=3,
        )


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))


def downmix(data: np.ndarray, name: str = "Audio array") -> np.ndarray:
    """(N, C) → (N,): the channel mean, unless the channels cancel each other in it.

    A recording with one channel inverted (left = −right, a wiring or export mistake) sums to
    near silence, which would animate a still face. When the mean is :data:`CANCEL_DB` below the
    channels' own level, the first channel about as loud as the loudest is taken instead, and a
    warning says so.
    """
    mono = data.mean(axis=1, dtype=np.float32)
    levels = [_rms(data[:, c]) for c in range(data.shape[1])]
    loud = max(levels)
    if loud > 10 ** (SILENCE_DBFS / 20) and _rms(mono) < loud * 10 ** (CANCEL_DB / 20):
        channel = next(c for c, level in enumerate(levels) if level >= 0.9 * loud)  # the first loud one
        warnings.warn(
            f"{name}'s channels cancel each other when mixed down (one is the inverse of "
            f"another, out of phase); using channel {channel + 1} of {data.shape[1]} only.",
            KmtalkWarning,
            stacklevel=3,
        )
        return np.ascontiguousarray(data[:, channel], dtype=np.float32)
    return mono


def from_array(
    samples: np.ndarray,
    sample_rate: int,
    *,
    source: Path | None = None,
    target_rate: int = TARGET_RATE,
) -> Audio:
    """Validate, mix down and resample in-memory audio, (N,) or (N, C).

    This is the single place every check lives, so files and synthetic arrays are held to the
    same rules. Integer arrays are treated as PCM and scaled to [-1, 1].
    """
    name = _describe(source)
    sample_rate = _check_source_rate(sample_rate, f"{name}'s sample rate")
    target_rate = _check_rate(target_rate, "The target sample rate")
    data = np.asarray(samples)
    if data.ndim not in (1, 2):
        raise AudioError(f"{name} has shape {data.shape}; expected (samples,) or (samples, channels).")
    if data.shape[0] == 0 or data.size == 0:
        raise AudioError(f"{name} is empty (it contains no samples).")
    if data.ndim == 2 and data.shape[1] > data.shape[0]:
        raise AudioError(
            f"{name} has shape {data.shape}, which looks like (channels, samples); "
            "pass (samples, channels)."
        )
    _check_size(name, data.shape[0], sample_rate, 1 if data.ndim == 1 else data.shape[1])
    data = _to_float(data, name)
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise AudioError(
            f"{name} contains {bad} NaN or infinite sample{'s' if bad != 1 else ''} "
            "(a damaged float recording); clean or re-export it."
        )
    frames = data.shape[0]
    duration = frames / sample_rate
    if duration < MIN_DURATION:
        raise AudioError(
            f"{name} is only {duration:.3f} s long; at least {MIN_DURATION} s of speech is needed."
        )
    channels = 1 if data.ndim == 1 else data.shape[1]
    mono = data if data.ndim == 1 else downmix(data, name)
    _warn_levels(data, mono, name)
    mono = np.ascontiguousarray(resample(mono, sample_rate, target_rate))
    return Audio(
        samples=mono,
        sample_rate=target_rate,
        source=source,
        original_rate=sample_rate,
        original_channels=channels,
    )


def _libsndfile_reason(exc: BaseException) -> str:
    """libsndfile's own short reason, without the path soundfile prepends (we name the file)."""
    reason = getattr(exc, "error_string", None) or str(exc)
    return str(reason).strip().rstrip(".")


#: Bytes per sample of libsndfile's raw subtypes; anything unlisted is taken as 4.
_RAW_WIDTH = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "DOUBLE": 8}


def _read_raw(path: Path, sample_rate: int, channels: int, raw_format: str) -> np.ndarray:
    """Read headerless little-endian PCM, the format some recorders and telephony tools emit."""
    width = _RAW_WIDTH.get(raw_format, 4)
    _check_size(f"Audio file {path}", path.stat().st_size // (width * channels), sample_rate, channels)
    try:
        data, _ = sf.read(
            path,
            dtype="float32",
            always_2d=True,
            samplerate=sample_rate,
            channels=channels,
            format="RAW",
            subtype=raw_format,
            endian="LITTLE",
        )
    except (sf.SoundFileError, RuntimeError) as exc:
        raise AudioError(
            f"Audio file {path} could not be decoded as raw {raw_format} PCM "
            f"({_libsndfile_reason(exc)})."
        ) from None
    return data


def _supported_formats() -> str:
    """List what this build can decode, so the error tells users what to convert to."""
    available = sf.available_formats()
    known = (
        ("WAV", "WAV"), ("FLAC", "FLAC"), ("OGG", "OGG/Vorbis/Opus"), ("MP3", "MP3"), ("AIFF", "AIFF")
    )
    names = [label for key, label in known if key in available]
    if ffmpeg_executable() is not None:
        names.append("anything ffmpeg decodes (M4A/AAC, the sound of MP4/MOV/MKV videos)")
    return ", ".join(names)


def ffmpeg_executable() -> str | None:
    """The ffmpeg executable shipped with imageio-ffmpeg (or ``$IMAGEIO_FFMPEG_EXE``), if any."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError, OSError):
        return None


def _ffmpeg_reason(stderr: str) -> str:
    """The reason ffmpeg gave, in a few words (its last error line without the ``[x @ 0x…]`` prefix)."""
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", line).strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line and not line.startswith("Conversion failed")]
    return lines[-1].rstrip(".") if lines else "no audio stream found"


def decode_with_ffmpeg(path: Path, libsndfile_reason: str = "") -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any container ffmpeg knows to float32 (N, C) and its rate.

    ffmpeg writes a float WAV to a temporary file (its header carries rate and channels, which a
    raw pipe would lose); the length is capped at :data:`MAX_DURATION` plus one second so an
    endless or absurd stream is refused after a bounded amount of work. ``libsndfile_reason``
    goes into the error message when ffmpeg cannot decode it either.
    """
    exe = ffmpeg_executable()
    if exe is None:
        raise AudioError(f"Audio file {path} is not a format libsndfile reads, and ffmpeg (imageio-ffmpeg) is not installed.")
    with tempfile.TemporaryDirectory(prefix="kmtalk-decode-") as scratch:
        wav = Path(scratch) / "decoded.wav"
        command = [
            exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
            "-map", "0:a:0", "-vn", "-sn", "-dn", "-t", f"{MAX_DURATION + 1:.0f}",
            "-c:a", "pcm_f32le", "-rf64", "auto", "-f", "wav", str(wav),
        ]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                  timeout=FFMPEG_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise AudioError(f"Audio file {path} took over {FFMPEG_TIMEOUT:.0f} s to decode with ffmpeg.") from None
        except OSError as exc:
            raise AudioError(f"ffmpeg could not be run to decode {path} ({exc.strerror}).") from None
        if "matches no streams" in proc.stderr:
            raise AudioError(f"{path} has no audio track (a video or container without sound).")
        if proc.returncode != 0 or not wav.is_file() or wav.stat().st_size == 0:
            raise AudioError(
                f"Audio file {path} could not be decoded as audio "
                f"({'libsndfile: ' + libsndfile_reason + '; ' if libsndfile_reason else ''}ffmpeg: {_ffmpeg_reason(proc.stderr)}); "
                f"supported formats are {_supported_formats()}, or raw PCM with --sample-rate."
            )
        info = sf.info(str(wav))
        _check_size(f"Audio file {path}", info.frames, info.samplerate, info.channels)
        data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    return data, int(rate)


def check_raw_options(sample_rate: int | None, channels: int, raw_format: str) -> tuple[int | None, int, str]:
    """Validate the options that describe headerless PCM; return them normalised."""
    if sample_rate is not None:
        sample_rate = _check_source_rate(sample_rate, "--sample-rate")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"--channels must be a whole number from 1 to {MAX_CHANNELS}, got {channels!r}.")
    raw_format = str(raw_format).upper()
    if raw_format not in sf.available_subtypes("RAW"):
        common = (s for s in sf.available_subtypes("RAW") if s.startswith(("PCM", "FLOAT", "DOUBLE")))
        choices = ", ".join(sorted(common))
        raise AudioError(f"Raw sample format {raw_format!r} is not supported; use one of {choices}.")
    return sample_rate, int(channels), raw_format


def load_audio(
    path: str | Path,
    *,
    sample_rate: int | None = None,
    channels: int = 1,
    raw_format: str = "PCM_16",
    target_rate: int = TARGET_RATE,
) -> Audio:
    """Read an audio file or a video's sound track (any rate, channels or sample format) as 16 kHz mono float32.

    ``sample_rate``, ``channels`` and ``raw_format`` describe headerless PCM (``.raw``/``.pcm``,
    or, when ``sample_rate`` is given, any file libsndfile cannot identify); files with a header
    ignore them. Without ``sample_rate``, what libsndfile cannot identify goes to ffmpeg.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"Audio file {path} does not exist.")
    if path.is_dir():
        raise AudioError(f"Audio file {path} is a directory, not an audio file.")
    sample_rate, channels, raw_format = check_raw_options(sample_rate, channels, raw_format)
    if path.stat().st_size == 0:
        raise AudioError(f"Audio file {path} is empty (0 bytes).")

    if path.suffix.lower() in RAW_SUFFIXES:
        if sample_rate is None:
            raise AudioError(
                f"Audio file {path} is headerless raw PCM; pass --sample-rate so it can be read "
                "(read as little-endian 16-bit mono unless told otherwise)."
            )
        data = _read_raw(path, sample_rate, channels, raw_format)
        return from_array(data, sample_rate, source=path, target_rate=target_rate)

    try:
        info = sf.info(str(path))
        _check_size(f"Audio file {path}", info.frames, max(1, int(info.samplerate)), info.channels)
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        code = getattr(exc, "code", None)
        if code != _SF_ERR_UNRECOGNISED_FORMAT:
            raise AudioError(
                f"Audio file {path} could not be decoded as audio ({_libsndfile_reason(exc)}); "
                f"supported formats are {_supported_formats()}, or raw PCM with --sample-rate."
            ) from None
        if sample_rate is not None:
            data = _read_raw(path, sample_rate, channels, raw_format)
            return from_array(data, sample_rate, source=path, target_rate=target_rate)
        data, file_rate = decode_with_ffmpeg(path, _libsndfile_reason(exc))
    if sample_rate is not None and sample_rate != file_rate:
        warnings.warn(
            f"Audio file {path} declares {file_rate} Hz in its header; "
            f"ignoring --sample-rate {sample_rate}.",
            KmtalkWarning,
            stacklevel=2,
        )
    return from_array(data, int(file_rate), source=path, target_rate=target_rate)


def write_wav(audio: Audio, target: Path | str | BinaryIO) -> None:
    """Write 16-bit PCM WAV to a path or a binary file object; the caller handles atomicity.

    The one WAV writer: muxing into videos, the viewer's embedded sound and MFA's corpus all
    use it. Samples are clipped to [-1, 1] first because libsndfile's float-to-int conversion
    can wrap around on overshoots, turning a loud peak into a loud click.
    """
    samples = np.clip(np.asarray(audio.samples, dtype=np.float32), -1.0, 1.0)
    where = target if hasattr(target, "write") else Path(target)
    try:
        sf.write(where, samples, int(audio.sample_rate), subtype="PCM_16", format="WAV")
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise OutputError(f"Could not write audio to {target} ({_libsndfile_reason(exc)}).") from None
