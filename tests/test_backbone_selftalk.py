"""SelfTalk backbone: interface contract, long audio, and the lip-reading CTC branch."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
import torch

from kmtalk_cli import backbones
from kmtalk_cli.alignment.phones import PHONES
from kmtalk_cli.alignment.types import Alignment, Segment
from kmtalk_cli.backbones.base import Batch
from kmtalk_cli.backbones.checkpoint import load_backbone, save_checkpoint
from kmtalk_cli.backbones.selftalk import (
    N_CLASSES,
    SelfTalk,
    SelfTalkConfig,
    ctc_targets,
    greedy_phones,
    phone_error_rate,
)
from kmtalk_cli.errors import ModelError

SR = 16000
FPS = 30.0
LIPS = tuple(range(0, 40, 2))


@pytest.fixture(autouse=True)
def one_thread():
    """The tensors here are tiny: one thread avoids sync overhead (and a busy machine's thrashing)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**changes) -> SelfTalkConfig:
    base = {
        "n_vertices": 50,
        "audio": {"dim": 16, "layers": 2},
        "d_model": 32,
        "lip_vertices": LIPS,
        "lip_dim": 32,
        "lip_ff": 64,
        "lip_encoder_layers": 1,
    }
    return SelfTalkConfig().replace(**{**base, **changes})


def randomise_output(model: SelfTalk) -> SelfTalk:
    """The vertex map starts at zero; give it weights so outputs depend on the input."""
    torch.manual_seed(1)
    with torch.no_grad():
        model.vertex_map.weight.normal_(0.0, 0.5)
    return model


def noise(seconds: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(int(seconds * SR), generator=gen)


def n_frames(audio: torch.Tensor) -> int:
    return max(1, round(len(audio) / SR * FPS))


def make_batch(clips: list[torch.Tensor], offsets: list[torch.Tensor] | None = None, **extra) -> Batch:
    frames = [n_frames(a) for a in clips]
    audio = torch.zeros(len(clips), max(len(a) for a in clips))
    for i, clip in enumerate(clips):
        audio[i, : len(clip)] = clip
    target = torch.zeros(len(clips), max(frames), 150)
    for i, off in enumerate(offsets or []):
        target[i, : len(off)] = off
    return Batch(audio, torch.tensor([len(a) for a in clips]), target, torch.tensor(frames), **extra)


def alignment(labels: list[str], step: float = 0.1, start: float = 0.0) -> Alignment:
    segments = [Segment(label, start + i * step, start + (i + 1) * step) for i, label in enumerate(labels)]
    duration = segments[-1].end if segments else 1.0
    return Alignment(
        words=(), phones=tuple(segments), backend="textgrid", method="forced", transcript=None, duration=duration
    )


def test_config_round_trip_and_presets() -> None:
    config = tiny_config(condition_dim=4, n_styles=3)
    assert SelfTalkConfig.from_dict(config.to_dict()) == config
    for name, preset in SelfTalk.presets.items():
        built = SelfTalkConfig().replace(**preset)
        assert SelfTalkConfig.from_dict(built.to_dict()) == built, name
    vocaset = SelfTalkConfig().replace(**SelfTalk.presets["paper-vocaset"])
    assert (vocaset.d_model, vocaset.fps, vocaset.n_vertices, vocaset.audio.preset) == (512, 30.0, 5023, "large")
    assert (vocaset.lip_dim, vocaset.lip_encoder_layers, vocaset.lip_decoder_layers) == (1024, 6, 6)
    biwi = SelfTalkConfig().replace(**SelfTalk.presets["paper-biwi"])
    assert (biwi.d_model, biwi.fps, biwi.n_vertices) == (1024, 25.0, 23370)


def test_bad_config_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="outside"):
        SelfTalk(tiny_config(lip_vertices=(3, 50)))
    with pytest.raises(ModelError, match="divisible"):
        SelfTalk(tiny_config(d_model=30))
    with pytest.raises(ModelError, match="odd"):
        SelfTalk(tiny_config(lip_conv_kernel=4))


def test_forward_backward_and_untrained_outputs_template() -> None:
    model = SelfTalk(tiny_config())
    clips = [noise(1.0), noise(0.7, 1)]
    targets = [0.01 * torch.randn(30, 150), 0.01 * torch.randn(21, 150)]
    batch = make_batch(clips, targets, alignments=[alignment(["AA", "B", "IY"]), None])
    loss, parts = model.loss(batch)
    loss.backward()
    assert math.isfinite(loss.item()) and parts["ctc_items"] == 1.0
    assert {"vertex", "velocity", "ctc", "ctc_gt", "per", "per_gt", "loss"} <= set(parts)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads["vertex_map.weight"].abs().sum() > 0
    assert grads["lip_reader.head.weight"].abs().sum() > 0
    assert torch.count_nonzero(model.predict(clips[0], 30)) == 0  # zero-initialised output map


def test_padded_batch_equals_items_alone_including_chunked_decoding() -> None:
    # A small window and chunk make the 45-frame item go through several chunks.
    model = randomise_output(SelfTalk(tiny_config(attention_window=4, chunk_frames=8))).eval()
    clips = [noise(1.5), noise(0.9, 1), noise(0.4, 2)]
    batch = make_batch(clips)
    with torch.no_grad():
        features = model.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        together = model.decode(features, batch.frame_lengths)
        whole = SelfTalk(tiny_config(attention_window=4, chunk_frames=1000))
        whole.load_state_dict(model.state_dict())
        unchunked = whole.eval().decode(features, batch.frame_lengths)
    torch.testing.assert_close(together, unchunked, atol=1e-5, rtol=1e-4)
    for i, clip in enumerate(clips):
        alone = model.predict(clip, n_frames(clip))
        torch.testing.assert_close(together[i, : len(alone)], alone, atol=1e-4, rtol=1e-4)
        assert not together[i, len(alone) :].any()  # padded frames stay at the template


def test_attention_window_limits_what_a_frame_sees() -> None:
    model = randomise_output(SelfTalk(tiny_config(attention_window=3))).eval()
    features = torch.randn(1, 40, model.feature_dim)
    changed = features.clone()
    changed[0, 30:] += 1.0
    lengths = torch.tensor([40])
    with torch.no_grad():
        a, b = model.decode(features, lengths), model.decode(changed, lengths)
    assert torch.allclose(a[0, :27], b[0, :27]) and not torch.allclose(a[0, 27:], b[0, 27:])


def test_condition_path() -> None:
    model = randomise_output(SelfTalk(tiny_config(condition_dim=5))).eval()
    clip = noise(0.8)
    condition = torch.randn(n_frames(clip), 5)
    plain = model.predict(clip, n_frames(clip))
    torch.testing.assert_close(model.predict(clip, n_frames(clip), condition=condition), plain)
    with torch.no_grad():
        model.condition_map.weight.normal_()
    assert not torch.allclose(model.predict(clip, n_frames(clip), condition=condition), plain)
    without = SelfTalk(tiny_config())
    with pytest.raises(ModelError, match="conditioning"):
        without.predict(clip, n_frames(clip), condition=condition)


def test_style_is_ignored_so_none_is_the_mean_style() -> None:
    model = randomise_output(SelfTalk(tiny_config(n_styles=3))).eval()
    clip = noise(0.6)
    mean = model.predict(clip, n_frames(clip), style=None)
    for style in range(3):
        torch.testing.assert_close(model.predict(clip, n_frames(clip), style=style), mean)


def test_checkpoint_round_trip(tmp_path, monkeypatch) -> None:
    # Skip discovery of sibling backbones: only this module needs to be importable here.
    monkeypatch.setattr(backbones, "_discovered", True)
    model = randomise_output(SelfTalk(tiny_config(condition_dim=2))).eval()
    info = {"kind": "backbone", "backbone": "selftalk", "config": model.config.to_dict()}
    path = save_checkpoint(model, tmp_path / "selftalk.safetensors", info)
    loaded, info = load_backbone(path)
    assert isinstance(loaded, SelfTalk) and loaded.config == model.config and info["backbone"] == "selftalk"
    clip = noise(0.7)
    torch.testing.assert_close(loaded.predict(clip, n_frames(clip)), model.predict(clip, n_frames(clip)))


def test_three_minute_clip_predicts_at_the_default_preset() -> None:
    config = SelfTalkConfig().replace(**SelfTalk.presets["default"], n_vertices=60, lip_vertices=(1, 2, 3))
    model = SelfTalk(config)
    clip = noise(180.0)
    start = time.perf_counter()
    out = model.predict(clip, 5400)
    assert out.shape == (5400, 180) and torch.isfinite(out).all()
    assert time.perf_counter() - start < 30


def test_overfits_offsets_driven_by_the_audio_envelope() -> None:
    torch.manual_seed(0)
    direction = 0.01 * torch.randn(150)  # metres: about 1 cm of motion
    clips, offsets = [], []
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        t = torch.arange(int(1.2 * SR)) / SR
        rate = 2.0 + seed
        envelope = 0.5 * (1 - torch.cos(2 * math.pi * rate * t))
        clips.append(envelope * torch.sin(2 * math.pi * 220 * t) + 0.01 * torch.randn(len(t), generator=gen))
        frame_t = torch.arange(n_frames(clips[-1])) / FPS
        offsets.append((0.5 * (1 - torch.cos(2 * math.pi * rate * frame_t)))[:, None] * direction)
    batch = make_batch(clips, offsets)
    model = SelfTalk(tiny_config(dropout=0.0, audio={"dim": 16, "layers": 2, "dropout": 0.0}))
    optimiser = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss, _ = model.loss(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_ctc_targets_from_a_hand_made_alignment() -> None:
    aligned = alignment(["SIL", "HH", "AH0", "L", "SIL", "OW", "SIL"])  # 0.1 s per phone
    index = {p: PHONES.index(p) + 1 for p in ("HH", "AH", "L", "OW")}
    assert ctc_targets(aligned, 21, FPS) == [index["HH"], index["AH"], index["L"], index["OW"]]
    # Only phones whose centre lies inside the frames count: 0.4 s holds HH, AH, L.
    assert ctc_targets(aligned, 12, FPS) == [index["HH"], index["AH"], index["L"]]
    assert ctc_targets(None, 30, FPS) == []
    assert ctc_targets(alignment(["SIL"]), 30, FPS) == []
    assert min(index.values()) >= 1 and max(index.values()) < N_CLASSES


def test_greedy_decoding_and_phone_error_rate() -> None:
    best = torch.tensor([0, 3, 3, 0, 3, 5, 5, 0])
    logits = torch.nn.functional.one_hot(best, N_CLASSES).float()
    assert greedy_phones(logits, 8) == [3, 3, 5]
    assert phone_error_rate(logits[None], torch.tensor([8]), [[3, 3, 5]]) == 0.0
    assert phone_error_rate(logits[None], torch.tensor([8]), [[3, 5]]) == 0.5


def test_predict_never_runs_the_lip_reader(monkeypatch) -> None:
    model = SelfTalk(tiny_config())

    def refuse(*args, **kwargs):
        raise AssertionError("the lip reader ran at predict time")

    monkeypatch.setattr(model.lip_reader, "forward", refuse)
    clip = noise(0.5)
    assert model.predict(clip, n_frames(clip)).shape == (n_frames(clip), 150)


def test_lip_branch_is_disabled_without_lip_vertices() -> None:
    model = SelfTalk(tiny_config(lip_vertices=()))
    assert model.lip_reader is None
    _, parts = model.loss(make_batch([noise(0.5)], alignments=[alignment(["AA", "B"])]))
    assert not any(key.startswith(("ctc", "per")) for key in parts)


def test_missing_or_unusable_alignments_skip_the_ctc_term() -> None:
    model = SelfTalk(tiny_config())
    clips = [noise(1.0), noise(0.5, 1), noise(0.5, 2), noise(0.3, 3)]
    # 9 frames cannot hold 10 phones (and a blank between the repeated AA).
    crowded = alignment(["AA", "AA", "B", "IY", "M", "UW", "S", "T", "K", "L"], step=0.03)
    usable = alignment(["SIL", "AA", "B", "SIL"])
    for alignments in (None, [None, alignment(["SIL"]), None, crowded]):
        loss, parts = model.loss(make_batch(clips, alignments=alignments))
        loss.backward()
        assert parts["ctc_items"] == 0.0 and "ctc" not in parts
    _, parts = model.loss(make_batch(clips, alignments=[usable, None, alignment(["SIL"]), crowded]))
    assert parts["ctc_items"] == 1.0 and parts["ctc_skipped"] == 1.0 and math.isfinite(parts["ctc"])


def test_reader_learns_phones_from_ground_truth_lips() -> None:
    """Each phone has its own lip shape; training only the reader must lower its CTC loss."""
    torch.manual_seed(0)
    shapes = {p: 0.01 * torch.randn(150) for p in ("AA", "B", "IY", "UW")}
    gen = torch.Generator().manual_seed(0)
    clips, offsets, alignments = [], [], []
    for _ in range(4):
        labels = [list(shapes)[i] for i in torch.randint(0, 4, (8,), generator=gen)]
        aligned = alignment(labels, step=0.15)
        frames = round(aligned.duration * FPS)
        frame_phone = [labels[min(int(t / FPS / 0.15), len(labels) - 1)] for t in range(frames)]
        clips.append(noise(aligned.duration))
        offsets.append(torch.stack([shapes[p] for p in frame_phone]))
        alignments.append(aligned)
    batch = make_batch(clips, offsets, alignments=alignments)
    model = SelfTalk(tiny_config(lip_dropout=0.0))
    optimiser = torch.optim.Adam(model.lip_reader.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        loss, parts = model.loss(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(parts)
    assert history[-1]["ctc_gt"] < 0.3 * history[0]["ctc_gt"]
    assert history[-1]["per_gt"] < history[0]["per_gt"]
    # The animator was not in the optimiser and the predicted-lips pass never trains the reader.
    assert torch.count_nonzero(model.vertex_map.weight) == 0


def test_predicted_lips_ctc_reaches_only_the_animator() -> None:
    model = SelfTalk(tiny_config(w_vertex=0.0, w_velocity=0.0, w_ctc_gt=0.0))
    with torch.no_grad():
        model.vertex_map.weight.normal_(0.0, 0.1)
    batch = make_batch([noise(1.0)], alignments=[alignment(["AA", "B", "IY"])])
    loss, _ = model.loss(batch)
    loss.backward()
    assert model.vertex_map.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.lip_reader.parameters())


def test_shared_features_give_the_same_loss() -> None:
    model = SelfTalk(tiny_config()).eval()
    batch = make_batch([noise(0.6), noise(0.4, 1)], alignments=[alignment(["AA", "B"]), None])
    with torch.no_grad():
        features = model.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        own, _ = model.loss(batch)
        shared, _ = model.loss(batch, features=features)
    torch.testing.assert_close(own, shared)


def test_lip_reader_reads_the_whole_face_when_the_prediction_adds_to_a_base() -> None:
    """Key-motion completion predicts only what to add to the interpolated keys: the reader must
    judge base + prediction, so a batch split into base and remainder reads like the whole one."""
    model = SelfTalk(tiny_config()).eval()
    lips = 0.01 * torch.randn(30, 150, generator=torch.Generator().manual_seed(0))
    aligned = [alignment(["AA", "B", "IY"])]
    whole = make_batch([noise(1.0)], [lips], alignments=aligned)
    split = dataclasses.replace(whole, offsets=whole.offsets * 0.25, base=whole.offsets * 0.75)
    with torch.no_grad():
        _, parts_whole = model.loss(whole)
        _, parts_split = model.loss(split)
        _, parts_remainder = model.loss(dataclasses.replace(split, base=None))
    assert parts_split["ctc_gt"] == pytest.approx(parts_whole["ctc_gt"], rel=1e-5)
    assert parts_remainder["ctc_gt"] != pytest.approx(parts_whole["ctc_gt"], rel=1e-3)


def test_window_decoding_reuses_a_float_mask_that_blocks_what_the_boolean_one_does():
    from kmtalk_cli.backbones.selftalk import attention_block_mask

    model = randomise_output(SelfTalk(tiny_config(attention_window=6))).eval()
    torch.manual_seed(2)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.normal_(0.0, 0.3)
    features = torch.randn(1, 40, model.config.audio.dim)
    with torch.no_grad():
        got = model.decode_window(features, None, None, slice(5, 35))
        x = model._tokens(features, None)
        blocked = attention_block_mask(torch.tensor([40]), 40, 6, model.config.n_heads)
        expected = model.vertex_map(model.decoder(x, x, tgt_mask=blocked, memory_mask=blocked)[:, 5:35]) / model.config.offset_scale
        assert torch.allclose(got, expected, atol=1e-6) and expected.abs().max() > 1e-4
        for n in range(10, 70, 10):  # a few span lengths are kept, the oldest go
            model.decode_window(torch.randn(1, n, model.config.audio.dim), None, None, slice(0, n))
    assert len(model._window_masks) == 4
