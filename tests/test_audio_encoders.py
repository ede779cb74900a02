"""The wav2vec2/HuBERT encoders are an optional extra: one clear sentence when it is missing."""

from __future__ import annotations

import builtins
import subprocess
import sys

import pytest

from kmtalk_cli.backbones.audio_encoders import AudioEncoderConfig, build_audio_encoder
from kmtalk_cli.errors import ModelError


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_missing_transformers_is_one_sentence(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "transformers", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(ModelError, match=r'needs the optional .transformers. package.*pip install "kmtalk\[wav2vec2\]"'):
        build_audio_encoder(AudioEncoderConfig(kind=kind, preset="tiny"), 30.0)


def test_mel_encoder_and_the_cli_do_not_need_transformers() -> None:
    """The default models (mel encoders) and `kmtalk --help` work without transformers installed."""
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] == 'transformers': raise ImportError('blocked')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "from kmtalk_cli.backbones.audio_encoders import AudioEncoderConfig, build_audio_encoder\n"
        "build_audio_encoder(AudioEncoderConfig(kind='mel'), 30.0)\n"
        "from typer.testing import CliRunner\n"
        "from kmtalk_cli.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _mel(normalise: str, audio):
    import torch

    torch.manual_seed(0)
    encoder = build_audio_encoder(AudioEncoderConfig(kind="mel", normalise=normalise), 30.0)
    return encoder.log_mel(audio, torch.tensor([audio.shape[1]] * audio.shape[0]))[0]


def test_level_normalisation_ignores_the_gain_and_keeps_the_spectral_tilt() -> None:
    """"bands" removes a voice's brightness with the recording's colour; "level" keeps it, so
    effort can be heard in a recording of unknown gain."""
    import torch

    noise = torch.randn(1, 16_000, generator=torch.Generator().manual_seed(0))
    bright = torch.cat([noise[:, :1], noise[:, 1:] - 0.9 * noise[:, :-1]], dim=1)  # pre-emphasis: more high band
    high_minus_low = lambda mel: float(mel[0, 60:].mean() - mel[0, :20].mean())  # noqa: E731
    for normalise in ("bands", "level"):
        assert torch.allclose(_mel(normalise, noise), _mel(normalise, 5.0 * noise), atol=1e-4)
    assert abs(high_minus_low(_mel("bands", bright)) - high_minus_low(_mel("bands", noise))) < 1e-4
    assert high_minus_low(_mel("level", bright)) - high_minus_low(_mel("level", noise)) > 0.5


def test_unknown_normalisation_is_refused() -> None:
    with pytest.raises(ValueError, match="normalise must be one of bands, level"):
        AudioEncoderConfig.from_dict({"normalise": "loudness"})
