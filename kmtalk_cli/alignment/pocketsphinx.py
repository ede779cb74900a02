"""The pocketsphinx backend: forced phone alignment that installs from PyPI and runs offline.

pocketsphinx 5.1.1 ships an English acoustic model, dictionary, word LM and phone LM in its
wheel. Phone-level alignment takes two passes: a word-level FSG pass (``set_align_text``)
finds the words and pauses, then ``set_alignment`` re-decodes that sequence state by state.

Why plain usage fails on ~38% of synthetic (espeak-ng) clips, and the fixes here:

* **Digital silence.** Synthetic speech (and many edited recordings) has runs of exact zeros.
  Their log energy is minus infinity, which wrecks cepstral mean normalisation and silence
  scoring, so the FSG pass ends in a state that "does not match the grammar". A deterministic
  -80 dBFS dither (fixed seed, so results are reproducible) makes the features finite.
* **Lattice best-path rescoring.** With ``bestpath`` on, the FSG result is rescored on a
  lattice and often loses the final state or yields 1-frame phones, which the second pass
  rejects ("impossible duration"). The first pass's Viterbi result is what the second pass
  needs, so ``bestpath`` is off.
* **Filler words.** Optional silences/noises between words (``fsgusefiller``) help on real
  pauses but can trap the search; a second attempt without them recovers most of the rest.
* Words missing from pocketsphinx's dictionary make ``set_align_text`` fail outright; they are
  added with :mod:`.lexicon` pronunciations (pocketsphinx's own dictionary or espeak-ng).

A forced search always finds *some* path, so a transcript that is not what was said must be
caught separately (:class:`Misfit`): too few phones for the speech heard, phones on silence,
speech left uncovered, or a low acoustic score per frame (pocketsphinx scores each frame
relative to the best-matching model state, so a path through the wrong phones scores far below
zero). A misfit transcript is replaced by recognised words, with a warning.

Long audio is cut at pauses into chunks that are aligned independently, in parallel worker
processes when there are several (decoders are single-threaded and not shareable).

Default beams are kept: wider beams were measured to make things worse.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import AlignmentError, KmtalkWarning
from .lexicon import pronounce
from .phones import SIL, normalize_arpabet
from .types import MIXED, Alignment, Segment, fill_silence, shift, validate
from .vad import energy_segments, speech_regions, split_points

FRAME_RATE = 100  # pocketsphinx frames per second
SAMPLE_RATE = 16_000
DITHER_LEVEL = 1e-4  # ≈ -80 dBFS: far below speech, enough to keep log energies finite
MAX_CHUNK = 25.0  # seconds per decoder pass on long audio
_FILLER_WORDS = frozenset({"<s>", "</s>", "<sil>", "[noise]", "[speech]", "<unk>"})

#: Forced-alignment attempts, tried in order; each is a pocketsphinx config override.
ATTEMPTS: tuple[dict[str, Any], ...] = (
    {"bestpath": False, "fsgusefiller": True},
    {"bestpath": False, "fsgusefiller": False},
)


class NoPath(RuntimeError):
    """A decoding pass found no path through the audio (pocketsphinx raised or returned nothing)."""


class Misfit(NoPath):
    """A path was found, but the words are plainly not what was said."""


@dataclass(frozen=True)
class Chunk:
    """A stretch of the audio decoded on its own, with the words assigned to it."""

    start: float
    end: float
    words: tuple[str, ...]


def _model_dir() -> str:
    import pocketsphinx

    return pocketsphinx.get_model_path()


class _DecoderPool:
    """Decoders are costly to build (~0.1-0.4 s), so one per configuration is kept and reused.

    pocketsphinx decoders are not thread-safe; a lock serialises their use.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._decoders: dict[tuple[tuple[str, Any], ...], Any] = {}

    def get(self, kind: str, **overrides: Any) -> Any:
        key = (("kind", kind), *sorted(overrides.items()))
        if key not in self._decoders:
            self._decoders[key] = _make_decoder(kind, overrides)
        return self._decoders[key]

    def clear(self) -> None:
        self._decoders.clear()


