"""Aligning in a worker process while the model loads gives what aligning here gives."""

from __future__ import annotations

import pytest

from kmtalk_cli.align_ahead import AlignAhead
from kmtalk_cli.alignment import align
from kmtalk_cli.audio import load_audio
from kmtalk_cli.errors import AlignmentError


def test_the_worker_aligns_exactly_as_this_process_does(speech_wav) -> None:
    audio = load_audio(speech_wav(duration=1.5))
    ahead = AlignAhead(audio, "hello there my friend")
    assert ahead.result() == align(audio, "hello there my friend")


def test_a_worker_error_is_raised_here_as_itself(speech_wav) -> None:
    audio = load_audio(speech_wav(duration=1.0))
    with pytest.raises(AlignmentError, match="empty"):
        AlignAhead(audio, "   ").result()


def test_cancel_stops_the_worker(speech_wav) -> None:
    ahead = AlignAhead(load_audio(speech_wav(duration=1.0)), None)
    ahead.cancel()
    assert ahead._process.returncode is not None
