"""FaceFormer backbone: config, shapes, padding, conditioning, style, checkpoints, cache, bias, training."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

from kmtalk_cli import backbones
from kmtalk_cli.backbones.base import Batch, n_frames_for
from kmtalk_cli.backbones.checkpoint import load_backbone, save_checkpoint
from kmtalk_cli.backbones.faceformer import FaceFormer, FaceFormerConfig
from kmtalk_cli.errors import ModelError

TINY = {"n_vertices": 12, "d_model": 32, "audio": {"dim": 16, "layers": 2}}
SR = 16_000


@pytest.fixture(autouse=True)
def one_thread():
    """The decoder runs many tiny per-frame ops; on a busy 2-core machine a second intra-op
    thread only makes them wait on each other (10× slower), so these tests use one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def registry(monkeypatch):
    """The registry without discovery: sibling backbones may not exist yet; faceformer registered on import."""
    monkeypatch.setattr(backbones, "_discovered", True)


def tiny(**overrides) -> FaceFormer:
    torch.manual_seed(0)
    return FaceFormer(FaceFormerConfig().replace(**{**TINY, **overrides}))


def randomise_output(model: FaceFormer, std: float = 1.0) -> None:
    """Give the zero-initialised output map weights, so comparisons are not between zeros."""
    torch.nn.init.normal_(model.motion_decoder.weight, std=std)
    torch.nn.init.normal_(model.motion_decoder.bias, std=std)


def noise_audio(seconds: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SR)
    envelope = 0.5 + 0.5 * torch.sin(torch.arange(n) / SR * 2 * math.pi * 3.0)
    return 0.1 * envelope * torch.randn(n, generator=g)


def make_batch(model: FaceFormer, clips: list[torch.Tensor], targets: list[torch.Tensor] | None = None, style=None) -> Batch:
    lengths = [n_frames_for(len(c), model.config.fps) for c in clips]
    audio = torch.zeros(len(clips), max(len(c) for c in clips))
    offsets = torch.zeros(len(clips), max(lengths), model.config.vertex_dim)
    for i, clip in enumerate(clips):
        audio[i, : len(clip)] = clip
        if targets is not None:
            offsets[i, : lengths[i]] = targets[i]
    return Batch(audio, torch.tensor([len(c) for c in clips]), offsets, torch.tensor(lengths), style=style)


def test_config_round_trip_and_presets(registry):
    cfg = FaceFormerConfig().replace(n_styles=3, period=25, attention_window=50, lip_vertices=(1, 2), audio={"dim": 8})
    assert FaceFormerConfig.from_dict(cfg.to_dict()) == cfg
    assert FaceFormerConfig.from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(ValueError):
        FaceFormerConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError):
        FaceFormerConfig(d_model=30, n_heads=4)
    vocaset = backbones.make_config("faceformer", "paper-vocaset")
    assert (vocaset.d_model, vocaset.period, vocaset.fps, vocaset.n_vertices) == (64, 30, 30.0, 5023)
    assert (vocaset.audio.kind, vocaset.audio.preset, vocaset.n_heads, vocaset.ffn_multiplier) == ("wav2vec2", "base", 4, 2)
    biwi = backbones.make_config("faceformer", "paper-biwi")
    assert (biwi.d_model, biwi.period, biwi.fps, biwi.n_vertices) == (128, 25, 25.0, 23370)
    default = backbones.make_config("faceformer")
    assert (default.audio.kind, default.audio.dim, default.d_model, default.n_layers) == ("mel", 128, 128, 1)


@pytest.mark.parametrize(("preset", "expected"), [("paper-vocaset", 2_043_933 - 8_320), ("paper-biwi", 18_316_382 - 33_024)])
def test_paper_sizes_match_the_original_minus_unused_cross_projections(preset, expected):
    """The non-wav2vec parameters equal the original's (reference §1.2) less cross-attention q/k."""
    cfg = FaceFormerConfig().replace(**FaceFormer.presets[preset]).replace(audio={"kind": "mel", "dim": 768, "layers": 1})
    model = FaceFormer(cfg)
    assert sum(p.numel() for n, p in model.named_parameters() if not n.startswith("audio_encoder.")) == expected


def test_forward_backward_and_untrained_outputs_the_template():
    model = tiny(n_styles=2, velocity_weight=1.0)
    clips = [noise_audio(0.5, 0), noise_audio(0.4, 1)]
    targets = [0.003 * torch.randn(n_frames_for(len(c), 30.0), 36) for c in clips]
    batch = make_batch(model, clips, targets, style=torch.tensor([0, 1]))
    loss, parts = model.loss(batch)
    assert set(parts) == {"mse", "velocity", "loss"} and math.isfinite(parts["loss"])
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["motion_decoder.weight"].abs().sum() > 0
    assert torch.count_nonzero(model.predict(clips[0], 15)) == 0


