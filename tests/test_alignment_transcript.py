"""Transcripts that cannot be what was said: binary data, other scripts, words that do not fit."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from kmtalk_cli.alignment import align, find_transcript
from kmtalk_cli.alignment.transcript import foreign_script, looks_binary
from kmtalk_cli.audio import load_audio
from kmtalk_cli.errors import AlignmentError, KmtalkWarning

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CLIP = LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav"  # "he was not an ill disposed young man"
SAID = "he was not an ill disposed young man"
librivox = pytest.mark.skipif(not CLIP.is_file(), reason="Debian package pocketsphinx-testdata is not installed")


@pytest.mark.parametrize(
    ("text", "binary"),
    [
        ("hello world\n", False),
        ("Café, naïve — “quoted”\ttab\r\n", False),
        ("abc\x00def", True),
        (bytes(range(256)).decode("utf-8", errors="replace") * 3, True),
        ("PK\x03\x04\x14\x00" + "\ufffd" * 40 + "word.xml", True),
    ],
)
def test_looks_binary(text: str, binary: bool) -> None:
    assert looks_binary(text) is binary


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("你好，世界", "Chinese/Japanese (CJK ideographs)"),
        ("مرحبا بالعالم", "Arabic"),
        ("Привет, мир", "Cyrillic"),
        ("hello world", None),
        ("café crème brûlée", None),
        ("The word 你好 means hello", None),  # mostly English: aligned, the foreign word skipped
    ],
)
def test_foreign_script(text: str, script: str | None) -> None:
    assert foreign_script(text) == script


@librivox
@pytest.mark.parametrize("text", ["你好，世界，今天天气很好", "مرحبا بالعالم"])
def test_non_latin_transcript_points_to_mfa(text: str) -> None:
    with pytest.raises(AlignmentError, match=r"English-only.*--aligner mfa"):
        align(load_audio(CLIP), text, backend="pocketsphinx")


@librivox
@pytest.mark.parametrize("wrong", ["hello world", "banana television"])
def test_unrelated_words_are_not_a_forced_alignment(wrong: str) -> None:
    with pytest.warns(KmtalkWarning, match="does not fit the speech"):
        al = align(load_audio(CLIP), wrong, backend="pocketsphinx")
    assert al.method == "recognised" and not al.forced
    assert any("does not fit" in note for note in al.notes)
    assert "man" in [w.label for w in al.words]  # the recognised words, not the wrong ones


@librivox
def test_the_right_words_stay_forced() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", KmtalkWarning)
        al = align(load_audio(CLIP), SAID, backend="pocketsphinx")
    assert al.method == "forced" and [w.label for w in al.words] == SAID.split()


@librivox
def test_too_few_words_for_long_speech_are_refused_before_aligning(monkeypatch) -> None:
    from kmtalk_cli.alignment import pocketsphinx as ps

    long_clip = LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav"  # 7 s, 24 words
    calls = []
    real = ps.forced_pass
    monkeypatch.setattr(ps, "forced_pass", lambda words, *a: calls.append(words) or real(words, *a))
    with pytest.warns(KmtalkWarning, match=r"cannot fill .* s of speech"):
        al = align(load_audio(long_clip), "hello world", backend="pocketsphinx")
    assert al.method == "recognised"
    assert ["hello", "world"] not in [list(c) for c in calls]


@librivox
def test_binary_transcript_beside_the_audio_is_ignored(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    shutil.copy(CLIP, wav)
    (tmp_path / "speech.txt").write_bytes(bytes(range(256)) * 8)
    with pytest.warns(KmtalkWarning, match="not text .*binary"):
        al = align(wav, find_transcript(wav), backend="pocketsphinx")
    assert al.method == "recognised" and al.transcript is None
    assert any("binary" in note for note in al.notes)
