"""The MFA backend, driven by a fake ``mfa`` program (the real one needs conda)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from kmtalk_cli.alignment import align
from kmtalk_cli.alignment.mfa import MfaJob, build_command
from kmtalk_cli.audio import from_array
from kmtalk_cli.errors import AlignmentError

FAKE_MFA = """#!{python}
import json, sys
from pathlib import Path
from praatio import textgrid as tgio
args = sys.argv[1:]
Path({log!r}).write_text(json.dumps(args))
corpus, out = Path(args[1]), Path(args[4])
for lab in corpus.glob("*.lab"):
    grid = tgio.Textgrid()
    grid.addTier(tgio.IntervalTier("words", [(0.1, 0.5, "hello")], 0, 1.0))
    grid.addTier(tgio.IntervalTier("phones", [(0.1, 0.2, "HH"), (0.2, 0.3, "AH0"), (0.3, 0.4, "L"), (0.4, 0.5, "OW1")], 0, 1.0))
    grid.save(str(out / (lab.stem + ".TextGrid")), format="long_textgrid", includeBlankSpaces=True)
"""


@pytest.fixture()
def fake_mfa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "argv.json"
    script = bindir / "mfa"
    script.write_text(FAKE_MFA.format(python=sys.executable, log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("KMTALK_MFA", raising=False)
    return log


def tone() -> object:
    t = np.arange(16000) / 16000
    return from_array((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)


def test_build_command() -> None:
    cmd = build_command(MfaJob("mfa", Path("/c"), Path("/o"), "english_mfa", "english_us_mfa"))
    assert cmd[:6] == ["mfa", "align", "/c", "english_us_mfa", "english_mfa", "/o"]
    assert "--clean" in cmd and "--single_speaker" in cmd


def test_fake_mfa_alignment(fake_mfa: Path) -> None:
    al = align(tone(), "Hello!", backend="auto", acoustic_model="my_model", dictionary="my_dict")
    assert al.backend == "mfa" and al.method == "forced" and al.transcript == "Hello!"
    assert [p.label for p in al.phones] == ["SIL", "HH", "AH", "L", "OW", "SIL"]
    args = json.loads(fake_mfa.read_text())
    assert args[0] == "align" and args[2:4] == ["my_dict", "my_model"]


def test_absent_mfa_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KMTALK_MFA", raising=False)
    with pytest.raises(AlignmentError) as info:
        align(tone(), "hello", backend="mfa")
    message = str(info.value)
    assert "conda install -c conda-forge montreal-forced-aligner" in message
    assert "mfa model download acoustic english_us_arpa" in message
    assert "--aligner pocketsphinx" in message


# --- MFA generations: fake `mfa` shell scripts that accept only their version's command forms --

FAKE_GENERATION = r"""#!/bin/bash
# A stand-in for MFA {version}: answers `mfa version`, accepts only this generation's align forms.
echo "$@" >> {log}
case "$1" in
  version) echo "{version}"; exit 0 ;;
  align) {align_case} ;;
  align_hf) {align_hf_case} ;;
  align_legacy) {legacy_case} ;;
  *) echo "Error: No such command '$1'." >&2; exit 2 ;;
esac
cat > "$OUT/utterance.TextGrid" <<'GRID'
File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.0
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.0
        intervals: size = 1
        intervals [1]:
            xmin = 0.1
            xmax = 0.5
            text = "{word}"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.0
        intervals: size = 3
        intervals [1]:
            xmin = 0.1
            xmax = 0.2
            text = "{p1}"
        intervals [2]:
            xmin = 0.2
            xmax = 0.4
            text = "{p2}"
        intervals [3]:
            xmin = 0.4
            xmax = 0.5
            text = "{p3}"
