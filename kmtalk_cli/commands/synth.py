"""``kmtalk synth``: build the synthetic talking-face corpus in the VOCASET layout."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..progress import ProgressMode
from .common import ProgressOpt, QuietOpt, finite, info, progress_bar, running


class PresetChoice(str, Enum):
    tiny = "tiny"
    vocaset_like = "vocaset-like"


class VoiceChoice(str, Enum):
    espeak = "espeak"
    mbrola = "mbrola"
    both = "both"
    festival = "festival"
    espeak_festival = "espeak+festival"


def synth(
    out_dir: Annotated[Path, typer.Argument(help="Directory to create (templates.pkl, vertices_npy/, wav/, ...).")],
    preset: Annotated[PresetChoice, typer.Option("--preset", help="tiny (seconds, for tests) or vocaset-like (12 × 40).")] = PresetChoice.vocaset_like,
    subjects: Annotated[int | None, typer.Option("--subjects", help="Number of subjects (default: the preset's).", min=1, max=200)] = None,
    sentences: Annotated[int | None, typer.Option("--sentences", help="Sentences per subject (default: the preset's).", min=1, max=500)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives a byte-identical corpus.", min=0, max=2**31 - 1)] = 0,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of the motion.", min=1.0, max=240.0, callback=finite)] = 30.0,
    voices: Annotated[VoiceChoice, typer.Option("--voices", help="espeak (espeak-ng, from the synth extra that every voice set needs), mbrola (needs the espeak-ng and mbrola programs and an MBROLA voice such as Debian's mbrola-us1; not for commercial use) or both (subjects alternate); festival / espeak+festival: Festival's kal, ked and slt voices (Debian festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts, free; an optional extra).")] = VoiceChoice.espeak,
    prosody: Annotated[bool, typer.Option("--prosody/--no-prosody", help="Hidden per-utterance and per-word effort, accents, rate and phrasing that shape both the speech (SSML) and the motion (espeak-ng voices).")] = True,
    voice_warp: Annotated[bool, typer.Option("--voice-warp/--no-voice-warp", help="Give each subject its own vocal-tract length (resampling warp, timings stay exact).")] = True,
    effort_voice: Annotated[bool, typer.Option("--effort-voice/--no-effort-voice", help="Make the hidden vocal effort heard beyond the level: the pitch rises and the spectrum brightens as a voice speaks up (espeak-ng voices, with --prosody).")] = False,
    held_out_family: Annotated[str, typer.Option("--held-out-family", help="Keep this voice family (espeak-male, espeak-female, espeak-named, mbrola) out of train/val/test, as an 'unseen' split.")] = "",
    workers: Annotated[int, typer.Option("--workers", help="Processes to use (0: one per core, at most 4).", min=0, max=64)] = 0,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing OUT_DIR (only once the new corpus is complete).")] = False,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Build a synthetic talking-face corpus: rigged head + espeak-ng speech with exact phone timings."""
    with running("synth", progress, quiet=quiet) as rep:
        from dataclasses import replace

        from ..alignment.espeak import ESPEAK_MISSING, EspeakError
        from ..alignment.lexicon import espeak_installed
        from ..data.synth import PRESETS, build_corpus

        if not espeak_installed():  # every voice's word timings come from espeak-ng's phonemes
            raise EspeakError(ESPEAK_MISSING)
        options = PRESETS[preset.value]
        options = replace(
            options,
            subjects=subjects if subjects is not None else options.subjects,
            sentences=sentences if sentences is not None else options.sentences,
            seed=seed,
            fps=fps,
            voices=voices.value,
            workers=workers,
            prosody=prosody,
            voice_warp=voice_warp,
            held_out_family=held_out_family,
            effort_voice=effort_voice,
        )
        with progress_bar(f"Synthesising {out_dir.name}", enabled=not quiet) as update:
            summary = build_corpus(out_dir, options, force=force, progress=update)
        minutes = summary.seconds / 60.0
        info(
            f"Wrote {summary.path}: {len(summary.subjects)} subjects, {summary.sequences} sequences, "
            f"{summary.frames} frames ({minutes:.1f} min of speech)"
        )
