"""Audio loading: every format/rate/channel layout ends up as faithful 16 kHz mono float32.

Fixtures are synthesised per test so the expected 16 kHz signal is known analytically: the
"speech" is a band-limited harmonic tone, so sampling it at 16 kHz directly is the ground truth
that any correct resampler must reproduce.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kmtalk_cli.audio import (
    MIN_DURATION,
    TARGET_RATE,
    Audio,
    from_array,
    load_audio,
    resample,
    write_wav,
)
from kmtalk_cli.errors import AudioError, KmtalkWarning, OutputError

DURATION = 0.6  # seconds; an integer number of samples at every rate below
RATES = (8000, 11025, 16000, 22050, 44100, 48000, 96000)
F0 = 140.0
N_HARMONICS = 20  # highest harmonic 2.8 kHz: below the 4 kHz Nyquist of the lowest rate


def speech_like(rate: int, duration: float = DURATION, peak: float = 0.5) -> np.ndarray:
    """A voiced-speech stand-in: harmonic tone, syllable-rate envelope, fades at both ends.

    The fades keep resampler edge effects out of the comparison.
    """
    t = np.arange(round(rate * duration)) / rate
    tone = sum(np.sin(2 * np.pi * F0 * k * t + k) / k for k in range(1, N_HARMONICS + 1))
    envelope = (0.3 + 0.7 * np.sin(np.pi * 4 * t) ** 2) * np.sin(np.pi * t / duration) ** 2
    x = tone * envelope
    return (peak * x / np.max(np.abs(x))).astype(np.float64)


def multichannel(rate: int, channels: int, duration: float = DURATION) -> np.ndarray:
    """(N, C) channels that differ from each other but average exactly to :func:`speech_like`."""
    base = speech_like(rate, duration)
    if channels == 1:
        return base
    t = np.arange(base.shape[0]) / rate
    other = 0.2 * np.sin(2 * np.pi * 440 * t) * np.sin(np.pi * t / duration) ** 2
    offsets = (np.arange(channels) - (channels - 1) / 2) / channels
    return base[:, None] + other[:, None] * offsets[None, :]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Shape similarity that ignores small gain differences."""
    n = min(a.shape[0], b.shape[0])
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def tone_level_db(x: np.ndarray, rate: int, freq: float) -> float:
    """Amplitude of one frequency component in dB re a unit sine (middle half, away from edges)."""
    x = np.asarray(x, dtype=np.float64)[x.shape[0] // 4 : -x.shape[0] // 4]
    t = np.arange(x.shape[0]) / rate
    amplitude = 2 * abs(np.mean(x * np.exp(-2j * np.pi * freq * t)))
    return 20 * np.log10(amplitude + 1e-12)


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    """Frequency of the strongest FFT bin."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    return float(np.fft.rfftfreq(x.shape[0], 1 / rate)[np.argmax(spectrum)])


def assert_normalised(audio: Audio, expected_duration: float, tolerance: float) -> None:
    """The contract every consumer relies on."""
    assert audio.sample_rate == TARGET_RATE
    assert audio.samples.ndim == 1
    assert audio.samples.dtype == np.float32
    assert abs(audio.duration - expected_duration) <= tolerance


def require(fmt: str, subtype: str) -> None:
    """Skip only when this libsndfile build truly lacks the codec."""
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} here cannot write {fmt}/{subtype}")


SUFFIX = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3"}

LOSSLESS = [
    # every rate, 16-bit stereo WAV
    *[("WAV", "PCM_16", rate, 2) for rate in RATES],
    # every sample format, spread over rates and channel counts
    ("WAV", "PCM_U8", 22050, 1),
    ("WAV", "PCM_24", 44100, 1),
    ("WAV", "PCM_32", 48000, 6),
    ("WAV", "FLOAT", 96000, 6),
    ("WAV", "DOUBLE", 11025, 2),
    ("WAV", "FLOAT", 16000, 1),
    ("FLAC", "PCM_S8", 8000, 2),
    ("FLAC", "PCM_16", 44100, 6),
    ("FLAC", "PCM_24", 96000, 1),
    ("FLAC", "PCM_16", 16000, 1),
]

LOSSY = [
    ("OGG", "VORBIS", 44100, 2),
    ("OGG", "VORBIS", 22050, 6),
    ("OGG", "VORBIS", 8000, 1),
    ("OGG", "OPUS", 48000, 2),
    ("OGG", "OPUS", 16000, 1),
    ("MP3", "MPEG_LAYER_III", 44100, 2),
    ("MP3", "MPEG_LAYER_III", 48000, 1),
    ("MP3", "MPEG_LAYER_III", 22050, 1),
    ("MP3", "MPEG_LAYER_III", 8000, 2),
]


@pytest.mark.parametrize(("fmt", "subtype", "rate", "channels"), LOSSLESS)
def test_lossless_formats_preserve_content(
    tmp_path: Path, fmt: str, subtype: str, rate: int, channels: int
) -> None:
    require(fmt, subtype)
    path = tmp_path / f"speech_{subtype}_{rate}_{channels}{SUFFIX[fmt]}"
    sf.write(path, multichannel(rate, channels), rate, format=fmt, subtype=subtype)

    audio = load_audio(path)

    assert_normalised(audio, DURATION, tolerance=0.001)
    assert audio.source == path
    assert audio.original_rate == rate
    assert audio.original_channels == channels
    expected = speech_like(TARGET_RATE)
    assert correlation(audio.samples, expected) > 0.999
    # mixdown averages (a sum would double the level, picking one channel would change it)
    assert np.std(audio.samples) == pytest.approx(np.std(expected), rel=0.05)


@pytest.mark.parametrize(("fmt", "subtype", "rate", "channels"), LOSSY)
def test_lossy_formats_preserve_content(
    tmp_path: Path, fmt: str, subtype: str, rate: int, channels: int
) -> None:
    require(fmt, subtype)
    suffix = ".opus" if subtype == "OPUS" else SUFFIX[fmt]
    path = tmp_path / f"speech_{subtype}_{rate}_{channels}{suffix}"
    sf.write(path, multichannel(rate, channels), rate, format=fmt, subtype=subtype)

    audio = load_audio(path)

    assert_normalised(audio, DURATION, tolerance=0.01)
    assert audio.original_channels == channels
    assert correlation(audio.samples, speech_like(TARGET_RATE)) > 0.98


def test_mp3_is_supported_by_this_libsndfile() -> None:
    """The pinned soundfile wheels bundle libsndfile >= 1.1, which decodes MP3; fail loudly if not."""
    assert "MP3" in sf.available_formats()


# --- resampling ---------------------------------------------------------------------------


def test_resample_keeps_passband_tone_and_removes_alias() -> None:
    """7 kHz (below the 8 kHz Nyquist) survives; 10 kHz must not fold down to 6 kHz."""
    rate = 48000
    t = np.arange(rate) / rate
    passband = resample(np.sin(2 * np.pi * 7000 * t), rate, TARGET_RATE)
    stopband = resample(np.sin(2 * np.pi * 10000 * t), rate, TARGET_RATE)
    assert tone_level_db(passband, TARGET_RATE, 7000) > -1.0
    middle = stopband[stopband.shape[0] // 4 : -stopband.shape[0] // 4].astype(np.float64)
    rms_db = 20 * np.log10(np.sqrt(np.mean(middle**2)) * np.sqrt(2))
    assert rms_db < -40.0


def test_load_audio_anti_aliases_file(tmp_path: Path) -> None:
    """End to end: a 48 kHz file with 7 kHz and 10 kHz tones keeps only the 7 kHz one."""
    rate = 48000
    t = np.arange(int(rate * 0.5)) / rate
    x = 0.3 * np.sin(2 * np.pi * 7000 * t) + 0.3 * np.sin(2 * np.pi * 10000 * t)
    sf.write(tmp_path / "tones.wav", x, rate, subtype="FLOAT")
    audio = load_audio(tmp_path / "tones.wav")
    assert tone_level_db(audio.samples, TARGET_RATE, 7000) == pytest.approx(20 * np.log10(0.3), abs=1.0)
    assert tone_level_db(audio.samples, TARGET_RATE, 6000) < 20 * np.log10(0.3) - 40


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 96000])
def test_resample_preserves_dominant_frequency(rate: int) -> None:
    t = np.arange(rate) / rate
    out = resample(np.sin(2 * np.pi * 1000 * t), rate, TARGET_RATE)
    assert out.dtype == np.float32
    assert out.shape == (TARGET_RATE,)
    assert dominant_frequency(out, TARGET_RATE) == pytest.approx(1000, abs=2)


def test_resample_same_rate_is_identity_and_float32() -> None:
    x = np.linspace(-1, 1, 1000)
    out = resample(x, TARGET_RATE, TARGET_RATE)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x, atol=1e-7)


def test_resample_rejects_bad_rates() -> None:
    with pytest.raises(AudioError, match="positive"):
        resample(np.zeros(100), 0, TARGET_RATE)


def test_minute_of_audio_is_fast() -> None:
    x = np.random.default_rng(0).uniform(-0.3, 0.3, size=(44100 * 60, 2)).astype(np.float32)
    start = time.perf_counter()
    audio = from_array(x, 44100)
    assert time.perf_counter() - start < 2.0
    assert audio.samples.shape == (TARGET_RATE * 60,)


@pytest.mark.slow
def test_ten_minutes_at_44k_is_fast() -> None:
    x = np.random.default_rng(0).uniform(-0.3, 0.3, size=44100 * 600).astype(np.float32)
    start = time.perf_counter()
    from_array(x, 44100)
    assert time.perf_counter() - start < 3.0


# --- raw PCM ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "subtype", "rate", "channels"),
    [(".raw", "PCM_16", 44100, 2), (".pcm", "PCM_24", 22050, 1), (".raw", "PCM_32", 8000, 1),
     (".pcm", "FLOAT", 48000, 6)],
)
def test_raw_pcm_with_sample_rate(
    tmp_path: Path, suffix: str, subtype: str, rate: int, channels: int
) -> None:
    path = tmp_path / f"speech{suffix}"
    sf.write(path, multichannel(rate, channels), rate, format="RAW", subtype=subtype, endian="LITTLE")
    audio = load_audio(path, sample_rate=rate, channels=channels, raw_format=subtype.lower())
    assert_normalised(audio, DURATION, tolerance=0.001)
    assert audio.original_channels == channels
    assert correlation(audio.samples, speech_like(TARGET_RATE)) > 0.99


def test_unrecognised_file_with_sample_rate_is_read_as_raw(tmp_path: Path) -> None:
    path = tmp_path / "capture.bin"
    sf.write(path, speech_like(16000), 16000, format="RAW", subtype="PCM_16", endian="LITTLE")
    audio = load_audio(path, sample_rate=16000)
    assert correlation(audio.samples, speech_like(TARGET_RATE)) > 0.99


def test_raw_without_sample_rate_says_how_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "speech.raw"
    sf.write(path, speech_like(16000), 16000, format="RAW", subtype="PCM_16")
    with pytest.raises(AudioError, match="--sample-rate") as info:
        load_audio(path)
    assert "speech.raw" in str(info.value)


def test_raw_with_unknown_sample_format(tmp_path: Path) -> None:
    path = tmp_path / "speech.raw"
    sf.write(path, speech_like(16000), 16000, format="RAW", subtype="PCM_16")
    with pytest.raises(AudioError, match="PCM_12.*not supported"):
        load_audio(path, sample_rate=16000, raw_format="PCM_12")


def test_header_rate_wins_over_sample_rate_flag(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    sf.write(path, speech_like(22050), 22050, subtype="PCM_16")
    with pytest.warns(KmtalkWarning, match="ignoring --sample-rate 8000"):
        audio = load_audio(path, sample_rate=8000)
    assert audio.original_rate == 22050


# --- errors -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="nope.wav does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio\n" * 20)
    with pytest.raises(AudioError, match="could not be decoded as audio") as info:
        load_audio(path)
    message = str(info.value)
    assert "notes.wav" in message
    assert "not recognised" in message.lower()


def test_damaged_wav_is_not_read_as_raw(tmp_path: Path) -> None:
    """A broken header is an error even with --sample-rate: guessing would produce noise."""
    path = tmp_path / "broken.wav"
    sf.write(path, speech_like(16000), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioError, match="could not be decoded"):
        load_audio(path, sample_rate=16000)


def test_empty_wav(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="empty.wav is empty"):
        load_audio(path)


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "blip.wav"
    sf.write(path, speech_like(44100, duration=0.1), 44100, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"blip.wav is only 0\.100 s long.*0\.2 s"):
        load_audio(path)


def test_exactly_min_duration_is_accepted() -> None:
    audio = from_array(speech_like(16000, duration=MIN_DURATION), 16000)
    assert audio.duration == pytest.approx(MIN_DURATION)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_wav(tmp_path: Path, bad: float) -> None:
    x = speech_like(48000)
    x[1000] = bad
    path = tmp_path / "damaged.wav"
    sf.write(path, x, 48000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"damaged.wav contains 1 NaN or infinite sample\b"):
        load_audio(path)


@pytest.mark.parametrize(
    ("array", "rate", "pattern"),
    [
        (np.zeros((10, 2, 2)), 16000, "shape"),
        (np.zeros((2, 16000)), 16000, "channels, samples"),
        (np.zeros(16000, dtype=bool), 16000, "bool"),
        (np.zeros(0), 16000, "empty"),
        (np.zeros(16000), 0, "positive"),
        (np.zeros(16000), 16000.5, "positive"),
    ],
)
def test_from_array_rejects_bad_input(array: np.ndarray, rate: int, pattern: str) -> None:
    with pytest.raises(AudioError, match=pattern):
        from_array(array, rate)


def test_error_messages_name_arrays_without_source() -> None:
    with pytest.raises(AudioError, match="^Audio array is only"):
        from_array(np.zeros(100, dtype=np.float32), 16000)


# --- warnings -----------------------------------------------------------------------------


def test_clipped_audio_warns(tmp_path: Path) -> None:
    path = tmp_path / "loud.wav"
    sf.write(path, np.clip(speech_like(44100) * 4, -1, 1), 44100, subtype="PCM_16")
    with pytest.warns(KmtalkWarning, match=r"loud.wav looks clipped: \d+\.\d% of samples"):
        load_audio(path)


@pytest.mark.parametrize("gain", [1e-4, 0.0])
def test_near_silent_audio_warns(tmp_path: Path, gain: float) -> None:
    path = tmp_path / "quiet.wav"
    sf.write(path, speech_like(16000) * gain, 16000, subtype="FLOAT")
    with pytest.warns(KmtalkWarning, match="silent") as record:
        load_audio(path)
    if gain:
        assert "dBFS" in str(record[0].message)


@pytest.mark.parametrize(("peak", "subtype"), [(0.5, "PCM_16"), (1.0, "PCM_16"), (0.05, "FLOAT")])
def test_normal_speech_does_not_warn(tmp_path: Path, peak: float, subtype: str) -> None:
    """Normalised-to-full-scale and quiet-but-fine speech are both normal input."""
    path = tmp_path / "speech.wav"
    sf.write(path, speech_like(44100, peak=peak), 44100, subtype=subtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_audio(path)
    assert [w for w in caught if issubclass(w.category, KmtalkWarning)] == []


# --- arrays, the dataclass and writing -----------------------------------------------------


def test_from_array_scales_integer_pcm() -> None:
    x = (speech_like(16000) * 32767).astype(np.int16)
    audio = from_array(x, 16000)
    np.testing.assert_allclose(audio.samples, speech_like(16000), atol=1e-4)
    with pytest.warns(KmtalkWarning, match="silent"):
        unsigned = from_array(np.full(16000, 128, dtype=np.uint8), 16000)
    assert np.all(unsigned.samples == 0)


def test_from_array_target_rate_and_source() -> None:
    audio = from_array(multichannel(22050, 2), 22050, source=Path("x.wav"), target_rate=8000)
    assert audio.sample_rate == 8000
    assert audio.samples.shape == (int(8000 * DURATION),)
    assert audio.source == Path("x.wav")
    assert (audio.original_rate, audio.original_channels) == (22050, 2)


def test_audio_is_frozen() -> None:
    audio = from_array(speech_like(16000), 16000)
    assert audio.duration == pytest.approx(DURATION)
    with pytest.raises(dataclasses.FrozenInstanceError):
        audio.sample_rate = 8000  # type: ignore[misc]


def test_write_wav_round_trip(tmp_path: Path) -> None:
    audio = from_array(speech_like(16000), 16000)
    path = tmp_path / ".out.part"  # atomic temp names need not end in .wav
    write_wav(audio, path)
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
    back = load_audio(path)
    np.testing.assert_allclose(back.samples, audio.samples, atol=1 / 32768 + 1e-6)


def test_write_wav_clips_instead_of_wrapping(tmp_path: Path) -> None:
    samples = np.full(16000, 1.5, dtype=np.float32)
    samples[::2] = -1.5
    path = tmp_path / "hot.wav"
    write_wav(Audio(samples=samples, sample_rate=16000), path)
    data, _ = sf.read(path, dtype="int16")
    assert data.max() == 32767
    assert data.min() <= -32767


def test_write_wav_to_missing_directory(tmp_path: Path) -> None:
    audio = from_array(speech_like(16000), 16000)
    with pytest.raises(OutputError, match="Could not write audio"):
        write_wav(audio, tmp_path / "missing" / "out.wav")


# --- containers through ffmpeg, bounds, anti-phase stereo -----------------------------------


def _ffmpeg_encode(tmp_path: Path, name: str, args: list[str], *, video: bool = False) -> Path:
    """Encode a speech-like WAV with the bundled ffmpeg into ``name`` (optionally under a video)."""
    import subprocess

    import imageio_ffmpeg

    wav = tmp_path / "source.wav"
    sf.write(wav, speech_like(44100, duration=1.0), 44100, subtype="PCM_16")
    out = tmp_path / name
    inputs = ["-f", "lavfi", "-i", "color=c=black:s=64x64:d=1"] if video else []
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *inputs, "-i", str(wav), *args, str(out)]
    subprocess.run(command, check=True, capture_output=True)
    return out


@pytest.mark.parametrize(
    ("name", "args", "video"),
    [
        ("speech.m4a", ["-c:a", "aac"], False),
        ("talk.mp4", ["-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"], True),
        ("talk.mov", ["-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"], True),
        ("talk.mkv", ["-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "libopus"], True),
    ],
)
def test_containers_decode_through_ffmpeg(tmp_path: Path, name: str, args: list[str], video: bool) -> None:
    path = _ffmpeg_encode(tmp_path, name, args, video=video)
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(path))  # libsndfile alone cannot read it
    audio = load_audio(path)
    assert audio.sample_rate == TARGET_RATE
    assert audio.duration == pytest.approx(1.0, abs=0.06)
    # Lossy codecs add a little delay; compare the shapes after aligning the onsets.
    reference = speech_like(TARGET_RATE, duration=1.0)
    from scipy.signal import correlate

    lags = correlate(audio.samples, reference, mode="full", method="fft")[len(reference) - 1 :][:2000]
    lag = int(np.argmax(lags))
    assert correlation(audio.samples[lag:], reference) > 0.95


def test_video_without_sound_says_so(tmp_path: Path) -> None:
    path = _ffmpeg_encode(tmp_path, "mute.mp4", ["-map", "0:v", "-c:v", "libx264", "-pix_fmt", "yuv420p"], video=True)
    with pytest.raises(AudioError, match="mute.mp4 has no audio track"):
        load_audio(path)


def test_zero_byte_file_is_called_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.m4a"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"blank.m4a is empty \(0 bytes\)"):
        load_audio(path)


@pytest.mark.parametrize("rate", [1, 100, 3999, 1_000_000])
def test_absurd_raw_sample_rate_is_refused_before_reading(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "x.raw"
    path.write_bytes(b"\0\1" * 35_000)
    with pytest.raises(AudioError, match=r"--sample-rate .* outside the range"):
        load_audio(path, sample_rate=rate)


def test_raw_that_would_be_hours_long_is_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    import kmtalk_cli.audio as audio_module

    path = tmp_path / "x.raw"
    path.write_bytes(b"\0\1" * 8000 * 10)  # 10 s at 8 kHz
    monkeypatch.setattr(audio_module, "MAX_DURATION", 5.0)
    monkeypatch.setattr(audio_module.sf, "read", lambda *a, **k: pytest.fail("decoded before the size check"))
    with pytest.raises(AudioError, match=r"would be .* hours .* at most"):
        load_audio(path, sample_rate=8000)


def test_long_header_file_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    import kmtalk_cli.audio as audio_module

    path = tmp_path / "long.wav"
    sf.write(path, speech_like(16000, duration=2.0), 16000)
    monkeypatch.setattr(audio_module, "MAX_DURATION", 1.0)
    monkeypatch.setattr(audio_module.sf, "read", lambda *a, **k: pytest.fail("decoded before the size check"))
    with pytest.raises(AudioError, match="long.wav would be"):
        load_audio(path)


@pytest.mark.parametrize("channels", [0, 65])
def test_raw_channel_count_is_bounded(tmp_path: Path, channels: int) -> None:
    path = tmp_path / "x.raw"
    path.write_bytes(b"\0\1" * 16000)
    with pytest.raises(AudioError, match="--channels"):
        load_audio(path, sample_rate=16000, channels=channels)


def test_anti_phase_stereo_keeps_the_speech(tmp_path: Path) -> None:
    x = speech_like(44100)
    path = tmp_path / "antiphase.wav"
    sf.write(path, np.stack([x, -x], axis=1), 44100, subtype="PCM_16")
    with pytest.warns(KmtalkWarning, match="cancel each other.*channel 1 of 2") as caught:
        audio = load_audio(path)
    assert not any("silent" in str(w.message) for w in caught)
    assert correlation(audio.samples, speech_like(TARGET_RATE)) > 0.99
    assert float(np.max(np.abs(audio.samples))) > 0.4


def test_ordinary_stereo_is_averaged_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", KmtalkWarning)
        audio = from_array(multichannel(48000, 2), 48000)
    assert correlation(audio.samples, speech_like(TARGET_RATE)) > 0.99


def test_write_wav_to_a_file_object() -> None:
    import io

    buffer = io.BytesIO()
    write_wav(Audio(np.full(1600, 2.0, dtype=np.float32), TARGET_RATE), buffer)
    data, rate = sf.read(io.BytesIO(buffer.getvalue()), dtype="int16")
    assert rate == TARGET_RATE and data.max() == 32767
