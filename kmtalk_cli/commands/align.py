"""``kmtalk align``: speech (+ transcript) to timed ARPAbet phones, one file or a batch."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..batch import AUDIO_SUFFIXES, BatchItem, batch_output, expand_inputs, output_for, run_inputs
from ..progress import ProgressMode
from .common import JobsOpt, ProgressOpt, QuietOpt, finish, info, running
from .audio_options import ChannelsOpt, RawFormatOpt, SampleRateOpt, read_speech

#: ``-o -``: the alignment JSON goes to standard output.
STDOUT = Path("-")


class AlignerChoice(str, Enum):
    auto = "auto"
    pocketsphinx = "pocketsphinx"
    mfa = "mfa"
    textgrid = "textgrid"


@dataclass(frozen=True)
class AlignJob:
    """``kmtalk align`` over one file or a batch (see :mod:`kmtalk_cli.batch`)."""

    text: str | None
    aligner: str
    output: Path | None
    textgrid: Path | None
    audio_options: tuple[int | None, int, str]  # sample rate, channels, format of headerless PCM
    batch: bool
    mfa_models: tuple[str | None, str | None] = (None, None)  # acoustic model, dictionary

    def outputs(self, item: BatchItem) -> list[Path]:
        paths = [] if self.output == STDOUT else [output_for(item.path, self.output, ".align.json", batch=self.batch)]
        if self.textgrid is not None:
            paths.append(output_for(item.path, self.textgrid, ".TextGrid", batch=self.batch))
        return paths

    def _suffixes(self) -> list[str]:
        """The suffix each of :meth:`outputs` must end in (the shared output rule)."""
        return ([] if self.output == STDOUT else [".json"]) + ([".TextGrid"] if self.textgrid is not None else [])

    def setup(self) -> None:
        return None

    def run(self, item: BatchItem, state: None, force: bool) -> list[Path]:
        from ..alignment import align as align_speech
        from ..alignment import find_transcript, write_json
        from ..alignment.textgrid import write_textgrid
        from ..alignment.types import to_json
        from ..atomic import check_output_path, transaction
        kinds = {".json": "the alignment as JSON", ".TextGrid": "a Praat TextGrid"}
        paths = [check_output_path(p, force=force, suffixes=(s,), what=kinds[s]) for p, s in zip(self.outputs(item), self._suffixes())]
        json_path = None if self.output == STDOUT else paths.pop(0)
        words = item.text if item.text is not None else self.text if self.text is not None else find_transcript(item.path)
        speech = read_speech(item.path, *self.audio_options)
        acoustic_model, dictionary = self.mfa_models
        result = align_speech(speech, words, backend=self.aligner, acoustic_model=acoustic_model, dictionary=dictionary)
        written = []
        if json_path is None:
            sys.stdout.write(to_json(result))
            sys.stdout.flush()
        with transaction():  # the JSON and the TextGrid land together
            if json_path is not None:
                written.append(write_json(result, json_path, force=force))
            if paths:
                written.append(write_textgrid(result, paths[0], force=force))
        spoken = sum(1 for p in result.phones if p.label != "SIL")
        where = "standard output" if json_path is None else json_path
        info(f"{item.path} → {where}: {len(result.words)} words, {spoken} phones ({result.backend}, {result.describe_method()})")
        return written


def align(
    audio: Annotated[list[Path], typer.Argument(help="Speech: files, directories, quoted globs, or a manifest (.txt of paths, .csv/.tsv with path,transcript).")],
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
        Path | None, typer.Option("--output", "-o", help="JSON output file, a directory, or '-' for standard output (default: SPEECH.align.json beside the audio).")
    ] = None,
    textgrid: Annotated[
        Path | None, typer.Option("--textgrid", help="Also write a TextGrid (MFA layout) to this file or existing directory.")
    ] = None,
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs (a batch skips files whose outputs exist).")] = False,
    jobs: JobsOpt = 1,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Align speech to phones; transcripts are taken from --text/--transcript or SPEECH.txt/.lab beside each file."""
    with running("align", progress, quiet=quiet) as rep:
        from ..errors import AlignmentError

        inputs = expand_inputs(audio, AUDIO_SUFFIXES)
        if text is not None and transcript is not None:
            raise AlignmentError("Give the transcript with --text or --transcript, not both.")
        if inputs.batch and (text is not None or transcript is not None):
            raise AlignmentError("--text/--transcript apply to one input; for several, put SPEECH.txt beside each file or use a .csv manifest.")
        if inputs.batch and output == STDOUT:
            raise AlignmentError("-o - writes one alignment to standard output; with several inputs give a directory.")
        if aligner.value in ("pocketsphinx", "textgrid") and (mfa_acoustic_model or mfa_dictionary):
            raise AlignmentError(f"--mfa-acoustic-model/--mfa-dictionary apply to the MFA aligner, not --aligner {aligner.value}.")
        if transcript is not None:
            if not transcript.is_file():
                raise AlignmentError(f"Transcript file {transcript} does not exist.")
            text = transcript.read_text(encoding="utf-8", errors="replace")
        job = AlignJob(text, aligner.value, batch_output(output, inputs.batch), batch_output(textgrid, inputs.batch),
                       (sample_rate, channels, raw_format), inputs.batch, (mfa_acoustic_model, mfa_dictionary))
        finish(run_inputs(job, inputs, reporter=rep, jobs=jobs, force=force, label="Aligning"), "aligned")
