"""KMTalk's key-motion decoder and completion, wrapped around real backbones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kmtalk_cli.backbones import create_backbone, list_backbones
from kmtalk_cli.backbones.checkpoint import save_checkpoint
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.errors import ModelError
from kmtalk_cli.keymotion_model import KeyMotionConfig, KeyMotionModel, interpolate_keys, key_features, load_keymotion_model
from kmtalk_cli.keymotions import KeyMotions, select_key_frames
from kmtalk_cli.training import collate, load_items

KM = KeyMotionConfig(embed_dim=16, decoder_dim=32, decoder_layers=1, phone_dim=8, schedule="staged")


def test_interpolation_between_keys_with_distances() -> None:
    keys = torch.zeros(1, 5, 1)
    keys[0, 1, 0], keys[0, 4, 0] = 3.0, 6.0
    mask = torch.tensor([[False, True, False, False, True]])
    interp, d_prev, d_next = interpolate_keys(keys, mask)
    assert interp[0, :, 0].tolist() == pytest.approx([3.0, 3.0, 4.0, 5.0, 6.0])  # held before the first key
    assert d_prev[0].tolist() == [60, 0, 1, 2, 0] and d_next[0].tolist() == [1, 0, 2, 1, 0]


def test_key_features_read_the_frames_around_each_key_held_at_the_ends() -> None:
    features = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    frames = torch.tensor([[0, 2], [4, 1]])
    assert torch.equal(key_features(features, frames), features[torch.arange(2)[:, None], frames])
    wide = key_features(features, frames, 1)
    assert wide.shape == (2, 2, 9)
    assert torch.equal(wide[0, 0], torch.cat([features[0, 0], features[0, 0], features[0, 1]]))  # frame -1 held at 0
    assert torch.equal(wide[1, 1], features[1, 0:3].flatten())


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    return open_dataset(tiny_corpus)


def tiny_backbone(name: str, corpus, condition_dim: int = KM.embed_dim):
    from kmtalk_cli.evaluation import resolve_regions

    regions = resolve_regions(corpus)
    lips, upper = regions.lips, regions.upper_face
    sizes = {
        "faceformer": {"d_model": 16},
        "codetalker": {"hidden": 64, "prior_layers": 1, "prior_ffn": 128, "n_components": 4, "code_dim": 16, "d_model": 32, "decoder_layers": 1, "decoder_ffn": 64},
        "selftalk": {"d_model": 16},
    }.get(name, {})
    return create_backbone(
        name, preset="default", n_vertices=5080, n_styles=1, condition_dim=condition_dim,
        lip_vertices=tuple(int(i) for i in lips), upper_face_vertices=tuple(int(i) for i in upper),
        audio={"dim": 16, "layers": 1}, **sizes,
    )


def test_corrupted_keys_keep_their_rows_and_change_within_bounds() -> None:
    from kmtalk_cli.keymotion_model import corrupt_keys

    torch.manual_seed(0)
    keys = torch.randn(3, 6, 4)
    valid = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] + [False] * 5])
    out = corrupt_keys(keys, valid, 0.3)
    assert out.shape == keys.shape and not torch.allclose(out, keys)
    ratio = out[2, 0] / keys[2, 0]  # a single key can only be scaled (its only partner is itself)
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), atol=1e-5)
    assert torch.equal(corrupt_keys(keys, valid, 0.0), keys)


def test_condition_width_must_match(corpus) -> None:
    with pytest.raises(ModelError, match="condition_dim"):
        KeyMotionModel(tiny_backbone("faceformer", corpus, condition_dim=8), KM)


def test_padding_keys_do_not_overwrite_real_ones(corpus) -> None:
    model = KeyMotionModel(tiny_backbone("faceformer", corpus), KM)
    offsets = torch.ones(2, 3, 5080 * 3)
    frames = torch.tensor([[0, 2, 4], [0, 3, 0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    with torch.no_grad():
        a, base_a = model.condition(offsets, frames, valid, 6)
        b, base_b = model.condition(offsets[1:], frames[1:, :2], valid[1:, :2], 6)
    assert torch.allclose(a[1], b[0], atol=1e-4) and torch.allclose(base_a[1], base_b[0])
    assert torch.allclose(base_a[0], torch.ones(6, 5080 * 3))  # interpolating constant keys


def train_steps(model: KeyMotionModel, batch, stage: str, steps: int, lr: float = 3e-3) -> list[dict[str, float]]:
    """``steps`` optimiser steps of one stage on one batch; the loss parts of each step."""
    optimizer = torch.optim.Adam(model.trainable_parameters(stage), lr=lr)
    parts = []
    for _ in range(steps):
        model.train()
        loss, step_parts = model.loss(batch, stage)
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        parts.append(step_parts)
    return parts


@pytest.mark.parametrize("name", [b.name for b in list_backbones()])
def test_each_backbone_with_key_motions_learns_its_key_frames(name: str, corpus, tmp_path) -> None:
    """The default (joint) schedule on every backbone: key motions are learnt while completion trains."""
    torch.manual_seed(0)
    items = load_items(corpus, corpus.split("train")[:2], [corpus.split("train")[0].subject])
    batch = collate(items)
    model = KeyMotionModel(tiny_backbone(name, corpus), KeyMotionConfig(**{**KM.to_dict(), "schedule": "joint"}))
    assert model.stages[-2:] == ("joint", "refine")
    for stage in model.stages[:-2]:  # the backbone's own pre-stages (CodeTalker's motion prior)
        train_steps(model, batch, stage, 40)
    key_losses = [parts["key"] for parts in train_steps(model, batch, "joint", 25)]
    assert key_losses[-1] < 0.5 * key_losses[0]
    it = items[0]
    n = len(it.offsets)
    audio = torch.from_numpy(it.audio)

    # Checkpoint round trip, key motions included.
    path = tmp_path / f"{name}-km.safetensors"
    info = {"kind": "key-motion", "backbone": name, "config": model.backbone.config.to_dict(), "key_motions": model.km_config.to_dict()}
    save_checkpoint(model, path, info)
    loaded, _ = load_keymotion_model(path)
    assert np.allclose(loaded.predict(audio, n, style=0, alignment=it.alignment).numpy(), model.predict(audio, n, style=0, alignment=it.alignment).numpy(), atol=1e-5)


def repair_ratio(model: KeyMotionModel, item, gain: float) -> float:
    """Whole-face error of completing keys ``gain`` × the truth, over that of interpolating those keys."""
    n = len(item.offsets)
    frames = select_key_frames(item.alignment, n, 30.0)
    keys = KeyMotions(frames, gain * item.offsets[frames.indices])
    completed = model.complete(torch.from_numpy(item.audio), n, keys, style=0).numpy()
    mask = torch.zeros(1, n, dtype=torch.bool)
    mask[0, frames.indices] = True
    timeline = torch.zeros(1, n, item.offsets.shape[1])
    timeline[0, frames.indices] = torch.from_numpy(keys.offsets)
    interpolated = interpolate_keys(timeline, mask)[0][0].numpy()
    err = lambda pred: float(np.abs(pred - item.offsets).mean())  # noqa: E731
    return err(completed) / err(interpolated)


@pytest.mark.slow
def test_completion_repairs_keys_that_are_off(corpus) -> None:
    """Completion earns its place: given key motions 30% too small (a decoder misjudging the effort),
    it ends closer to the truth than their interpolation. An untrained model cannot (its residual
    is zero: the keys' interpolation, exactly), nor one that learnt completion from true keys only."""
    torch.manual_seed(0)
    items = load_items(corpus, corpus.split("train")[:2], [corpus.split("train")[0].subject])
    batch = collate(items)
    model = KeyMotionModel(tiny_backbone("selftalk", corpus), KeyMotionConfig(**{**KM.to_dict(), "key_noise": 0.3}))
    assert repair_ratio(model, items[0], 0.7) == pytest.approx(1.0, abs=1e-6)
    train_steps(model, batch, "complete", 200, lr=1e-3)
    assert repair_ratio(model, items[0], 0.7) < 0.85  # measured 0.68-0.80 from 120 steps on (3 × 4 sentences)


def test_prediction_needs_an_alignment(corpus) -> None:
    model = KeyMotionModel(tiny_backbone("faceformer", corpus), KM)
    with pytest.raises(ModelError, match="alignment"):
        model.predict(torch.zeros(16000), 30)


@pytest.mark.parametrize("trains_encoder", [False, True])
def test_completion_leaves_the_audio_encoder_to_the_keys_stage_unless_asked(trains_encoder: bool, corpus) -> None:
    config = KeyMotionConfig(**{**KM.to_dict(), "completion_trains_encoder": trains_encoder})
    model = KeyMotionModel(tiny_backbone("selftalk", corpus), config)
    encoder = {id(p) for p in model.backbone.audio_encoder.parameters()}
    learns = lambda stage: bool(encoder & {id(p) for p in model.trainable_parameters(stage)})  # noqa: E731
    assert learns("keys") and not learns("refine")
    assert learns("complete") is trains_encoder
    batch = collate(load_items(corpus, corpus.split("train")[:1], []))
    loss, _ = model.loss(batch, "complete")
    loss.backward()
    touched = any(p.grad is not None for p in model.backbone.audio_encoder.parameters())
    assert touched is trains_encoder


def test_complete_teacher_forced_reads_the_true_residual_of_earlier_frames(corpus) -> None:
    model = KeyMotionModel(tiny_backbone("faceformer", corpus), KM).eval()
    torch.nn.init.normal_(model.backbone.motion_decoder.weight, std=0.5)  # zero-initialised: outputs would all be 0
    it = load_items(corpus, corpus.split("train")[:1], [])[0]
    n, k = len(it.offsets), 5
    frames = select_key_frames(it.alignment, n, 30.0)
    keys = KeyMotions(frames, it.offsets[frames.indices])
    audio, truth = torch.from_numpy(it.audio), torch.from_numpy(it.offsets)
    later = truth.clone()
    later[k:] += 0.01  # true frame k feeds frame k + 1 only
    forced = model.complete(audio, n, keys, target=truth)
    moved = model.complete(audio, n, keys, target=later)
    torch.testing.assert_close(moved[: k + 1], forced[: k + 1], atol=0, rtol=0)
    assert not torch.allclose(moved[k + 1 :], forced[k + 1 :])
    assert not torch.allclose(model.complete(audio, n, keys), forced)  # free-running reads its own frames


def test_joint_schedule_trains_keys_and_completion_in_the_same_steps(corpus) -> None:
    config = KeyMotionConfig(**{**KM.to_dict(), "schedule": "joint", "completion_keys": "predicted"})
    model = KeyMotionModel(tiny_backbone("selftalk", corpus), config)
    assert model.stages == ("joint", "refine")
    params = model.trainable_parameters("joint")
    assert len({id(p) for p in params}) == len(params)  # the encoder is shared: each parameter once
    learnt = {id(p) for p in params}
    for part in (model.key_decoder, model.embedding, model.backbone.audio_encoder):
        assert all(id(p) in learnt for p in part.parameters())
    batch = collate(load_items(corpus, corpus.split("train")[:2], [corpus.split("train")[0].subject]))
    torch.nn.init.normal_(model.key_decoder.out.weight, std=0.01)  # zero-initialised: no gradient would reach the encoder
    loss, parts = model.loss(batch, "joint")
    assert float(loss) == pytest.approx(parts["key"] + parts["completion"], rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.key_decoder.out.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.audio_encoder.parameters())


def test_joint_completion_learns_from_the_decoders_keys_when_asked(corpus, monkeypatch) -> None:
    """With ``completion_keys: predicted`` completion is conditioned on the decoder's (detached) keys,
    not the truth: what it will be given at test time."""
    batch = collate(load_items(corpus, corpus.split("train")[:1], [corpus.split("train")[0].subject]))
    seen = {}
    for source in ("true", "predicted"):
        torch.manual_seed(0)
        config = KeyMotionConfig(**{**KM.to_dict(), "schedule": "joint", "completion_keys": source})
        model = KeyMotionModel(tiny_backbone("selftalk", corpus), config).eval()
        torch.nn.init.normal_(model.key_decoder.out.weight, std=0.01)  # zero-initialised keys would be 0 either way
        original = model.condition
        monkeypatch.setattr(model, "condition", lambda keys, *a: (seen.__setitem__(source, keys), original(keys, *a))[1])
        model.loss(batch, "joint")
        assert not seen[source].requires_grad
    keys = model.key_frames(batch.alignments, batch.frame_lengths)
    frames = torch.from_numpy(keys[0].indices)
    torch.testing.assert_close(seen["true"][0], batch.offsets[0, frames])
    assert not torch.allclose(seen["predicted"][0], batch.offsets[0, frames])


def test_the_staged_schedule_trains_keys_then_completion(corpus) -> None:
    """Staged: ``keys`` moves the key decoder and not the backbone's motion decoder, ``complete`` the reverse."""
    torch.manual_seed(0)
    model = KeyMotionModel(tiny_backbone("faceformer", corpus), KM)
    assert model.stages == ("keys", "complete", "refine")
    batch = collate(load_items(corpus, corpus.split("train")[:1], [corpus.split("train")[0].subject]))
    parts = {"keys": model.key_decoder.out.weight, "complete": model.backbone.motion_decoder.weight}
    for stage, other in (("keys", "complete"), ("complete", "keys")):
        before = {name: w.detach().clone() for name, w in parts.items()}
        train_steps(model, batch, stage, 3)
        assert not torch.equal(parts[stage], before[stage]) and torch.equal(parts[other], before[other])


def test_checkpoints_from_before_schedules_load_as_staged(corpus, tmp_path) -> None:
    model = KeyMotionModel(tiny_backbone("faceformer", corpus), KM)
    old = {k: v for k, v in model.km_config.to_dict().items() if k not in ("schedule", "completion_keys")}
    path = tmp_path / "old.safetensors"
    save_checkpoint(model, path, {"kind": "key-motion", "backbone": "faceformer", "config": model.backbone.config.to_dict(), "key_motions": old})
    assert load_keymotion_model(path)[0].stages == ("keys", "complete", "refine")
    assert KeyMotionConfig.from_dict({}).schedule == "joint"  # what a new run gets


def test_unknown_schedules_and_predicted_keys_without_joint_are_refused() -> None:
    with pytest.raises(ModelError, match="schedule"):
        KeyMotionConfig.from_dict({"schedule": "together"})
    with pytest.raises(ModelError, match="completion_keys"):
        KeyMotionConfig.from_dict({"completion_keys": "guessed"})
    with pytest.raises(ModelError, match="joint"):
        KeyMotionConfig.from_dict({"completion_keys": "predicted", "schedule": "staged"})
    with pytest.raises(ModelError, match="key_window .* cannot be negative"):
        KeyMotionConfig.from_dict({"key_window": -1})
