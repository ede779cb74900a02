"""Training: corpus → batches → any trainable model, stage by stage, with validation and checkpoints.

One loop serves every backbone and the key-motion wrapper. A *trainable* is an ``nn.Module`` with
``stages`` (names, in order), ``loss(batch, stage)``, ``trainable_parameters(stage)``,
``predict(...)`` and ``config``; the loop knows nothing else about it.

Runs on CPU or CUDA, and under ``torchrun`` with PyTorch DistributedDataParallel (gloo on CPU,
nccl on GPU): each rank trains on its shard of every epoch's batches, rank 0 validates and
writes. Checkpoints are ``best.safetensors`` (lowest validation lip error of the last stage,
or validation loss in earlier stages) and ``last.safetensors``, plus ``last.state.safetensors``
(optimiser and progress) for ``--resume``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .alignment.phones import SIL
from .augment import augment_speech
from .backbones.base import Batch
from .backbones.checkpoint import save_checkpoint
from .errors import DatasetError, ModelError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainingItem:
    """One sequence ready for batching: 16 kHz speech and target offsets at the model's fps."""

    name: str
    subject: str
    audio: np.ndarray  # (N,) float32
    offsets: np.ndarray  # (T, V·3) float32
    style: int | None
    alignment: Any = None  # Alignment, when the corpus has one


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 30  # per stage
    stage_epochs: dict[str, int] | None = None  # per-stage overrides of ``epochs``
    batch_size: int = 4
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine": each stage decays lr to 0 along a half cosine
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    stages: tuple[str, ...] | None = None  # default: all of the model's stages
    max_minutes: float | None = None  # per stage; stops after the epoch that passes it
    val_predict_items: int = 8  # validation sequences decoded without teacher forcing
    augment: bool = False  # degrade the training speech at random (``kmtalk_cli.augment``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def epochs_for(self, stage: str) -> int:
        return (self.stage_epochs or {}).get(stage, self.epochs)


LR_SCHEDULES = ("constant", "cosine")


@dataclass
class EpochLog:
    stage: str
    epoch: int
    train_loss: float
    val_loss: float | None
    val_lve_mm: float | None
    seconds: float
    parts: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    out_dir: Path
    best: Path
    last: Path
    history: list[EpochLog]
    seconds: float


# -- data ---------------------------------------------------------------------------------------
def load_items(
    dataset: Any, refs: Sequence[Any], styles: Sequence[str], progress: Progress | None = None, *, alignments: str = "true"
) -> list[TrainingItem]:
    """Load sequences as offsets from each subject's template; style index if the subject trains.

    ``alignments``: the phones key motions train on, the corpus' TextGrids (``true``) or the
    built-in aligner's on each sequence's speech (``aligner``, see :meth:`Dataset.phones`)."""
    items = []
    for i, ref in enumerate(refs):
        seq = dataset.load(ref)
        if seq.audio is None:
            raise DatasetError(f"Sequence {ref.name} has no speech; training needs wav/{ref.name}.wav.")
        offsets = (seq.vertices - seq.template[None]).reshape(len(seq.vertices), -1).astype(np.float32)
        alignment = dataset.phones(ref, seq.audio, alignments)
        if alignments == "aligner" and all(p.label == SIL for p in alignment.phones):
            raise DatasetError(f"Sequence {ref.name}: the aligner heard no speech in {ref.wav_path}, so it has no phones for key motions; fix or remove it.")
        style = styles.index(ref.subject) if ref.subject in styles else None
        items.append(TrainingItem(ref.name, ref.subject, seq.audio.samples.astype(np.float32), offsets, style, alignment))
        if progress:
            progress(i + 1, len(refs))
    return items


def collate(items: Sequence[TrainingItem], augment: np.random.Generator | None = None) -> Batch:
    """Pad a list of items into a :class:`Batch` (zeros at the end, lengths kept); with an
    ``augment`` generator each item's speech gets a random degradation first."""
    n_audio = max(len(it.audio) for it in items)
    n_frames = max(len(it.offsets) for it in items)
    dim = items[0].offsets.shape[1]
    audio = torch.zeros(len(items), n_audio)
    offsets = torch.zeros(len(items), n_frames, dim)
    for b, it in enumerate(items):
        samples = it.audio if augment is None else augment_speech(it.audio, augment)
        audio[b, : len(it.audio)] = torch.from_numpy(samples)
        offsets[b, : len(it.offsets)] = torch.from_numpy(it.offsets)
    styles = [it.style for it in items]
    style = None if any(s is None for s in styles) else torch.tensor(styles, dtype=torch.long)
    alignments = [it.alignment for it in items]
    return Batch(
        audio=audio,
        audio_lengths=torch.tensor([len(it.audio) for it in items]),
        offsets=offsets,
        frame_lengths=torch.tensor([len(it.offsets) for it in items]),
        style=style,
        alignments=alignments if any(a is not None for a in alignments) else None,
        names=[it.name for it in items],
    )


