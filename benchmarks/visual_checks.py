"""Does the face read as real on human speech? Mouth shapes, rest, blinks, brows, head — per model.

    python benchmarks/visual_checks.py [--models faceformer-km,rig,...] [--sheets DIR] [--no-gate] [--no-liveliness]

Every real recording on the machine that the aligner can read is used: Debian's
``pocketsphinx-testdata`` LibriVox sentences, card names, ``goforward.raw``, ``numbers.raw`` and
``something.raw`` (16 kHz raw PCM), and ``examples/amiable.wav``. Clips with a transcript are
force-aligned to it; the others are aligned to recognised words, as ``kmtalk animate`` does.
Each model animates each clip through :func:`kmtalk_cli.pipeline.animate` (what a user gets), and
per model, pooled over clips:

* **m/b/p closed** — share of M/B/P phones during which the inner-lip gap
  (:func:`kmtalk_cli.face.rig.lip_gap`) comes within 1 mm of the rest pose's gap;
* **F/V gap, AA/AE gap** — median inner-lip gap (mm) at those phones' middles (F/V should be at
  most half of AA/AE: the lower lip tucks under the upper teeth with the jaw nearly closed);
* **rest ≤150 ms** — share of silences of 250 ms or more in which the gap is back within 1 mm of
  rest within 150 ms of the silence's start, and the median time that takes (a silence the
  mouth never rests in counts as its full length);
* **ends** — largest distance from the rest gap of the first and the last frame (mm);
* **blinks/min** — eyelid closures (the lids closer than 40% of their rest opening),
  per minute of audio, and their median duration (below 80% of the rest opening);
* **brow, head** — peak-to-peak brow height (mm, mean of the brow landmarks) and head
  rotation (degrees, largest axis of the model's head pose; 0 with none).

``--corpus DIR`` measures a corpus from ``kmtalk synth`` instead (its ground-truth motion with
its true phones). With ``--sheets DIR`` it also writes, per model, a contact sheet (PNG) of one clip's rest, M/B/P,
F/V and AA/AE frames, each from the front, three-quarter and mouth close-up views, drawn as
``kmtalk render`` draws them (teeth, tongue, eyes, scalp, head pose).
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA = Path("/usr/share/pocketsphinx/test/data")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BILABIALS = {"M", "B", "P"}
LABIODENTALS = {"F", "V"}
OPEN_VOWELS = {"AA", "AE"}
MIN_PAUSE = 0.25
REST_WITHIN_MM = 1.0
REST_DEADLINE = 0.150
SHEET_CLIP = "amiable"


@dataclass
class Clip:
    """A real recording and what is known of its words."""

    name: str
    path: Path
    text: str | None


@dataclass
class Tally:
    """Per-model measurements, pooled over clips."""

    closures: list[bool] = field(default_factory=list)
    fv_gaps: list[float] = field(default_factory=list)
    open_gaps: list[float] = field(default_factory=list)
    rest_times: list[float] = field(default_factory=list)
    end_offsets: list[float] = field(default_factory=list)
    blinks: int = 0
    blink_durations: list[float] = field(default_factory=list)
    seconds: float = 0.0
    brow_ranges: list[float] = field(default_factory=list)
    head_ranges: list[float] = field(default_factory=list)
    wall: float = 0.0


def _transcripts(path: Path) -> dict[str, str]:
    """``<s> words </s> (name)`` lines → name → words."""
    found = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            m = re.match(r"\s*<s>(.*)</s>\s*\((.+)\)", line)
            if m:
                found[m.group(2).strip()] = m.group(1).strip()
    return found


def find_clips(data: Path = DATA, examples: Path = EXAMPLES) -> list[Clip]:
    """Every real recording this benchmark knows how to find, with transcripts where they exist."""
    clips = []
    librivox = _transcripts(data / "librivox" / "transcription")
    for name, text in sorted(librivox.items()):
        clips.append(Clip(f"librivox-{name[-4:]}", data / "librivox" / f"{name}.wav", text))
    cards = _transcripts(data / "cards" / "cards.transcription")
    for name, text in sorted(cards.items()):
        clips.append(Clip(f"cards-{name}", data / "cards" / f"{name}.wav", text))
    raw = {"goforward": "go forward ten meters", "numbers": None, "something": None}
    for name, text in raw.items():
        clips.append(Clip(name, data / f"{name}.raw", text))
    amiable = examples / "amiable.wav"
    clips.append(Clip("amiable", amiable, (examples / "amiable.txt").read_text().strip() if (examples / "amiable.txt").is_file() else None))
    return [c for c in clips if c.path.is_file()]


def _frame_of(t: float, fps: float, n: int) -> int:
    return int(np.clip(round(t * fps), 0, n - 1))


def silences(alignment, duration: float, min_length: float = MIN_PAUSE) -> list[tuple[float, float]]:
    """Stretches with no spoken phone of at least ``min_length`` seconds (leading and trailing included)."""
    from kmtalk_cli.alignment.phones import SIL

    spoken = sorted((p.start, p.end) for p in alignment.phones if p.label != SIL)
    out, t = [], 0.0
    for start, end in spoken:
        if start - t >= min_length:
            out.append((t, start))
        t = max(t, end)
    if duration - t >= min_length:
        out.append((t, duration))
    return out


def time_to_rest(gap: np.ndarray, rest: float, start: float, end: float, fps: float) -> float:
    """Seconds from ``start`` until the gap is within 1 mm of rest (the silence's length if never)."""
    a, b = _frame_of(start, fps, len(gap)), _frame_of(end, fps, len(gap))
    near = np.flatnonzero(np.abs(gap[a : b + 1] - rest) <= REST_WITHIN_MM)
    return float(near[0] / fps) if len(near) else float(end - start)


def eye_openness(vertices: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Mean upper-to-lower lid height (m) over both eyes' facing lid landmarks, per frame."""
    pairs = ((37, 41), (38, 40), (43, 47), (44, 46))
    return np.mean([vertices[:, lm[u], 1] - vertices[:, lm[d], 1] for u, d in pairs], axis=0)


def blink_runs(openness: np.ndarray, rest: float, fps: float) -> list[float]:
    """Durations (s) of blinks: runs with the lids below 80% of their rest opening that reach
    below 40% somewhere (the whole visible movement, closing and opening, as blinks are timed)."""
    runs, length, deep = [], 0, False
    for value in np.append(openness, rest):
        if value < 0.8 * rest:
            length += 1
            deep |= bool(value < 0.4 * rest)
        elif length:
            if deep:
                runs.append(length / fps)
            length, deep = 0, False
    return runs


def brow_height(vertices: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Mean height of the brow landmarks (m) in the head's frame, per frame."""
    return vertices[:, lm[17:27], 1].mean(axis=1)


def measure(anim, alignment, tally: Tally, rest_gap: float, rest_eye: float, rest_brow: float) -> None:
    """Add one clip's animation to the model's tally."""
    from kmtalk_cli.face.rig import lip_gap

    lm = anim.template.landmarks
    v = np.asarray(anim.vertices, dtype=np.float64)
    fps, n = anim.fps, len(v)
    gap = lip_gap(v, lm) * 1000.0
    for p in alignment.phones:
        a, b = _frame_of(p.start, fps, n), _frame_of(p.end, fps, n)
        mid = gap[_frame_of(0.5 * (p.start + p.end), fps, n)]
        if p.label in BILABIALS:
            tally.closures.append(bool(gap[a : b + 1].min() <= rest_gap + REST_WITHIN_MM))
        elif p.label in LABIODENTALS:
            tally.fv_gaps.append(float(mid))
        elif p.label in OPEN_VOWELS:
            tally.open_gaps.append(float(mid))
    duration = n / fps
    for start, end in silences(alignment, duration):
        tally.rest_times.append(time_to_rest(gap, rest_gap, start, end, fps))
    tally.end_offsets.append(float(max(abs(gap[0] - rest_gap), abs(gap[-1] - rest_gap))))
    runs = blink_runs(eye_openness(v, lm), rest_eye, fps)
    tally.blinks += len(runs)
    tally.blink_durations += runs
    tally.seconds += duration
    brow = brow_height(v, lm) * 1000.0
    tally.brow_ranges.append(float(brow.max() - brow.min()))
    pose = getattr(anim, "head_pose", None)
    tally.head_ranges.append(float(np.degrees(np.ptp(pose.rotation, axis=0).max())) if pose is not None else 0.0)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def table(results: dict[str, Tally]) -> str:
    """The per-model table, markdown."""
    head = (
        "| model | m/b/p closed | F/V gap mm | AA/AE gap mm | F/V ÷ AA/AE | rest ≤150 ms | to rest ms | ends mm "
        "| blinks/min | blink ms | brow mm | head ° |"
    )
    rows = [head, "|" + "---|" * 12]
    for model, t in results.items():
        fv, aa = _median(t.fv_gaps), _median(t.open_gaps)
        within = sum(x <= REST_DEADLINE for x in t.rest_times)
        rows.append(
            f"| {model} | {sum(t.closures)}/{len(t.closures)} ({np.mean(t.closures):.0%}) | {fv:.1f} | {aa:.1f} | {fv / aa:.2f} "
            f"| {within}/{len(t.rest_times)} | {1000 * _median(t.rest_times):.0f} | {max(t.end_offsets):.1f} "
            f"| {60 * t.blinks / max(t.seconds, 1e-9):.1f} | {1000 * _median(t.blink_durations):.0f} "
            f"| {_median(t.brow_ranges):.1f} | {_median(t.head_ranges):.1f} |"
        )
    return "\n".join(rows)


def contact_sheet(anim, alignment, path: Path, size: int = 320) -> Path:
    """Rows: rest, M/B/P, F/V, AA/AE (the phone nearest the clip's median gap for that class);
    columns: front, three-quarter and mouth close-up, with the head's teeth, eyes and scalp and
    the animation's head pose, as ``kmtalk render`` draws them."""
    from kmtalk_cli.alignment.phones import SIL
    from kmtalk_cli.face.rig import lip_gap
    from kmtalk_cli.render import RenderOptions
    from kmtalk_cli.render.camera import camera_view
    from kmtalk_cli.render.pipeline import render_stills
    from kmtalk_cli.render.png import tile, write_png

    face = anim.template
    v = np.asarray(anim.vertices, dtype=np.float32)
    fps, n = anim.fps, len(v)
    gap = lip_gap(v, face.landmarks) * 1000.0
    picks: list[tuple[str, int]] = []
    for title, labels in (("rest", {SIL}), ("M/B/P", BILABIALS), ("F/V", LABIODENTALS), ("AA/AE", OPEN_VOWELS)):
        phones = [p for p in alignment.phones if p.label in labels]
        if not phones:
            continue
        frames = [_frame_of(0.5 * (p.start + p.end), fps, n) for p in phones]
        names = [p.label for p in phones]
        if title == "rest":
            frames, names = [0, *frames], ["start", *names]
        median = np.median(gap[frames])
        k = min(range(len(frames)), key=lambda i: abs(gap[frames[i]] - median))
        picks.append((f"{title} {names[k]} {gap[frames[k]]:.1f}MM {frames[k] / fps:.2f}S", frames[k]))
    pose = getattr(anim, "head_pose", None)
    rows = []
    for title, frame in picks:
        still = None if pose is None else type(pose)(pose.fps, pose.rotation[frame : frame + 1], pose.gaze[frame : frame + 1])
        row = []
        for view in ("front", "three-quarter", "mouth"):
            options = RenderOptions(size=size, view=camera_view(view), labels=(f"{title} {view}",))
            row += render_stills(v[frame : frame + 1], face, options=options, head_pose=still)
        rows.append(row)
    write_png(path, tile(rows))
    path.with_suffix(".txt").write_text(f"{anim.model}\n" + "\n".join(f"row {i + 1}: {t}" for i, (t, _) in enumerate(picks)) + "\n")
    return path


def corpus_tally(root: Path) -> Tally:
    """The same measurements on a synthetic corpus's ground-truth motion, with its true phones."""
    import pickle
    from types import SimpleNamespace

    from kmtalk_cli.alignment.textgrid import read_textgrid
    from kmtalk_cli.face.rig import lip_gap

    landmarks = np.array([int(x) for x in (root / "landmarks.txt").read_text().replace(",", " ").split()])
    with open(root / "templates.pkl", "rb") as fh:
        templates = pickle.load(fh)  # our own corpus, written by kmtalk synth
    fps = float(__import__("json").loads((root / "metadata.json").read_text()).get("fps", 30.0))
    tally = Tally()
    for path in sorted((root / "vertices_npy").glob("*.npy")):
        rest = np.asarray(templates[path.stem.rsplit("_", 1)[0]], dtype=np.float64)
        frames = np.load(path).reshape(-1, rest.shape[0], 3)
        alignment = read_textgrid(root / "alignments" / f"{path.stem}.TextGrid")
        anim = SimpleNamespace(vertices=frames, fps=fps, template=SimpleNamespace(landmarks=landmarks), model="corpus")
        rest_gap = float(lip_gap(rest[None], landmarks)[0] * 1000.0)
        measure(anim, alignment, tally, rest_gap, float(eye_openness(rest[None], landmarks)[0]), 0.0)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="", help="Comma-separated: <backbone>, <backbone>-km or rig (default: every bundled one + rig).")
    parser.add_argument("--sheets", type=Path, default=None, help="Folder for the contact sheets (PNG); none without it.")
    parser.add_argument("--no-gate", action="store_true", help="Animate without the articulatory gate.")
    parser.add_argument("--no-liveliness", action="store_true", help="Animate without the liveliness layer.")
    parser.add_argument("--clips", default="", help="Comma-separated clip names to keep (default: all found).")
    parser.add_argument("--corpus", type=Path, default=None, help="Instead: measure a corpus from `kmtalk synth` (its ground truth, true phones).")
    args = parser.parse_args()
    if args.corpus is not None:
        print(table({f"corpus {args.corpus.name}": corpus_tally(args.corpus)}))
        return

    import inspect

    from kmtalk_cli.alignment import align
    from kmtalk_cli.audio import load_audio
    from kmtalk_cli.face.rig import lip_gap
    from kmtalk_cli.face.template import bundled_template
    from kmtalk_cli.pipeline import animate
    from kmtalk_cli.weights import bundled_checkpoints

    models = [m for m in args.models.split(",") if m] or [c.path.stem for c in bundled_checkpoints()] + ["rig"]
    clips = find_clips()
    if args.clips:
        keep = set(args.clips.split(","))
        clips = [c for c in clips if c.name in keep]
    if not clips:
        raise SystemExit("No real speech found; install Debian's pocketsphinx-testdata.")
    head = bundled_template()
    hv = head.vertices[None].astype(np.float64)
    rest_gap = float(lip_gap(hv, head.landmarks)[0] * 1000.0)
    rest_eye = float(eye_openness(hv, head.landmarks)[0])
    rest_brow = float(brow_height(hv, head.landmarks)[0])
    layers = {}
    accepted = inspect.signature(animate).parameters
    if "gate" in accepted:
        layers["gate"] = not args.no_gate
    if "liveliness" in accepted:
        layers["liveliness"] = not args.no_liveliness
    print(f"rest inner-lip gap {rest_gap:.2f} mm; layers {layers or 'none'}; {len(clips)} clips: {', '.join(c.name for c in clips)}")
    results = {m: Tally() for m in models}
    for clip in clips:
        audio = load_audio(clip.path, sample_rate=16000 if clip.path.suffix == ".raw" else None)
        alignment = align(audio, clip.text)
        for model in models:
            backbone, km = (model[:-3], True) if model.endswith("-km") else (model, False)
            t0 = time.perf_counter()
            anim = animate(audio, backbone=backbone, key_motions=km if backbone != "rig" else None, alignment=alignment, **layers)
            results[model].wall += time.perf_counter() - t0
            measure(anim, alignment, results[model], rest_gap, rest_eye, rest_brow)
            if args.sheets is not None and clip.name == SHEET_CLIP:
                args.sheets.mkdir(parents=True, exist_ok=True)
                print(f"  sheet: {contact_sheet(anim, alignment, args.sheets / f'{model}.png')}")
    seconds = next(iter(results.values())).seconds
    print(f"\n{seconds:.1f} s of real speech over {len(clips)} clips\n")
    print(table(results))


if __name__ == "__main__":
    main()
