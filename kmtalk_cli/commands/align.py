"""``kmtalk align``: speech (+ transcript) to timed ARPAbet phones, one file or a batch."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import KmtalkError
from .audio_options import ChannelsOpt, RawFormatOpt, SampleRateOpt
from .common import fail, info, progress_bar, user_errors

#: ``-o -``: the alignment JSON goes to standard output.
STDOUT = Path("-")


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
    audio: Annotated[list[Path], typer.Argument(help="Speech file(s): any audio file, or a video's sound track.")],
    text: Annotated[str | None, typer.Option("--text", help="What is said (one input only).")] = None,
    transcript: Annotated[
        Path | None, typer.Option("--transcript", help="A text file with what is said (one input only).")
    ] = None,
    aligner: Annotated[
        AlignerChoice, typer.Option("--aligner", help="auto (MFA if installed, else pocketsphinx; says which ran), pocketsphinx, mfa, or textgrid (read SPEECH.TextGrid).")
    ] = AlignerChoice.auto,
    mfa_acoustic_model: Annotated[
        str | None, typer.Option("--mfa-acoustic-model", help="MFA acoustic model: an MFA model name or a path (default english_us_arpa).")
    ] = None,
    mfa_dictionary: Annotated[
        str | None, typer.Option("--mfa-dictionary", help="MFA pronunciation dictionary: name or path (default: the acoustic model's name; 'bundled': the model's own, MFA 3.4+).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSON output file, an existing directory, or '-' for standard output (default: SPEECH.align.json beside the audio).")
    ] = None,
    textgrid: Annotated[
        Path | None, typer.Option("--textgrid", help="Also write a TextGrid (MFA layout) to this file or existing directory.")
    ] = None,
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Align speech to phones; transcripts are taken from --text/--transcript or SPEECH.txt/.lab beside each file."""
    batch = len(audio) > 1
    to_stdout = output == STDOUT
    with user_errors():
        from ..alignment import align as align_speech
        from ..alignment import find_transcript, write_json
        from ..alignment.textgrid import write_textgrid
        from ..alignment.types import to_json
        from ..atomic import check_output_path
        from ..audio import load_audio
        from ..errors import AlignmentError

        if text is not None and transcript is not None:
            raise AlignmentError("Give the transcript with --text or --transcript, not both.")
        if batch and (text is not None or transcript is not None):
            raise AlignmentError("--text/--transcript apply to one input; for several, put SPEECH.txt beside each file.")
        if batch and to_stdout:
            raise KmtalkError("-o - writes one alignment to standard output; with several inputs give a directory.")
        if transcript is not None:
            if not transcript.is_file():
                raise AlignmentError(f"Transcript file {transcript} does not exist.")
            text = transcript.read_text(encoding="utf-8", errors="replace")
        if aligner not in (AlignerChoice.mfa, AlignerChoice.auto) and (mfa_acoustic_model or mfa_dictionary):
            raise AlignmentError(f"--mfa-acoustic-model/--mfa-dictionary apply to the MFA aligner, not --aligner {aligner.value}.")
        options = {"acoustic_model": mfa_acoustic_model, "dictionary": mfa_dictionary}

        failures = 0
        with progress_bar("Aligning", enabled=not quiet) as progress:
            for done, path in enumerate(audio):
                progress(done, len(audio))
                try:
                    json_path = None if to_stdout else check_output_path(output_for(path, output, ".align.json", batch=batch), force=force)
                    grid_path = None
                    if textgrid is not None:
                        grid_path = check_output_path(output_for(path, textgrid, ".TextGrid", batch=batch), force=force)
                    words = text if text is not None else find_transcript(path)
                    speech = load_audio(path, sample_rate=sample_rate, channels=channels, raw_format=raw_format)
                    result = align_speech(speech, words, backend=aligner.value, **options)
                    if json_path is None:
                        sys.stdout.write(to_json(result))
                        sys.stdout.flush()
                    else:
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
                where = "standard output" if json_path is None else json_path
                info(f"{path} → {where}: {len(result.words)} words, {spoken} phones ({result.backend}, {result.describe_method()})")
            progress(len(audio), len(audio))
        if failures:
            raise fail(f"{failures} of {len(audio)} files could not be aligned.")