def test_training_runs_free_by_default_and_backpropagates():
    model = tiny().train()
    randomise_output(model, 0.1)
    clips = [noise_audio(0.3, 0)]
    batch = make_batch(model, clips, [0.003 * torch.randn(9, 36)])
    torch.manual_seed(1)
    loss, _ = model.loss(batch)
    loss.backward()
    assert model.motion_encoder.weight.grad.abs().sum() > 0  # gradients flow through the re-encoded outputs
    # The target never enters the decoder: a different target gives the same prediction.
    feats = model.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths).detach()
    torch.manual_seed(2)
    a = model.decode(feats, batch.frame_lengths, target=batch.offsets)
    torch.manual_seed(2)
    b = model.decode(feats, batch.frame_lengths, target=batch.offsets + 1.0)
    torch.testing.assert_close(a, b)
    # Asked for teacher forcing, training reads the target instead.
    forced = tiny(autoregressive_training=False).train()
    randomise_output(forced, 0.1)
    torch.manual_seed(2)
    a = forced.decode(feats, batch.frame_lengths, target=batch.offsets)
    torch.manual_seed(2)
    b = forced.decode(feats, batch.frame_lengths, target=batch.offsets + 1.0)
    assert not torch.allclose(a, b)


def test_batch_of_unequal_lengths_equals_one_by_one():
    model = tiny(n_styles=2).eval()
    randomise_output(model, 0.5)
    clips = [noise_audio(0.6, 0), noise_audio(0.35, 1), noise_audio(0.5, 2)]
    targets = [0.003 * torch.randn(n_frames_for(len(c), 30.0), 36) for c in clips]
    styles = torch.tensor([1, 0, 1])
    batch = make_batch(model, clips, targets, style=styles)
    with torch.no_grad():
        feats = model.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        free = model.decode(feats, batch.frame_lengths, style=styles)
        forced = model.decode(feats, batch.frame_lengths, style=styles, target=batch.offsets)
        for i, clip in enumerate(clips):
            n = int(batch.frame_lengths[i])
            torch.testing.assert_close(free[i, :n], model.predict(clip, n, style=int(styles[i])), atol=1e-4, rtol=0)
            one = make_batch(model, [clip], [targets[i]], style=styles[i : i + 1])
            f1 = model.encode_audio(one.audio, one.audio_lengths, one.frame_lengths)
            alone = model.decode(f1, one.frame_lengths, style=one.style, target=one.offsets)[0]
            torch.testing.assert_close(forced[i, :n], alone, atol=1e-4, rtol=0)
            assert torch.count_nonzero(free[i, n:]) == 0


def test_condition_path_starts_neutral_and_then_matters():
    model = tiny(condition_dim=5).eval()
    randomise_output(model, 0.5)
    clip = noise_audio(0.4, 3)
    n = n_frames_for(len(clip), 30.0)
    condition = torch.randn(n, 5)
    plain = model.predict(clip, n)
    torch.testing.assert_close(model.predict(clip, n, condition=condition), plain)
    torch.nn.init.normal_(model.condition_map.weight)
    assert not torch.allclose(model.predict(clip, n, condition=condition), plain, atol=1e-4)
    with pytest.raises(ModelError):
        model.predict(clip, n, condition=torch.randn(n, 4))


def test_style_none_is_the_mean_style():
    model = tiny(n_styles=3).eval()
    randomise_output(model, 0.5)
    averaged = tiny(n_styles=1).eval()
    mean_style = model.style_embedding.weight.mean(1, keepdim=True)
    averaged.load_state_dict({**model.state_dict(), "style_embedding.weight": mean_style})
    clip = noise_audio(0.4, 4)
    torch.testing.assert_close(model.predict(clip, 12), averaged.predict(clip, 12, style=0))
    assert not torch.allclose(model.predict(clip, 12, style=0), model.predict(clip, 12, style=2))
    with pytest.raises(ModelError):
        model.predict(clip, 12, style=3)
    with pytest.raises(ModelError):
        tiny().predict(clip, 12, style=0)


def test_checkpoint_round_trip(tmp_path, registry):
    model = tiny(n_styles=2, condition_dim=3, lip_vertices=(0, 1, 2)).eval()
    randomise_output(model, 0.5)
    info = {"kind": "backbone", "backbone": "faceformer", "config": model.config.to_dict()}
    path = save_checkpoint(model, tmp_path / "ff.safetensors", info)
    loaded, info = load_backbone(path)
    assert isinstance(loaded, FaceFormer) and loaded.config == model.config and info["backbone"] == "faceformer"
    clip, condition = noise_audio(0.4, 5), torch.randn(12, 3)
    expected = model.predict(clip, 12, style=1, condition=condition)
    torch.testing.assert_close(loaded.predict(clip, 12, style=1, condition=condition), expected)


def naive_free_running(model: FaceFormer, features, condition, style) -> torch.Tensor:
    """FaceFormer's original inference: re-run the whole decoder over the prefix for every frame."""
    n = features.shape[1]
    out = torch.zeros(1, n, model.config.vertex_dim)
    for t in range(n):
        step = model.decode(
            features[:, : t + 1], torch.tensor([t + 1]), condition=condition[:, : t + 1], style=style, target=out[:, : t + 1]
        )
        out[:, t] = step[:, t]
    return out