def batches(items: Sequence[TrainingItem], batch_size: int, rng: random.Random | None) -> list[list[TrainingItem]]:
    """Group items of similar length (less padding), shuffled by ``rng`` (None: in order)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].offsets))
    groups = [[items[i] for i in order[k : k + batch_size]] for k in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    return groups


# -- distributed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1); a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class _LossModule(nn.Module):
    """DDP synchronises gradients through ``forward``; this routes ``forward`` to ``loss``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, stage: str) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch, stage)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("CUDA was asked for but no GPU is available; use --device cpu.")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- validation -------------------------------------------------------------------------------
@torch.no_grad()
def validate(model: nn.Module, items: Sequence[TrainingItem], stage: str, options: TrainOptions, device: torch.device, lips: np.ndarray | None) -> tuple[float, float | None]:
    """Teacher-forced validation loss, and (last stage) lip error in mm of free-running predictions."""
    model.eval()
    total, count = 0.0, 0
    for group in batches(items, options.batch_size, None):
        loss, _ = model.loss(collate(group).to(device), stage)
        total += float(loss) * len(group)
        count += len(group)
    lve = None
    if lips is not None and stage == model.stages[-1] and options.val_predict_items > 0:
        from .metrics import lve_mm

        errors = []
        for it in list(items)[: options.val_predict_items]:
            pred = predict_item(model, it, device)
            errors.append(lve_mm(pred.reshape(len(pred), -1, 3), it.offsets.reshape(len(pred), -1, 3), lips))
        lve = float(np.concatenate(errors).mean())
    model.train()
    return total / max(count, 1), lve


def predict_item(model: nn.Module, item: TrainingItem, device: torch.device) -> np.ndarray:
    """Free-running prediction of one item's offsets (T, V·3); key-motion models get its alignment."""
    audio = torch.from_numpy(item.audio).to(device)
    kwargs = {"alignment": item.alignment} if getattr(model, "uses_alignment", False) else {}
    out = model.predict(audio, len(item.offsets), style=item.style, **kwargs)
    return out.detach().cpu().numpy()


# -- checkpoints and resume -------------------------------------------------------------------
def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state into tensors (safetensors) and JSON (no pickles anywhere)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _write_state(path: Path, optimizer: torch.optim.Optimizer, progress: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    from .atomic import atomic_output

    tensors, meta = _optimizer_tensors(optimizer)
    if not tensors:
        tensors = {"optimizer.empty": torch.zeros(1)}
    meta["progress"] = progress
    with atomic_output(path, force=True) as tmp:
        save_file(tensors, str(tmp), metadata={"kmtalk-train-state": json.dumps(meta)})


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["kmtalk-train-state"])
    return load_file(str(path)), meta


# -- one step, one epoch ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EpochPlan:
    """What one epoch of one stage trains on, and how its learning rate moves."""

    stage: str
    stage_index: int
    epoch: int
    epochs: int  # in this stage
    groups: list[list[TrainingItem]]


def epoch_groups(items: Sequence[TrainingItem], options: TrainOptions, stage_index: int, epoch: int, dist: Distributed) -> list[list[TrainingItem]]:
    """This epoch's batches (seeded by stage and epoch), this rank's share under DDP."""
    rng = random.Random(options.seed * 1000 + epoch * 10 + stage_index)
    groups = batches(items, options.batch_size, rng)
    if dist.world > 1:  # every rank must take the same number of steps, or DDP waits forever
        groups = groups[: len(groups) - len(groups) % dist.world][dist.rank :: dist.world]
    return groups


def train_step(
    wrapped: nn.Module, optimizer: torch.optim.Optimizer, params: Sequence[nn.Parameter], batch: Batch, plan: EpochPlan, options: TrainOptions
) -> tuple[float, dict[str, float]]:
    """One optimiser step on ``batch``: loss (stopping the run if it diverged), backward, gradient clipping, update."""
    loss, parts = wrapped(batch, plan.stage)
    check_loss(float(loss.detach()), plan.stage, plan.epoch, options.lr)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if options.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
    optimizer.step()
    return float(loss.detach()), {k: float(v) for k, v in parts.items()}


def _set_lr(optimizer: torch.optim.Optimizer, options: TrainOptions, plan: EpochPlan, step: int) -> None:
    if options.lr_schedule == "cosine":
        done = (plan.epoch + step / len(plan.groups)) / plan.epochs
        for param_group in optimizer.param_groups:
            param_group["lr"] = options.lr * 0.5 * (1 + math.cos(math.pi * done))


