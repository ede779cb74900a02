"""Reduced-precision CPU inference: int8 or bf16 weights for the large layers.

Why: at the papers' sizes, frame-by-frame decoding is bound by memory, not arithmetic (every
step reads every decoder weight for one frame), so fewer bytes per weight is the lever, and
torch has two for CPUs:

* ``int8`` — :func:`torch.ao.quantization.quantize_dynamic`: int8 weights (one scale per output
  row, so every output, e.g. every vertex coordinate, keeps its own range), activations
  quantised on the fly per call, int8 products (fbgemm; AVX-512 VNNI where present).
  Dynamic quantisation has no convolutions, so where the CPU has native bf16 the large
  ``nn.Conv1d`` layers (wav2vec2's CNN) go to bf16 as below.
* ``bf16`` — the weights of large ``nn.Linear`` *and* ``nn.Conv1d`` layers in bfloat16, each
  layer's input cast to bfloat16 and its output back to float32 by forward hooks (oneDNN bf16
  kernels; native with AVX-512 BF16 or AMX). Everything else (attention scores, norms,
  CodeTalker's nearest-code search) stays float32, which ``torch.autocast`` would not guarantee.

Only inference is touched: the conversion is applied to a loaded model (``load_model(...,
precision=)``), and the converted model is for inference only. ``fp32`` (the default) changes
nothing.

Layers left alone, and why:

* those below :data:`MIN_WEIGHTS` weights: converting a small layer costs more per call than
  reading its fp32 weight from cache, and bf16 gains nothing there either;
* those whose weights the code reads as tensors rather than calling the layer: a backbone lists
  them in ``fp32_modules``; ``nn.MultiheadAttention``'s ``out_proj`` (a ``Linear`` subclass);
  the linears of ``nn.TransformerEncoderLayer`` (its inference fast path reads their weights).

The measurements behind these choices, and how ``int8`` will move from torch's deprecated eager
quantisation API to torchao, are in ``docs/precision.md``.
"""

from __future__ import annotations

import platform
import warnings
from typing import Any

import torch
from torch import nn

from .errors import ModelError

PRECISIONS = ("fp32", "bf16", "int8")
#: Smallest layer (in weights) that a reduced precision converts (e.g. a 256 × 512 linear).
MIN_WEIGHTS = 1 << 17


def cpu_supports(precision: str) -> tuple[bool, str]:
    """Whether this CPU runs ``precision`` natively, and what was found (for messages)."""
    if precision == "fp32":
        return True, "fp32"
    if precision == "int8":
        engine = torch.backends.quantized.engine
        if engine == "none":
            return False, "no quantized engine in this torch"
        x86 = platform.machine().lower() in ("x86_64", "amd64")
        if x86 and engine in ("x86", "fbgemm") and not getattr(torch.cpu, "_is_avx2_supported", lambda: True)():
            return False, f"the {engine} engine needs AVX2"
        return True, f"quantized engine {engine}"
    if precision == "bf16":
        cpu = getattr(torch, "cpu", None)
        avx512_bf16 = bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
        amx = bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)())
        found = [name for name, ok in (("avx512_bf16", avx512_bf16), ("amx", amx)) if ok]
        return bool(found), ", ".join(found) or "no avx512_bf16 or AMX"
    raise ModelError(f"Unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}.")


def check_precision(precision: str) -> None:
    """Raise a :class:`ModelError` unless ``precision`` is known and native on this CPU.

    bf16 without native instructions is emulated and slower than fp32, which defeats its purpose.
    """
    ok, found = cpu_supports(precision)
    if not ok:
        raise ModelError(f"--precision {precision} needs CPU support this machine lacks ({found}); use --precision fp32.")


def convertible_layers(model: nn.Module, precision: str, min_weights: int = MIN_WEIGHTS) -> list[str]:
    """Names of the layers ``precision`` converts (see the module docstring); none for fp32."""
    kinds = {"fp32": (), "int8": (nn.Linear,), "bf16": (nn.Linear, nn.Conv1d)}[precision]
    if precision == "int8" and cpu_supports("bf16")[0]:
        kinds = (nn.Linear, nn.Conv1d)  # the convolutions in bf16 (see the module docstring)
    keep: set[str] = set()
    for prefix, module in model.named_modules():
        base = f"{prefix}." if prefix else ""
        keep.update(base + name for name in getattr(module, "fp32_modules", ()))
        if isinstance(module, nn.TransformerEncoderLayer):
            keep.update(base + name for name, _ in module.named_modules() if name)
    return [
        name
        for name, module in model.named_modules()
        if type(module) in kinds and module.weight.numel() >= min_weights and not _under(name, keep)
    ]


def _under(name: str, prefixes: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def apply_precision(model: nn.Module, precision: str, *, min_weights: int = MIN_WEIGHTS) -> list[str]:
    """Convert ``model`` (on the CPU, for inference) in place; return the converted layer names."""
    check_precision(precision)
    if precision == "fp32":
        return []
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ModelError("--precision int8/bf16 is a CPU inference mode; the model is not on the CPU.")
    names = convertible_layers(model, precision, min_weights)
    if not names:
        return []
    model.eval()
    modules = dict(model.named_modules())
    if precision == "int8":
        linears = [name for name in names if isinstance(modules[name], nn.Linear)]
        if linears:
            _quantize_int8(model, linears)
    for name in names:
        if precision == "bf16" or isinstance(modules[name], nn.Conv1d):
            _to_bf16(modules[name])
    return names


def _quantize_int8(model: nn.Module, names: list[str]) -> None:
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - present in every torch this project supports
        raise ModelError(f"--precision int8 needs torch.ao.quantization, which this torch lacks ({exc}).") from None
    with warnings.catch_warnings():  # torch ≥ 2.9 flags the eager API as moving to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        quantize_dynamic(model, {name: per_channel_dynamic_qconfig for name in names}, dtype=torch.qint8, inplace=True)


def _to_bf16(layer: nn.Module) -> None:
    """bf16 weights; float32 in and out, so the rest of the model never sees a bf16 tensor."""
    layer.to(torch.bfloat16)
    layer.register_forward_pre_hook(_cast_input)
    layer.register_forward_hook(_cast_output)


def _cast_input(_: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.to(torch.bfloat16) if isinstance(a, torch.Tensor) else a for a in args)


def _cast_output(_: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
    return out.to(torch.float32)


__all__ = ["MIN_WEIGHTS", "PRECISIONS", "apply_precision", "check_precision", "convertible_layers", "cpu_supports"]