def test_cached_decoding_equals_naive_loop():
    # A window shorter than the clip and a short period so the cache trimming and the bias both matter.
    model = tiny(n_layers=2, n_styles=2, condition_dim=3, attention_window=6, period=4).eval()
    randomise_output(model, 1.0)
    torch.nn.init.normal_(model.condition_map.weight)
    features, condition, style = torch.randn(1, 20, 16), torch.randn(1, 20, 3), torch.tensor([1])
    with torch.no_grad():
        cached = model.decode(features, torch.tensor([20]), condition=condition, style=style)
        naive = naive_free_running(model, features, condition, style)
    assert cached.abs().max() > 1e-2
    torch.testing.assert_close(cached, naive, atol=1e-5, rtol=0)


def test_attention_bias_is_the_periodic_alibi_formula():
    model = tiny(period=3, attention_window=7)
    bias = model.attention_bias(12)
    slopes = [1 / 4, 1 / 16, 1 / 64, 1 / 256]
    for h, i, j in [(0, 5, 5), (0, 5, 2), (1, 11, 6), (3, 9, 3), (2, 4, 0), (0, 2, 3), (1, 11, 4), (2, 8, 1)]:
        if j > i or i - j >= 7:
            assert bias[h, i, j] == float("-inf")
        else:
            assert bias[h, i, j].item() == pytest.approx(-slopes[h] * ((i - j) // 3))


def test_self_attention_applies_the_bias():
    """With zero queries and keys the attention weights are softmax(bias) exactly; read them off."""
    model = tiny(period=2, attention_window=5).eval()
    attn, n, dh = model.layers[0].self_attn, 8, 8
    with torch.no_grad():
        attn.in_proj.weight.zero_()
        attn.in_proj.bias.zero_()
        attn.in_proj.weight[64:].copy_(torch.eye(32))  # values = inputs
        attn.out_proj.weight.copy_(torch.eye(32))
        attn.out_proj.bias.zero_()
        x = torch.zeros(1, n, 32)
        for h in range(4):
            x[0, torch.arange(n), h * dh + torch.arange(n)] = 1.0  # one-hot position in each head
        out, _ = attn(x, model.attention_bias(n))
    bias = model.attention_bias(n)
    for h in range(4):
        torch.testing.assert_close(out[0, :, h * dh : (h + 1) * dh], torch.softmax(bias[h], dim=-1))


def test_causality_later_audio_does_not_change_earlier_frames():
    model = tiny(n_styles=1).eval()
    randomise_output(model, 1.0)
    k, features = 9, torch.randn(1, 20, 16)
    changed = features.clone()
    changed[:, k + 1 :] = torch.randn(1, 20 - k - 1, 16)
    target = torch.randn(1, 20, 36)
    with torch.no_grad():
        a, b = (model.decode(f, torch.tensor([20])) for f in (features, changed))
        forced = [model.decode(f, torch.tensor([20]), target=target) for f in (features, changed)]
        later_target = target.clone()
        later_target[:, k:] += 1.0  # target frame k feeds token k+1 only
        forced_t = model.decode(features, torch.tensor([20]), target=later_target)
    torch.testing.assert_close(a[:, : k + 1], b[:, : k + 1], atol=0, rtol=0)
    assert not torch.allclose(a[:, k + 1 :], b[:, k + 1 :])
    torch.testing.assert_close(forced[0][:, : k + 1], forced[1][:, : k + 1], atol=0, rtol=0)
    torch.testing.assert_close(forced_t[:, : k + 1], forced[0][:, : k + 1], atol=0, rtol=0)


def test_three_minutes_at_the_default_preset():
    torch.manual_seed(0)
    model = FaceFormer(FaceFormerConfig().replace(**FaceFormer.presets["default"], n_vertices=60)).eval()
    randomise_output(model, 0.1)
    audio = noise_audio(180.0, 6)
    n = n_frames_for(len(audio), 30.0)
    start = time.perf_counter()
    out = model.predict(audio, n)
    assert out.shape == (5400, 180) and torch.isfinite(out).all()
    assert time.perf_counter() - start < 60


def test_overfits_tiny_synthetic_sequences():
    """Offsets that follow the audio envelope are learnt: the loss falls well below its start."""
    torch.manual_seed(0)
    model = tiny(dropout=0.0).train()
    direction = torch.randn(36)
    clips, targets = [], []
    for seed, rate in enumerate((2.0, 3.0, 5.0)):
        n = int(0.8 * SR)
        t = torch.arange(n) / SR
        envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * rate * t + seed)
        clips.append(envelope * torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.2)
        frames = torch.arange(n_frames_for(n, 30.0)) / 30.0
        targets.append(0.004 * (0.5 + 0.5 * torch.sin(2 * math.pi * rate * frames + seed))[:, None] * direction)
    batch = make_batch(model, clips, targets)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(80):
        optimiser.zero_grad()
        loss, _ = model.loss(batch)
        loss.backward()
        optimiser.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.2 * first