def train_epoch(
    wrapped: nn.Module,
    optimizer: torch.optim.Optimizer,
    params: Sequence[nn.Parameter],
    plan: EpochPlan,
    options: TrainOptions,
    device: torch.device,
    augment_rng: np.random.Generator | None,
    on_step: Callable[[], None],
) -> tuple[float, dict[str, float]]:
    """Every step of one epoch; the mean loss and the mean of each loss part over the steps that had it."""
    total, parts_sum, parts_count = 0.0, {}, {}
    for step, group in enumerate(plan.groups):
        _set_lr(optimizer, options, plan, step)
        loss, parts = train_step(wrapped, optimizer, params, collate(group, augment_rng).to(device), plan, options)
        total += loss
        for k, v in parts.items():  # some parts are absent from some steps (SelfTalk's CTC)
            parts_sum[k] = parts_sum.get(k, 0.0) + v
            parts_count[k] = parts_count.get(k, 0) + 1
        on_step()
    return total / max(len(plan.groups), 1), {k: v / parts_count[k] for k, v in parts_sum.items()}


# -- where a run stands: checkpoints and resume ---------------------------------------------------
@dataclass
class RunState:
    """A run's files and how far it got; ``resumed`` holds the optimiser state read from disk."""

    out_dir: Path
    start_stage: int = 0
    start_epoch: int = 0
    best_metric: float = math.inf
    history: list[EpochLog] = field(default_factory=list)
    resumed: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None

    @property
    def best(self) -> Path:
        return self.out_dir / "best.safetensors"

    @property
    def last(self) -> Path:
        return self.out_dir / "last.safetensors"

    @property
    def state(self) -> Path:
        return self.out_dir / "last.state.safetensors"


def resume_state(model: nn.Module, out_dir: Path, stages: Sequence[str]) -> RunState:
    """Load ``last.safetensors`` into ``model`` and read where the run stopped.

    A run resumed with a later ``stages`` selection (``--stage complete`` after ``--stage keys``)
    starts the first selected stage after the one it stopped in, on the weights it left.
    """
    run = RunState(out_dir)
    if not (run.last.is_file() and run.state.is_file()):
        raise ModelError(f"Nothing to resume in {out_dir}: it has no last.safetensors and last.state.safetensors.")
    from .backbones.checkpoint import load_state

    tensors, meta = _read_state(run.state)
    p = meta["progress"]
    order = list(getattr(model, "stages", stages))
    if p["stage"] not in order:
        raise ModelError(
            f"The run in {out_dir} stopped in stage '{p['stage']}', which this model does not have (its stages are "
            f"{', '.join(order)}); resume it with the config it started with."
        )
    later = [i for i, s in enumerate(stages) if order.index(s) > order.index(p["stage"])]
    if p["stage"] not in stages and not later:
        raise ModelError(f"The run in {out_dir} is past the stages asked for ({', '.join(stages)}): it stopped in '{p['stage']}'.")
    load_state(run.last, model)
    run.history = [EpochLog(**h) for h in p["history"]]
    if p["stage"] in stages:
        run.start_stage, run.start_epoch, run.best_metric = list(stages).index(p["stage"]), p["epoch"] + 1, p["best_metric"]
        run.resumed = (tensors, meta)
    else:
        run.start_stage = later[0]
    return run


def save_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, run: RunState, info: dict[str, Any], options: TrainOptions, seconds: float) -> None:
    """After an epoch (rank 0): ``best`` if it improved this stage's metric, ``last``, and the resume state."""
    entry = run.history[-1]
    metric = entry.val_lve_mm if entry.val_lve_mm is not None else (entry.val_loss if entry.val_loss is not None else entry.train_loss)
    record = _record(info, options, entry.stage, entry.epoch, run.history, seconds)
    if metric < run.best_metric:
        run.best_metric = metric
        save_checkpoint(model, run.best, record)
    save_checkpoint(model, run.last, record)
    _write_state(
        run.state,
        optimizer,
        {"stage": entry.stage, "epoch": entry.epoch, "best_metric": run.best_metric, "history": [asdict(h) for h in run.history]},
    )


# -- the loop -------------------------------------------------------------------------------------
def _check_stages(model: nn.Module, options: TrainOptions) -> tuple[str, ...]:
    if options.lr_schedule not in LR_SCHEDULES:
        raise ModelError(f"Unknown learning-rate schedule '{options.lr_schedule}'; choose from {', '.join(LR_SCHEDULES)}.")
    stages = options.stages or tuple(model.stages)
    unknown = [s for s in stages if s not in model.stages]
    if unknown:
        raise ModelError(f"Model has no training stage {', '.join(unknown)}; its stages are {', '.join(model.stages)}.")
    return stages


