"""CodeTalker backbone: both stages, the quantiser, cached generation, padding, checkpoints."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import kmtalk_cli.backbones as registry
from kmtalk_cli.backbones.base import Batch
from kmtalk_cli.backbones.checkpoint import load_backbone, save_checkpoint
from kmtalk_cli.backbones.codetalker import CodeTalker, CodeTalkerConfig
from kmtalk_cli.errors import ModelError

SR = 16000
FPS = 30.0

TINY = {
    "n_vertices": 50,
    "audio": {"kind": "mel", "dim": 16, "layers": 2},
    "hidden": 32,
    "prior_layers": 1,
    "prior_heads": 2,
    "prior_ffn": 64,
    "n_components": 4,
    "code_dim": 8,
    "n_codes": 16,
    "d_model": 32,
    "decoder_layers": 2,
    "decoder_heads": 2,
    "decoder_ffn": 64,
}


def tiny(**overrides) -> CodeTalker:
    torch.manual_seed(0)
    return CodeTalker(CodeTalkerConfig().replace(**{**TINY, **overrides}))


def randomize(model: CodeTalker) -> CodeTalker:
    """Give the zero-initialised maps weights, so outputs depend on their inputs."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.feat_map.weight.copy_(torch.randn(model.feat_map.weight.shape, generator=gen))
        out = model.prior.decoder.out_map
        out.weight.copy_(0.3 * torch.randn(out.weight.shape, generator=gen))
        model.prior.quantizer.codebook.copy_(torch.randn(model.prior.quantizer.codebook.shape, generator=gen))
        if model.condition_map is not None:
            model.condition_map.weight.copy_(torch.randn(model.condition_map.weight.shape, generator=gen))
    return model


def corpus(model: CodeTalker, lengths: tuple[int, ...] = (30, 24, 36), seed: int = 0) -> Batch:
    """Offsets that are a smooth function of the audio envelope (a modulated noise carrier)."""
    gen = torch.Generator().manual_seed(seed)
    n_frames = max(lengths)
    n_samples = int(n_frames / FPS * SR)
    t_audio = torch.arange(n_samples) / SR
    t_frames = torch.arange(n_frames) / FPS
    direction = torch.randn(model.config.vertex_dim, generator=gen)
    bend = torch.randn(model.config.vertex_dim, generator=gen)
    audio = torch.zeros(len(lengths), n_samples)
    offsets = torch.zeros(len(lengths), n_frames, model.config.vertex_dim)
    for i, length in enumerate(lengths):
        rate, phase = 2.0 + i, float(i)
        envelope = lambda t: 0.5 * (1 + torch.sin(2 * math.pi * rate * t + phase))  # noqa: E731
        n = int(length / FPS * SR)
        audio[i, :n] = 0.3 * envelope(t_audio[:n]) * torch.randn(n, generator=gen)
        e = envelope(t_frames[:length])[:, None]
        offsets[i, :length] = 0.01 * (e * direction + e.pow(2) * bend)
    audio_lengths = torch.tensor([int(n / FPS * SR) for n in lengths])
    return Batch(audio, audio_lengths, offsets, torch.tensor(lengths))


