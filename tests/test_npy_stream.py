"""Streaming .npy writer: rows appended in order give the same file np.save would."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.errors import OutputError
from kmtalk_cli.npy_stream import NpyRowWriter


def test_rows_written_in_pieces_load_as_one_array(tmp_path) -> None:
    whole = np.random.default_rng(0).normal(size=(11, 4, 3)).astype(np.float32)
    with NpyRowWriter(tmp_path / "m.npy", 11, (4, 3)) as out:
        for a in range(0, 11, 4):
            out.write(whole[a : a + 4])
    assert np.array_equal(np.load(tmp_path / "m.npy"), whole)
    np.save(tmp_path / "ref.npy", whole)
    assert (tmp_path / "m.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_a_short_or_long_array_is_refused(tmp_path) -> None:
    with pytest.raises(OutputError, match="3 of 5 rows"), NpyRowWriter(tmp_path / "s.npy", 5, (2,)) as out:
        out.write(np.zeros((3, 2)))
    with pytest.raises(OutputError, match="more rows"), NpyRowWriter(tmp_path / "l.npy", 2, (2,)) as out:
        out.write(np.zeros((3, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_piece_is_refused(tmp_path, bad: float) -> None:
    from kmtalk_cli.errors import MotionError

    rows = np.zeros((2, 3), dtype=np.float32)
    rows[1, 2] = bad
    with pytest.raises(MotionError, match="NaN"), NpyRowWriter(tmp_path / "n.npy", 2, (3,), what="The motion for x.npy") as out:
        out.write(rows)