def _make_decoder(kind: str, overrides: dict[str, Any]) -> Any:
    """Build a decoder for ``align`` (no LM: faster), ``asr`` (word LM) or ``allphone``."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise AlignmentError(
            "The pocketsphinx aligner needs the pocketsphinx package; install it with "
            "`pip install pocketsphinx==5.1.1`."
        ) from None
    config: dict[str, Any] = {"loglevel": "FATAL"}
    if kind in ("align", "edges"):
        config["lm"] = None
    elif kind == "asr":
        # The forced pass re-times the words anyway; skipping lattice rescoring saves ~30%.
        config["bestpath"] = False
    elif kind == "allphone":
        config["lm"] = None
        config["allphone"] = os.path.join(_model_dir(), "en-us", "en-us-phone.lm.bin")
        config["bestpath"] = False
    config.update(overrides)
    decoder = Decoder(**config)
    _INITIAL_CMN[id(decoder)] = decoder.get_cmn()
    return decoder


#: Each decoder's cepstral mean as built. pocketsphinx carries its running mean from one
#: utterance to the next, so a chunk's result would depend on which chunks the same decoder saw
#: before (and on the worker it landed in); :func:`_fresh` puts the initial mean back.
_INITIAL_CMN: dict[int, str] = {}


def _fresh(decoder: Any) -> Any:
    """``decoder`` as built, so a chunk decodes the same whatever came before.

    Two things carry over between utterances: the cepstral mean and the feature front end's
    noise estimate (``remove_noise``). Left alone, the second made a forced path exist or not
    depending on which sentences the same process had aligned before: aligned in one batch, 15
    of 360 synthetic sentences lost a path they have when aligned alone. ``reinit_feat``
    rebuilds the front end (well under a millisecond); the initial mean then goes back.
    """
    decoder.reinit_feat()
    initial = _INITIAL_CMN.get(id(decoder))
    if initial is not None:
        decoder.set_cmn(initial)
    return decoder


POOL = _DecoderPool()


def to_pcm(samples: np.ndarray, *, seed: int = 0) -> bytes:
    """float32 16 kHz samples → int16 bytes, DC removed and dithered (see module docstring)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size:
        x = x - x.mean()
    rng = np.random.default_rng(seed)
    x = x + rng.normal(0.0, DITHER_LEVEL, x.shape)
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _clean_word(name: str) -> str:
    """``word(2)`` (an alternate pronunciation) → ``word``."""
    return name.split("(", 1)[0]


def ensure_words(decoder: Any, words: Sequence[str]) -> list[str]:
    """Add words missing from the decoder's dictionary; return those that cannot be said.

    This is the step whose absence makes plain ``set_align_text`` fail on names and rare
    words: pocketsphinx refuses any word it cannot pronounce.
    """
    unknown: list[str] = []
    to_add: list[tuple[str, str]] = []
    for word in dict.fromkeys(words):
        if decoder.lookup_word(word) is not None:
            continue
        phones = pronounce(word).phones
        if phones:
            to_add.append((word, " ".join(phones)))
        else:
            unknown.append(word)
    # Rebuilding the search once, on the last word, keeps adding many words cheap.
    for i, (word, phones) in enumerate(to_add):
        decoder.add_word(word, phones, i == len(to_add) - 1)
    return unknown


