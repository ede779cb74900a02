"""Windowed key motions and completion (kmtalk_cli.windowed) against the whole-clip computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kmtalk_cli.windowed as windowed
from kmtalk_cli.backbones import create_backbone
from kmtalk_cli.keymotion_model import KeyMotionConfig, KeyMotionModel, interpolate_keys
from kmtalk_cli.keymotions import KeyFrames, KeyMotions

V = 30  # vertices of a toy mesh: the code paths are the same as at 5,080
KM = KeyMotionConfig(embed_dim=16, decoder_dim=24, decoder_layers=2, decoder_heads=4, phone_dim=8)


def toy_model(name: str, km: KeyMotionConfig = KM, **sizes) -> KeyMotionModel:
    """A key-motion model with random weights everywhere (the zero-initialised output layers too,
    or every prediction would be zero and nothing could fail)."""
    torch.manual_seed(0)
    backbone = create_backbone(name, preset="default", n_vertices=V, n_styles=1, condition_dim=km.embed_dim, audio={"dim": 16, "layers": 1}, **sizes)
    model = KeyMotionModel(backbone, km).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def key_frames(n_frames: int, every: int, seed: int = 0, ends: bool = True) -> KeyFrames:
    rng = np.random.default_rng(seed)
    picks = np.arange(0 if ends else 3, n_frames - (0 if ends else 3), every) + rng.integers(0, max(1, every // 2), size=1)
    indices = np.unique(np.clip(np.concatenate([picks, [0, n_frames - 1] if ends else []]), 0, n_frames - 1)).astype(np.int64)
    phones = ("AA", "M", "S", "IY")
    left = tuple(phones[i % 4] for i in range(len(indices)))
    right = tuple(phones[(i + 1) % 4] for i in range(len(indices)))
    return KeyFrames(indices, left, right, n_frames, 30.0, "boundaries")


@pytest.mark.parametrize("ends", [True, False])
def test_neighbours_reproduce_the_whole_clip_interpolation(ends: bool) -> None:
    frames = key_frames(50, 7, ends=ends)
    rows = torch.randn(len(frames.indices), 4)
    timeline = torch.zeros(1, 50, 4)
    timeline[0, frames.indices] = rows
    mask = torch.zeros(1, 50, dtype=torch.bool)
    mask[0, frames.indices] = True
    interp, d_prev, d_next = interpolate_keys(timeline, mask)
    for lo, hi in ((0, 50), (5, 23), (40, 50)):
        near = windowed.neighbours(frames.indices, lo, hi)
        assert torch.allclose(windowed.interpolate_rows(rows, near), interp[0, lo:hi], atol=1e-6)
        assert np.array_equal(near.distances, torch.stack([d_prev, d_next], -1)[0, lo:hi].clamp(max=60).numpy())
        assert np.array_equal(near.is_key, mask[0, lo:hi].numpy())


def test_no_keys_interpolate_to_zeros() -> None:
    near = windowed.neighbours(np.zeros(0, dtype=np.int64), 0, 5)
    assert windowed.interpolate_rows(torch.ones(0, 3), near).abs().sum() == 0
    assert (near.distances == windowed.MAX_DISTANCE).all() and not near.is_key.any()


@pytest.mark.parametrize("key_window", [0, 2])
def test_codes_expand_to_the_decoders_offsets(key_window: int) -> None:
    km = KeyMotionConfig(**{**KM.to_dict(), "key_window": key_window})
    model = toy_model("selftalk", km, d_model=16, attention_window=20, chunk_frames=40)
    features = torch.randn(1, 90, model.backbone.feature_dim)
    frames = key_frames(90, 5)
    keys = windowed.decode_key_motions(model, features, frames, None)
    direct, _, _ = model.predict_key_offsets(features, [frames], None)
    assert keys.codes.shape == (len(frames.indices), KM.decoder_dim)
    assert np.allclose(keys.offsets, direct[0].detach().numpy(), atol=1e-5)


def test_key_windows_stay_close_to_all_keys_at_once(monkeypatch) -> None:
    model = toy_model("selftalk", d_model=16, attention_window=20, chunk_frames=40)
    features = torch.randn(1, 600, model.backbone.feature_dim)
    frames = key_frames(600, 4)
    whole = windowed.decode_key_motions(model, features, frames, None).offsets
    monkeypatch.setattr(windowed, "KEY_WINDOW", 40)
    monkeypatch.setattr(windowed, "KEY_CONTEXT", 24)
    windows = windowed.decode_key_motions(model, features, frames, None).offsets
    assert len(frames.indices) > 3 * 40
    error = np.abs(windows - whole).mean() / np.abs(whole).mean()
    assert 0 < error < 0.05  # not identical (each key sees fewer others), but close


def clip_with_keys(n: int) -> tuple[torch.Tensor, KeyMotions]:
    """Random speech of ``n`` frames and random key motions every ~6 frames."""
    audio = torch.randn(int(n / 30 * 16000)) * 0.1
    frames = key_frames(n, 6)
    return audio, KeyMotions(frames, np.random.default_rng(1).normal(0, 0.01, (len(frames.indices), V * 3)).astype(np.float32))


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("selftalk", {"d_model": 16, "attention_window": 12, "chunk_frames": 50}), ("faceformer", {"d_model": 16}), ("codetalker", {})],
)
def test_completion_in_windows_equals_the_whole_clip(name: str, sizes: dict) -> None:
    """SelfTalk's banded attention makes windows exact; FaceFormer and CodeTalker are decoded in one pass, handed over in pieces."""
    model = toy_model(name, **sizes)
    n = 130
    audio, keys = clip_with_keys(n)
    whole = model.complete_whole(audio, n, keys)
    features = model.encode(audio, n)
    pieces = list(windowed.complete_in_windows(model, features, keys, None, window=32))
    assert len(pieces) == 5 and sum(len(p) for p in pieces) == n
    assert torch.allclose(torch.cat(pieces), whole, atol=1e-5)
    assert whole.abs().max() > 1e-3


