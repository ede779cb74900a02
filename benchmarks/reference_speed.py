"""Side-by-side inference speed: the reference FaceFormer / CodeTalker code against kmtalk's paper-size backbone.

    python benchmarks/reference_speed.py --reference-dir DIR [--which faceformer|codetalker]
        [--lengths 5,20] [--repeats 3] [--threads 2] [--precision fp32[,int8,bf16]]

``DIR`` is a checkout of the reference repository (github.com/EvelynFan/FaceFormer or
github.com/Doubiiu/CodeTalker). Its model code is *imported* from there (``DIR`` goes on
``sys.path``); nothing of it is copied into this project. Both models are built at the papers'
VOCASET sizes with random weights, since nothing may be downloaded:

* the reference's ``Wav2Vec2Model.from_pretrained(...)`` is redirected, for the duration of the
  build only, to constructing the same class from ``transformers.Wav2Vec2Config()`` (the
  wav2vec2-base sizes, random init) with eager attention (its forward asks for the attention
  maps, which current transformers only returns from eager attention), and a forward hook on
  its ``feature_projection`` keeps only the projected features (current transformers also
  returns the normalised input there; the reference code predates that);
* CodeTalker's stage-2 model loads its VQ-VAE from ``vqvae_pretrained_path``: the script builds
  the reference's own ``VQAutoEncoder`` with random weights, saves its state dict to a temporary
  file and points the config there. CodeTalker's sizes come from the reference's own
  ``config/vocaset/demo.yaml``, read with its own config loader;
* FaceFormer's sizes are its README's VOCASET ones (feature_dim 64, period 30, 5023 vertices,
  8 training subjects).

Both sides get the same real speech (Debian's LibriVox clips, concatenated and cut to each
length). The reference is timed as its demo runs it: zero-mean/unit-variance normalisation
(``Wav2Vec2FeatureExtractor()``, the processor's default) and ``model.predict(audio, template,
one_hot)``; kmtalk as ``Backbone.predict(audio, n_frames)`` of its ``paper-vocaset`` preset
(which normalises internally), once per ``--precision`` (one row each, against the same
reference runs). Calls alternate (reference, kmtalk, reference, ...) after a
1-second warm-up of each, plus one untimed kmtalk call at each length (its TorchScript-compiled
frame step specialises on a new length's first calls; the reference runs eagerly and has nothing
to specialise), and the median of ``--repeats`` is reported.

Packages: the reference code needs ``transformers`` (the ``wav2vec2`` extra); CodeTalker's also
needs ``einops`` and ``six`` from PyPI (``pip install einops six``). Neither reference needs
librosa, pyrender or psbody-mesh for its model code; those are only used by their demos' audio
loading and rendering, which this script does not run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import torch

CLIPS = Path("/usr/share/pocketsphinx/test/data/librivox")
FPS = 30.0
N_VERTICES = 5023
N_STYLES = 8


def speech(seconds: float, folder: Path = CLIPS) -> np.ndarray:
    """Real 16 kHz speech exactly ``seconds`` long: the LibriVox clips in order, repeated and cut."""
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(folder.glob("*.wav"))]
    if not clips:
        raise SystemExit(f"no .wav clips in {folder} (Debian package pocketsphinx-testdata)")
    need = int(round(seconds * 16000))
    pieces, total, i = [], 0, 0
    while total < need:
        pieces.append(clips[i % len(clips)])
        total += len(pieces[-1])
        i += 1
    return np.concatenate(pieces)[:need]


@contextlib.contextmanager
def on_path(directory: Path) -> Iterator[None]:
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))


@contextlib.contextmanager
def random_wav2vec2(model_cls: type) -> Iterator[None]:
    """While active, ``model_cls.from_pretrained(anything)`` builds ``model_cls(Wav2Vec2Config())``."""
    from transformers import Wav2Vec2Config

    had_own = "from_pretrained" in model_cls.__dict__
    saved = model_cls.__dict__.get("from_pretrained")

    def from_config(cls, *args, **kwargs):  # noqa: ANN001, ANN202 - mirrors the classmethod
        # Eager attention: the reference forward sets ``config.output_attentions = True``, which
        # current transformers refuses under its default SDPA attention (and which the
        # transformers of the papers' time always ran eagerly).
        return cls(Wav2Vec2Config(attn_implementation="eager"))

    model_cls.from_pretrained = classmethod(from_config)
    try:
        yield
    finally:
        if had_own:
            model_cls.from_pretrained = saved
        else:
            del model_cls.from_pretrained


def build_reference_faceformer(ref_dir: Path) -> Callable[[np.ndarray], torch.Tensor]:
    with on_path(ref_dir):
        import faceformer as ref  # the reference's faceformer.py
        import wav2vec as ref_w2v  # the reference's wav2vec.py

    args = argparse.Namespace(
        dataset="vocaset",
        feature_dim=64,
        period=30,
        vertice_dim=N_VERTICES * 3,
        device="cpu",
        train_subjects=" ".join(f"S{i}" for i in range(N_STYLES)),
    )
    with random_wav2vec2(ref_w2v.Wav2Vec2Model):
        model = ref.Faceformer(args).eval()
    return reference_runner(model)


def build_reference_codetalker(ref_dir: Path, workdir: Path) -> Callable[[np.ndarray], torch.Tensor]:
    config_file = ref_dir / "config" / "vocaset" / "demo.yaml"
    with on_path(ref_dir):
        from base.config import load_cfg_from_cfg_file
        from models.lib import wav2vec as ref_w2v
        from models.stage1_vocaset import VQAutoEncoder
        from models.stage2 import CodeTalker

    cfg = load_cfg_from_cfg_file(str(config_file))
    cfg.device = "cpu"
    # Stage 1 (the VQ-VAE) with random weights, saved where stage 2 loads it from.
    vqvae = workdir / "vqvae_random.pth.tar"
    torch.save({"state_dict": VQAutoEncoder(cfg).state_dict()}, vqvae)
    cfg.vqvae_pretrained_path = str(vqvae)
    with random_wav2vec2(ref_w2v.Wav2Vec2Model):
        model = CodeTalker(cfg).eval()
    return reference_runner(model)


def projection_output_only(model: torch.nn.Module) -> None:
    """Current transformers' ``Wav2Vec2FeatureProjection`` returns ``(projected, normed)``; the
    reference forward was written when it returned only ``projected``. A forward hook restores that
    (the computation is unchanged)."""

    def first(_module, _inputs, output):  # noqa: ANN001, ANN202 - torch hook signature
        return output[0] if isinstance(output, tuple) else output

    model.audio_encoder.feature_projection.register_forward_hook(first)


def reference_runner(model: torch.nn.Module) -> Callable[[np.ndarray], torch.Tensor]:
    from transformers import Wav2Vec2FeatureExtractor

    projection_output_only(model)

    extractor = Wav2Vec2FeatureExtractor()  # the processor's defaults: 16 kHz, zero mean / unit variance
    n_styles = N_STYLES
    template = torch.zeros(1, N_VERTICES * 3)
    one_hot = torch.zeros(1, n_styles)
    one_hot[0, 0] = 1.0

    @torch.no_grad()
    def run(audio: np.ndarray) -> torch.Tensor:
        values = np.squeeze(extractor(audio, sampling_rate=16000).input_values)
        values = torch.as_tensor(np.asarray(values, dtype=np.float32)).reshape(1, -1)
        return model.predict(values, template, one_hot)

    return run


def build_kmtalk(which: str, precision: str) -> Callable[[np.ndarray], torch.Tensor]:
    from kmtalk_cli.backbones import create_backbone
    from kmtalk_cli.precision import apply_precision, check_precision

    check_precision(precision)
    model = create_backbone(which, preset="paper-vocaset").eval()
    apply_precision(model, precision)
    fps = model.config.fps

    def run(audio: np.ndarray) -> torch.Tensor:
        n_frames = int(len(audio) / 16000 * fps)
        return model.predict(torch.from_numpy(audio), n_frames)

    return run


def timed(fn: Callable[[np.ndarray], torch.Tensor], audio: np.ndarray) -> tuple[float, int]:
    began = time.perf_counter()
    out = fn(audio)
    return time.perf_counter() - began, int(out.reshape(-1, N_VERTICES * 3).shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-dir", required=True, type=Path, help="checkout of the reference repository")
    parser.add_argument("--which", choices=("faceformer", "codetalker"), default="faceformer")
    parser.add_argument("--lengths", default="5,20", help="comma-separated seconds (the references cap at 20 s: 600 frames)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side and length (median reported)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", help="kmtalk's inference precisions, comma-separated: fp32, int8, bf16")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    ref_dir = args.reference_dir.resolve()
    lengths = [float(x) for x in args.lengths.split(",") if x]

    with tempfile.TemporaryDirectory() as tmp:
        if args.which == "faceformer":
            reference = build_reference_faceformer(ref_dir)
        else:
            reference = build_reference_codetalker(ref_dir, Path(tmp))
    precisions = [p for p in args.precision.split(",") if p]
    ours = {precision: build_kmtalk(args.which, precision) for precision in precisions}

    warm = speech(1.0)
    reference(warm)
    for run in ours.values():
        run(warm)

    print(
        f"{args.which}, VOCASET paper size, random weights, real speech; {args.threads} CPU threads; "
        f"median of {args.repeats} interleaved runs\n"
    )
    print("| audio | kmtalk precision | reference | kmtalk | reference RTF | kmtalk RTF | reference / kmtalk |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for seconds in lengths:
        audio = speech(seconds)
        for run in ours.values():
            run(audio)  # untimed: TorchScript specialises kmtalk's frame step on a new length's first calls
        ref_times: list[float] = []
        our_times: dict[str, list[float]] = {precision: [] for precision in precisions}
        frames = {}
        for _ in range(args.repeats):
            t, frames["reference"] = timed(reference, audio)
            ref_times.append(t)
            for precision, run in ours.items():
                t, frames[precision] = timed(run, audio)
                our_times[precision].append(t)
        r = statistics.median(ref_times)
        for precision in precisions:
            k = statistics.median(our_times[precision])
            print(
                f"| {seconds:g} s | {precision} | {r:.2f} s | {k:.2f} s | {r / seconds:.3f} | {k / seconds:.3f} "
                f"| {r / k:.1f}× |",
                flush=True,
            )
        if len(set(frames.values())) > 1:
            print(f"  (frames out: {frames})", flush=True)

if __name__ == "__main__":
    main()
