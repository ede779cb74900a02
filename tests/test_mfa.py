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
