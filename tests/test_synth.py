"""The synthetic corpus, judged on the geometry and files it writes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kmtalk_cli.alignment.phones import PHONES
from kmtalk_cli.alignment.textgrid import read_textgrid
from kmtalk_cli.cli import app
from kmtalk_cli.data.sentences import generate_sentences
from kmtalk_cli.data.synth import PRESETS, build_corpus, phones_from_events
from kmtalk_cli.errors import OutputError
from kmtalk_cli.face.rig import INDEX, UPPER_FACE_PARAMETERS, lip_gap, lip_width
from kmtalk_cli.face.template import bundled_template

pytest.importorskip("espeakng_loader")
FPS = 30.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    build_corpus(out, replace(PRESETS["tiny"], workers=1))
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _sequences(root: Path):
    for path in sorted((root / "vertices_npy").glob("*.npy")):
        v = np.load(path).reshape(-1, 5080, 3)
        yield path.stem, v, read_textgrid(root / "alignments" / f"{path.stem}.TextGrid"), np.load(root / "rig" / path.name)


def _frame(seg, n: int) -> int:
    return min(n - 1, int(round((seg.start + seg.end) / 2 * FPS)))


def test_layout(corpus):
    for name in ("templates.pkl", "splits.json", "DATACARD.md", "metadata.json", "rig.json", "template.obj", "regions/lips.txt", "regions/upper_face.txt"):
        assert (corpus / name).is_file(), name
    names = sorted(p.stem for p in (corpus / "vertices_npy").glob("*.npy"))
    assert len(names) == 12
    for name in names:
        assert (corpus / "wav" / f"{name}.wav").is_file()
        assert (corpus / "alignments" / f"{name}.TextGrid").is_file()
    import soundfile as sf

    info = sf.info(str(corpus / "wav" / f"{names[0]}.wav"))
    assert info.samplerate == 16000 and info.channels == 1


def test_lip_gap_closure_vs_open_vowels_and_width_rounded_vs_spread(corpus):
    lm = bundled_template().landmarks
    closures, opens, uw, iy = [], [], [], []
    for _, v, al, _ in _sequences(corpus):
        gap, width = lip_gap(v, lm), lip_width(v, lm)
        for p in al.phones:
            k = _frame(p, len(v))
            if p.label in ("P", "B", "M"):
                closures.append(gap[k])
            elif p.label in ("AA", "AE", "AW", "AY"):
                opens.append(gap[k])
            elif p.label == "UW":
                uw.append(width[k])
            elif p.label == "IY":
                iy.append(width[k])
    rest_gap = float(lip_gap(bundled_template().vertices, lm))
    assert closures and opens and uw and iy
    assert np.median(closures) < rest_gap + 0.0015  # lips at (or near) their resting contact
    assert np.median(opens) > np.median(closures) + 0.005
    assert np.mean(uw) < np.mean(iy) - 0.003


def test_upper_face_still_without_blinks_or_brows(corpus):
    upper = bundled_template().region("upper_face")
    checked = 0
    for _, v, _, params in _sequences(corpus):
        quiet = np.all(params[:, [INDEX[p] for p in UPPER_FACE_PARAMETERS]] == 0.0, axis=1)
        idx = np.flatnonzero(quiet)
        if len(idx) >= 2:
            moved = np.abs(v[idx][:, upper] - v[idx[0]][upper]).max()
            assert moved < 1e-6
            checked += 1
    assert checked > 0


def test_motion_is_smooth(corpus):
    for _, v, _, _ in _sequences(corpus):
        acc = np.linalg.norm(v[2:] - 2 * v[1:-1] + v[:-2], axis=-1)  # m per frame²
        assert acc.max() < 0.006
        assert np.sqrt(np.mean(acc**2)) < 0.0005


def test_subjects_differ(corpus):
    lm = bundled_template().landmarks
    per_subject: dict[str, list[float]] = {}
    for name, v, _, _ in _sequences(corpus):
        if name.endswith("sentence01"):  # the same sentence for every subject
            per_subject[name.rsplit("_", 1)[0]] = lip_gap(v, lm).tolist()
    means = sorted(np.mean(g) for g in per_subject.values())
    assert len(means) == 3
    assert means[-1] - means[0] > 0.0005
    import pickle

    shapes = pickle.loads((corpus / "templates.pkl").read_bytes())
    a, b = list(shapes.values())[:2]
    assert np.abs(a - b).max() > 0.001


def test_phone_timings_cover_the_audio(corpus):
    for _, v, al, _ in _sequences(corpus):
        assert abs(al.duration - len(v) / FPS) < 1.0 / FPS
        assert al.phones[0].start == 0.0
        assert abs(al.phones[-1].end - al.duration) < 1e-6


def test_same_seed_same_bytes(corpus, tmp_path):
    again = tmp_path / "again"
    build_corpus(again, replace(PRESETS["tiny"], workers=2))
    assert _digest(again) == _digest(corpus)


def test_refuses_existing_output_and_leaves_nothing_on_failure(corpus, tmp_path):
    with pytest.raises(OutputError):
        build_corpus(corpus, PRESETS["tiny"])
    with pytest.raises(OutputError):
        build_corpus(tmp_path / "x", replace(PRESETS["tiny"], voices="mbrola"))
    assert not any(tmp_path.iterdir())


def test_sentences_are_seeded_and_rich():
    a = generate_sentences(30, 3)
    assert a == generate_sentences(30, 3)
    assert a != generate_sentences(30, 4)
    assert len(set(a)) == 30


def test_phones_from_events_tiles_the_audio():
    phones = phones_from_events([("_", 0.0), ("b", 0.05), ("'0", 0.12), ("b", 0.3), ("_:", 0.36)], 0.6)
    labels = [p.label for p in phones]
    assert labels == ["SIL", "B", "AA", "B", "SIL"]
    assert phones[2].stress == 1
    assert phones[1].start == pytest.approx(0.063)


def test_cli_tiny(tmp_path):
    out = tmp_path / "c"
    result = CliRunner().invoke(app, ["synth", str(out), "--preset", "tiny", "--subjects", "2", "--sentences", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "vertices_npy").glob("*.npy"))) == 4
    again = CliRunner().invoke(app, ["synth", str(out), "--preset", "tiny", "-q"])
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_all_phones_appear_in_a_vocaset_sized_sentence_pool():
    from kmtalk_cli.data.synth import _phonemizer

    ph = _phonemizer("en-us")
    seen = set()
    for text in generate_sentences(60, 0, phonemize=ph):
        seen.update(ph(text))
    assert set(PHONES) <= seen