def test_completion_from_codes_equals_completion_from_their_offsets() -> None:
    model = toy_model("selftalk", d_model=16, attention_window=12, chunk_frames=50)
    n = 70
    audio = torch.randn(int(n / 30 * 16000)) * 0.1
    features = model.encode(audio, n)
    coded = windowed.decode_key_motions(model, features, key_frames(n, 5), None)
    plain = KeyMotions(coded.frames, coded.offsets)
    a = torch.cat(list(windowed.complete_in_windows(model, features, coded, None, window=25)))
    b = torch.cat(list(windowed.complete_in_windows(model, features, plain, None, window=25)))
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(("name", "sizes", "owner", "method", "frames"), [
    ("faceformer", {"d_model": 16}, None, "_offsets", [32, 32, 32, 32, 2]),
    ("codetalker", {"prior_window": 48, "prior_context": 8}, "prior", "decoder", [56, 64, 42]),  # windows of 48 with 8 of context
])
def test_one_pass_backbones_never_hold_the_whole_output(name, sizes, owner, method, frames, monkeypatch) -> None:
    """FaceFormer maps its states to offsets a piece at a time, CodeTalker's motion prior decodes
    its codes a window (with context) at a time: each call covers part of the clip, and the
    pieces join into the whole-clip result."""
    model = toy_model(name, **sizes)
    n = 130
    audio, keys = clip_with_keys(n)
    whole = model.complete_whole(audio, n, keys)
    target = model.backbone if owner is None else getattr(model.backbone, owner)
    spans: list[int] = []
    if method == "_offsets":
        original = type(target)._offsets

        def recorded(self, hidden):
            spans.append(hidden.shape[1])
            return original(self, hidden)

        monkeypatch.setattr(type(target), "_offsets", recorded)
    else:
        original = target.decoder.forward

        def recorded(x, lengths):
            spans.append(x.shape[1])
            return original(x, lengths)

        monkeypatch.setattr(target.decoder, "forward", recorded)
    pieces = list(windowed.complete_in_windows(model, model.encode(audio, n), keys, None, window=32))
    assert spans == frames and all(len(p) <= 32 for p in pieces)
    assert torch.allclose(torch.cat(pieces), whole, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("selftalk", {"d_model": 16, "attention_window": 12, "chunk_frames": 50}), ("faceformer", {"d_model": 16}), ("codetalker", {"prior_window": 48, "prior_context": 8})],
)
def test_plain_backbones_predict_in_pieces_what_they_predict_whole(name: str, sizes: dict) -> None:
    torch.manual_seed(0)
    backbone = create_backbone(name, preset="default", n_vertices=V, n_styles=1, audio={"dim": 16, "layers": 1}, **sizes).eval()
    with torch.no_grad():
        for p in backbone.parameters():
            p.normal_(0.0, 0.2)
    n = 130
    audio = torch.randn(int(n / 30 * 16000)) * 0.1
    with torch.no_grad():
        whole = backbone.predict(audio, n)
        pieces = list(backbone.predict_pieces(audio, n, piece=32))
    assert [len(p) for p in pieces][:4] == [32, 32, 32, 32] or name == "codetalker"
    assert all(len(p) <= 32 for p in pieces) and sum(len(p) for p in pieces) == n
    assert torch.allclose(torch.cat(pieces), whole, atol=1e-5) and whole.abs().max() > 1e-3
