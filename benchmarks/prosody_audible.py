"""Is the corpus's hidden prosody audible and visible? Correlations per word, printed as a table.

For every word of every sequence of a corpus built with prosody (``alignments/*.prosody.json``):
its level in the wav (dB RMS over the word), its median F0 (autocorrelation, voiced frames), its
duration per phone, and the rig's jaw opening and brow raise over the word. Each is correlated
(Pearson r) with the hidden variable that should drive it. A listener-side model can only learn
the prosody if the first three follow it; the motion carries it if the last two do.

A second table scores the rig driven by the corpus' own *true* phone timings (the best any
phone-driven rig can do) against the motionless template: on a corpus without hidden prosody
it is an oracle up to the subjects' style; with prosody, what remains is what only listening
can recover. ``--compare OTHER_CORPUS`` prints the same rows for a second corpus (e.g. one
built with ``--no-prosody --no-voice-warp``).

    python benchmarks/prosody_audible.py CORPUS_DIR [--compare OTHER_CORPUS]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from kmtalk_cli.alignment.textgrid import read_textgrid
from kmtalk_cli.face.rig import INDEX


def f0_median(x: np.ndarray, rate: int) -> float:
    """Median F0 (Hz) of the voiced 40 ms frames of ``x``, NaN when none is voiced."""
    n, hop = int(0.04 * rate), int(0.01 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    out = []
    for s in range(0, len(x) - n, hop):
        f = x[s : s + n] - x[s : s + n].mean()
        if np.sqrt((f * f).mean()) < 1e-3:
            continue
        ac = np.correlate(f, f, "full")[n - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            out.append(rate / lag)
    return float(np.median(out)) if out else float("nan")


def tilt_db(x: np.ndarray, rate: int, split_hz: float = 1000.0) -> float:
    """Spectral tilt of ``x``: energy above ``split_hz`` against below it, in dB. A level change
    leaves it alone; real vocal effort flattens the spectrum (more energy high up)."""
    if len(x) < 2:
        return float("nan")
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    return float(10 * np.log10((power[freqs >= split_hz].sum() + 1e-12) / (power[freqs < split_hz].sum() + 1e-12)))


def word_table(root: Path) -> dict[str, list[float]]:
    """Per word: hidden variables and what the wav and the rig show."""
    keys = ("loudness_db", "emphasis", "rate", "gain", "effort", "rms_db", "tilt_db", "f0_rel", "f0_subject", "tilt_subject", "sec_per_phone", "jaw", "brow")
    cols: dict[str, list[float]] = {k: [] for k in keys}
    subjects, f0_hz = [], []  # per word: its speaker, its median F0
    for path in sorted((root / "alignments").glob("*.prosody.json")):
        name = path.name.removesuffix(".prosody.json")
        plan = json.loads(path.read_text())
        grid = read_textgrid(root / "alignments" / f"{name}.TextGrid")
        audio, rate = sf.read(root / "wav" / f"{name}.wav", dtype="float32")
        rig = np.load(root / "rig" / f"{name}.npy")
        fps = len(rig) / (len(audio) / rate)
        words, k = [], 0
        for seg in grid.words:  # lay the tier over the plan's words in order
            while k < len(plan["words"]) and plan["words"][k]["word"] != seg.label:
                k += 1
            if k < len(plan["words"]):
                words.append((plan["words"][k], seg))
                k += 1
        f0s = []
        for w, seg in words:
            a, b = int(seg.start * rate), int(seg.end * rate)
            fa, fb = int(seg.start * fps), max(int(seg.end * fps), int(seg.start * fps) + 1)
            n_ph = sum(1 for p in grid.phones if p.start >= seg.start - 1e-6 and p.end <= seg.end + 1e-6)
            cols["rms_db"].append(float(20 * np.log10(np.sqrt((audio[a:b] ** 2).mean()) + 1e-9)))
            cols["tilt_db"].append(tilt_db(audio[a:b], rate))
            cols["effort"].append(float(plan["effort"]))
            f0s.append(f0_median(audio[a:b], rate))
            cols["sec_per_phone"].append((seg.end - seg.start) / max(n_ph, 1))
            cols["jaw"].append(float(rig[fa:fb, INDEX["jawOpen"]].max()))
            cols["brow"].append(float(rig[fa:fb, INDEX["browInnerUp"]].max()))
            for key in ("loudness_db", "emphasis", "rate", "gain"):
                cols[key].append(float(w[key]))
        f0 = np.asarray(f0s)
        cols["f0_rel"] += list(np.log2(f0 / np.nanmedian(f0)) * 12)  # semitones from the utterance's median
        f0_hz += f0s
        subjects += [name.rsplit("_sentence", 1)[0]] * len(f0s)
    # What a listener who knows the speaker hears: F0 (semitones) and tilt (dB) against the speaker's medians.
    who, f0_all, tilt = np.asarray(subjects), np.asarray(f0_hz), np.asarray(cols["tilt_db"])
    f0_subject, tilt_subject = np.full(len(who), np.nan), np.full(len(who), np.nan)
    for subject in set(subjects):
        mine = who == subject
        f0_subject[mine] = np.log2(f0_all[mine] / np.nanmedian(f0_all[mine])) * 12
        tilt_subject[mine] = tilt[mine] - np.nanmedian(tilt[mine])
    cols["f0_subject"], cols["tilt_subject"] = list(f0_subject), list(tilt_subject)
    return cols


def corr(a: list[float], b: list[float]) -> float:
    a_, b_ = np.asarray(a), np.asarray(b)
    ok = np.isfinite(a_) & np.isfinite(b_)
    return float(np.corrcoef(a_[ok], b_[ok])[0, 1])


PAIRS = (
    ("loudness_db", "rms_db", "audible: word level (dB) follows hidden loudness"),
    ("effort", "rms_db", "audible as a level: word level (dB) follows the utterance's vocal effort"),
    ("effort", "tilt_db", "audible beyond its level: spectral tilt (dB above / below 1 kHz) follows effort"),
    ("effort", "tilt_subject", "the same, against the speaker's median tilt"),
    ("effort", "f0_subject", "audible beyond its level: F0 (semitones from the speaker's median) follows effort"),
    ("emphasis", "f0_rel", "audible: F0 (semitones) rises on accents"),
    ("rate", "sec_per_phone", "audible: local rate shortens phones (expect r < 0)"),
    ("gain", "jaw", "visible: jaw opening follows articulation gain"),
    ("emphasis", "brow", "visible: brows rise on accents"),
)


def rig_gap(root: Path) -> dict[str, float]:
    """Lip error (mm, pooled) of the rig on the true phones, and of the template, over every sequence."""
    from kmtalk_cli.data.dataset import open_dataset
    from kmtalk_cli.evaluation import resolve_regions
    from kmtalk_cli.face.rig import build_rig
    from kmtalk_cli.face.template import bundled_template
    from kmtalk_cli.metrics import lve_mm
    from kmtalk_cli.pipeline import rig_motion

    dataset = open_dataset(root)
    lips = resolve_regions(dataset).lips
    head = bundled_template()
    rig = build_rig(head)
    rig_err, still_err = [], []
    for ref in dataset.sequences:
        seq = dataset.load(ref, with_audio=False)
        n = len(seq.vertices)
        pred = rig_motion(dataset.alignment(ref), head, n, seq.fps, rig=rig, rest=seq.template)
        rig_err.append(lve_mm(pred, seq.vertices, lips))
        still_err.append(lve_mm(np.repeat(seq.template[None], n, axis=0), seq.vertices, lips))
    return {"rig": float(np.mean(np.concatenate(rig_err))), "template": float(np.mean(np.concatenate(still_err)))}


def aligner_error(root: Path) -> tuple[float, float, int]:
    """The built-in aligner (given the text) against the corpus' true phone starts: mean |error| and median signed error (ms)."""
    from kmtalk_cli.alignment import align
    from kmtalk_cli.alignment.evaluate import TimedPhone, boundary_errors
    from kmtalk_cli.audio import load_audio

    errors = []
    for grid_path in sorted((root / "alignments").glob("*.TextGrid")):
        name = grid_path.stem
        truth = read_textgrid(grid_path)
        wav = root / "wav" / f"{name}.wav"
        hyp = align(load_audio(wav), (root / "wav" / f"{name}.txt").read_text().strip(), backend="pocketsphinx")
        errors.append(boundary_errors([TimedPhone(p.label, p.start) for p in truth.phones], hyp))
    e = np.concatenate(errors) * 1000
    return float(np.abs(e).mean()), float(np.median(e)), int(e.size)


def main(root: Path, compare: Path | None = None) -> None:
    cols = word_table(root)
    print(f"{len(cols['rms_db'])} words from {root}")
    print("| hidden | measured | Pearson r | meaning |")
    print("|---|---|---:|---|")
    for hidden, seen, meaning in PAIRS:
        print(f"| {hidden} | {seen} | {corr(cols[hidden], cols[seen]):+.2f} | {meaning} |")
    print("\n| corpus | rig on the true phones, LVE (mm) | template, LVE (mm) | rig / template |")
    print("|---|---:|---:|---:|")
    for path in (root, compare) if compare else (root,):
        gap = rig_gap(path)
        print(f"| {path} | {gap['rig']:.3f} | {gap['template']:.3f} | {gap['rig'] / gap['template']:.2f} |")
    # SSML changes the speech, not the clock: the aligner should find the true boundaries as well as before.
    print("\n| corpus | aligner vs true phone starts, mean abs (ms) | median signed (ms) | boundaries |")
    print("|---|---:|---:|---:|")
    for path in (root, compare) if compare else (root,):
        mean_abs, median, n = aligner_error(path)
        print(f"| {path} | {mean_abs:.1f} | {median:+.1f} | {n} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--compare" else None)
