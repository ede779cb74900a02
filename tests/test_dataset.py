"""The VOCASET/BIWI-format reader, on a synthetic corpus and on hand-made directories."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest

from kmtalk_cli.data.dataset import open_dataset, subject_of
from kmtalk_cli.errors import DatasetError


def test_subject_is_name_up_to_last_underscore():
    assert subject_of("FaceTalk_170725_00137_TA_sentence01") == "FaceTalk_170725_00137_TA"
    assert subject_of("F2_e01") == "F2"


def test_reads_a_synth_corpus(tmp_path):
    from kmtalk_cli.data.synth import PRESETS, build_corpus

    root = tmp_path / "c"
    build_corpus(root, replace(PRESETS["tiny"], subjects=3, sentences=2, workers=1))
    ds = open_dataset(root)
    assert ds.fps == 30.0 and ds.stride == 1
    assert len(ds.subjects) == 3 and len(ds.sequences) == 6
    assert "lips" in ds.regions and "upper_face" in ds.regions
    seq = ds.load(ds.sequences[0])
    assert seq.vertices.shape[1:] == (5080, 3)
    assert seq.audio.sample_rate == 16000
    assert abs(seq.audio.duration - len(seq.vertices) / 30.0) < 1 / 30.0
    assert len(ds.split("train")) == 2 and len(ds.split("test")) == 1
    al = ds.alignment(ds.sequences[0])
    assert al.phones


def _fake(root, fps_frames: int = 12, subject: str = "FaceTalk_170725_00137_TA"):
    (root / "vertices_npy").mkdir(parents=True)
    (root / "wav").mkdir()
    rest = np.zeros((4, 3), dtype=np.float64)
    (root / "templates.pkl").write_bytes(pickle.dumps({subject: rest}))
    np.save(root / "vertices_npy" / f"{subject}_sentence01.npy", np.arange(fps_frames * 12, dtype=np.float32).reshape(fps_frames, 12))
    import soundfile as sf

    sf.write(str(root / "wav" / f"{subject}_sentence01.wav"), np.zeros(16000, dtype=np.float32), 16000)


def test_vocaset_60_to_30(tmp_path):
    _fake(tmp_path)
    ds = open_dataset(tmp_path)
    assert ds.stride == 2 and ds.fps == 30.0
    seq = ds.load(ds.sequences[0], with_audio=False)
    assert seq.vertices.shape == (6, 4, 3)
    assert open_dataset(tmp_path, fps=60).load(ds.sequences[0], with_audio=False).vertices.shape == (12, 4, 3)
    with pytest.raises(DatasetError):
        open_dataset(tmp_path, fps=25)


def test_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="templates.pkl"):
        open_dataset(tmp_path)
    _fake(tmp_path / "d", subject="A_x")
    (tmp_path / "d" / "templates.pkl").write_bytes(pickle.dumps({"B": np.zeros((4, 3))}))
    with pytest.raises(DatasetError, match="missing from templates.pkl"):
        open_dataset(tmp_path / "d")
