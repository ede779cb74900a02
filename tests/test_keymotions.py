"""Key-frame selection on hand-made alignments."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.alignment.types import Alignment, Segment
from kmtalk_cli import keymotions
from kmtalk_cli.errors import AlignmentError, MotionError
from kmtalk_cli.keymotions import KEYS_FORMAT_VERSION, KeyFrames, KeyMotions, read_key_motions, select_key_frames, write_key_motions


def alignment(phones: list[tuple[str, float, float]], duration: float) -> Alignment:
    return Alignment(
        words=(),
        phones=tuple(Segment(label, start, end) for label, start, end in phones),
        duration=duration,
        backend="textgrid",
        method="forced",
        transcript=None,
    )


# "SIL M AA SIL" : boundaries at 0.1, 0.2, 0.4 s.
SPEECH = alignment([("SIL", 0.0, 0.1), ("M", 0.1, 0.2), ("AA", 0.2, 0.4), ("SIL", 0.4, 0.5)], 0.5)


def test_boundaries_map_to_nearest_frames_with_both_ends() -> None:
    keys = select_key_frames(SPEECH, n_frames=15, fps=30.0)
    assert keys.indices.tolist() == [0, 3, 6, 12, 14]
    assert keys.density == pytest.approx(5 / 15)
    # The frame at 0.1 s separates silence from M; the one at 0.2 s M from AA.
    assert (keys.left[1], keys.right[1]) == ("SIL", "M")
    assert (keys.left[2], keys.right[2]) == ("M", "AA")
    assert keys.context_ids().shape == (5, 2)
    assert keys.mask().sum() == 5


def test_fps_rounding_and_dedupe() -> None:
    # At 10 fps, boundaries 0.1/0.2/0.4 s → frames 1, 2, 4; 0.0 and 0.5 → 0, 5 clipped to the last frame.
    keys = select_key_frames(SPEECH, n_frames=5, fps=10.0)
    assert keys.indices.tolist() == [0, 1, 2, 4]
    # Two boundaries that land on the same frame give one key frame.
    close = alignment([("SIL", 0.0, 0.1), ("P", 0.1, 0.11), ("AA", 0.11, 0.5)], 0.5)
    assert select_key_frames(close, 15, 30.0).indices.tolist() == [0, 3, 14]


def test_alignment_past_the_audio_is_clipped_but_one_for_other_audio_is_refused() -> None:
    rounding = alignment([("SIL", 0.0, 0.3), ("AA", 0.3, 0.55)], 0.55)
    keys = select_key_frames(rounding, n_frames=15, fps=30.0)
    assert keys.indices.max() == 14
    late = alignment([("SIL", 0.0, 0.3), ("AA", 0.3, 2.0)], 2.0)
    with pytest.raises(AlignmentError, match="only 0.50 s long"):
        select_key_frames(late, n_frames=15, fps=30.0)


def test_no_phones_is_a_clear_error() -> None:
    silent = alignment([("SIL", 0.0, 0.5)], 0.5)
    with pytest.raises(AlignmentError, match="no phones"):
        select_key_frames(silent, 15, 30.0)


@pytest.mark.parametrize("rule", ["centers", "both", "uniform"])
def test_other_rules(rule: str) -> None:
    keys = select_key_frames(SPEECH, 15, 30.0, rule=rule)
    assert keys.indices[0] == 0 and keys.indices[-1] == 14
    assert np.all(np.diff(keys.indices) > 0)
    if rule == "uniform":
        assert len(keys.indices) == len(select_key_frames(SPEECH, 15, 30.0).indices)
    if rule == "centers":
        assert 9 in keys.indices.tolist()  # AA's centre, 0.3 s
        assert keys.left[keys.indices.tolist().index(9)] == "AA"


def test_unknown_rule() -> None:
    with pytest.raises(AlignmentError, match="choose from"):
        select_key_frames(SPEECH, 15, 30.0, rule="random")


# -- the .keys.npz file ---------------------------------------------------------------------------
def _frames(k: int, n_frames: int = 400) -> KeyFrames:
    indices = np.linspace(0, n_frames - 1, k).round().astype(np.int64)
    return KeyFrames(indices, ("SIL",) * k, ("AA",) * k, n_frames, 30.0, "boundaries")


def test_long_key_motions_are_stored_as_codes_exactly(tmp_path) -> None:
    rng = np.random.default_rng(0)
    codes, basis, bias = rng.normal(size=(200, 8)), rng.normal(0, 1e-3, (8, 300)), rng.normal(0, 1e-3, 300)
    keys = KeyMotions(_frames(200), codes.astype(np.float32), basis.astype(np.float32), bias.astype(np.float32))
    path = write_key_motions(keys, tmp_path / "k.npz")
    with np.load(path) as data:
        assert int(data["format_version"]) == KEYS_FORMAT_VERSION and "codes" in data.files and "offsets" not in data.files
    back = read_key_motions(path)
    assert np.array_equal(back.offsets, keys.offsets) and back.frames.indices.tolist() == keys.frames.indices.tolist()
    assert path.stat().st_size < 0.15 * keys.offsets.nbytes


def test_short_or_edited_key_motions_are_stored_as_offsets_float16_only_when_large(tmp_path, monkeypatch) -> None:
    offsets = np.random.default_rng(1).normal(0, 0.005, (5, 300)).astype(np.float32)  # a few mm, as on a face
    path = write_key_motions(KeyMotions(_frames(5), offsets), tmp_path / "k.npz")
    assert np.array_equal(read_key_motions(path).offsets, offsets)  # small: exact
    monkeypatch.setattr(keymotions, "FLOAT16_ABOVE_BYTES", 1000)
    path = write_key_motions(KeyMotions(_frames(5), offsets), tmp_path / "k16.npz")
    with np.load(path) as data:
        assert data["offsets"].dtype == np.float16
    assert 0 < np.abs(read_key_motions(path).offsets - offsets).max() < 1e-5  # 0.01 mm


def test_version_1_files_are_still_read_and_future_ones_refused(tmp_path) -> None:
    offsets = np.random.default_rng(2).normal(0, 0.01, (3, 6)).astype(np.float32)
    old = tmp_path / "v1.npz"
    np.savez(old, indices=np.array([0, 5, 9]), left=np.array(["SIL", "M", "AA"]), right=np.array(["M", "AA", "SIL"]),
             offsets=offsets, fps=np.float64(30), n_frames=np.int64(10), rule=np.array("boundaries"), vertices=offsets.reshape(3, 2, 3))
    assert np.array_equal(read_key_motions(old).offsets, offsets)
    future = tmp_path / "v9.npz"
    np.savez(future, format_version=np.int64(9), indices=np.array([0]))
    with pytest.raises(MotionError, match="version 9"):
        read_key_motions(future)
