"""The pocketsphinx backend: forced path, transcript-free path, fallbacks and awkward input."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pytest

from kmtalk_cli.alignment import align, pocketsphinx as ps
from kmtalk_cli.alignment.espeak import synthesize
from kmtalk_cli.alignment.evaluate import boundary_errors, reference_from_espeak
from kmtalk_cli.alignment.phones import LABELS, SIL
from kmtalk_cli.audio import Audio, from_array, load_audio
from kmtalk_cli.errors import AlignmentError, KmtalkWarning

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
TEXT = "The quick brown fox jumps over the lazy dog."
SECOND_TEXT = "Hugh thought the boy was woolen, but the vase was tiny."


@functools.lru_cache(maxsize=None)
def speech(text: str = TEXT, voice: str = "en-us") -> tuple[Audio, object]:
    syn = synthesize(text, voice)
    return from_array(syn.samples, syn.sample_rate), syn


def usable(al) -> None:
    """Every alignment must tile the audio with known labels, whatever path produced it."""
    assert al.phones[0].start == 0.0 and al.phones[-1].end == pytest.approx(al.duration)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(al.phones, al.phones[1:]))
    assert {p.label for p in al.phones} <= set(LABELS)


@pytest.mark.parametrize(
    ("text", "voice"),
    [(TEXT, "en-us"), ("Kmtalk animates a zorblax in 1999.", "en-us+f3"), ("Measure the width of the window, please.", "en-us+m3")],
)
def test_forced_alignment_of_espeak_speech(text: str, voice: str) -> None:
    audio, syn = speech(text, voice)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KmtalkWarning)
        al = align(audio, text, backend="pocketsphinx")
    assert al.method == "forced" and al.backend == "pocketsphinx" and al.transcript == text
    usable(al)
    errors = boundary_errors(reference_from_espeak(syn), al)
    assert errors.size >= 10
    # espeak-ng events sit ~15 ms from acoustic boundaries; the aligner adds ~10 ms of its own.
    assert np.abs(errors).mean() < 0.040
    assert [w.label for w in al.words][:2] == normalized_first_two(text)


def normalized_first_two(text: str) -> list[str]:
    from kmtalk_cli.alignment import normalize_words

    return normalize_words(text)[:2]


def test_transcript_free_path_produces_phones() -> None:
    audio, _ = speech()
    al = align(audio, None, backend="pocketsphinx")
    assert al.method in {"recognised", "allphone"} and al.transcript is None
    assert sum(p.label != SIL for p in al.phones) >= 10
    usable(al)


@pytest.mark.parametrize("text", ["", "   \n", "...!? -- ,"])
def test_bad_transcripts(text: str) -> None:
    audio, _ = speech()
    with pytest.raises(AlignmentError, match="transcript"):
        align(audio, text, backend="pocketsphinx")


def test_unknown_backend() -> None:
    with pytest.raises(AlignmentError, match="Unknown aligner"):
        align(speech()[0], TEXT, backend="bogus")


def test_mismatched_transcript_falls_back_and_says_so() -> None:
    audio, _ = speech()
    text = "Seventeen purple elephants negotiated a mortgage in Copenhagen yesterday afternoon with several bankers"
    with pytest.warns(KmtalkWarning, match="failed"):
        al = align(audio, text, backend="pocketsphinx")
    assert al.method in {"allphone", "energy"} and any("failed" in n for n in al.notes)
    usable(al)


class Broken:
    """Stands in for forced/recognition steps to force each fallback."""

    @staticmethod
    def no_path(*args, **kwargs):
        raise ps.NoPath("simulated failure")


def test_fallback_to_allphone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ps, "forced_pass", Broken.no_path)
    with pytest.warns(KmtalkWarning, match="phone recognition instead"):
        al = align(speech()[0], TEXT, backend="pocketsphinx")
    assert al.method == "allphone" and al.backend == "pocketsphinx" and al.words == ()
    assert sum(p.label != SIL for p in al.phones) >= 10
    usable(al)


def test_fallback_to_energy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ps, "forced_pass", Broken.no_path)
    monkeypatch.setattr(ps, "recognise_phones", Broken.no_path)
    with pytest.warns(KmtalkWarning, match="energy-based"):
        al = align(speech()[0], TEXT, backend="pocketsphinx")
    assert al.method == "energy" and al.backend == "energy" and len(al.notes) == 2
    assert any(p.label != SIL for p in al.phones)
    usable(al)


def test_first_attempt_failure_retries_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ps.forced_pass

    def first_fails(words, pcm, duration, attempt):
        if attempt.get("fsgusefiller"):
            raise ps.NoPath("simulated")
        return real(words, pcm, duration, attempt)

    monkeypatch.setattr(ps, "forced_pass", first_fails)
    al = align(speech()[0], TEXT, backend="pocketsphinx")
    assert al.method == "forced" and "retry" in al.notes[0]


def test_decoder_exception_becomes_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(decoder, pcm):
        raise RuntimeError("Failed to set up sub-word alignment")

    monkeypatch.setattr(ps, "_run", explode)
    with pytest.warns(KmtalkWarning):
        al = align(speech()[0], TEXT, backend="pocketsphinx")
    assert al.method == "energy"
    usable(al)


@pytest.mark.parametrize("kind", ["silence", "noise", "short"])
@pytest.mark.parametrize("text", [None, "hello world"])
def test_awkward_audio_does_not_crash(kind: str, text: str | None) -> None:
    rng = np.random.default_rng(0)
    if kind == "silence":
        audio = from_array(np.zeros(16000, np.float32), 16000)
    elif kind == "noise":
        audio = from_array(rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
    else:
        full = speech()[0]
        audio = from_array(full.samples[: int(0.3 * 16000)], 16000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        al = align(audio, text, backend="pocketsphinx")
    usable(al)
    if kind == "silence" and text is not None:
        assert al.method != "forced"  # words cannot be placed on silence


def test_dither_keeps_digital_silence_finite() -> None:
    pcm = np.frombuffer(ps.to_pcm(np.zeros(1600, np.float32)), dtype="<i2")
    assert pcm.std() > 0 and np.abs(pcm).max() < 30
    assert ps.to_pcm(np.zeros(100, np.float32)) == ps.to_pcm(np.zeros(100, np.float32))


def test_plan_chunks_splits_long_audio_at_pauses() -> None:
    pieces = []
    for text in ("The children played in the garden.", "Wolves howled beyond the river.") * 3:
        a, _ = speech(text)
        pieces += [a.samples, np.zeros(8000, np.float32)]
    samples = np.concatenate(pieces)
    words = "the children played in the garden wolves howled beyond the river".split() * 3
    chunks = ps.plan_chunks(samples, words, max_chunk=5.0)
    assert len(chunks) >= 3
    assert sum(len(c.words) for c in chunks) == len(words)
    assert all(c.end - c.start <= 5.0 + 1e-6 for c in chunks)


@pytest.mark.slow
def test_long_audio_is_chunked_and_aligned() -> None:
    texts = [TEXT, "Every morning the baker wakes up before sunrise.", "Wolves howled somewhere beyond the frozen river."]
    pieces, words = [], []
    for i in range(8):
        a, _ = speech(texts[i % 3])
        pieces += [a.samples, np.zeros(6000, np.float32)]
        words.append(texts[i % 3])
    audio = from_array(np.concatenate(pieces), 16000)
    al = align(audio, " ".join(words), backend="pocketsphinx", max_chunk=10.0)
    assert any("chunks" in n for n in al.notes)
    usable(al)
    assert len(al.words) >= 0.9 * len(" ".join(words).split())


librivox = pytest.mark.skipif(
    not LIBRIVOX.is_dir(), reason="Debian package pocketsphinx-testdata is not installed (apt-get install pocketsphinx-testdata)"
)


def librivox_clips() -> list[tuple[str, str]]:
    if not LIBRIVOX.is_dir():
        return []
    out = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, clip = line.rpartition("(")
        out.append((clip.strip(") "), text.replace("<s>", "").replace("</s>", "").strip()))
    return out


@librivox
@pytest.mark.parametrize(("clip", "text"), librivox_clips() or [("none", "")])
def test_librivox_forced(clip: str, text: str) -> None:
    audio = load_audio(LIBRIVOX / f"{clip}.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("error", KmtalkWarning)
        al = align(audio, text, backend="pocketsphinx")
    assert al.method == "forced"
    assert [w.label for w in al.words] == text.split()
    usable(al)


@librivox
def test_librivox_via_path_and_sidecar_transcript(tmp_path: Path) -> None:
    import shutil

    clip, text = librivox_clips()[1]
    wav = tmp_path / "clip.wav"
    shutil.copy(LIBRIVOX / f"{clip}.wav", wav)
    (tmp_path / "clip.txt").write_text(text)
    from kmtalk_cli.alignment import find_transcript

    al = align(wav, find_transcript(wav), backend="pocketsphinx")
    assert al.method == "forced" and al.source == str(wav)


def _three_sentences() -> tuple[Audio, str]:
    texts = ["The children played in the garden.", "Wolves howled beyond the river.", "Every morning the baker wakes up early."]
    pieces = []
    for text in texts:
        pieces += [speech(text)[0].samples, np.zeros(8000, np.float32)]
    return from_array(np.concatenate(pieces), 16000), " ".join(texts)


def test_each_chunk_records_its_method(monkeypatch: pytest.MonkeyPatch) -> None:
    """One chunk falling back must not relabel the whole file, nor hide the fallback."""
    audio, text = _three_sentences()
    real = ps.forced_pass

    def middle_fails(words, pcm, duration, attempt):
        if "wolves" in words:
            raise ps.NoPath("simulated")
        return real(words, pcm, duration, attempt)

    monkeypatch.setattr(ps, "forced_pass", middle_fails)
    with pytest.warns(KmtalkWarning, match="phone recognition instead"):
        al = align(audio, text, backend="pocketsphinx", max_chunk=3.5)
    methods = [c.label for c in al.chunks]
    assert len(methods) >= 3 and methods.count("allphone") == 1 and methods.count("forced") == len(methods) - 1
    assert al.method == "mixed" and not al.forced
    shares = al.method_shares()
    assert set(shares) == {"forced", "allphone"} and shares["forced"] > shares["allphone"] > 0
    assert al.to_dict()["methods"] == {k: round(v, 4) for k, v in shares.items()}
    usable(al)


def test_chunks_in_worker_processes_match_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    audio, text = _three_sentences()
    monkeypatch.setattr(ps, "MIN_PARALLEL_DURATION", 0.0)
    serial = align(audio, text, backend="pocketsphinx", max_chunk=3.5, jobs=1)
    started = []
    real_run = ps._run_chunks
    monkeypatch.setattr(ps, "_run_chunks", lambda tasks, jobs: started.append(jobs) or real_run(tasks, jobs))
    ps.POOL.clear()
    parallel = align(audio, text, backend="pocketsphinx", max_chunk=3.5, jobs=2)
    assert started == [2] and len(parallel.chunks) >= 3
    assert not ps.POOL._decoders  # every chunk was decoded in a worker process
    # Each chunk decodes from a fresh front end, so which process saw which chunk first is moot.
    assert parallel.phones == serial.phones and parallel.words == serial.words
    assert parallel.method == "forced"


def test_a_sentence_aligns_the_same_whatever_the_decoder_aligned_before() -> None:
    """The decoders are reused; their front end's noise estimate must not carry over, or a batch's
    alignments depend on its order (and a forced path can vanish)."""

    def forced(text: str, voice: str) -> object:
        audio, _ = speech(text, voice)
        return ps.forced([w.strip(".,").lower() for w in text.split()], ps.to_pcm(audio.samples), audio.duration)

    first = forced(SECOND_TEXT, "en-us+f3")
    forced(TEXT, "en-us")
    assert forced(SECOND_TEXT, "en-us+f3") == first


def test_edge_grammar_lets_only_edge_words_go() -> None:
    grammar = ps.edge_grammar("a b c d e f g h".split(), edge=2)
    assert grammar.splitlines()[-1] == "public <utterance> = [[a] b] c d e f [g [h]];"
    assert ps.edge_grammar(["one", "two"], edge=3).splitlines()[-1] == "public <utterance> = one two;"


@librivox
def test_words_on_the_wrong_side_of_a_cut_are_left_out_not_phone_recognised() -> None:
    """A chunk of long audio given two words of the next sentence still aligns, without them."""
    clip, text = librivox_clips()[1]  # "he was not an ill disposed young man"
    samples = load_audio(LIBRIVOX / f"{clip}.wav").samples
    words = text.split() + ["unless", "to"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = ps.align_chunk(samples, words)
        in_long_audio = ps.align_chunk(samples, words, edges=True)
    assert alone.method == "allphone"  # the full word list has no path
    assert in_long_audio.method == "forced"
    assert [w.label for w in in_long_audio.words] == text.split()
    assert "2 transcript words" in in_long_audio.notes[0]


def test_no_nested_fan_out_inside_a_worker_process() -> None:
    import concurrent.futures
    import multiprocessing

    assert ps.default_jobs() >= 1
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        assert pool.submit(ps.default_jobs).result() == 1


FAST_TEXT = "Please give the quiet helmet to Ruth and the monkey."


def test_fast_speech_is_aligned_slowed_down_when_full_speed_finds_no_good_path() -> None:
    """At 300 words a minute some phones are shorter than the acoustic models' 30 ms: at full
    speed the forced path is poor (or missing), slowed to 60% it fits, and its times are right."""
    syn = synthesize(FAST_TEXT, "en-us+Annie", rate=300)
    audio = from_array(syn.samples, syn.sample_rate)
    words = [w.strip(".").lower() for w in FAST_TEXT.split()]
    with pytest.raises(ps.NoPath):  # Misfit is a NoPath: the fault this retry is for
        ps.forced(words, ps.to_pcm(audio.samples), audio.duration)
    al = align(audio, FAST_TEXT, backend="pocketsphinx")
    assert al.method == "forced" and any("slowed" in n for n in al.notes)
    assert [w.label.lower() for w in al.words] == words
    usable(al)
    errors = np.abs(boundary_errors(reference_from_espeak(syn), al))
    assert len(errors) >= 25 and np.median(errors) < 0.035  # espeak-ng's events lead by ~15 ms


def test_a_wrong_transcript_is_not_accepted_by_slowing_the_speech_down() -> None:
    audio, _ = speech()
    with pytest.warns(KmtalkWarning):
        al = align(audio, "Seventeen purple elephants negotiated a mortgage", backend="pocketsphinx")
    assert al.method != "forced" or [w.label for w in al.words] != ["seventeen", "purple", "elephants", "negotiated", "a", "mortgage"]
