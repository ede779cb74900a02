"""Letter-to-sound accuracy: kmtalk's learnt model against espeak-ng, on CMUdict and in alignment.

Table 1 holds out a random share of CMUdict's plain-letter words, learns the model from the rest
(as ``tools/build_g2p_table.py`` does from all of it) and scores both engines on the held-out
words: word accuracy (the prediction equals one of the word's CMUdict pronunciations) and phone
error rate (edit distance to the nearest of them, over the reference length).

Table 2 asks what matters to the aligner: real LibriVox speech (and the example clip), with one
word at a time made unknown to the aligner and pronounced by an engine instead. The reference is
the alignment with every word from CMUdict; the table gives how far that word's start and end,
and all word boundaries of the clip, move. Table 3 aligns espeak-ng speech of sentences full of
made-up names against its exact phone times, with either lexicon. espeak-ng rows and table 3
need the ``synth`` extra.

    python benchmarks/g2p_accuracy.py [--holdout 0.05] [--seed 0] [--no-align]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from kmtalk_cli.alignment import g2p, lexicon
from kmtalk_cli.alignment.lexicon import Pronunciation
from kmtalk_cli.metrics import edit_distance

CLIPS = Path("/usr/share/pocketsphinx/test/data/librivox")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "amiable.wav"



def score(predict: Callable[[str], tuple[str, ...]], words: Sequence[str], entries) -> tuple[float, float, float]:
    """(word accuracy, phone error rate, ms per word) of ``predict`` against CMUdict."""
    correct = errors = length = 0
    start = time.perf_counter()
    for word in words:
        references = [tuple(p.rstrip("012") for p in ref) for ref in entries[word]]
        guess = predict(word)
        best = min(edit_distance(guess, ref) for ref in references)
        correct += best == 0
        errors += best
        length += len(references[0])
    return correct / len(words), errors / length, 1000 * (time.perf_counter() - start) / len(words)


def dictionary_table(holdout: float, seed: int, also_held: set[str]) -> g2p.LetterToSound:
    """Table 1: held-out CMUdict words. Returns the model, learnt without them and ``also_held``."""
    entries = lexicon._cmudict()
    words = sorted(word for word, _ in g2p.training_pairs(entries))
    random.Random(seed).shuffle(words)
    held = set(words[: round(holdout * len(words))])
    start = time.perf_counter()
    model = g2p.learn({w: p for w, p in entries.items() if w not in held | also_held})
    learnt_in = time.perf_counter() - start
    held_words = sorted(held)
    print(f"\nHeld-out CMUdict words: {len(held_words)} of {len(words)} (seed {seed}); model learnt from the rest in {learnt_in:.1f} s, {len(model.table)} windows\n")
    print("| engine | word accuracy | phone error rate | ms/word |")
    print("|---|---|---|---|")
    rows = [("kmtalk g2p (learnt)", model.pronounce)]
    if lexicon.espeak_installed():
        rows.append(("espeak-ng en-us", lambda w: lexicon.espeak_g2p(w)))
    for name, predict in rows:
        accuracy, per, ms = score(predict, held_words, entries)
        print(f"| {name} | {accuracy:.2%} | {per:.2%} | {ms:.2f} |")
    g2p.bundled.cache_clear()
    start = time.perf_counter()
    bundled = g2p.bundled()
    print(
        f"\nBundled table (learnt from all of CMUdict): {len(bundled.table)} windows, "
        f"{g2p.TABLE_PATH.stat().st_size / 1e6:.2f} MB, read on first use in {time.perf_counter() - start:.2f} s"
    )
    return model


def clips() -> list[tuple[Path, str]]:
    """Real speech with transcripts: the LibriVox test clips and the example clip."""
    found = []
    if (CLIPS / "transcription").exists():
        for line in (CLIPS / "transcription").read_text().splitlines():
            text, _, name = line.replace("<s>", "").replace("</s>", "").rpartition("(")
            found.append((CLIPS / f"{name.strip(') ')}.wav", text.strip()))
    if EXAMPLE.exists():
        found.append((EXAMPLE, EXAMPLE.with_suffix(".txt").read_text().strip()))
    return [(path, text) for path, text in found if path.exists()]


def alignment_table(model: g2p.LetterToSound, min_letters: int = 4) -> None:
    """Table 2: one word at a time pronounced by an engine instead of CMUdict, on real speech.

    ``model`` must have been learnt without the clips' words, so they are new to it.
    """
    from kmtalk_cli.alignment import align
    from kmtalk_cli.alignment import pocketsphinx as ps

    engines: list[tuple[str, Callable[[str], tuple[str, ...]]]] = [("kmtalk g2p (learnt without these words)", model.pronounce)]
    if lexicon.espeak_installed():
        engines.append(("espeak-ng en-us", lambda w: lexicon.espeak_g2p(w)))
    original = ps.pronounce
    results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name, _ in engines}
    trials = 0
    stand_ins: list[str] = []
    for path, text in clips():
        words = text.split()
        reference = align(path, text, backend="pocketsphinx")
        ref_words = [w for w in reference.words if w.label != "SIL"]
        if [w.label for w in ref_words] != words:
            continue
        for k, word in enumerate(words):
            if len(word) < min_letters:
                continue
            trials += 1
            for name, engine in engines:
                phones = engine(word)
                # A fresh spelling neither dictionary holds (the aligner's decoders keep words they learnt).
                stand_in = "qqoov" + "".join(chr(97 + int(d)) for d in str(len(stand_ins)))
                stand_ins.append(stand_in)
                ps.pronounce = lambda w, _p=phones: Pronunciation(w, _p, "bench") if w == stand_in else original(w)
                try:
                    result = align(path, " ".join(words[:k] + [stand_in] + words[k + 1:]), backend="pocketsphinx")
                finally:
                    ps.pronounce = original
                got = [w for w in result.words if w.label != "SIL"]
                if len(got) != len(ref_words) or not result.forced:
                    results[name].append((np.nan, np.nan, np.nan, 1))
                    continue
                starts = np.abs([a.start - b.start for a, b in zip(got, ref_words)])
                ends = np.abs([a.end - b.end for a, b in zip(got, ref_words)])
                phone_errors = edit_distance(phones, lexicon.cmudict_pronunciations(word)[0])
                results[name].append((1000 * starts[k], 1000 * ends[k], 1000 * float(np.mean(np.r_[starts, ends])), phone_errors))
    print(f"\nAlignment of real speech with one word treated as unknown ({trials} words of {min_letters}+ letters; reference: the all-CMUdict alignment)\n")
    print("| engine | word start shift, ms (mean / max) | word end shift, ms (mean / max) | all word boundaries, mean ms | words with phone errors |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        data = np.array(rows, dtype=float)
        failed = int(np.isnan(data[:, 0]).sum())
        ok = data[~np.isnan(data[:, 0])]
        note = f" ({failed} not forced)" if failed else ""
        print(
            f"| {name} | {ok[:, 0].mean():.1f} / {ok[:, 0].max():.0f} | {ok[:, 1].mean():.1f} / {ok[:, 1].max():.0f} | "
            f"{ok[:, 2].mean():.1f} | {int((data[:, 3] > 0).sum())} of {len(data)}{note} |"
        )


#: Sentences whose names and coinages CMUdict lacks (two or three each).
OOV_SENTENCES = (
    "Kmtalk moves the lips of a virtual zorblax with ease.",
    "Our friend Brontavia flew to Quenzelburg on Tuesday.",
    "The startup Flimberly sold its grottaplex to Vantrish.",
    "Doctor Ashwendle prescribed florminade for the cough.",
    "Yesterday the glorptastic gadget broke near Tremblowe.",
    "Marisqua and Delphonte painted the shed bright blue.",
    "The chef served crendolini with a spoon of barvish sauce.",
    "Please ask Jorvanek about the snedrick contract.",
    "Tamzorin Street floods whenever the Blathwick river rises.",
    "A spindlewort grew beside the old Kelverton mill.",
)


def synthetic_table(voices: Sequence[str] = ("en-us", "en-us+f3", "en-us+m3")) -> None:
    """Table 3: espeak-ng speech of sentences with unknown words, exact phone times, either lexicon.

    espeak-ng speaks each unknown word as its own rules spell it, so this favours the espeak-ng
    lexicon; the question is only whether the learnt one is clearly worse.
    """
    import warnings

    from kmtalk_cli.alignment import align
    from kmtalk_cli.alignment.espeak import synthesize
    from kmtalk_cli.alignment.evaluate import boundary_errors, reference_from_espeak
    from kmtalk_cli.alignment.pocketsphinx import POOL
    from kmtalk_cli.audio import from_array

    speech = [(v, t, synthesize(t, v)) for v in voices for t in OOV_SENTENCES]
    installed = lexicon.espeak_installed
    print(f"\nespeak-ng speech of {len(OOV_SENTENCES)} sentences with unknown words × {len(voices)} voices (exact phone starts)\n")
    print("| lexicon for unknown words | forced | phone boundary error, ms (mean / p90) | phones matched | word start error, ms (mean / p90) |")
    print("|---|---|---|---|---|")
    for name, use_espeak in (("kmtalk g2p (learnt)", False), ("espeak-ng en-us", True)):
        lexicon.espeak_installed = installed if use_espeak else (lambda: False)
        lexicon.pronounce.cache_clear()
        POOL.clear()  # decoders remember the words they were taught
        phone_errors, word_errors, matched, total, forced = [], [], 0, 0, 0
        try:
            for _, text, syn in speech:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = align(from_array(syn.samples, syn.sample_rate), text, backend="pocketsphinx")
                forced += result.forced
                reference = reference_from_espeak(syn)
                errors = boundary_errors(reference, result)
                phone_errors.append(errors)
                matched += len(errors)
                total += sum(p.label != "SIL" for p in reference) - 1
                starts: dict[int, float] = {}
                for event in syn.phonemes:
                    if event.name != "_:" and event.name != "_":
                        starts.setdefault(event.word, event.start)
                ref_words = [starts[k] for k in sorted(starts)]
                hyp_words = [w.start for w in result.words if w.label != "SIL"]
                if len(ref_words) == len(hyp_words):
                    word_errors.append(np.abs(np.subtract(hyp_words[1:], ref_words[1:])))
        finally:
            lexicon.espeak_installed = installed
            lexicon.pronounce.cache_clear()
            POOL.clear()
        e = 1000 * np.abs(np.concatenate(phone_errors))
        w = 1000 * np.concatenate(word_errors) if word_errors else np.array([np.nan])
        print(
            f"| {name} | {forced}/{len(speech)} | {e.mean():.1f} / {np.percentile(e, 90):.0f} | {matched / total:.0%} | "
            f"{np.nanmean(w):.1f} / {np.nanpercentile(w, 90):.0f} ({len(word_errors)} sentences) |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", type=float, default=0.05, help="Share of CMUdict words held out (default 0.05).")
    parser.add_argument("--seed", type=int, default=0, help="Which words are held out.")
    parser.add_argument("--no-align", action="store_true", help="Skip the alignment table.")
    args = parser.parse_args(argv)
    if not lexicon._cmudict():
        print("pocketsphinx's CMUdict was not found.", file=sys.stderr)
        return 1
    if not lexicon.espeak_installed():
        print("espeak-ng is not installed (pip install \"kmtalk[synth]\"): only the learnt model is measured.")
    speech = [] if args.no_align else clips()
    model = dictionary_table(args.holdout, args.seed, {w for _, text in speech for w in text.split()})
    if speech:
        alignment_table(model)
    if not args.no_align and lexicon.espeak_installed():
        synthetic_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
