"""The research tools (tools/train_defaults.py and the benchmarks): options a researcher types are
refused before anything is built, and the measurements they print measure what they say."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _train_defaults():
    spec = importlib.util.spec_from_file_location("train_defaults", ROOT / "tools" / "train_defaults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_set_values_are_json_and_a_bare_word_is_a_string() -> None:
    tool = _train_defaults()
    assert tool.key_motion_option("audio_guidance=false") == ("audio_guidance", False)
    assert tool.key_motion_option("key_noise=0.3") == ("key_noise", 0.3)
    assert tool.key_motion_option("completion_keys=predicted") == ("completion_keys", "predicted")
    assert tool.key_motion_option('audio={"normalise": "level"}') == ("audio", {"normalise": "level"})


def test_a_variant_trains_with_its_seed() -> None:
    tool = _train_defaults()
    recipe = next(r for r in tool.RECIPES if r.name == "selftalk-km")
    args = recipe.train_args(Path("C"), Path("O"), Path("cfg.json"), 2)
    assert args[args.index("--seed") + 1] == "2"
    assert recipe.train_args(Path("C"), Path("O"), Path("cfg.json"))[args.index("--seed") + 1] == str(tool.SEED)


def test_variants_are_never_installed_and_bad_options_are_refused_before_any_work(tmp_path: Path) -> None:
    work = tmp_path / "work"
    cases = [
        (["--seed", "1", "--only", "selftalk-km"], "--no-install"),
        (["--config", 'audio={"normalise": "level"}', "--only", "selftalk-km"], "--no-install"),
        (["--set", "audio_guidance", "--no-install", "--only", "selftalk-km"], "KEY=VALUE"),
        (["--corpus", str(tmp_path / "none"), "--no-install", "--only", "selftalk-km"], "is not a corpus"),
    ]
    for args, said in cases:
        done = _run("tools/train_defaults.py", "--work", str(work), *args)
        assert done.returncode != 0, args
        assert said in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert not work.exists(), args  # nothing built, nothing installed


def test_scoring_a_missing_checkpoint_is_refused_before_a_corpus_is_built(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    done = _run("benchmarks/keymotion_gain.py", "--corpus", str(corpus), "--runs", str(tmp_path / "runs"),
                "--checkpoints", str(tmp_path / "nope.safetensors"))
    assert done.returncode != 0
    assert "No checkpoint at" in done.stderr and "Traceback" not in done.stderr
    assert not corpus.exists()


def test_scoring_a_plain_checkpoint_is_refused_before_a_corpus_is_built(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    plain = ROOT / "kmtalk_cli" / "weights" / "selftalk.safetensors"
    done = _run("benchmarks/keymotion_gain.py", "--corpus", str(corpus), "--runs", str(tmp_path / "runs"), "--checkpoints", str(plain))
    assert done.returncode != 0
    assert "holds no key-motion model" in done.stderr and "Traceback" not in done.stderr
    assert not corpus.exists()


@pytest.mark.parametrize("script", ["effort_heard", "prosody_heard"])
def test_hearing_benchmarks_refuse_a_plain_checkpoint_and_a_folder_that_is_no_corpus(script: str, tmp_path: Path) -> None:
    plain = ROOT / "kmtalk_cli" / "weights" / "selftalk.safetensors"
    keyed = ROOT / "kmtalk_cli" / "weights" / "selftalk-km.safetensors"
    not_a_checkpoint = ROOT / "README.md"
    for checkpoint, said in ((plain, "holds no key-motion model"), (keyed, "is not a corpus"), (not_a_checkpoint, "not a readable safetensors file")):
        done = _run(f"benchmarks/{script}.py", "--corpus", str(tmp_path / "none"), str(checkpoint))
        assert done.returncode != 0 and said in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_an_untrained_completion_of_the_true_keys_is_their_interpolation(tiny_corpus: Path, tmp_path: Path, benchmark) -> None:
    """The oracle row (completion given the true key motions) puts the keys on the model's key
    frames in the corpus' units and on the sequence's face: an untrained residual adds nothing,
    so it must reproduce the true keys interpolated exactly."""
    import numpy as np

    from kmtalk_cli.backbones.checkpoint import save_checkpoint
    from kmtalk_cli.data.dataset import open_dataset
    from kmtalk_cli.models import load_model
    from kmtalk_cli.trainable import build_run

    gain = benchmark("keymotion_gain")
    dataset = open_dataset(tiny_corpus)
    model, info, _ = build_run("selftalk", dataset, overrides={"d_model": 32}, key_motions=True,
                               key_motion_overrides={"decoder_dim": 32, "embed_dim": 32, "decoder_layers": 1})
    helper = gain.CachedAlignments(load_model(save_checkpoint(model, tmp_path / "km.safetensors", info)), dataset, alignments="true")
    seq = dataset.load(dataset.split("test")[0])
    completed = gain.completed_true_keys(helper)(seq)
    interpolated = gain.true_keys_interpolated(seq, dataset.alignment(dataset.ref(seq.name)))
    assert completed.shape == seq.vertices.shape
    assert np.abs(completed - seq.template).max() > 1e-4  # the keys move the face
    np.testing.assert_allclose(completed, interpolated, atol=1e-6)


def test_the_level_free_floor_takes_out_the_utterance_effort_and_nothing_else(benchmark) -> None:
    """error_budget's level-normalised floor: each word's articulation gain loses exactly the
    utterance effort's share; accents, phrase ends and the words' relative loudness stay."""
    import numpy as np

    from kmtalk_cli.data import prosody
    from kmtalk_cli.data.synth import SynthOptions, perform, plan_corpus

    budget = benchmark("error_budget")
    options = SynthOptions(subjects=3, sentences=2, max_words=7)
    subjects, utterances, _ = plan_corpus(options)
    take = perform(utterances[0], subjects[utterances[0].subject], options.fps, options.seed, prosody=True)
    assert abs(take.plan.effort) > 0.1  # this seed's first utterance has an effort to take out
    free = budget.without_effort(take)
    assert free.accents == take.controls.accents and free.phrase_ends == take.controls.phrase_ends
    low, high = prosody.GAIN_RANGE
    ratio = 2.0 ** (-prosody.EFFORT_DB * take.plan.effort / prosody.GAIN_DB_PER_OCTAVE)
    pairs = [(g, f) for g, f in zip(take.controls.gains, free.gains) if g != 1.0 and low < g < high and low < f < high]
    assert pairs
    np.testing.assert_allclose([f / g for g, f in pairs], ratio, rtol=1e-6)


def test_spectral_tilt_ignores_the_level_and_sees_a_flatter_spectrum(benchmark) -> None:
    """prosody_audible's level-free effort cue: a gain leaves the tilt as it is; pre-emphasis
    (more energy high up, as real vocal effort gives) raises it."""
    import numpy as np

    audible = benchmark("prosody_audible")
    x = np.random.default_rng(0).normal(size=16_000).astype(np.float32)
    voice = np.convolve(x, np.ones(8) / 8, mode="same")  # low-passed: most energy below 1 kHz
    flat = np.append(voice[0], voice[1:] - 0.9 * voice[:-1])
    assert abs(audible.tilt_db(4.0 * voice, 16_000) - audible.tilt_db(voice, 16_000)) < 1e-6
    assert audible.tilt_db(flat, 16_000) > audible.tilt_db(voice, 16_000) + 6.0


def test_effort_heard_is_none_for_a_deaf_decoder_and_all_for_an_exact_one(benchmark) -> None:
    """effort_heard's fit: keys missing exactly the effort's gain show the deaf slope (0% heard),
    keys right up to a constant gain show slope 0 (100% heard), whatever the noise in shape."""
    import numpy as np

    from kmtalk_cli.data import prosody

    heard = benchmark("effort_heard")
    rng = np.random.default_rng(0)
    efforts = list(rng.uniform(-1, 1, 30))
    deaf, exact = [], []
    for effort in efforts:
        true = rng.normal(size=(12, 40, 3))
        effort_gain = 2.0 ** (prosody.EFFORT_DB * effort / prosody.GAIN_DB_PER_OCTAVE)
        deaf.append(heard.best_gain(true / effort_gain + 0.01 * rng.normal(size=true.shape), true))
        exact.append(heard.best_gain(0.8 * true + 0.01 * rng.normal(size=true.shape), true))
    assert heard.effort_fit(deaf, efforts)["heard"] == pytest.approx(0.0, abs=0.02)
    assert heard.effort_fit(exact, efforts)["heard"] == pytest.approx(1.0, abs=0.02)
    assert heard.effort_fit(deaf, efforts)["r"] > 0.99


def test_prosody_heard_finds_the_factor_a_decoder_is_deaf_to(benchmark) -> None:
    """prosody_heard's fit: keys missing exactly the effort's part of each word's gain show
    coefficient 1 for effort and 0 for the rest, and taking that part out leaves no error; keys
    with every factor show 0 throughout."""
    import numpy as np

    heard = benchmark("prosody_heard")
    rng = np.random.default_rng(0)
    factors, true = [], []
    for _ in range(40):  # utterances of 10 words, one key each
        plan = {"effort": rng.uniform(-1, 1), "articulation": rng.uniform(-1, 1)}
        for _ in range(10):
            word = {"emphasis": rng.choice([0.0, rng.uniform(0.6, 1.0)]), "rate": rng.uniform(0.7, 1.4)}
            word["loudness_db"] = 6 * plan["effort"] + 6 * word["emphasis"] + rng.normal(0, 1.5)
            factors.append(heard.word_factors(plan, word))
            true.append(rng.normal(size=(20, 3)) * np.exp(factors[-1].sum()))
    factors, true = np.asarray(factors), np.asarray(true)
    deaf = heard.deafness(true / np.exp(factors[:, 0])[:, None, None], true, factors)
    assert deaf["coef"]["effort"] == pytest.approx(1.0, abs=1e-6)
    assert all(abs(deaf["coef"][f]) < 1e-6 for f in heard.FACTORS[1:])
    assert deaf["without"]["effort"] == pytest.approx(0.0, abs=1e-6) and deaf["error"] > 0.1
    exact = heard.deafness(true, true, factors)
    assert all(abs(c) < 1e-6 for c in exact["coef"].values()) and exact["error"] == pytest.approx(0.0)


def test_prosody_heard_factors_multiply_to_the_corpus_word_gain(benchmark) -> None:
    """The factors are the corpus' own: their product is each word's jaw and lip gain (where unclipped)."""
    import math

    import numpy as np

    from kmtalk_cli.data import prosody

    heard = benchmark("prosody_heard")
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(20):
        drawn = prosody.draw_prosody("please give the beautiful yellow lamp to my grandmother today".split(), rng)
        plan = drawn.to_json()
        hyper = 1.0 + prosody.ARTICULATION_GAIN * drawn.articulation
        for word, w in zip(plan["words"], drawn.words):
            raw = 2.0 ** (w.loudness_db / prosody.GAIN_DB_PER_OCTAVE) * w.rate ** -prosody.RATE_EXPONENT
            if prosody.GAIN_RANGE[0] < raw < prosody.GAIN_RANGE[1]:
                assert math.exp(heard.word_factors(plan, word).sum()) == pytest.approx(raw * hyper, rel=2e-3)
                checked += 1
    assert checked > 100