GRID
"""
FOUR_ARGS = 'OUT="$5"; [ -n "$5" ] && [[ "$6" == --* ]] || {{ echo "Error: Got unexpected extra argument" >&2; exit 2; }}'
THREE_ARGS = 'OUT="$4"; [[ "$5" == --* ]] || {{ echo "Error: Got unexpected extra argument ($5)" >&2; exit 2; }}'
MISSING = 'echo "Error: No such command '"'"'$1'"'"'." >&2; exit 2'
GENERATIONS = {
    "3.1.0": {"align_case": FOUR_ARGS, "align_hf_case": MISSING, "legacy_case": MISSING},
    "3.4.2": {"align_case": FOUR_ARGS, "align_hf_case": THREE_ARGS, "legacy_case": MISSING},
    "4.0.0": {"align_case": THREE_ARGS, "align_hf_case": MISSING, "legacy_case": FOUR_ARGS},
}


def install_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str,
                 phones: tuple[str, str, str] = ("HH", "AH0", "L"), word: str = "hell") -> Path:
    bindir = tmp_path / f"mfa-{version}"
    bindir.mkdir()
    log = tmp_path / f"calls-{version}.txt"
    script = bindir / "mfa"
    forms = {key: value.format() for key, value in GENERATIONS[version].items()}
    script.write_text(FAKE_GENERATION.format(version=version, log=log, word=word, p1=phones[0], p2=phones[1],
                                             p3=phones[2], **forms))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("KMTALK_MFA", raising=False)
    return log


@pytest.mark.parametrize(
    ("version", "dictionary", "verb", "positional"),
    [
        ("3.1.0", None, "align", ["english_us_arpa", "english_us_arpa"]),
        ("3.4.2", "my_dict", "align", ["my_dict", "my_model"]),
        ("3.4.2", "bundled", "align_hf", ["my_model"]),
        ("4.0.0", "my_dict", "align_legacy", ["my_dict", "my_model"]),
        ("4.0.0", "bundled", "align", ["my_model"]),
    ],
)
def test_each_mfa_generation_is_called_its_way(tmp_path, monkeypatch, version, dictionary, verb, positional) -> None:
    log = install_fake(tmp_path, monkeypatch, version)
    model = None if dictionary is None else "my_model"
    al = align(tone(), "hell", backend="mfa", acoustic_model=model, dictionary=dictionary)
    calls = [line.split() for line in log.read_text().splitlines()]
    assert calls[0] == ["version"]
    assert calls[1][0] == verb and calls[1][2 : 2 + len(positional)] == positional
    assert al.backend == "mfa" and al.method == "forced"
    assert [p.label for p in al.phones] == ["SIL", "HH", "AH", "L", "SIL"]
    assert any(f"MFA {version[:3]}" in note for note in al.notes)


def test_old_mfa_without_bundled_dictionaries_says_so(tmp_path, monkeypatch) -> None:
    install_fake(tmp_path, monkeypatch, "3.1.0")
    with pytest.raises(AlignmentError, match=r"MFA 3\.1 has no models with their own dictionary"):
        align(tone(), "hell", backend="mfa", acoustic_model="english_mfa", dictionary="bundled")


def test_model_paths_are_passed_absolute(tmp_path, monkeypatch) -> None:
    log = install_fake(tmp_path, monkeypatch, "4.0.0")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "de.zip").write_bytes(b"")
    (tmp_path / "models" / "de.dict").write_text("hallo h a l o\n")
    align(tone(), "hell", backend="mfa", acoustic_model="models/de.zip", dictionary="models/de.dict")
    call = log.read_text().splitlines()[1].split()
    assert call[0] == "align_legacy" and call[2:4] == [str(tmp_path / "models/de.dict"), str(tmp_path / "models/de.zip")]


def test_other_language_model_phones_are_mapped(tmp_path, monkeypatch) -> None:
    """A German-style IPA phone set: ʁ and ø have ARPAbet stand-ins chosen by mouth shape."""
    install_fake(tmp_path, monkeypatch, "3.4.2", phones=("ʁ", "øː", "t͡s"), word="röts")
    al = align(tone(), "röts", backend="mfa", acoustic_model="german_mfa", dictionary="german_mfa")
    assert [p.label for p in al.phones][1:4] == ["HH", "OW", "T"]


def test_auto_says_which_backend_ran(tmp_path, monkeypatch) -> None:
    install_fake(tmp_path, monkeypatch, "4.0.0")
    al = align(tone(), "hell", backend="auto")
    assert al.backend == "mfa" and "auto chose MFA" in al.notes[0]
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    from kmtalk_cli.alignment.espeak import synthesize

    syn = synthesize("hello there")
    al = align(from_array(syn.samples, syn.sample_rate), "hello there", backend="auto")
    assert al.backend == "pocketsphinx" and "auto chose pocketsphinx" in al.notes[0]


def test_cli_passes_mfa_models_and_prints_the_backend(tmp_path, monkeypatch) -> None:
    import soundfile as sf
    from typer.testing import CliRunner

    from kmtalk_cli.cli import app

    log = install_fake(tmp_path, monkeypatch, "4.0.0")
    wav = tmp_path / "hell.wav"
    sf.write(wav, tone().samples, 16000)
    result = CliRunner().invoke(app, ["align", str(wav), "--text", "hell", "--mfa-acoustic-model", "english_mfa",
                                      "--mfa-dictionary", "bundled", "-o", str(tmp_path / "out.json"), "-q"])
    assert result.exit_code == 0, result.stderr
    call = log.read_text().splitlines()[1].split()
    assert call[0] == "align" and call[2] == "english_mfa"
    assert "(mfa, forced)" in result.stderr


def test_acoustic_model_file_needs_a_dictionary(tmp_path, monkeypatch) -> None:
    log = install_fake(tmp_path, monkeypatch, "3.4.2")
    with pytest.raises(AlignmentError, match="pass --mfa-dictionary"):
        align(tone(), "hell", backend="mfa", acoustic_model=str(tmp_path / "german.zip"))
    assert not log.exists()  # refused before MFA was even asked its version
