"""Speech input: read any common audio file and hand the models 16 kHz mono float32.

Every backbone (FaceFormer, CodeTalker, SelfTalk) consumes wav2vec 2.0 features, which expect
16 kHz mono, so all audio is normalised here once. Problems a user can fix (missing file, not
audio, too short, NaN samples) become one-sentence :class:`AudioError`s naming the file; problems
that only degrade the result (clipping, near-silence) become :class:`KmtalkWarning`s.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import AudioError, KmtalkWarning, OutputError

#: The rate wav2vec 2.0 was trained on; every backbone expects it.
TARGET_RATE = 16_000
#: Shorter clips give the audio encoder too few frames to produce a single animation frame.
MIN_DURATION = 0.2  # seconds

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
    sample_rate = _check_rate(sample_rate, f"{name}'s sample rate")
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
    mono = data if data.ndim == 1 else data.mean(axis=1, dtype=np.float32)
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


def _read_raw(path: Path, sample_rate: int, channels: int, raw_format: str) -> np.ndarray:
    """Read headerless little-endian PCM, the format some recorders and telephony tools emit."""
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
    """List what this libsndfile build can decode, so the error tells users what to convert to."""
    available = sf.available_formats()
    known = (
        ("WAV", "WAV"), ("FLAC", "FLAC"), ("OGG", "OGG/Vorbis/Opus"), ("MP3", "MP3"), ("AIFF", "AIFF")
    )
    names = [label for key, label in known if key in available]
    return ", ".join(names)


def load_audio(
    path: str | Path,
    *,
    sample_rate: int | None = None,
    channels: int = 1,
    raw_format: str = "PCM_16",
    target_rate: int = TARGET_RATE,
) -> Audio:
    """Read an audio file (any rate, channel count or sample format) as 16 kHz mono float32.

    ``sample_rate``, ``channels`` and ``raw_format`` describe headerless PCM (``.raw``/``.pcm``,
    or any file libsndfile cannot identify); files with a header ignore them.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"Audio file {path} does not exist.")
    if path.is_dir():
        raise AudioError(f"Audio file {path} is a directory, not an audio file.")
    if sample_rate is not None:
        sample_rate = _check_rate(sample_rate, "--sample-rate")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise AudioError(f"--channels must be a positive whole number, got {channels!r}.")
    raw_format = str(raw_format).upper()
    if raw_format not in sf.available_subtypes("RAW"):
        common = (s for s in sf.available_subtypes("RAW") if s.startswith(("PCM", "FLOAT", "DOUBLE")))
        choices = ", ".join(sorted(common))
        raise AudioError(f"Raw sample format {raw_format!r} is not supported; use one of {choices}.")

    if path.suffix.lower() in RAW_SUFFIXES:
        if sample_rate is None:
            raise AudioError(
                f"Audio file {path} is headerless raw PCM; pass --sample-rate so it can be read "
                "(read as little-endian 16-bit mono unless told otherwise)."
            )
        data = _read_raw(path, sample_rate, channels, raw_format)
        return from_array(data, sample_rate, source=path, target_rate=target_rate)

    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        code = getattr(exc, "code", None)
        if sample_rate is not None and code == _SF_ERR_UNRECOGNISED_FORMAT:
            data = _read_raw(path, sample_rate, channels, raw_format)
            return from_array(data, sample_rate, source=path, target_rate=target_rate)
        raise AudioError(
            f"Audio file {path} could not be decoded as audio ({_libsndfile_reason(exc)}); "
            f"supported formats are {_supported_formats()}, or raw PCM with --sample-rate."
        ) from None
    if sample_rate is not None and sample_rate != file_rate:
        warnings.warn(
            f"Audio file {path} declares {file_rate} Hz in its header; "
            f"ignoring --sample-rate {sample_rate}.",
            KmtalkWarning,
            stacklevel=2,
        )
    return from_array(data, int(file_rate), source=path, target_rate=target_rate)


def write_wav(audio: Audio, path: Path) -> None:
    """Write 16-bit PCM WAV, the format every muxer accepts; the caller handles atomicity.

    Samples are clipped to [-1, 1] first because libsndfile's float-to-int conversion can
    wrap around on overshoots, turning a loud peak into a loud click.
    """
    samples = np.clip(np.asarray(audio.samples, dtype=np.float32), -1.0, 1.0)
    try:
        sf.write(Path(path), samples, int(audio.sample_rate), subtype="PCM_16", format="WAV")
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise OutputError(f"Could not write audio to {path} ({_libsndfile_reason(exc)}).") from None
