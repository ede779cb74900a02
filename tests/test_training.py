"""The generic training loop: batching, stages, checkpoints, resume, DDP."""

from __future__ import annotations

import json
import os
from dataclasses import replace
import subprocess
import sys

import numpy as np
import pytest
import torch

from kmtalk_cli.backbones.checkpoint import read_checkpoint_info
from kmtalk_cli.trainable import build_run
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.training import TrainingItem, TrainOptions, batches, collate, load_items, train

SMALL = {"audio": {"dim": 16, "layers": 1}, "d_model": 16}


def item(name: str, frames: int, style: int | None = 0) -> TrainingItem:
    rng = np.random.default_rng(frames)
    return TrainingItem(name, "S", rng.normal(size=frames * 533).astype(np.float32), rng.normal(size=(frames, 6)).astype(np.float32), style)


def test_collate_pads_at_the_end_and_keeps_lengths() -> None:
    batch = collate([item("a", 5), item("b", 3)])
    assert batch.offsets.shape == (2, 5, 6) and batch.frame_lengths.tolist() == [5, 3]
    assert torch.all(batch.offsets[1, 3:] == 0) and batch.audio_lengths.tolist() == [5 * 533, 3 * 533]
    assert batch.frame_mask.tolist() == [[True] * 5, [True] * 3 + [False] * 2]
    assert batch.style.tolist() == [0, 0]
    # One unseen speaker in the batch means no styles (the average) for all.
    assert collate([item("a", 5), item("c", 4, style=None)]).style is None


def test_batches_group_similar_lengths_and_cover_everything() -> None:
    items = [item(str(i), n) for i, n in enumerate([9, 3, 7, 4, 8, 2])]
    groups = batches(items, 2, None)
    assert [[len(it.offsets) for it in g] for g in groups] == [[2, 3], [4, 7], [8, 9]]
    shuffled = batches(items, 2, __import__("random").Random(1))
    assert sorted(it.name for g in shuffled for it in g) == sorted(it.name for it in items)


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    return open_dataset(tiny_corpus)


def test_training_writes_checkpoints_that_describe_themselves_and_resume(corpus, tmp_path) -> None:
    model, description, lips = build_run("faceformer", corpus, overrides=SMALL)
    styles = description["styles"]
    train_items = load_items(corpus, corpus.split("train"), styles)
    val_items = load_items(corpus, corpus.split("val"), styles)
    assert description["config"]["n_vertices"] == 5080 and description["config"]["n_styles"] == len(styles)
    options = TrainOptions(epochs=1, batch_size=2, val_predict_items=1)
    first = train(model, train_items, val_items, tmp_path, description, options, lips=lips)
    info = read_checkpoint_info(first.best)
    assert info["backbone"] == "faceformer" and info["styles"] == styles
    assert info["metrics"]["val_lve_mm"] > 0 and info["training"]["epoch"] == 0
    again, _, _ = build_run("faceformer", corpus, overrides=SMALL)
    resumed = train(again, train_items, val_items, tmp_path, description, TrainOptions(epochs=2, batch_size=2, val_predict_items=1), resume=True, lips=lips)
    assert [(h.stage, h.epoch) for h in resumed.history] == [("main", 0), ("main", 1)]


def test_key_motions_can_train_on_the_aligners_phones(corpus) -> None:
    """``alignments="aligner"`` gives each sequence the built-in aligner's phones on its speech
    and transcript (what inference gets), not the corpus' true TextGrid."""
    refs = corpus.split("train")[:2]
    true = load_items(corpus, refs, [])
    aligned = load_items(corpus, refs, [], alignments="aligner")
    for t, a in zip(true, aligned):
        assert t.alignment.backend != "pocketsphinx" and a.alignment.backend == "pocketsphinx"
        assert a.alignment.method == "forced"
        assert [w.label.lower() for w in a.alignment.words] == [w.label.lower() for w in t.alignment.words]
        assert [p.label for p in a.alignment.phones] != [p.label for p in t.alignment.phones] or [
            p.start for p in a.alignment.phones
        ] != [p.start for p in t.alignment.phones]


def test_aligner_warnings_in_training_name_their_sequence(corpus, monkeypatch) -> None:
    import kmtalk_cli.alignment as alignment
    from kmtalk_cli.errors import KmtalkWarning

    real = alignment.align

    def warning_align(audio, text=None, **kw):
        import warnings

        warnings.warn(KmtalkWarning("Alignment: used phone recognition instead."), stacklevel=2)
        return real(audio, text, **kw)

    monkeypatch.setattr(alignment, "align", warning_align)
    ref = corpus.split("train")[0]
    with pytest.warns(KmtalkWarning, match=rf"^{ref.name}: Alignment: used phone recognition"):
        load_items(corpus, [ref], [], alignments="aligner")