def _run(decoder: Any, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def forced_pass(words: Sequence[str], pcm: bytes, duration: float, attempt: dict[str, Any]) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """One two-pass phone alignment of ``words`` to ``pcm``; raises :class:`NoPath`."""
    with POOL.lock:
        decoder = _fresh(POOL.get("align", **attempt))
        missing = ensure_words(decoder, words)
        usable = [w for w in words if w not in missing]
        if not usable:
            raise NoPath("no word of the transcript could be pronounced")
        try:
            decoder.set_align_text(" ".join(usable))
            _run(decoder, pcm)
            if decoder.hyp() is None:
                raise NoPath("the word pass found no path")
            decoder.set_alignment()
            _run(decoder, pcm)
            alignment = decoder.get_alignment()
        except RuntimeError as exc:
            raise NoPath(str(exc)) from None
        if alignment is None:
            raise NoPath("the phone pass returned no alignment")
        word_segs: list[Segment] = []
        phone_segs: list[Segment] = []
        score, frames = 0, 0
        for word in alignment:
            name = _clean_word(word.name)
            start, end = word.start / FRAME_RATE, (word.start + word.duration) / FRAME_RATE
            if name.lower() not in _FILLER_WORDS:
                word_segs.append(Segment(name, start, min(end, duration)))
            for phone in word:
                label = normalize_arpabet(phone.name) or SIL
                p0, p1 = phone.start / FRAME_RATE, (phone.start + phone.duration) / FRAME_RATE
                phone_segs.append(Segment(label, p0, min(p1, duration)))
                if label != SIL:
                    score, frames = score + phone.score, frames + phone.duration
    if not word_segs:
        raise NoPath("the alignment holds no words")
    if frames and score / frames < MIN_FRAME_SCORE:
        raise Misfit(f"its phones match the sound poorly (acoustic score {score / frames:.0f} per frame, below {MIN_FRAME_SCORE:g})")
    return tuple(word_segs), tuple(phone_segs)


def forced(words: Sequence[str], pcm: bytes, duration: float) -> tuple[tuple[Segment, ...], tuple[Segment, ...], list[str]]:
    """Try each configuration in :data:`ATTEMPTS`; returns segments and notes on retries."""
    reasons: list[str] = []
    for attempt in ATTEMPTS:
        try:
            words_out, phones = forced_pass(words, pcm, duration, attempt)
        except Misfit:
            raise
        except NoPath as exc:
            reasons.append(str(exc))
            continue
        notes = [] if not reasons else [f"forced alignment needed a retry without optional pauses ({reasons[0]})"]
        return words_out, phones, notes
    raise NoPath("; ".join(dict.fromkeys(reasons)))


def _hypothesis_words(decoder: Any) -> list[str]:
    """The decoder's best word hypothesis, fillers dropped."""
    hyp = decoder.hyp()
    if hyp is None:
        return []
    return [_clean_word(w) for w in hyp.hypstr.split() if w.lower() not in _FILLER_WORDS]


def recognise_words(pcm: bytes) -> list[str]:
    """Word recognition with the shipped LM: the transcript when the user gave none."""
    with POOL.lock:
        decoder = _fresh(POOL.get("asr"))
        try:
            _run(decoder, pcm)
        except RuntimeError:
            return []
        return _hypothesis_words(decoder)


def recognise_phones(pcm: bytes, duration: float) -> tuple[Segment, ...]:
    """Phone recognition (allphone search with the shipped phone LM); raises :class:`NoPath`."""
    with POOL.lock:
        decoder = _fresh(POOL.get("allphone"))
        try:
            _run(decoder, pcm)
            segs = list(decoder.seg())
        except RuntimeError as exc:
            raise NoPath(str(exc)) from None
    out = []
    for seg in segs:
        label = normalize_arpabet(seg.word) or SIL
        out.append(Segment(label, seg.start_frame / FRAME_RATE, min((seg.end_frame + 1) / FRAME_RATE, duration)))
    if not any(s.label != SIL for s in out):
        raise NoPath("phone recognition found no speech")
    return tuple(out)


#: Mean acoustic score per phone frame below which the words are not what was said. pocketsphinx
#: scores a frame relative to its best-matching state (0 = best possible); the measurements
#: behind this value are in docs/alignment.md.
MIN_FRAME_SCORE = -42.0
#: Fewer transcript phones per second of detected speech than this: words are missing.
MIN_PHONE_RATE = 3.0
#: Seconds of speech needed before the phone rate is judged (short clips are too noisy).
MIN_JUDGED_SPEECH = 1.5
#: Below this share of phone time on detected speech, a forced path is judged not to fit.
MIN_SPEECH_SHARE = 0.5
#: Below this share of detected speech covered by phones, words are missing from the transcript.
MIN_SPEECH_COVERED = 0.5


def check_plausible(phones: Sequence[Segment], samples: np.ndarray) -> None:
    """Reject a forced path that put the words on silence: the transcript does not fit.

    A Viterbi search always finds *some* path when pauses are optional, even for the wrong
    words or for silence; real alignments keep their phones on the audible parts.
    """
    regions = speech_regions(samples, SAMPLE_RATE)
    if not regions:
        raise NoPath("the audio holds no audible speech")
    spoken = [p for p in phones if p.label != SIL]
    total = sum(p.duration for p in spoken)
    on_speech = sum(max(0.0, min(p.end, e) - max(p.start, s)) for p in spoken for s, e in regions)
    if total > 0 and on_speech / total < MIN_SPEECH_SHARE:
        raise Misfit(f"only {on_speech / total:.0%} of the aligned phones lie on speech")
    speech_time = sum(e - s for s, e in regions)
    if speech_time > 0 and on_speech / speech_time < MIN_SPEECH_COVERED:
        raise Misfit(f"its phones cover only {on_speech / speech_time:.0%} of the speech")


def check_phone_rate(words: Sequence[str], samples: np.ndarray) -> None:
    """Refuse, before aligning, a transcript with far too few phones for the speech heard.

    Two unrelated words over a 3 s sentence get stretched into *a* path; the phone rate (about
    12 per second of speech in read English) shows they cannot be all that was said.
    """
    speech_time = sum(e - s for s, e in speech_regions(samples, SAMPLE_RATE))
    if speech_time < MIN_JUDGED_SPEECH:
        return
    phones = sum(max(1, len(pronounce(w).phones)) for w in words)
    if phones / speech_time < MIN_PHONE_RATE:
        raise Misfit(
            f"{len(words)} word{'s' if len(words) != 1 else ''} ({phones} phones) cannot fill "
            f"{speech_time:.1f} s of speech ({phones / speech_time:.1f} phones per second; speech has about 12)"
        )


@dataclass(frozen=True)
class ChunkResult:
    """The outcome for one chunk: segments in chunk-local seconds and how they were found."""

    words: tuple[Segment, ...]
    phones: tuple[Segment, ...]
    method: str
    notes: tuple[str, ...]


def _warn(message: str) -> None:
    warnings.warn(message, KmtalkWarning, stacklevel=4)


def _forced_chunk(words: Sequence[str], pcm: bytes, samples: np.ndarray, method: str) -> ChunkResult:
    """Forced alignment of one chunk to ``words``, checked for fit; raises :class:`NoPath`."""
    duration = samples.shape[0] / SAMPLE_RATE
    check_phone_rate(words, samples)
    w, p, retry_notes = forced(words, pcm, duration)
    check_plausible(p, samples)
    return ChunkResult(w, p, method, tuple(retry_notes))


#: Words at each edge of a chunk that may turn out to belong to its neighbour (see below).
EDGE_WORDS = 3


def edge_grammar(words: Sequence[str], edge: int = EDGE_WORDS) -> str:
    """A JSGF grammar for ``words`` in which up to ``edge`` words at either end may be left out.

    Long audio's words are shared among chunks in proportion to their speech, which can put a
    word or two on the wrong side of a cut; the search then finds no path for the chunk. Making
    the edge words optional lets the decoder say which of them were spoken in it.
    """
    words = list(words)
    edge = min(edge, max(0, (len(words) - 1) // 2))
    head, core, tail = words[:edge], words[edge : len(words) - edge], words[len(words) - edge :]
    lead = ""
    for word in head:  # [[[w1] w2] w3]: drop any prefix
        lead = f"[{lead + ' ' if lead else ''}{word}]"
    trail = ""
    for word in reversed(tail):  # [w1 [w2 [w3]]]: drop any suffix
        trail = f"[{word}{' ' + trail if trail else ''}]"
    body = " ".join(part for part in (lead, " ".join(core), trail) if part)
    return f"#JSGF V1.0;\ngrammar kmtalk;\npublic <utterance> = {body};\n"


def spoken_edge_words(words: Sequence[str], pcm: bytes) -> list[str]:
    """The transcript words the decoder hears in ``pcm`` when edge words are optional (empty: none)."""
    with POOL.lock:
        decoder = _fresh(POOL.get("edges", **ATTEMPTS[0]))
        ensure_words(decoder, words)
        try:
            decoder.set_jsgf_string("edges", edge_grammar(words))
            decoder.activate_search("edges")
            _run(decoder, pcm)
        except RuntimeError:
            return []
        return _hypothesis_words(decoder)


def _edge_retry(words: Sequence[str], pcm: bytes, samples: np.ndarray) -> ChunkResult:
    """Forced alignment of the words heard when the edge words are optional; raises :class:`NoPath`."""
    heard = spoken_edge_words(words, pcm)
    if not heard or list(heard) == list(words):
        raise NoPath("no other choice of edge words fits either")
    dropped = len(words) - len(heard)
    result = _forced_chunk(heard, pcm, samples, "forced")
    note = (f"{dropped} transcript word{'s' if dropped != 1 else ''} at the chunk's edges "
            "(shared out to the wrong side of a cut) were not heard in it and were left out")
    return replace(result, notes=(note,) + result.notes)


#: Speed at which a chunk whose words found no path (or a poor one) is aligned again: at 60% a
#: phone of 18 ms lasts the 30 ms the acoustic models need (:mod:`.tempo`).
SLOWED_TEMPO = 0.6


def _slowed_retry(words: Sequence[str], samples: np.ndarray, reason: str) -> ChunkResult | None:
    """Forced alignment of the chunk played at :data:`SLOWED_TEMPO`, times scaled back; None if
    that fails too (or ffmpeg is missing). The slowed path passes the same fit checks."""
    from .tempo import slow_down

    slow = slow_down(samples, SLOWED_TEMPO, SAMPLE_RATE)
    if slow is None:
        return None
    try:
        result = _forced_chunk(words, to_pcm(slow), slow, "forced")
    except NoPath:
        return None
    duration = samples.shape[0] / SAMPLE_RATE

    def back(segments: Sequence[Segment]) -> tuple[Segment, ...]:
        return tuple(Segment(s.label, min(s.start * SLOWED_TEMPO, duration), min(s.end * SLOWED_TEMPO, duration)) for s in segments)

    note = f"the speech was aligned slowed to {SLOWED_TEMPO:.0%} of its speed (at full speed {reason})"
    return ChunkResult(back(result.words), back(result.phones), "forced", (note,) + result.notes)


def align_chunk(samples: np.ndarray, words: Sequence[str] | None, *, recognised: bool = False,
                edges: bool = False) -> ChunkResult:
    """Forced alignment of one chunk with the fallback ladder: slowed speech, recognised words,
    allphone, energy.

    ``words`` None means no transcript: recognise words first. A transcript that does not fit
    the speech (:class:`Misfit`) or finds no path is first aligned again on the speech slowed
    down (a fast talker's phones can be too short for the acoustic models); if that fails too, a
    misfit is replaced by recognised words and a missing path falls to phone recognition, except
    that a chunk of long audio (``edges``) first retries with its edge words optional. Each
    fallback is recorded in the result's notes.
    """
    duration = samples.shape[0] / SAMPLE_RATE
    pcm = to_pcm(samples)
    notes: list[str] = []
    if words is not None and not recognised:
        try:
            result = _forced_chunk(words, pcm, samples, "forced")
            return replace(result, notes=tuple(notes) + result.notes)
        except Misfit as exc:
            slowed = _slowed_retry(words, samples, str(exc))
            if slowed is not None:
                return slowed
            notes.append(f"the transcript does not fit the speech: {exc}; recognised the words instead")
            words = None
        except NoPath as exc:
            if edges:
                try:
                    return _edge_retry(words, pcm, samples)
                except NoPath:
                    pass
            slowed = _slowed_retry(words, samples, str(exc))
            if slowed is not None:
                return slowed
            notes.append(f"forced alignment to the transcript failed ({exc}); used phone recognition instead")
            words = ()
    if words is None:
        words = recognise_words(pcm)
        if not words:
            notes.append("speech recognition heard no words")
    if words:
        try:
            result = _forced_chunk(words, pcm, samples, "recognised")
            return replace(result, notes=tuple(notes) + result.notes)
        except NoPath as exc:
            notes.append(f"forced alignment to the recognised words failed ({exc}); used phone recognition instead")
    try:
        phones = recognise_phones(pcm, duration)
        return ChunkResult((), phones, "allphone", tuple(notes))
    except NoPath as exc:
        notes.append(f"phone recognition failed ({exc}); used energy-based speech/silence segmentation")
    return ChunkResult((), energy_segments(samples, SAMPLE_RATE), "energy", tuple(notes))


def plan_chunks(samples: np.ndarray, words: Sequence[str] | None, max_chunk: float) -> list[Chunk]:
    """Cut long audio at pauses and share the transcript's words among the pieces.

    Words are shared in proportion to the *speech* time (energy VAD) in each piece, weighting
    each word by its phone count; cuts sit at the quietest point so they fall between
    sentences or phrases, where a proportional split is most likely to be exact.
    """
    duration = samples.shape[0] / SAMPLE_RATE
    cuts = split_points(samples, SAMPLE_RATE, max_chunk)
    bounds = [0.0, *cuts, duration]
    if words is None or not cuts:
        return [Chunk(a, b, tuple(words) if words is not None else ()) for a, b in zip(bounds[:-1], bounds[1:])]
    regions = speech_regions(samples, SAMPLE_RATE) or [(0.0, duration)]
    speech = [sum(max(0.0, min(e, b) - max(s, a)) for s, e in regions) for a, b in zip(bounds[:-1], bounds[1:])]
    total = sum(speech) or 1.0
    weights = np.array([max(1, len(pronounce(w).phones)) for w in words], dtype=float)
    position = np.cumsum(weights) - weights / 2  # each word's centre in "phone time"
    position /= weights.sum()
    edges = np.cumsum(speech) / total
    chunks: list[Chunk] = []
    first = 0
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        last = len(words) if i == len(edges) - 1 else int(np.searchsorted(position, edges[i]))
        chunks.append(Chunk(a, b, tuple(words[first:last])))
        first = last
    return chunks


#: Audio shorter than this is aligned in this process: starting workers would cost more.
MIN_PARALLEL_DURATION = 40.0


def _chunk_task(piece: np.ndarray, words: tuple[str, ...] | None, transcript_given: bool, edges: bool) -> ChunkResult:
    """Align one planned chunk (runs in a worker process for long audio)."""
    if transcript_given and not words:
        # The transcript's words all went to other chunks: speech here was not in the transcript.
        if speech_regions(piece, SAMPLE_RATE):
            return align_chunk(piece, None, recognised=True)
        return ChunkResult((), energy_segments(piece, SAMPLE_RATE), "energy", ())
    return align_chunk(piece, words if transcript_given else None, edges=edges)


def default_jobs() -> int:
    """Worker processes for long audio: the CPUs this process may run on, or 1 inside a worker
    process already (a batch's ``--jobs`` workers must not each fan out over every CPU)."""
    if multiprocessing.parent_process() is not None:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run_chunks(tasks: list[tuple[np.ndarray, tuple[str, ...] | None, bool, bool]], jobs: int) -> list[ChunkResult]:
    """Align the chunks, in ``jobs`` worker processes when that can pay off, in order."""
    if jobs <= 1 or len(tasks) <= 1:
        return [_chunk_task(*task) for task in tasks]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers = min(jobs, len(tasks))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_chunk_task, *zip(*tasks)))


def align_pocketsphinx(
    samples: np.ndarray,
    words: Sequence[str] | None,
    *,
    transcript: str | None = None,
    source: str | None = None,
    max_chunk: float = MAX_CHUNK,
    jobs: int | None = None,
) -> Alignment:
    """Align 16 kHz mono ``samples`` to ``words`` (None: recognise them), chunked if long.

    Chunks are independent, so on audio longer than :data:`MIN_PARALLEL_DURATION` they are
    aligned in ``jobs`` worker processes (default: one per available CPU). How each chunk was
    aligned is recorded in the result's ``chunks``.
    """
    duration = samples.shape[0] / SAMPLE_RATE
    chunks = plan_chunks(samples, words, max_chunk)
    notes: list[str] = []
    if len(chunks) > 1:
        notes.append(f"long audio split at pauses into {len(chunks)} chunks of at most {max_chunk:g} s")
    tasks = []
    for chunk in chunks:
        a, b = int(round(chunk.start * SAMPLE_RATE)), int(round(chunk.end * SAMPLE_RATE))
        tasks.append((samples[a:b], chunk.words if words is not None else None, words is not None, len(chunks) > 1))
    workers = (jobs or default_jobs()) if duration >= MIN_PARALLEL_DURATION else 1
    results = _run_chunks(tasks, workers)
    all_words: list[Segment] = []
    all_phones: list[Segment] = []
    spans: list[Segment] = []
    for chunk, result in zip(chunks, results):
        where = f" in {chunk.start:.1f}-{chunk.end:.1f} s" if len(chunks) > 1 else ""
        for note in result.notes:
            notes.append(note + where)
            if "retry" not in note:
                _warn(f"Alignment{where}: {note}.")
        spans.append(Segment(result.method, chunk.start, chunk.end))
        all_words.extend(shift(result.words, chunk.start))
        all_phones.extend(shift(result.phones, chunk.start))
    methods = {s.label for s in spans}
    method = methods.pop() if len(methods) == 1 else MIXED
    backend = "energy" if method == "energy" else "pocketsphinx"
    alignment = Alignment(
        words=_clip_words(all_words, duration),
        phones=fill_silence(all_phones, duration),
        backend=backend,
        method=method,
        transcript=transcript,
        duration=duration,
        notes=tuple(notes),
        source=source,
        chunks=tuple(spans) if len(spans) > 1 else (),
    )
    return validate(alignment)


def _clip_words(words: Sequence[Segment], duration: float) -> tuple[Segment, ...]:
    """Keep word segments sorted and inside the audio (chunk edges can overlap by a frame)."""
    out: list[Segment] = []
    for w in sorted(words, key=lambda s: s.start):
        start = max(w.start, out[-1].end if out else 0.0)
        end = min(w.end, duration)
        if end > start:
            out.append(Segment(w.label, start, end))
    return tuple(out)
