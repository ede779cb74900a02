"""Aligning in a worker process while the model loads gives what aligning here gives."""

from __future__ import annotations

import pytest

from kmtalk_cli.align_ahead import AlignAhead
from kmtalk_cli.alignment import align
from kmtalk_cli.audio import load_audio
from kmtalk_cli.errors import AlignmentError


def test_the_worker_aligns_as_this_process_does(speech_wav) -> None:
    audio = load_audio(speech_wav(duration=1.5))
    first, second = AlignAhead(audio, "hello there my friend"), AlignAhead(audio, "hello there my friend")
    got = first.result()
    assert got == second.result()  # fresh workers agree exactly
    here = align(audio, "hello there my friend")  # this process's aligner may carry state from earlier tests
    assert got.phones and [p.label for p in got.phones] == [p.label for p in here.phones]
    assert got.duration == here.duration and got.method == here.method


def test_a_worker_error_is_raised_here_as_itself(speech_wav) -> None:
    audio = load_audio(speech_wav(duration=1.0))
    with pytest.raises(AlignmentError, match="empty"):
        AlignAhead(audio, "   ").result()


def test_cancel_stops_the_worker(speech_wav) -> None:
    ahead = AlignAhead(load_audio(speech_wav(duration=1.0)), None)
    ahead.cancel()
    assert ahead._process.returncode is not None


def test_the_worker_builds_the_bundled_heads_rig_as_this_process_does(speech_wav, head) -> None:
    import dataclasses

    import numpy as np

    from kmtalk_cli.export.fit import rig_for

    ahead = AlignAhead(load_audio(speech_wav(duration=1.0)), "hello there", bundled_rig=True)
    assert ahead.result().phones
    there, here = ahead.rig(), rig_for(head)
    for f in dataclasses.fields(here):
        a, b = getattr(there, f.name), getattr(here, f.name)
        if f.name == "masks":
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        else:
            assert np.array_equal(a, b), f.name
    plain = AlignAhead(load_audio(speech_wav(duration=1.0)), "hello there")
    plain.result()
    assert plain.rig() is None