def test_a_sequence_the_aligner_hears_no_speech_in_is_named(corpus, monkeypatch) -> None:
    from kmtalk_cli.errors import DatasetError

    ref = corpus.split("train")[0]
    real_load = type(corpus).load

    def silent_load(self, r, **kw):
        seq = real_load(self, r, **kw)
        return replace(seq, audio=replace(seq.audio, samples=np.zeros_like(seq.audio.samples)))

    monkeypatch.setattr(type(corpus), "load", silent_load)  # the dataset is frozen
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match=rf"{ref.name}: the aligner heard no speech"):
        load_items(corpus, [ref], [], alignments="aligner")


def test_unknown_stage_is_refused(corpus, tmp_path) -> None:
    from kmtalk_cli.errors import ModelError

    model, description, lips = build_run("faceformer", corpus, overrides=SMALL)
    with pytest.raises(ModelError, match="no training stage"):
        train(model, [item("a", 3)], [], tmp_path, description, TrainOptions(stages=("bogus",)))


def test_unknown_lr_schedule_is_refused(corpus, tmp_path) -> None:
    from kmtalk_cli.errors import ModelError

    model, description, _ = build_run("faceformer", corpus, overrides=SMALL)
    with pytest.raises(ModelError, match="learning-rate schedule"):
        train(model, [item("a", 3)], [], tmp_path, description, TrainOptions(lr_schedule="step"))


def test_cosine_schedule_decays_the_rate_within_each_stage(corpus, tmp_path, monkeypatch) -> None:
    seen: list[float] = []
    step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    _, description, _ = build_run("faceformer", corpus, overrides=SMALL)  # what a checkpoint records
    items = [item(f"a{i}", 3 + i) for i in range(4)]
    train(_SixColumns(), items, [], tmp_path, description, TrainOptions(epochs=2, batch_size=1, lr=1e-2, lr_schedule="cosine"))
    assert seen[0] == pytest.approx(1e-2) and all(a > b for a, b in zip(seen, seen[1:])) and seen[-1] < 1e-3


class _SixColumns(torch.nn.Module):
    """A linear model of the toy items' 6 offset columns: the schedule, not the backbone, is tested."""

    stages = ("main",)

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 6)

    def trainable_parameters(self, stage: str):  # noqa: ANN201
        return self.parameters()

    def loss(self, batch, stage: str = "main"):  # noqa: ANN001, ANN201
        pred = self.layer(torch.ones(*batch.offsets.shape[:2], 1))
        loss = ((pred - batch.offsets) ** 2).mean()
        return loss, {"loss": float(loss.detach())}


