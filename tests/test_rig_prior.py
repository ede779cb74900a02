"""The rig as a prior for key motions (kmtalk_cli.rig_prior and KeyMotionConfig.rig_prior)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kmtalk_cli import rig_prior
from kmtalk_cli.backbones.checkpoint import save_checkpoint
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.errors import ModelError
from kmtalk_cli.keymotion_model import load_keymotion_model
from kmtalk_cli.keymotions import select_key_frames
from kmtalk_cli.pipeline import rig_motion
from kmtalk_cli.trainable import build_run
from kmtalk_cli.training import load_items

SIZES = {"d_model": 16, "audio": {"dim": 16, "layers": 1}}
KM = {"embed_dim": 16, "decoder_dim": 16, "decoder_layers": 1, "phone_context": False, "rig_prior": True}


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    return open_dataset(tiny_corpus)


@pytest.fixture(scope="module")
def item(corpus):
    return load_items(corpus, corpus.split("train")[:1], [])[0]


def test_the_linear_prior_follows_the_rig(head, rig, item) -> None:
    n = len(item.offsets)
    frames = select_key_frames(item.alignment, n, 30.0)
    exact = rig_motion(item.alignment, head, n, 30.0, rig=rig, upper_face=False)[frames.indices] - head.vertices[None]
    linear = rig_prior.rig_parameters_at_keys(item.alignment, frames) @ rig_prior.linear_rig_basis(head.n_vertices)
    error = np.linalg.norm(linear.reshape(exact.shape) - exact, axis=-1).max(axis=1)  # worst vertex per key (m)
    motion = np.linalg.norm(exact, axis=-1).max(axis=1)
    assert motion.max() > 0.004  # the lips really move
    assert error.mean() < 0.0015 and error.mean() < 0.25 * motion.mean()


def test_a_new_model_starts_from_the_rig_at_its_keys(corpus, item) -> None:
    model, description, _ = build_run("selftalk", corpus, overrides=SIZES, key_motions=True, key_motion_overrides=KM)
    model.eval()
    n = len(item.offsets)
    frames = select_key_frames(item.alignment, n, 30.0)
    features = torch.randn(1, n, model.backbone.feature_dim)
    keys, _, _ = model.predict_key_offsets(features, [frames], None, [item.alignment])
    expected = rig_prior.rig_parameters_at_keys(item.alignment, frames) @ rig_prior.linear_rig_basis(model.config.n_vertices)
    assert np.allclose(keys[0].detach().numpy(), expected, atol=1e-6)
    with pytest.raises(ModelError, match="rig"):
        model.predict_key_offsets(features, [frames], None)


def test_key_codes_carry_the_prior_and_survive_a_checkpoint(corpus, item, tmp_path) -> None:
    model, description, _ = build_run("selftalk", corpus, overrides=SIZES, key_motions=True, key_motion_overrides=KM)
    with torch.no_grad():
        for p in model.key_decoder.parameters():  # the decoder's own output is zero until trained
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    n = len(item.offsets)
    frames = select_key_frames(item.alignment, n, 30.0)
    audio = torch.from_numpy(item.audio)
    features = model.encode(audio, n)
    direct, _, _ = model.predict_key_offsets(features, [frames], None, [item.alignment])
    coded = model.predict_keys(audio, n, alignment=item.alignment, features=features)
    assert coded.codes.shape[1] == model.km_config.decoder_dim + rig_prior.n_parameters()
    assert np.allclose(coded.offsets, direct[0].detach().numpy(), atol=1e-5)

    path = tmp_path / "rig-prior.safetensors"
    save_checkpoint(model, path, description)
    loaded, _ = load_keymotion_model(path)
    again = loaded.predict_keys(audio, n, alignment=item.alignment)
    assert np.allclose(again.offsets, coded.offsets, atol=1e-5)
    assert np.allclose(loaded.predict(audio, n, alignment=item.alignment).numpy(), model.predict(audio, n, alignment=item.alignment).numpy(), atol=1e-5)


def test_the_prior_needs_the_rigs_topology() -> None:
    with pytest.raises(ModelError, match="bundled face topology"):
        rig_prior.linear_rig_basis(30)


def test_a_rig_prior_that_is_not_a_flag_is_refused() -> None:
    from kmtalk_cli.keymotion_model import KeyMotionConfig

    with pytest.raises(ModelError, match="rig_prior must be true or false, got 'yes'"):
        KeyMotionConfig.from_dict({"rig_prior": "yes"})
    assert KeyMotionConfig.from_dict({"rig_prior": True, "key_noise": 0}).rig_prior  # a whole number is a number
