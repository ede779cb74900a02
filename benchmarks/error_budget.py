"""How much of the lip error is anyone's to win: the synthetic corpus' lips rebuilt from parts.

A `kmtalk synth` corpus' lips are the rig driven by three things: the true phones and their
timings, the subject's speaking style (jaw, rounding and spreading gains, lead, coarticulation,
asymmetry, resting smile) and the utterance's hidden prosody (a gain per phone from effort,
emphasis and rate; the mood's smile). A model that hears a subject it never trained on can in
principle recover the phones, their timings and the prosody from the sound, but not the style:
it is drawn per subject, independently of the voice. Rebuilding the lips with some parts true and
the others replaced by the best guess a listener has (the average training subject's style, no
prosody) shows what each part costs, and where the floor under every audio-only model lies. One
part of the prosody, the utterance's vocal effort, is only a level in the speech, which every
audio encoder normalises away; a row leaves it out to show the floor for level-normalised speech.

    python benchmarks/error_budget.py --corpus /tmp/defaults/corpus --split test|unseen

Rows are scored by the evaluation code of `kmtalk evaluate` on the corpus' own templates, the
rig driven by the aligner exactly as `benchmarks/keymotion_gain.py` scores it. The first row
(every part true) must come out near zero: it checks that the rebuild is the corpus' motion.
Needs the `synth` extra: espeak-ng says each sentence again to recover its true phones.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from keymotion_gain import SPLIT, CachedAlignments, rig_floor, score
from kmtalk_cli.data import prosody
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.data.synth import Performance, SynthOptions, perform, plan_corpus, tier_by_word
from kmtalk_cli.face.coarticulation import SpeakingStyle, animate_phones
from kmtalk_cli.face.rig import build_rig
from kmtalk_cli.face.template import bundled_template

def average_style(styles: list[SpeakingStyle]) -> SpeakingStyle:
    """The mean of every field: the best single guess at an unheard subject's style."""
    return SpeakingStyle(**{f.name: float(np.mean([getattr(s, f.name) for s in styles])) for f in fields(SpeakingStyle)})


def with_mood(style: SpeakingStyle, take: Performance, subject_style: SpeakingStyle) -> SpeakingStyle:
    """``style`` plus the utterance's mood smile (part of the prosody, not of the subject)."""
    return replace(style, rest_smile=style.rest_smile + take.style.rest_smile - subject_style.rest_smile)


def without_effort(take: Performance) -> Any:
    """The take's prosody controls with the utterance's vocal effort at its mean (0).

    Effort reaches the speech only as a level (``prosody.EFFORT_DB`` per unit on every word),
    and every audio encoder here normalises each utterance's level (the mel encoder per band,
    wav2vec2 per waveform), so no model hears it; the words' loudness *relative* to each other,
    their rate and accents stay audible and stay true here."""
    plan = take.plan
    if plan is None:
        return take.controls
    level = prosody.EFFORT_DB * plan.effort
    level_free = replace(plan, effort=0.0, words=tuple(replace(w, loudness_db=w.loudness_db - level) for w in plan.words))
    return prosody.controls(level_free, take.phones, tier_by_word(take.alignment.words, [w.word for w in plan.words]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus made by `kmtalk synth` (its metadata.json holds the options)")
    parser.add_argument("--split", default="test", help="held-out split to score (test, or unseen for a held-out voice family)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    SPLIT[0] = args.split

    meta = json.loads((args.corpus / "metadata.json").read_text())
    options = SynthOptions(**{k: v for k, v in meta["options"].items() if k in {f.name for f in fields(SynthOptions)}})
    subjects, utterances, splits = plan_corpus(options)
    by_name = {u.name: u for u in utterances}
    subject_of = {s.name: s for s in subjects}
    train_style = average_style([subject_of[name].style for name in splits["subjects"]["train"]])
    dataset = open_dataset(args.corpus)
    rig = build_rig(bundled_template())
    takes: dict[str, Performance] = {}

    def rebuilt(choose: Callable[[Performance, Any], tuple[SpeakingStyle, Any]]) -> Callable[[Any], np.ndarray]:
        def predict(seq: Any) -> np.ndarray:
            spec = by_name[seq.name]
            subject = subjects[spec.subject]
            if seq.name not in takes:
                takes[seq.name] = perform(spec, subject, options.fps, options.seed, options.prosody, options.effort_voice)
            take = takes[seq.name]
            style, controls = choose(take, subject)
            params = animate_phones(take.phones, len(seq.vertices), seq.fps, style, prosody=controls, upper_face=False)
            return rig.pose(params, rest=seq.template).astype(np.float32)

        return predict

    rows: dict[str, dict[str, float]] = {}
    variants: list[tuple[str, Callable[[Performance, Any], tuple[SpeakingStyle, Any]]]] = [
        ("every part true (rebuild check: the corpus' own lips)", lambda t, s: (t.style, t.controls)),
        ("style unknown (the average training subject's), phones, timings and prosody true: a perfect listener",
         lambda t, s: (with_mood(train_style, t, s.style), t.controls)),
        ("style and the utterance's vocal effort unknown (it is only a level, which every encoder normalises away), "
         "phones, timings and the rest of the prosody true: a perfect listener to level-normalised speech",
         lambda t, s: (with_mood(train_style, t, s.style), without_effort(t))),
        ("prosody unknown, phones, timings and style true", lambda t, s: (s.style, None)),
        ("style and prosody unknown, phones and timings true", lambda t, s: (train_style, None)),
        ("the rig's own style, phones and timings true (a perfect aligner)", lambda t, s: (SpeakingStyle(), None)),
    ]
    for label, choose in variants:
        rows[label] = score(dataset, rebuilt(choose))
        print(f"{label}: {rows[label]['lve_mm']:.3f} mm", flush=True)
    rows["rig driven by the aligner (the baseline)"] = rig_floor(dataset)
    methods = Counter(a.method for key, a in CachedAlignments.cache.items() if key.startswith("aligner:"))
    rows["template (no motion)"] = score(dataset, lambda seq: np.broadcast_to(seq.template, seq.vertices.shape).copy())

    n = len(dataset.split(args.split))
    print(f"\nCorpus {args.corpus}, split {args.split} ({n} sequences, subjects never trained on); lip vertex error.\n")
    rig_lve = rows["rig driven by the aligner (the baseline)"]["lve_mm"]
    print("| lips rebuilt from | LVE (mm) | vs the rig driven by the aligner |")
    print("|---|---:|---:|")
    for label, row in rows.items():
        print(f"| {label} | {row['lve_mm']:.3f} | {100 * (row['lve_mm'] / rig_lve - 1):+.1f}% |")
    listener = rows[variants[1][0]]["lve_mm"]
    print(f"\nA model that recovers everything audible (phones, timings, prosody) but cannot know an unheard subject's style "
          f"scores about {listener:.3f} mm here: {100 * (1 - listener / rig_lve):.1f}% under the rig driven by the aligner.")
    print(f"The aligner (given each sentence's text) found the forced path for {methods['forced']} of {sum(methods.values())} "
          f"sentences ({', '.join(f'{m} {n}' for m, n in sorted(methods.items()) if m != 'forced') or 'no fallbacks'}).")
    if args.json:
        args.json.write_text(json.dumps({"corpus": str(args.corpus), "split": args.split, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