def test_same_seed_gives_the_same_weights(tiny_corpus, tmp_path) -> None:
    """`kmtalk train --seed` fixes the initial weights too, so a run can be repeated exactly."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from kmtalk_cli.cli import app

    config = tmp_path / "small.json"
    config.write_text('{"audio": {"dim": 16, "layers": 1}, "d_model": 16}')
    weights = []
    for run in ("a", "b"):
        args = ["train", "--data", str(tiny_corpus), "--out", str(tmp_path / run), "--config", str(config), "--epochs", "1", "--seed", "3", "-q"]
        assert CliRunner().invoke(app, args).exit_code == 0
        weights.append(load_file(str(tmp_path / run / "last.safetensors")))
    assert weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_two_process_ddp_run(tiny_corpus, tmp_path) -> None:
    """`torchrun --nproc_per_node 2 kmtalk train` with gloo on CPU: both ranks step, rank 0 writes."""
    config = tmp_path / "small.json"
    config.write_text('{"audio": {"dim": 16, "layers": 1}, "d_model": 16}')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29577",
        "-m", "kmtalk_cli", "train", "--data", str(tiny_corpus), "--out", str(tmp_path / "run"),
        "--backbone", "faceformer", "--config", str(config), "--epochs", "1", "--batch-size", "1", "--device", "cpu", "-q",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "best.safetensors").is_file()


#: Backbone → (corpus fixture, size overrides, training options) for the test below.
BEATS_THE_MEAN: dict[str, tuple[str, dict, TrainOptions]] = {
    "faceformer": ("tiny_corpus", {"audio": {"dim": 32, "layers": 2}, "d_model": 32}, TrainOptions(epochs=8, batch_size=2, lr=3e-3)),
    # With prosody and a vocal-tract warp per subject, one training voice no longer carries
    # SelfTalk's lips to the val voice (best 3.71 against the still face's 3.62 mm); two do (4.16 against 5.16).
    "selftalk": ("two_voice_corpus", {"audio": {"dim": 32, "layers": 2}, "d_model": 32}, TrainOptions(epochs=8, batch_size=2, lr=3e-3)),
    # The bundled prior width (hidden 48); 30 prior steps, 18 speech steps. On one training voice
    # its best epochs beat the motionless face by 0.01–0.8 mm over seeds 0–4; on two, by 1.4–1.9.
    "codetalker": (
        "two_voice_corpus",
        {"audio": {"dim": 32, "layers": 2}, "d_model": 32, "hidden": 48},
        TrainOptions(batch_size=2, lr=3e-3, stage_epochs={"prior": 10, "speech": 6}),
    ),
}


@pytest.mark.parametrize("name", list(BEATS_THE_MEAN))
def test_training_beats_the_mean_face_on_held_out_subjects(name: str, request, tmp_path) -> None:
    """The loss falls (in the last stage) and the free-running lip error on validation beats predicting no motion."""
    from kmtalk_cli.metrics import lve_mm

    corpus_fixture, overrides, options = BEATS_THE_MEAN[name]
    corpus = open_dataset(request.getfixturevalue(corpus_fixture))
    torch.manual_seed(0)
    model, description, lips = build_run(name, corpus, overrides=overrides)
    styles = description["styles"]
    train_items = load_items(corpus, corpus.split("train"), styles)
    val_items = load_items(corpus, corpus.split("val"), styles)
    still = np.concatenate([lve_mm(np.zeros_like(i.offsets).reshape(len(i.offsets), -1, 3), i.offsets.reshape(len(i.offsets), -1, 3), lips) for i in val_items]).mean()
    result = train(model, train_items, val_items, tmp_path, description, options, lips=lips)
    last_stage = [h for h in result.history if h.stage == model.stages[-1]]
    assert last_stage[-1].train_loss < 0.6 * last_stage[0].train_loss  # SelfTalk on two voices: 0.0154 → 0.0079
    assert min(h.val_lve_mm for h in last_stage) < still


def test_a_diverging_loss_stops_training_before_anything_of_that_epoch_is_saved(corpus, tmp_path, monkeypatch) -> None:
    from kmtalk_cli.errors import ModelError

    model, description, lips = build_run("faceformer", corpus, overrides=SMALL)
    train_items = load_items(corpus, corpus.split("train"), description["styles"])
    real, calls = model.loss, []

    def exploding(batch, stage="main"):  # noqa: ANN001, ANN202 - fine for one epoch, then NaN
        loss, parts = real(batch, stage)
        calls.append(1)
        return (loss * float("nan") if len(calls) > len(train_items) else loss), parts

    monkeypatch.setattr(model, "loss", exploding)
    with pytest.raises(ModelError, match=r"diverged in stage main, epoch 2: the loss is nan.*lower --lr"):
        train(model, train_items, [], tmp_path, description, TrainOptions(epochs=3, batch_size=1), lips=lips)
    assert read_checkpoint_info(tmp_path / "best.safetensors")["training"]["epoch"] == 0  # epoch 1's, not epoch 2's


def test_the_cli_refuses_absurd_rates_and_leaves_no_run_folder(tiny_corpus, tmp_path) -> None:
    from typer.testing import CliRunner

    from kmtalk_cli.cli import app

    for lr in ("nan", "-1", "inf", "0", "5"):
        result = CliRunner().invoke(app, ["train", "--data", str(tiny_corpus), "--out", str(tmp_path / "run"), "--lr", lr])
        assert result.exit_code == 2 and "--lr" in result.output and "Traceback" not in result.output
        assert not (tmp_path / "run").exists()


def test_resuming_with_a_model_that_lacks_the_stopped_stage_is_refused(corpus, tmp_path) -> None:
    """A key-motion run started staged (keys, complete) cannot resume as joint: one sentence, not a traceback."""
    from kmtalk_cli.errors import ModelError

    _, description, _ = build_run("faceformer", corpus, overrides=SMALL)
    items = [item(f"a{i}", 3 + i) for i in range(2)]
    train(_SixColumns(), items, [], tmp_path, description, TrainOptions(epochs=1, batch_size=1))
    other = _SixColumns()
    other.stages = ("joint", "refine")
    with pytest.raises(ModelError, match="stopped in stage 'main'.*config it started with"):
        train(other, items, [], tmp_path, description, TrainOptions(epochs=1, batch_size=1), resume=True)


def test_a_staged_key_motion_run_resumes_staged_without_saying_so_again(tiny_corpus, tmp_path) -> None:
    """Runs from before ``schedule`` existed (staged) resume with the config they started with."""
    from typer.testing import CliRunner

    from kmtalk_cli.cli import app

    sizes = '"audio": {"dim": 16, "layers": 1}, "d_model": 16'
    staged, plain = tmp_path / "staged.json", tmp_path / "plain.json"
    staged.write_text('{%s, "key_motions": {"embed_dim": 16, "decoder_dim": 16, "decoder_layers": 1, "schedule": "staged"}}' % sizes)
    plain.write_text('{%s, "key_motions": {"embed_dim": 16, "decoder_dim": 16, "decoder_layers": 1}}' % sizes)
    base = ["train", "--data", str(tiny_corpus), "--out", str(tmp_path / "run"), "--key-motions", "--epochs", "1", "-q"]
    assert CliRunner().invoke(app, [*base, "--config", str(staged), "--stage", "keys"]).exit_code == 0
    done = CliRunner().invoke(app, [*base, "--config", str(plain), "--stage", "complete", "--resume"])
    assert done.exit_code == 0, done.output
    stages = [json.loads(line)["stage"] for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert stages == ["keys", "complete"]
    back = CliRunner().invoke(app, [*base, "--config", str(plain), "--stage", "keys", "--resume"])
    assert back.exit_code == 1 and "past the stages asked for" in back.output
