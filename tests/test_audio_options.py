"""The shared audio options: every command that reads speech takes them, and they reach the decoder."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from kmtalk_cli.alignment import read_json
from kmtalk_cli.alignment.espeak import synthesize
from kmtalk_cli.cli import app

runner = CliRunner()
SENTENCE = "the big brown dog sat on a warm mat"
AUDIO_COMMANDS = ("align", "animate", "keymotions", "complete", "render", "view")


@pytest.fixture(scope="module")
def raw_stereo(tmp_path_factory):
    """The sentence as headerless 24-bit stereo PCM at 22,050 Hz, with its transcript beside it."""
    folder = tmp_path_factory.mktemp("raw")
    speech = synthesize(SENTENCE)
    stereo = np.stack([speech.samples, speech.samples], axis=1)
    path = folder / "dog.pcm"
    sf.write(path, stereo, speech.sample_rate, format="RAW", subtype="PCM_24", endian="LITTLE")
    (folder / "dog.txt").write_text(SENTENCE + "\n", encoding="utf-8")
    return path, speech.sample_rate


@pytest.mark.parametrize("name", AUDIO_COMMANDS)
def test_every_audio_command_takes_the_same_options(name: str) -> None:
    command = typer.main.get_command(app).commands[name]
    options = {opt: param for param in command.params for opt in getattr(param, "opts", ())}
    for flag in ("--sample-rate", "--channels", "--raw-format"):
        assert flag in options, f"{name} lacks {flag}"
    assert options["--channels"].default == 1
    assert options["--raw-format"].default == "PCM_16"


def test_align_reads_raw_stereo_24_bit(raw_stereo, tmp_path) -> None:
    path, rate = raw_stereo
    out = tmp_path / "dog.json"
    result = runner.invoke(app, ["align", str(path), "--sample-rate", str(rate), "--channels", "2",
                                 "--raw-format", "pcm_24", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    alignment = read_json(out)
    assert alignment.method == "forced"
    assert [w.label for w in alignment.words] == SENTENCE.split()


def test_animate_reads_raw_with_the_options(raw_stereo, tmp_path) -> None:
    path, rate = raw_stereo
    out = tmp_path / "dog.npy"
    result = runner.invoke(app, ["animate", str(path), "--backbone", "rig", "--sample-rate", str(rate),
                                 "--channels", "2", "--raw-format", "PCM_24", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    duration = (path.stat().st_size / 6) / rate
    assert np.load(out).shape[0] == pytest.approx(duration * 30, abs=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample-rate", "1"], "outside the range"),
        (["--sample-rate", "16000", "--channels", "0"], "--channels"),
        (["--sample-rate", "16000", "--raw-format", "PCM_13"], "PCM_13"),
    ],
)
def test_bad_audio_options_are_one_line(tmp_path, args, message) -> None:
    path = tmp_path / "x.raw"
    path.write_bytes(b"\0\1" * 35_000)
    result = runner.invoke(app, ["align", str(path), *args, "--text", "hello", "-q"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.json"))


def test_commands_that_align_say_which_aligner_ran(raw_stereo, tmp_path, monkeypatch) -> None:
    """`auto` must never switch backend silently: keymotions and animate name the one that ran."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no `mfa` here
    path, rate = raw_stereo
    raw = ["--sample-rate", str(rate), "--channels", "2", "--raw-format", "PCM_24"]
    for command, out in (("keymotions", tmp_path / "k.keys.npz"), ("animate", tmp_path / "a.npy")):
        result = runner.invoke(app, [command, str(path), "--backbone", "rig", *raw, "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        assert "Aligned with pocketsphinx (forced)" in result.stderr, command