def _wrap(model: nn.Module, dist: Distributed) -> nn.Module:
    wrapped: nn.Module = _LossModule(model)
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(wrapped, find_unused_parameters=True)
    return wrapped


def train(
    model: nn.Module,
    train_items: Sequence[TrainingItem],
    val_items: Sequence[TrainingItem],
    out_dir: Path,
    info: dict[str, Any],
    options: TrainOptions = TrainOptions(),
    *,
    resume: bool = False,
    lips: np.ndarray | None = None,
    log: Callable[[EpochLog], None] | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``model`` stage by stage; write ``best``/``last`` checkpoints with ``info`` + metrics.

    ``info`` is the checkpoint description (kind, backbone, config, styles, template, data);
    the loop adds ``training`` and ``metrics``. ``lips`` are lip vertex indices for the
    validation lip error.
    """
    if not train_items:
        raise DatasetError("There are no training sequences.")
    device = resolve_device(options.device)
    dist = init_distributed(device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
    seed_everything(options.seed + dist.rank)
    model.to(device)
    stages = _check_stages(model, options)
    out_dir = Path(out_dir)
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    run = resume_state(model, out_dir, stages) if resume else RunState(out_dir)

    wrapped = _wrap(model, dist)
    began = time.perf_counter()
    steps_per_epoch = len(batches(train_items, options.batch_size, None))
    total_steps = sum(steps_per_epoch * options.epochs_for(s) for s in stages)
    done_steps = steps_per_epoch * (sum(options.epochs_for(s) for s in stages[: run.start_stage]) + (run.start_epoch if run.resumed else 0))
    augment_rng = np.random.default_rng(options.seed * 7919 + dist.rank) if options.augment else None

    def on_step() -> None:
        nonlocal done_steps
        done_steps += dist.world
        if progress and dist.main:
            progress(min(done_steps, total_steps), total_steps)

    for stage_index, stage in enumerate(stages[run.start_stage :], start=run.start_stage):
        params = [p for p in model.trainable_parameters(stage) if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
        first_epoch = 0
        if run.resumed is not None and stage_index == run.start_stage:
            _restore_optimizer(optimizer, *run.resumed)
            first_epoch = run.start_epoch
        else:
            run.best_metric = math.inf  # each stage selects its own best
        stage_began = time.perf_counter()
        for epoch in range(first_epoch, options.epochs_for(stage)):
            model.train()
            epoch_began = time.perf_counter()
            plan = EpochPlan(stage, stage_index, epoch, options.epochs_for(stage), epoch_groups(train_items, options, stage_index, epoch, dist))
            train_loss, parts = train_epoch(wrapped, optimizer, params, plan, options, device, augment_rng, on_step)
            val_loss, val_lve = (None, None)
            if dist.main and val_items:
                val_loss, val_lve = validate(model, val_items, stage, options, device, lips)
                check_loss(val_loss, stage, epoch, options.lr, what="validation loss")
            run.history.append(EpochLog(stage, epoch, train_loss, val_loss, val_lve, time.perf_counter() - epoch_began, parts))
            if dist.main:
                if log:
                    log(run.history[-1])
                save_epoch(model, optimizer, run, info, options, time.perf_counter() - began)
            if options.max_minutes is not None and time.perf_counter() - stage_began > options.max_minutes * 60:
                break
    if dist.world > 1:
        import torch.distributed as torch_dist

        torch_dist.barrier()
    return TrainResult(out_dir, run.best, run.last, run.history, time.perf_counter() - began)


#: A training loss above this (squared metres and CTC nats alike stay far below) has exploded.
MAX_LOSS = 1e6


def check_loss(value: float | None, stage: str, epoch: int, lr: float, *, what: str = "loss") -> None:
    """Stop training with a clear message once the loss is NaN, infinite or exploding, before
    anything from that epoch is saved."""
    if value is None or (math.isfinite(value) and abs(value) <= MAX_LOSS):
        return
    raise ModelError(
        f"Training diverged in stage {stage}, epoch {epoch + 1}: the {what} is {value:.3g}; "
        f"nothing from this epoch was saved. Try a lower --lr (it was {lr:g})."
    )


def _record(info: dict[str, Any], options: TrainOptions, stage: str, epoch: int, history: list[EpochLog], seconds: float) -> dict[str, Any]:
    last = history[-1]
    return {
        **info,
        "training": {**info.get("training", {}), "options": options.to_dict(), "stage": stage, "epoch": epoch, "seconds": round(seconds, 1)},
        "metrics": {
            "train_loss": last.train_loss,
            "val_loss": last.val_loss,
            "val_lve_mm": last.val_lve_mm,
        },
    }
