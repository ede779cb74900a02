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
