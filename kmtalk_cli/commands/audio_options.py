"""The audio options every command that reads speech shares, defined once.

Headerless PCM carries no rate, channel count or sample format, so a command that reads audio
must be told them; every such command (align, animate, keymotions, complete, render, view)
takes the same three options with the same names, help and defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

SampleRateOpt = Annotated[
    int | None,
    typer.Option("--sample-rate", help="Sample rate (Hz) of headerless raw PCM audio (.raw/.pcm or unrecognised files)."),
]
ChannelsOpt = Annotated[int, typer.Option("--channels", help="Channels of headerless raw PCM audio (interleaved).")]
RawFormatOpt = Annotated[
    str, typer.Option("--raw-format", help="Sample format of headerless raw PCM: PCM_16, PCM_24, PCM_32, PCM_U8, FLOAT, DOUBLE (little-endian).")
]


def read_speech(path: Path, sample_rate: int | None, channels: int, raw_format: str) -> Any:
    """Load ``path`` with the shared audio options (see :func:`kmtalk_cli.audio.load_audio`)."""
    from ..audio import load_audio

    return load_audio(path, sample_rate=sample_rate, channels=channels, raw_format=raw_format)
