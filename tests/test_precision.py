"""Reduced-precision CPU inference (``--precision int8|bf16``) stays close to fp32 and leaves fp32 alone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from kmtalk_cli.backbones import create_backbone, make_config
from kmtalk_cli.errors import ModelError
from kmtalk_cli.precision import MIN_WEIGHTS, apply_precision, check_precision, convertible_layers, cpu_supports

SIZES = {
    "faceformer": {"d_model": 32},
    "selftalk": {"d_model": 32, "lip_vertices": tuple(range(10)), "lip_dim": 32, "lip_ff": 64},
    "codetalker": {"hidden": 32, "prior_layers": 1, "prior_heads": 2, "prior_ffn": 64, "n_components": 4, "code_dim": 8,
                   "n_codes": 16, "d_model": 32, "decoder_ffn": 64},
}
MEL = {"kind": "mel", "dim": 16, "layers": 2}
WAV2VEC2 = {"kind": "wav2vec2", "preset": "tiny"}  # a 512-channel CNN: bf16 converts its convolutions
#: Allowed error relative to the fp32 output: (mean |Δ| / mean |out|, max |Δ| / max |out|).
#: Measured on these models over seeds 0–2: int8 ≤ 0.030 / 0.031, bf16 ≤ 0.012 / 0.016.
TOLERANCE = {"int8": (0.05, 0.1), "bf16": (0.025, 0.05)}


def supported(precision: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not cpu_supports(precision)[0], reason=f"this CPU has no native {precision}")


def tiny(name: str, audio: dict, seed: int = 0) -> nn.Module:
    """A small random model whose zero-initialised output maps get weights, so outputs move."""
    torch.manual_seed(seed)
    model = create_backbone(name, make_config(name, "default", n_vertices=40, n_styles=2, audio=audio, **SIZES[name])).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and not module.weight.any():
                module.weight.normal_(0, module.in_features**-0.5)
        if name == "codetalker":
            model.prior.quantizer.codebook.normal_()
    return model


def assert_close(out: torch.Tensor, ref: torch.Tensor, precision: str) -> None:
    mean_tol, max_tol = TOLERANCE[precision]
    diff = (out - ref).abs()
    assert float(diff.mean()) <= mean_tol * float(ref.abs().mean()), float(diff.mean() / ref.abs().mean())
    assert float(diff.max()) <= max_tol * float(ref.abs().max()), float(diff.max() / ref.abs().max())


def speech(seconds: float = 2.0) -> torch.Tensor:
    return 0.1 * torch.randn(int(16000 * seconds), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("precision", [pytest.param("int8", marks=supported("int8")), pytest.param("bf16", marks=supported("bf16"))])
@pytest.mark.parametrize(("name", "audio"), [("faceformer", MEL), ("selftalk", MEL), ("faceformer", WAV2VEC2)], ids=["faceformer", "selftalk", "faceformer-wav2vec2"])
def test_reduced_precision_output_stays_close_to_fp32(name: str, audio: dict, precision: str) -> None:
    model = tiny(name, audio)
    ref = model.predict(speech(), 60, style=1)
    converted = copy.deepcopy(model)
    names = apply_precision(converted, precision, min_weights=0)  # every layer it may convert, however small
    assert names
    assert_close(converted.predict(speech(), 60, style=1), ref, precision)


@pytest.mark.parametrize("precision", [pytest.param("int8", marks=supported("int8")), pytest.param("bf16", marks=supported("bf16"))])
def test_codetalker_steps_stay_close_to_fp32(precision: str) -> None:
    """Each part of a CodeTalker step stays close; free-running decoding of a *random* model is not
    compared, since a near-tie between two codes flips either way and the clip then diverges."""
    model = tiny("codetalker", MEL)
    converted = copy.deepcopy(model)
    assert apply_precision(converted, precision, min_weights=0)
    audio, frames = speech().reshape(1, -1), torch.tensor([60])
    with torch.inference_mode():
        features = model.encode_audio(audio, torch.tensor([audio.shape[1]]), frames)
        codes = model.generate_codes(features, frames)
        assert_close(converted.encode_audio(audio, torch.tensor([audio.shape[1]]), frames), features, precision)
        assert_close(converted.predict_features(features, codes), model.predict_features(features, codes), precision)
        assert_close(converted.prior.decode(codes, frames), model.prior.decode(codes, frames), precision)


def test_fp32_changes_nothing_and_unknown_precisions_are_refused() -> None:
    model = tiny("faceformer", MEL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert apply_precision(model, "fp32", min_weights=0) == []
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ModelError, match="fp32, bf16, int8"):
        check_precision("fp16")


def test_bf16_is_refused_without_native_support(monkeypatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    with pytest.raises(ModelError, match="bf16"):
        check_precision("bf16")


def test_layers_whose_weights_are_read_directly_stay_fp32() -> None:
    """FaceFormer composes motion_encoder ∘ motion_decoder from their weights; torch's attention
    reads ``out_proj.weight`` and TransformerEncoderLayer's fast path its linears' weights."""
    faceformer = convertible_layers(tiny("faceformer", MEL), "int8", min_weights=0)
    assert faceformer and not any(n.startswith(("motion_encoder", "motion_decoder", "style_embedding")) for n in faceformer)
    selftalk = tiny("selftalk", MEL)
    names = convertible_layers(selftalk, "bf16", min_weights=0)
    assert not any(n.endswith("out_proj") for n in names)
    encoder_layers = [p for p, m in selftalk.named_modules() if isinstance(m, nn.TransformerEncoderLayer)]
    assert encoder_layers and not any(n.startswith(tuple(p + "." for p in encoder_layers)) for n in names)
    # Left alone, they keep working: free-running FaceFormer after int8 still runs and is finite.
    model = tiny("faceformer", MEL)
    if cpu_supports("int8")[0]:
        apply_precision(model, "int8", min_weights=0)
        assert torch.isfinite(model.predict(speech(0.5), 15)).all()


def test_small_layers_are_left_fp32_by_default() -> None:
    model = tiny("faceformer", MEL)  # nothing here reaches MIN_WEIGHTS but the excluded vertex maps
    assert convertible_layers(model, "int8") == []


@pytest.mark.parametrize("precision", [pytest.param("int8", marks=supported("int8")), pytest.param("bf16", marks=supported("bf16"))])
@pytest.mark.parametrize("backbone", ["codetalker", "selftalk"])
def test_bundled_weights_load_with_a_precision_and_move_the_face_within_a_fraction_of_a_mm(backbone: str, precision: str, speech_wav) -> None:
    """Through the loader the CLI uses: on 1.5 s of speech-like sound the vertices move by at most
    0.5 mm (mean 0.05 mm). On examples/amiable.wav all six bundled models measured int8 ≤ 0.52 mm
    max / 0.009 mm mean, bf16 ≤ 0.04 / 0.002 mm."""
    import numpy as np

    from kmtalk_cli.audio import load_audio
    from kmtalk_cli.models import load_model
    from kmtalk_cli.weights import find_bundled

    found = find_bundled(backbone, key_motions=False)
    assert found is not None, f"the bundled {backbone} weights are missing"
    audio = load_audio(speech_wav(duration=1.5))
    ref = load_model(found.path).predict_offsets(audio)
    loaded = load_model(found.path, precision=precision)
    assert loaded.precision == precision
    moved = np.linalg.norm((loaded.predict_offsets(audio) - ref).reshape(len(ref), -1, 3), axis=-1) * 1000
    assert moved.max() < 0.5 and moved.mean() < 0.05, (moved.max(), moved.mean())


@supported("int8")
def test_cli_animate_takes_a_precision(speech_wav, tmp_path) -> None:
    import numpy as np
    from typer.testing import CliRunner

    from kmtalk_cli.cli import app

    runner = CliRunner()
    speech = speech_wav(duration=1.0)
    args = ["animate", str(speech), "-b", "codetalker", "--no-key-motions", "--no-gate"]  # the model's own output
    for precision in ("fp32", "int8"):
        done = runner.invoke(app, [*args, "--precision", precision, "-q", "-o", str(tmp_path / f"{precision}.npy")])
        assert done.exit_code == 0, done.output
    assert "(int8)" in done.output
    fp32, int8 = (np.load(tmp_path / f"{p}.npy").reshape(30, -1, 3) for p in ("fp32", "int8"))
    assert np.linalg.norm(int8 - fp32, axis=-1).max() < 5e-4  # metres
    bad = runner.invoke(app, [*args, "--precision", "fp16", "-o", str(tmp_path / "bad.npy")])
    assert bad.exit_code == 1 and "fp32, bf16, int8" in bad.output and not (tmp_path / "bad.npy").exists()


@supported("int8")
def test_int8_runs_convolutions_in_bf16_only_where_the_cpu_has_it(monkeypatch) -> None:
    """Dynamic quantisation has no convolutions; wav2vec2's CNN goes to bf16 instead, if native."""
    model = tiny("faceformer", WAV2VEC2)
    convs = [n for n, m in model.named_modules() if type(m) is nn.Conv1d and m.weight.numel() >= MIN_WEIGHTS]
    assert convs
    if cpu_supports("bf16")[0]:
        converted = copy.deepcopy(model)
        names = apply_precision(converted, "int8")
        modules = dict(converted.named_modules())
        assert set(convs) <= set(names) and all(modules[n].weight.dtype == torch.bfloat16 for n in convs)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    names = apply_precision(model, "int8", min_weights=0)  # every linear, however small
    assert names and not set(convs) & set(names)
    assert all(dict(model.named_modules())[n].weight.dtype == torch.float32 for n in convs)