def train(model: CodeTalker, batch: Batch, stage: str, steps: int, lr: float) -> list[float]:
    opt = torch.optim.Adam(model.trainable_parameters(stage), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss, _ = model.loss(batch, stage)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


# -- configuration ------------------------------------------------------------------------------


def test_config_round_trip_and_presets():
    config = CodeTalkerConfig().replace(**TINY, n_styles=3, condition_dim=5, prior_position="sinusoidal")
    assert CodeTalkerConfig.from_dict(config.to_dict()) == config
    assert CodeTalkerConfig.from_dict(json.loads(config.to_json())) == config
    for name, preset in CodeTalker.presets.items():
        built = CodeTalkerConfig().replace(**preset)
        assert CodeTalkerConfig.from_dict(built.to_dict()) == built, name
    vocaset = CodeTalkerConfig().replace(**CodeTalker.presets["paper-vocaset"])
    assert (vocaset.hidden, vocaset.n_components, vocaset.code_dim, vocaset.decoder_layers) == (1024, 16, 64, 6)
    biwi = CodeTalkerConfig().replace(**CodeTalker.presets["paper-biwi"])
    assert (biwi.n_components, biwi.code_dim, biwi.decoder_layers, biwi.period, biwi.n_vertices) == (8, 128, 12, 25, 23370)
    assert CodeTalker.presets["default"]["audio"]["kind"] == "mel"


@pytest.mark.parametrize(
    "bad", [{"hidden": 30, "prior_heads": 4}, {"conv_kernel": 4}, {"prior_position": "rope"}, {"attention_window": 0}]
)
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        CodeTalkerConfig().replace(**bad)


# -- both stages ------------------------------------------------------------------------------------


def test_forward_backward_both_stages():
    model = randomize(tiny(n_styles=2))  # zero-initialised output maps would stop the gradients
    batch = corpus(model)
    batch.style = torch.tensor([0, 1, 0])
    for stage in CodeTalker.stages:
        params = list(model.trainable_parameters(stage))
        model.train()
        loss, parts = model.loss(batch, stage)
        loss.backward()
        assert torch.isfinite(loss) and parts["loss"] == pytest.approx(float(loss.detach()))
        with_grad = [p for p in params if p.grad is not None and p.grad.abs().sum() > 0]
        assert len(with_grad) > len(params) // 2, stage
        model.zero_grad()
    out = model.decode(torch.randn(2, 7, model.feature_dim), torch.tensor([7, 5]))
    assert out.shape == (2, 7, 150) and torch.all(out[1, 5:] == 0)


def test_prior_loss_needs_no_audio(monkeypatch):
    model = tiny()
    batch = corpus(model)
    batch.audio = torch.zeros(3, 0)
    monkeypatch.setattr(model, "encode_audio", lambda *a, **k: pytest.fail("stage 'prior' encoded audio"))
    loss, parts = model.loss(batch, "prior")
    assert torch.isfinite(loss) and {"recon_l1", "codebook", "commitment", "perplexity", "code_usage"} <= set(parts)


def test_unknown_stage_is_a_model_error():
    with pytest.raises(ModelError, match="prior"):
        tiny().loss(corpus(tiny()), "main")


def test_trainable_parameters_split_and_frozen_prior_stays_in_eval():
    model = tiny()
    prior = {id(p) for p in model.prior.parameters()}
    assert {id(p) for p in model.trainable_parameters("prior")} == prior
    speech = {id(p) for p in model.trainable_parameters("speech")}
    assert speech and not speech & prior
    assert speech | prior == {id(p) for p in model.parameters()}
    model.train()
    assert model.feat_map.training and not model.prior.training
    assert not any(p.requires_grad for p in model.prior.parameters())
    model.trainable_parameters("prior")
    model.train()
    assert model.prior.training


def test_untrained_model_outputs_the_template():
    model = tiny().eval()
    out = model.predict(torch.randn(SR), 30)
    assert out.shape == (30, 150) and torch.all(out == 0)


# -- the quantiser ----------------------------------------------------------------------------------


def test_quantised_features_are_the_nearest_codebook_rows():
    model = randomize(tiny())
    quantizer = model.prior.quantizer
    z = torch.randn(2, 5, model.config.code_width)
    out = quantizer(z, torch.ones(2, 5, dtype=torch.bool))
    rows = out.features.reshape(-1, model.config.code_dim)
    codebook = quantizer.codebook.detach()
    assert torch.equal(rows, codebook[out.indices.reshape(-1)])
    nearest = torch.cdist(z.reshape(-1, model.config.code_dim), codebook).argmin(dim=1)
    assert torch.equal(out.indices.reshape(-1), nearest)


def test_straight_through_passes_gradients_to_the_encoder():
    model = randomize(tiny())
    quantizer = model.prior.quantizer
    z = torch.randn(1, 3, model.config.code_width, requires_grad=True)
    out = quantizer(z, torch.ones(1, 3, dtype=torch.bool))
    (out.features * torch.arange(z.numel()).reshape(z.shape)).sum().backward()
    assert torch.equal(z.grad, torch.arange(z.numel(), dtype=z.dtype).reshape(z.shape))  # identity Jacobian
    batch = corpus(model)
    model.trainable_parameters("prior")
    out = model.prior(batch.offsets, batch.frame_lengths)
    (out.offsets - batch.offsets).abs().sum().backward()  # reconstruction only, no VQ terms
    assert model.prior.encoder.in_map.weight.grad.abs().sum() > 0


def test_dead_codes_are_restarted_from_encoder_outputs():
    model = tiny()
    quantizer = model.prior.quantizer
    with torch.no_grad():
        quantizer.usage[:3] = 0.0
    z = torch.randn(1, 4, model.config.code_width)
    quantizer(z, torch.ones(1, 4, dtype=torch.bool), restart=True)
    tokens = z.reshape(-1, model.config.code_dim)
    for row in quantizer.codebook.detach()[:3]:
        assert (tokens - row).abs().sum(dim=1).min() == 0
    assert torch.all(quantizer.usage[:3] > 0.0)


# -- decoding ---------------------------------------------------------------------------------------


def test_cached_generation_equals_an_uncached_loop():
    model = randomize(tiny(attention_window=4, n_styles=2, condition_dim=3)).double().eval()
    n_frames = 12
    features = torch.randn(1, n_frames, model.feature_dim, dtype=torch.float64)
    condition = torch.randn(1, n_frames, 3, dtype=torch.float64)
    style = torch.tensor([1])
    cached = model.generate_codes(features, torch.tensor([n_frames]), condition=condition, style=style)
    codes = torch.zeros(1, n_frames, model.config.code_width, dtype=torch.float64)
    with torch.no_grad():
        for t in range(n_frames):  # re-run the whole prefix every frame, as the original does
            predicted = model.predict_features(
                features[:, : t + 1], codes[:, : t + 1], condition=condition[:, : t + 1], style=style
            )
            codes[:, t] = model.prior.quantizer.nearest(predicted[:, t])[1]
    assert len({tuple(row.tolist()) for row in codes[0]}) > 1  # not a constant sequence
    torch.testing.assert_close(cached, codes, rtol=0, atol=1e-9)


def test_compiled_frame_steps_match_the_eager_ones_and_follow_weight_changes(monkeypatch):
    """The CPU frame loop runs TorchScript-compiled steps; where compiling fails it runs the eager
    ones, with identical codes; compiled steps share the model's weights, so loading new ones counts."""
    from kmtalk_cli.backbones import codetalker

    model = randomize(tiny(attention_window=4)).double().eval()
    features = torch.randn(1, 10, model.feature_dim, dtype=torch.float64)
    lengths = torch.tensor([10])
    compiled = model.generate_codes(features, lengths)
    assert isinstance(model._frame_steps(torch.device("cpu"))[0], torch.jit.ScriptModule)

    def refuse(_module):
        raise RuntimeError("no TorchScript here")

    codetalker._COMPILED_STEPS.clear()
    monkeypatch.setattr(torch.jit, "script", refuse)
    assert not isinstance(model._frame_steps(torch.device("cpu"))[0], torch.jit.ScriptModule)
    torch.testing.assert_close(model.generate_codes(features, lengths), compiled, rtol=0, atol=0)
    monkeypatch.undo()

    codetalker._COMPILED_STEPS.clear()
    model.generate_codes(features, lengths)  # compiled again
    with torch.no_grad():
        model.layers[0].qkv.weight.mul_(-2.0)
    changed = model.generate_codes(features, lengths)
    codetalker._COMPILED_STEPS.clear()
    monkeypatch.setattr(torch.jit, "script", refuse)
    torch.testing.assert_close(model.generate_codes(features, lengths), changed, rtol=0, atol=0)
    assert not torch.equal(changed, compiled)


def test_batch_of_unequal_lengths_equals_one_by_one():
    # Tiny VQ-VAE windows so windowed encoding/decoding is exercised too.
    model = randomize(tiny(prior_window=8, prior_context=3, attention_window=10)).eval()
    batch = corpus(model, lengths=(26, 17))
    with torch.no_grad():
        features = model.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        together = model.decode(features, batch.frame_lengths)
        forced = model.decode(features, batch.frame_lengths, target=batch.offsets)
        for i, n in enumerate(batch.frame_lengths.tolist()):
            audio = batch.audio[i : i + 1, : int(batch.audio_lengths[i])]
            alone_features = model.encode_audio(audio, batch.audio_lengths[i : i + 1], batch.frame_lengths[i : i + 1])
            alone = model.decode(alone_features, batch.frame_lengths[i : i + 1])
            torch.testing.assert_close(together[i, :n], alone[0], atol=1e-4, rtol=0)
            alone_forced = model.decode(alone_features, batch.frame_lengths[i : i + 1], target=batch.offsets[i : i + 1, :n])
            torch.testing.assert_close(forced[i, :n], alone_forced[0], atol=1e-4, rtol=0)
    assert together[1, 17:].abs().sum() == 0


def test_condition_path_starts_as_a_no_op():
    model = tiny(condition_dim=4)
    randomize(model)
    nn.init.zeros_(model.condition_map.weight)
    model.eval()
    audio = torch.randn(SR)
    condition = torch.randn(30, 4)
    plain = model.predict(audio, 30)
    assert torch.equal(model.predict(audio, 30, condition=condition), plain)
    with torch.no_grad():
        model.condition_map.weight.normal_(std=3.0)
    assert not torch.allclose(model.predict(audio, 30, condition=condition), plain)


def test_style_none_is_the_mean_style():
    model = randomize(tiny(n_styles=3)).eval()
    audio = torch.randn(SR)
    with torch.no_grad():
        model.style_embedding.weight.normal_(std=2.0)
        mean = model.style_embedding.weight.mean(dim=0)
        average = model.predict(audio, 30)
        assert not torch.allclose(model.predict(audio, 30, style=0), model.predict(audio, 30, style=1))
        model.style_embedding.weight[2] = mean
    torch.testing.assert_close(model.predict(audio, 30, style=2), average, atol=1e-6, rtol=0)
    with pytest.raises(ModelError, match="out of range"):
        model.predict(audio, 30, style=3)


def test_checkpoint_round_trip(tmp_path, monkeypatch):
    # Only this module is needed to rebuild; skip discovering sibling backbones.
    monkeypatch.setattr(registry, "_discovered", True)
    model = randomize(tiny(n_styles=2)).eval()
    info = {"kind": "backbone", "backbone": "codetalker", "config": model.config.to_dict()}
    path = save_checkpoint(model, tmp_path / "codetalker.safetensors", info)
    loaded, info = load_backbone(path)
    assert isinstance(loaded, CodeTalker) and info["backbone"] == "codetalker"
    audio = torch.randn(SR)
    torch.testing.assert_close(loaded.predict(audio, 30, style=1), model.predict(audio, 30, style=1), atol=0, rtol=0)


def test_three_minute_clip_at_the_default_preset():
    torch.manual_seed(0)
    model = CodeTalker(CodeTalkerConfig().replace(**CodeTalker.presets["default"], n_vertices=100))
    randomize(model)
    n_frames = 180 * 30
    out = model.predict(0.05 * torch.randn(180 * SR), n_frames)
    assert out.shape == (n_frames, 300) and torch.isfinite(out).all()


# -- training -------------------------------------------------------------------------------------


def test_training_both_stages_lowers_the_loss_and_speech_keeps_the_prior():
    model = tiny()
    batch = corpus(model)
    prior_losses = train(model, batch, "prior", steps=60, lr=3e-3)
    assert min(prior_losses[-5:]) < 0.5 * prior_losses[0]
    frozen = {k: v.clone() for k, v in model.prior.state_dict().items()}
    speech_losses = train(model, batch, "speech", steps=40, lr=3e-3)
    assert min(speech_losses[-5:]) < 0.7 * speech_losses[0]
    for key, value in model.prior.state_dict().items():
        assert torch.equal(value, frozen[key]), key
