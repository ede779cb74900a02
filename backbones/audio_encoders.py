"""Audio encoders the backbones share: speech (B, N) at 16 kHz → features at the motion frame rate.

* ``mel`` — log-mel spectrogram + a residual dilated 1-D CNN, trained from scratch. Small, fast on
  a CPU, linear in the audio length (so it never needs windows), normalised per utterance so
  loudness does not matter, and exactly padding-invariant (a clip in a batch = the clip alone).
* ``wav2vec2`` / ``hubert`` — the papers' encoders through ``transformers``, from a **local**
  directory (``path``) or, with no path, built from a size preset with random weights (for speed
  measurements and tests). Nothing is ever downloaded. As in FaceFormer, the 50 Hz CNN features
  are resampled to the motion rate *before* the transformer, and the CNN is frozen.

wav2vec2-base's CNN group-normalises over time, so padding in a batch shifts its features a
little (the originals train with batch 1); wav2vec2-large and HuBERT-large use layer norm.
Long audio is encoded by the transformer encoders in overlapping windows (``window_seconds``) whose centres are stitched, so
memory stays bounded and time grows linearly with the length.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError

SAMPLE_RATE = 16000
KINDS = ("mel", "wav2vec2", "hubert")

# Sizes of the papers' encoders, for building them from a config without weights.
PRESETS: dict[str, dict[str, int]] = {
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
    # A toy size for tests: same code path, seconds to build.
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
}


MEL_NORMALISATIONS = ("bands", "level")


@dataclass(frozen=True)
class AudioEncoderConfig:
    kind: str = "mel"
    path: str | None = None  # local transformers model directory (wav2vec2/hubert)
    preset: str = "base"  # size when built without weights
    dim: int = 128  # mel encoder width
    layers: int = 6  # mel encoder residual blocks
    n_mels: int = 80
    dropout: float = 0.1
    freeze_cnn: bool = True
    window_seconds: float = 20.0
    context_seconds: float = 2.0
    #: mel: "bands" subtracts each band's mean over the utterance (and divides by its spread), which
    #: removes the recording's gain and its spectral tilt alike; "level" subtracts one mean over all
    #: bands, so the gain goes and the spectrum's shape (how bright the voice is) stays.
    normalise: str = "bands"

    def __post_init__(self) -> None:  # every way a config is made (from_dict, a --config change) is checked
        if self.normalise not in MEL_NORMALISATIONS:
            raise ValueError(f"audio encoder normalise must be one of {', '.join(MEL_NORMALISATIONS)}, not '{self.normalise}'")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AudioEncoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown audio encoder field(s): {', '.join(unknown)}")
        return cls(**dict(data))


def resample_frames(
    x: Tensor, source_lengths: Tensor, source_rate: float, source_offset: float, frame_lengths: Tensor, fps: float
) -> Tensor:
    """Linearly interpolate (B, S, D) features at ``source_rate`` to (B, max T, D) at ``fps``.

    Source step ``k`` is centred at ``source_offset + k / source_rate`` seconds; motion frame
    ``t`` at ``t / fps`` (VOCASET's convention: frame 0 is time 0). Positions are clamped to
    each item's valid source range, so padding never leaks in.
    """
    total = int(frame_lengths.max())
    t = torch.arange(total, device=x.device, dtype=torch.float32) / fps
    pos = (t[None, :] - source_offset) * source_rate  # (1, T)
    last = (source_lengths.to(torch.float32) - 1).clamp_min(0)[:, None]
    pos = torch.minimum(pos.clamp_min(0).expand(x.shape[0], -1), last)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, last.long())
    w = (pos - lo)[..., None].to(x.dtype)
    gather = lambda idx: torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))  # noqa: E731
    out = gather(lo) * (1 - w) + gather(hi) * w
    return out * frame_mask_f(frame_lengths, total)[..., None].to(out.dtype)


def frame_mask_f(lengths: Tensor, total: int) -> Tensor:
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]


class AudioEncoder(nn.Module):
    """Base: windows long single clips, delegates the rest to :meth:`encode`."""

    out_dim: int
    fps: float
    #: Whether long single clips are encoded in windows (attention is quadratic; convolutions are not).
    windowed: bool = True

    def __init__(self, config: AudioEncoderConfig, fps: float) -> None:
        super().__init__()
        self.config = config
        self.fps = fps

    def encode(self, audio: Tensor, audio_lengths: Tensor, frame_lengths: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, audio: Tensor, audio_lengths: Tensor, frame_lengths: Tensor) -> Tensor:
        window = int(self.config.window_seconds * SAMPLE_RATE)
        if self.windowed and audio.shape[0] == 1 and int(audio_lengths[0]) > window > 0:
            return self._windowed(audio[:, : int(audio_lengths[0])], int(frame_lengths[0]))
        return self.encode(audio, audio_lengths, frame_lengths)

    def _windowed(self, audio: Tensor, n_frames: int) -> Tensor:
        """Encode a long clip in windows of ``window_seconds`` plus ``context_seconds`` each side."""
        sr, fps = SAMPLE_RATE, self.fps
        hop_frames = max(1, int(self.config.window_seconds * fps))
        context = int(self.config.context_seconds * sr)
        pieces = []
        for start in range(0, n_frames, hop_frames):
            stop = min(n_frames, start + hop_frames)
            # Whole frames of context keep frame times aligned inside the window.
            ctx_frames = int(math.floor(context / sr * fps))
            f0 = max(0, start - ctx_frames)
            f1 = min(n_frames, stop + ctx_frames)
            s0 = int(round(f0 / fps * sr))
            s1 = min(audio.shape[1], int(round(f1 / fps * sr)))
            if s1 - s0 < 400:  # a sliver at the end: borrow audio from before it
                s0 = max(0, s1 - 400)
            chunk = audio[:, s0:s1]
            feats = self.encode(
                chunk,
                torch.tensor([chunk.shape[1]], device=audio.device),
                torch.tensor([f1 - f0], device=audio.device),
            )
            pieces.append(feats[:, start - f0 : stop - f0])
        return torch.cat(pieces, dim=1)


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int = SAMPLE_RATE, fmin: float = 20.0, fmax: float = 7600.0) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular filters on the HTK mel scale."""
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    mel_to_hz = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.clip(np.minimum(lower, upper), 0.0, None).astype(np.float32)


class _ResidualBlock(nn.Module):
    def __init__(self, dim: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, padding=dilation, dilation=dilation)
        self.norm = nn.LayerNorm(dim)  # per step, so padding never changes the valid steps
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        h = self.norm(self.conv(x).transpose(1, 2)).transpose(1, 2)
        return (x + self.drop(F.gelu(h))) * valid


class MelEncoder(AudioEncoder):
    """Log-mel (25 ms windows, 10 ms hop) → residual dilated CNN (±0.3 s context) → frames."""

    N_FFT = 400
    HOP = 160
    windowed = False

    def __init__(self, config: AudioEncoderConfig, fps: float) -> None:
        super().__init__(config, fps)
        self.out_dim = config.dim
        self.register_buffer("filters", torch.from_numpy(mel_filterbank(self.N_FFT, config.n_mels)), persistent=False)
        self.register_buffer("window", torch.hann_window(self.N_FFT), persistent=False)
        self.inp = nn.Conv1d(config.n_mels, config.dim, 3, padding=1)
        dilations = [2 ** (i % 5) for i in range(config.layers)]
        self.blocks = nn.ModuleList([_ResidualBlock(config.dim, d, config.dropout) for d in dilations])
        self.out = nn.Linear(config.dim, config.dim)

    def log_mel(self, audio: Tensor, audio_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, N) → (B, n_mels, S) log-mel normalised per utterance over its valid steps (per band or
        over all bands, ``normalise``), and S per item."""
        # Zero padding (not reflection) so a clip padded in a batch gives the same steps as alone.
        padded = F.pad(audio, (self.N_FFT // 2, self.N_FFT // 2))
        spec = torch.stft(padded, self.N_FFT, self.HOP, window=self.window, center=False, return_complex=True)
        power = spec.abs().pow(2)
        mel = torch.log(torch.einsum("mf,bfs->bms", self.filters, power) + 1e-8)
        steps = (audio_lengths // self.HOP + 1).clamp(max=mel.shape[-1])
        valid = frame_mask_f(steps, mel.shape[-1])[:, None, :].to(mel.dtype)
        dims = (-1,) if self.config.normalise == "bands" else (-2, -1)
        count = valid.expand_as(mel).sum(dims, keepdim=True).clamp_min(1.0)
        mean = (mel * valid).sum(dims, keepdim=True) / count
        var = ((mel - mean).pow(2) * valid).sum(dims, keepdim=True) / count
        return (mel - mean) / (var + 1e-5).sqrt() * valid, steps

    def encode(self, audio: Tensor, audio_lengths: Tensor, frame_lengths: Tensor) -> Tensor:
        mel, steps = self.log_mel(audio, audio_lengths)
        valid = frame_mask_f(steps, mel.shape[-1])[:, None, :].to(mel.dtype)
        hidden = self.inp(mel) * valid
        for block in self.blocks:
            hidden = block(hidden, valid)
        hidden = hidden.transpose(1, 2)  # (B, S, D) at 100 Hz
        frames = resample_frames(hidden, steps, SAMPLE_RATE / self.HOP, 0.0, frame_lengths, self.fps)
        return self.out(frames) * frame_mask_f(frame_lengths, frames.shape[1])[..., None].to(frames.dtype)


class TransformersEncoder(AudioEncoder):
    """wav2vec 2.0 or HuBERT: CNN → resample to fps → feature projection → transformer."""

    def __init__(self, config: AudioEncoderConfig, fps: float) -> None:
        super().__init__(config, fps)
        self.model = _load_transformers_model(config)
        self.out_dim = int(self.model.config.hidden_size)
        if config.freeze_cnn:
            for p in self.model.feature_extractor.parameters():
                p.requires_grad_(False)

    def encode(self, audio: Tensor, audio_lengths: Tensor, frame_lengths: Tensor) -> Tensor:
        mask = frame_mask_f(audio_lengths, audio.shape[1]).to(audio.dtype)
        count = mask.sum(1, keepdim=True).clamp_min(1.0)
        mean = (audio * mask).sum(1, keepdim=True) / count
        std = (((audio - mean) ** 2 * mask).sum(1, keepdim=True) / count).sqrt()
        audio = (audio - mean) / (std + 1e-7) * mask  # what Wav2Vec2Processor does
        cnn = self.model.feature_extractor(audio).transpose(1, 2)  # (B, S, 512) at 50 Hz
        steps = ((audio_lengths - 400) // 320 + 1).clamp(min=1, max=cnn.shape[1])
        # CNN step k covers samples [320k, 320k + 400): its centre is 12.5 ms after its start.
        hidden = resample_frames(cnn, steps, 50.0, 0.0125, frame_lengths, self.fps)
        projected = self.model.feature_projection(hidden)
        if isinstance(projected, tuple):  # transformers returns (hidden, normed) since 4.x
            projected = projected[0]
        attention = frame_mask_f(frame_lengths, hidden.shape[1])
        out = self.model.encoder(projected, attention_mask=attention)
        out = out[0] if isinstance(out, tuple) else out.last_hidden_state
        return out * attention[..., None].to(out.dtype)


#: How to get the optional dependency of the wav2vec2/HuBERT encoders.
TRANSFORMERS_HINT = 'pip install "kmtalk[wav2vec2]"'


def require_transformers(kind: str) -> Any:
    """The ``transformers`` module, or one :class:`ModelError` sentence saying how to install it.

    Only wav2vec2/HuBERT encoders need it, and none of the bundled models use them, so it is an
    optional extra rather than a dependency of every install.
    """
    try:
        import transformers
    except ImportError:
        raise ModelError(
            f"This model's {kind} audio encoder needs the optional 'transformers' package, which is not "
            f"installed; install it with `{TRANSFORMERS_HINT}`."
        ) from None
    return transformers


def _load_transformers_model(config: AudioEncoderConfig) -> nn.Module:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    transformers = require_transformers(config.kind)
    model_cls = transformers.HubertModel if config.kind == "hubert" else transformers.Wav2Vec2Model
    config_cls = transformers.HubertConfig if config.kind == "hubert" else transformers.Wav2Vec2Config
    if config.path:
        if not os.path.isdir(config.path):
            raise FileNotFoundError(
                f"{config.kind} model directory {config.path} does not exist (a local transformers model "
                "directory is needed; nothing is downloaded)"
            )
        return model_cls.from_pretrained(config.path, local_files_only=True)
    if config.preset not in PRESETS:
        raise ValueError(f"unknown {config.kind} preset '{config.preset}'; choose from {', '.join(PRESETS)}")
    size = PRESETS[config.preset]
    cfg = config_cls(**size, mask_time_prob=0.0, layerdrop=0.0)
    return model_cls(cfg)


def build_audio_encoder(config: AudioEncoderConfig, fps: float) -> AudioEncoder:
    if config.kind == "mel":
        return MelEncoder(config, fps)
    if config.kind in ("wav2vec2", "hubert"):
        return TransformersEncoder(config, fps)
    raise ValueError(f"unknown audio encoder '{config.kind}'; choose from {', '.join(KINDS)}")
