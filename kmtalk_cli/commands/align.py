"""``kmtalk align``: speech (+ transcript) to timed ARPAbet phones, one file or a batch."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import KmtalkError
from .common import fail, info, progress_bar, user_errors


class AlignerChoice(str, Enum):
    auto = "auto"
    pocketsphinx = "pocketsphinx"
    mfa = "mfa"
    textgrid = "textgrid"


def output_for(audio: Path, target: Path | None, suffix: str, *, batch: bool) -> Path:
    """Where one input's output goes: beside the audio, into a directory, or the named file."""
    if target is None:
        return audio.with_name(audio.stem + suffix)
    if target.is_dir():
        return target / (audio.stem + suffix)
    if batch:
        raise KmtalkError(f"With several inputs, {target} must be an existing directory.")
    return target


def align(
    audio: Annotated[list[Path], typer.Argument(help="Speech file(s): any format libsndfile reads.")],
    text: Annotated[str | None, typer.Option("--text", help="What is said (one input only).")] = None,
    transcript: Annotated[
        Path | None, typer.Option("--transcript", help="A text file with what is said (one input only).")
    ] = None,
    aligner: Annotated[
        AlignerChoice, typer.Option("--aligner", help="auto (MFA if installed, else pocketsphinx), pocketsphinx, mfa, or textgrid (read SPEECH.TextGrid).")
    ] = AlignerChoice.auto,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSON output file, or an existing directory (default: SPEECH.align.json beside the audio).")
    ] = None,
    textgrid: Annotated[
        Path | None, typer.Option("--textgrid", help="Also write a TextGrid (MFA layout) to this file or existing directory.")
    ] = None,
    sample_rate: Annotated[int | None, typer.Option("--sample-rate", help="Sample rate of headerless raw PCM audio.", min=1)] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Align speech to phones; transcripts are taken from --text/--transcript or SPEECH.txt/.lab beside each file."""
    batch = len(audio) > 1
    with user_errors():
        from ..alignment import align as align_speech
        from ..alignment import find_transcript, write_json
        from ..alignment.textgrid import write_textgrid
        from ..atomic import check_output_path
        from ..audio import load_audio
        from ..errors import AlignmentError

        if text is not None and transcript is not None:
            raise AlignmentError("Give the transcript with --text or --transcript, not both.")
        if batch and (text is not None or transcript is not None):
            raise AlignmentError("--text/--transcript apply to one input; for several, put SPEECH.txt beside each file.")
        if transcript is not None:
            if not transcript.is_file():
                raise AlignmentError(f"Transcript file {transcript} does not exist.")
            text = transcript.read_text(encoding="utf-8", errors="replace")

        failures = 0
        with progress_bar("Aligning", enabled=not quiet) as progress:
            for done, path in enumerate(audio):
                progress(done, len(audio))
                try:
                    json_path = check_output_path(
                        output_for(path, output, ".align.json", batch=batch), force=force, suffixes=(".json",), what="the alignment as JSON"
                    )
                    grid_path = None
                    if textgrid is not None:
                        grid_path = check_output_path(
                            output_for(path, textgrid, ".TextGrid", batch=batch), force=force, suffixes=(".TextGrid",), what="a Praat TextGrid"
                        )
                    words = text if text is not None else find_transcript(path)
                    speech = load_audio(path, sample_rate=sample_rate)
                    result = align_speech(speech, words, backend=aligner.value)
                    write_json(result, json_path, force=force)
                    if grid_path is not None:
                        write_textgrid(result, grid_path, force=force)
                except KmtalkError as exc:
                    if not batch:
                        raise
                    failures += 1
                    fail(f"{path}: {exc}")
                    continue
                spoken = sum(1 for p in result.phones if p.label != "SIL")
                info(f"{path} → {json_path}: {len(result.words)} words, {spoken} phones ({result.backend}, {result.method})")
            progress(len(audio), len(audio))
        if failures:
            raise fail(f"{failures} of {len(audio)} files could not be aligned.")
