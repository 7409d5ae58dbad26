"""A fastai Learner around a timm model of the zoo: optimiser, schedules, callbacks, run folder.

The model keeps its own head (fastai's ``vision_learner`` would cut it off and add another), and
the splitter puts the class-map convolution alone in the last parameter group, so that fastai's
``freeze``/``unfreeze``/``fine_tune`` train the head first and then everything with
discriminative learning rates.

A run lives in one folder. While it trains, ``checkpoint.pt`` holds everything needed to go on
after a kill (weights, optimiser state, the epoch reached, every RNG); when it ends, the folder
holds what the Hub publisher pushes: ``model.safetensors``, ``config.json`` (timm's format),
``history.csv``, ``results.json`` and ``curves.png``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn as nn
from fastai.callback.core import Callback
from fastai.callback.progress import CSVLogger
from fastai.callback.schedule import ParamScheduler, combined_cos
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.optimizer import SGD
from fastai.torch_core import num_distrib, rank_distrib
from fastcore.basics import even_mults

from allconv_zoo.data import CifarData
from allconv_zoo.files import atomic_path, atomic_write_text
from allconv_zoo.hub import read_history, save_model_folder
from allconv_zoo.loaders import make_dataloaders
from allconv_zoo.models import count_macs

__all__ = [
    "SCHEDULES",
    "FreezeBody",
    "RunConfig",
    "RunError",
    "Schedule",
    "allconv_splitter",
    "build_learner",
    "evaluate_accuracy",
    "resolve_device",
    "resolve_precision",
    "train_run",
    "use_channels_last",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
MOMENTUM = 0.9


class RunError(RuntimeError):
    """A run that cannot start or resume as asked (bad flags, a folder of another run)."""


@dataclass(frozen=True)
class Schedule:
    """A named training recipe; every value can be overridden from the command line.

    ``kind`` is how the learning rate moves over the run:
      * ``"cosine_epochs"``: ``CosineAnnealingLR(T_max)`` stepped once per epoch, as the
        reproduction report used it. Past ``T_max`` the cosine climbs back up to ``lr``
        (PyTorch's closed form is periodic), so the report's 100 epochs with ``T_max = 50``
        anneal to zero at epoch 50 and rise again; this is kept on purpose.
      * ``"step"``: ``lr`` times 0.1 at each of ``milestones`` (fractions of the run).
      * ``"one_cycle"``: fastai's ``fit_one_cycle`` (warm-up, cosine down, momentum cycled).
      * ``"fine_tune"``: fastai's ``fine_tune`` for a pretrained body: the run's first
        ``RunConfig.freeze_epochs`` epochs train the head alone (one cycle to ``lr``), the rest
        train every layer (one cycle to ``lr / 2`` for the head, ``lr / 2 / lr_mult`` for the
        body). See ``fine_tune_callbacks``.
    """

    name: str
    lr: float
    wd: float
    epochs: int
    bs: int
    kind: str
    drop_rate: float
    drop_in_rate: float
    t_max_fraction: float = 0.5
    milestones: tuple[float, ...] = ()
    # fine_tune only: how many times lower the body's learning rate is than the head's.
    lr_mult: float = 1.0
    notes: str = ""


SCHEDULES: dict[str, Schedule] = {
    "report": Schedule(
        name="report",
        lr=1e-2,
        wd=1e-4,
        epochs=100,
        # The report gives no batch size; 128 is the common CIFAR default and our choice.
        bs=128,
        kind="cosine_epochs",
        t_max_fraction=0.5,  # T_max = 50 of 100 epochs
        # The report trained without dropout ("useless ... thus we discard it").
        drop_rate=0.0,
        drop_in_rate=0.0,
        notes="Li's reproduction report: SGD momentum 0.9, lr 1e-2, weight decay 1e-4, "
        "CosineAnnealingLR(T_max=50) per epoch, 100 epochs, no dropout; batch size not given "
        "(128 here).",
    ),
    "paper": Schedule(
        name="paper",
        lr=0.05,
        wd=1e-3,
        epochs=350,
        bs=256,
        kind="step",
        milestones=(200 / 350, 250 / 350, 300 / 350),
        drop_rate=0.5,
        drop_in_rate=0.2,
        notes="Springenberg et al.: SGD momentum 0.9, weight decay 1e-3, lr x0.1 at epochs 200, "
        "250 and 300 of 350, dropout 20%/50%; the paper picks lr per model from "
        "{0.25, 0.1, 0.05, 0.01} (0.05 here), batch size not given (256 here).",
    ),
    "fast": Schedule(
        name="fast",
        lr=0.04,
        wd=5e-4,
        epochs=10,
        # 128, not 256: two 60-epoch all_cnn_c runs of this preset on a 2-core CPU, alike but for
        # the batch, were 58.7% vs 68.9% after 10 epochs, 83.7% vs 86.2% after 30-32 and 88.02%
        # vs 90.42% after 60, the smaller batch ahead at every epoch (twice the steps at the same
        # peak lr).
        bs=128,
        kind="one_cycle",
        # Short runs underfit: on this CPU a 10-epoch one-cycle run reached 75% test accuracy
        # without dropout and 64% with the paper's 20%/50%.
        drop_rate=0.0,
        drop_in_rate=0.0,
        notes="fastai one-cycle to lr 0.04 (momentum 0.95-0.85), weight decay 5e-4, no dropout: "
        "the best of the short budgets tried on a 2-core CPU.",
    ),
    # The `fast` preset's values, so that a fine-tuned run and a `fast` run from scratch differ
    # only in where they start and in how the learning rate is split (allconv_zoo.transfer).
    "fine_tune": Schedule(
        name="fine_tune",
        lr=0.04,
        wd=5e-4,
        epochs=10,
        # Follows `fast`; not measured for fine-tuning itself: the staged CIFAR-100 repos were
        # trained at --bs 256, so that they share scratch twins with the runs before this change.
        bs=128,
        kind="fine_tune",
        drop_rate=0.0,
        drop_in_rate=0.0,
        # fastai's default of 100 is made for ImageNet bodies; a CIFAR-10 body on a CIFAR-100
        # task is closer to its new task, and at lr/100 SGD would barely move it in the few
        # epochs this preset has. A choice, not a measured optimum.
        lr_mult=10.0,
        notes="fastai fine_tune of a pretrained body: the first freeze_epochs epochs train the "
        "new head alone (one cycle to lr 0.04), the rest every layer (one cycle to 0.02 for the "
        "head, 0.002 for the body); momentum 0.95-0.85, weight decay 5e-4, no dropout.",
    ),
}


@dataclass
class RunConfig:
    """Everything that defines a run; saved in the checkpoint and in results.json."""

    arch: str
    dataset: str = "cifar10"
    tag: str = "cifar10"
    schedule: str = "fast"
    epochs: int | None = None
    lr: float | None = None
    bs: int | None = None
    wd: float | None = None
    drop_rate: float | None = None
    drop_in_rate: float | None = None
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    limit: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # fine_tune schedule only: the first freeze_epochs of the run's epochs train the head alone.
    freeze_epochs: int = 0

    def resolved(self) -> RunConfig:
        """A copy with every None filled from the schedule preset."""
        if self.schedule not in SCHEDULES:
            raise RunError(
                f"Unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}."
            )
        preset = SCHEDULES[self.schedule]
        values = dataclasses.asdict(self)
        for name in ("epochs", "lr", "bs", "wd", "drop_rate", "drop_in_rate"):
            if values[name] is None:
                values[name] = getattr(preset, name)
        config = RunConfig(**values)
        config.validate()
        return config

    def validate(self) -> None:
        problems = []
        if self.epochs is not None and self.epochs < 1:
            problems.append(f"epochs must be at least 1 (got {self.epochs})")
        if self.lr is not None and not self.lr > 0:
            problems.append(f"lr must be positive (got {self.lr})")
        if self.bs is not None and self.bs < 1:
            problems.append(f"bs must be at least 1 (got {self.bs})")
        if self.wd is not None and self.wd < 0:
            problems.append(f"wd must be non-negative (got {self.wd})")
        for name in ("drop_rate", "drop_in_rate"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                problems.append(f"{name} must be in [0, 1) (got {value})")
        if self.limit is not None and self.limit < 1:
            problems.append(f"limit must be a positive number of images (got {self.limit})")
        if self.precision not in ("auto", "bf16", "fp32"):
            problems.append(f"precision must be auto, bf16 or fp32 (got {self.precision!r})")
        kind = SCHEDULES[self.schedule].kind if self.schedule in SCHEDULES else None
        if self.freeze_epochs < 0:
            problems.append(f"freeze_epochs must be non-negative (got {self.freeze_epochs})")
        elif self.freeze_epochs and kind != "fine_tune":
            problems.append(
                f"freeze_epochs needs the fine_tune schedule (got {self.freeze_epochs} with "
                f"{self.schedule!r}): only a pretrained body is worth freezing"
            )
        elif kind == "fine_tune" and self.epochs is not None and self.freeze_epochs >= self.epochs:
            problems.append(
                f"freeze_epochs ({self.freeze_epochs}) must be fewer than epochs ({self.epochs}), "
                "which count the frozen ones: the body needs at least one epoch unfrozen"
            )
        if problems:
            raise RunError("Bad run settings: " + "; ".join(problems) + ".")


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; anything else must be available."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise RunError(f"Unknown device {device!r}: use auto, cpu, cuda or cuda:N.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"Device {device!r} asked for, but CUDA is not available: use --device cpu.")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` where the device computes bfloat16 natively, else ``"fp32"``."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        # oneDNN runs bf16 convolutions fast only on CPUs with AVX-512 BF16 or AMX; elsewhere
        # autocast would emulate them and be slower than fp32.
        is_fast = (
            getattr(torch.backends.mkldnn, "is_available", lambda: False)()
            and getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        )
        return "bf16" if is_fast else "fp32"
    return "fp32"


def use_channels_last(precision: str, device: torch.device) -> bool:
    """Whether the recipe runs in channels_last memory layout with this precision and device.

    oneDNN's CPU convolutions are faster in channels_last in fp32 too (measured 1.6x for
    all_cnn_c training on a 2-core AVX2 machine); on CUDA the layout pays with bf16 tensor cores.
    """
    return precision == "bf16" or device.type == "cpu"


def allconv_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """[body, head]: the head is the class-map convolution, the one a new task replaces."""
    head = list(model.get_classifier().parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    return [body, head]


class Autocast(Callback):
    """bf16 autocast on any device.

    fastai's ``MixedPrecision`` always opens ``autocast("cuda")``, which does nothing for a CPU
    run; this opens it for the model's own device type and needs no gradient scaler (bf16 has
    fp32's exponent range).
    """

    order = 10

    def __init__(self, device_type: str, dtype: torch.dtype = torch.bfloat16) -> None:
        self.device_type, self.dtype = device_type, dtype

    def before_batch(self) -> None:
        self.autocast = torch.autocast(self.device_type, dtype=self.dtype)
        self.autocast.__enter__()

    def after_pred(self) -> None:
        self.learn.pred = self.pred.float()

    def after_loss(self) -> None:
        self.autocast.__exit__(None, None, None)


class TrainThroughput(Callback):
    """Times the training part of each epoch (no validation) and counts its images."""

    order = 0

    def before_fit(self) -> None:
        self.epoch_seconds: list[float] = []
        self.epoch_images: list[int] = []

    def before_train(self) -> None:
        self._images = 0
        self._start = time.perf_counter()

    def after_batch(self) -> None:
        if self.training:
            self._images += len(self.yb[0])

    def after_train(self) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._start)
        self.epoch_images.append(self._images)

    @property
    def images_per_second(self) -> float:
        seconds = sum(self.epoch_seconds)
        return sum(self.epoch_images) / seconds if seconds else float("nan")


class ResumableCSVLogger(CSVLogger):
    """fastai's CSVLogger that can append to the history of a resumed run.

    It skips the second header, and the rows of the epochs that fastai's ``SkipToEpoch``
    passes over (fastai still runs ``after_epoch`` for them, so the Recorder logs empty rows).
    """

    def __init__(self, fname: str = "history.csv", append: bool = False, start_epoch: int = 0):
        super().__init__(fname=fname, append=append)
        self.start_epoch = start_epoch

    def _write_line(self, log) -> None:
        if int(log[0]) < self.start_epoch:
            self.old_logger(log)
            return
        super()._write_line(log)

    def before_fit(self) -> None:
        history = self.path / self.fname
        had_rows = self.append and history.exists() and history.stat().st_size > 0
        super().before_fit()
        if had_rows:
            # super() wrote a second header at the end; drop it by rewriting the file.
            self.file.close()
            lines = history.read_text().splitlines(keepends=True)
            atomic_write_text(history, "".join(lines[:-1]))
            self.file = history.open("a")


def _rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save onto ``path`` atomically, synced to disk before the rename."""
    with atomic_path(path) as temporary, temporary.open("wb") as file:
        torch.save(obj, file)
        file.flush()
        os.fsync(file.fileno())


def _unwrapped(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or DataParallel) wrapper."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


class Checkpoint(Callback):
    """Saves everything needed to resume after every epoch, atomically.

    fastai's ``SaveModelCallback`` writes with a plain ``torch.save`` (a kill mid-write leaves a
    broken file) and keeps no RNG or DataLoader state, without which a resumed run would draw
    other batches and augmentations than an unbroken one.
    """

    order = 90  # after the Recorder and CSVLogger have logged the epoch

    def __init__(
        self,
        path: Path,
        config: dict[str, Any],
        start_epoch: int = 0,
        sessions: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.checkpoint_path, self.config, self.start_epoch = path, config, start_epoch
        self.sessions = list(sessions)

    def after_epoch(self) -> None:
        if self.epoch < self.start_epoch:  # an epoch that SkipToEpoch passed over
            return
        atomic_torch_save(
            {
                "config": self.config,
                "epochs_done": self.epoch + 1,
                # Distributed, the model is wrapped in DistributedDataParallel during the fit;
                # its own keys ("module."-free) are those every resume loads into.
                "model": _unwrapped(self.learn.model).state_dict(),
                "opt": self.learn.opt.state_dict(),
                "rng": _rng_state(),
                "train_loader": self.learn.dls.train.state_dict(),
                # Which machine and precision trained which epochs, for the run's card.
                "sessions": self.sessions,
            },
            self.checkpoint_path,
        )


def build_learner(
    model: nn.Module,
    dls: DataLoaders,
    *,
    wd: float,
    precision: str = "fp32",
    channels_last: bool = False,
    path: str | Path = ".",
    cbs: Sequence[Callback] = (),
) -> Learner:
    """A fastai Learner for a zoo model: SGD momentum 0.9 with coupled weight decay, accuracy.

    Coupled weight decay (L2 added to the gradient, ``decouple_wd=False``) is what PyTorch's
    ``SGD(weight_decay=...)`` does, which the paper's and the report's values assume.
    """
    device = dls.device or torch.device("cpu")
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    callbacks = list(cbs)
    if precision == "bf16":
        callbacks.append(Autocast(device.type))
    learn = Learner(
        dls,
        model,
        loss_func=CrossEntropyLossFlat(),
        opt_func=partial(SGD, mom=MOMENTUM, decouple_wd=False),
        metrics=accuracy,
        splitter=allconv_splitter,
        wd=wd,
        wd_bn_bias=True,
        path=Path(path),
        model_dir=".",
        cbs=callbacks,
    )
    learn.recorder.train_metrics = True
    return learn


def schedule_callbacks(schedule: Schedule, lr: float, epochs: int) -> list[Callback]:
    """The ParamScheduler for the schedules fastai has no one-call method for."""
    if schedule.kind == "cosine_epochs":
        t_max = max(1.0, schedule.t_max_fraction * epochs)

        def lr_at(pos: float) -> float:
            epoch = min(int(pos * epochs + 1e-9), epochs - 1)
            return lr * (1 + math.cos(math.pi * epoch / t_max)) / 2

        return [ParamScheduler({"lr": lr_at})]
    if schedule.kind == "step":

        def lr_at(pos: float) -> float:
            return lr * 0.1 ** sum(pos >= milestone for milestone in schedule.milestones)

        return [ParamScheduler({"lr": lr_at})]
    return []


# fastai's fine_tune, as numbers: its frozen phase warms up over 99% of the phase from lr/25, its
# unfrozen phase over 30% from lr/5 (fastai's pct_start and div); fit_one_cycle ends both at
# 1/100,000 of the peak and cycles the momentum 0.95 -> 0.85 -> 0.95.
FINE_TUNE_FROZEN_PCT_START, FINE_TUNE_FROZEN_DIV = 0.99, 25.0
FINE_TUNE_UNFROZEN_PCT_START, FINE_TUNE_UNFROZEN_DIV = 0.3, 5.0
ONE_CYCLE_DIV_FINAL = 1e5


class FreezeBody(Callback):
    """Freeze all but the head for the first ``freeze_epochs`` epochs of a fit, then unfreeze.

    ``Learner.freeze`` and ``unfreeze`` clear the optimiser state, as they do in fastai's
    ``fine_tune``; on a resumed fit the checkpoint's optimiser state must survive instead, so the
    epoch the fit resumes at only sets which parameters train.
    """

    def __init__(self, freeze_epochs: int, start_epoch: int = 0) -> None:
        self.freeze_epochs, self.start_epoch = freeze_epochs, start_epoch

    def before_epoch(self) -> None:
        if self.epoch < self.start_epoch:  # an epoch fastai skips to reach start_epoch
            return
        if self.epoch == self.freeze_epochs:
            self.learn.unfreeze()
        elif self.epoch == 0:
            self.learn.freeze()
        elif self.epoch == self.start_epoch:
            self.learn.opt.freeze_to(-1 if self.epoch < self.freeze_epochs else 0)


def _joined(first: Callable, second: Callable, at: float) -> Callable[[float], Any]:
    """A schedule of the run's position that is ``first`` before ``at``, then ``second``."""

    def value(pos: float) -> Any:
        return first(pos / at) if pos < at else second((pos - at) / (1 - at))

    return value


def fine_tune_callbacks(
    learn: Learner, *, lr: float, lr_mult: float, epochs: int, freeze_epochs: int, start_epoch: int
) -> list[Callback]:
    """fastai's ``fine_tune(epochs - freeze_epochs, lr, freeze_epochs, lr_mult)`` as one fit.

    fastai runs fine_tune as two fits, frozen then unfrozen, whose epochs both count from 0: a
    checkpoint could not tell which of the two it was taken in, and ``start_epoch`` would apply to
    both. One fit over all the epochs, with the two one-cycle schedules joined end to end and the
    body unfrozen at the boundary, trains the same way (tests/test_transfer.py compares the two)
    and resumes from any epoch, the boundary included, with the run's ordinary checkpoint.
    """
    groups = len(learn.splitter(learn.model))
    # The peaks fastai derives from slice(lr) and slice(lr / 2 / lr_mult, lr / 2).
    frozen = np.array([lr / 10] * (groups - 1) + [lr])
    unfrozen = np.array(even_mults(lr / 2 / lr_mult, lr / 2, groups))
    moms = learn.moms
    at = freeze_epochs / epochs
    schedules = {
        "lr": _joined(
            combined_cos(
                FINE_TUNE_FROZEN_PCT_START,
                frozen / FINE_TUNE_FROZEN_DIV,
                frozen,
                frozen / ONE_CYCLE_DIV_FINAL,
            ),
            combined_cos(
                FINE_TUNE_UNFROZEN_PCT_START,
                unfrozen / FINE_TUNE_UNFROZEN_DIV,
                unfrozen,
                unfrozen / ONE_CYCLE_DIV_FINAL,
            ),
            at,
        ),
        "mom": _joined(
            combined_cos(FINE_TUNE_FROZEN_PCT_START, *moms),
            combined_cos(FINE_TUNE_UNFROZEN_PCT_START, *moms),
            at,
        ),
    }
    return [ParamScheduler(schedules), FreezeBody(freeze_epochs, start_epoch)]


def fit(
    learn: Learner,
    schedule: Schedule,
    *,
    lr: float,
    epochs: int,
    start_epoch: int = 0,
    freeze_epochs: int = 0,
):
    """Run ``schedule`` on ``learn`` from ``start_epoch`` (fastai's own skip-to-epoch)."""
    if schedule.kind == "fine_tune":
        callbacks = fine_tune_callbacks(
            learn,
            lr=lr,
            lr_mult=schedule.lr_mult,
            epochs=epochs,
            freeze_epochs=freeze_epochs,
            start_epoch=start_epoch,
        )
        learn.fit(epochs, cbs=callbacks, start_epoch=start_epoch)
    elif schedule.kind == "one_cycle":
        learn.fit_one_cycle(epochs, lr_max=lr, start_epoch=start_epoch)
    else:
        learn.fit(
            epochs, lr=lr, cbs=schedule_callbacks(schedule, lr, epochs), start_epoch=start_epoch
        )


def _distributed_dataloaders(dls: DataLoaders) -> DataLoaders:
    """``dls`` sharded over the processes of a distributed run (see allconv_zoo.distributed)."""
    try:
        from allconv_zoo.distributed import distributed_dataloaders
    except ImportError as error:
        raise RunError(
            f"WORLD_SIZE={num_distrib()}: a distributed run needs Hugging Face accelerate, which "
            "fastai.distributed drives. pip install accelerate (or allconv_zoo[recipes])."
        ) from error
    return distributed_dataloaders(dls)


def _truncate_history(history: Path, epochs_done: int) -> None:
    """Keep the header and the rows of finished epochs (a kill can leave one row too many)."""
    if not history.exists():
        return
    with history.open(newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < epochs_done]
    # Atomic: this rewrites the only record of the finished epochs.
    with atomic_path(history, suffix=".csv") as temporary, temporary.open("w", newline="") as file:
        csv.writer(file).writerows(kept)


def epoch_seconds(history: Path) -> list[float]:
    """The ``time`` column of a run's history.csv (fastai's "mm:ss" or "h:mm:ss") in seconds,
    one entry an epoch; empty if there is no history yet."""
    if not history.exists():
        return []
    with history.open(newline="") as file:
        rows = list(csv.DictReader(file))
    times = []
    for row in rows:
        seconds = 0
        for part in row["time"].split(":"):
            seconds = 60 * seconds + int(part)
        times.append(float(seconds))
    return times


def history_seconds(history: Path) -> float:
    """The summed ``time`` column of a run's history.csv; 0 if there is no history yet."""
    return sum(epoch_seconds(history))


def sessions_with_epochs(
    sessions: list[dict[str, Any]], epochs: int, history: Path
) -> list[dict[str, Any]]:
    """Each session's record with the epochs it trained (``first_epoch`` to ``last_epoch``,
    counted from 1) and the seconds they took, from the history; sessions that trained no
    epoch (one that only re-evaluated a finished checkpoint) are left out."""
    times = epoch_seconds(history)
    records = []
    for index, session in enumerate(sessions):
        first = session["first_epoch"]
        last = sessions[index + 1]["first_epoch"] - 1 if index + 1 < len(sessions) else epochs
        if last < first:
            continue
        seconds = sum(times[first - 1 : last])
        records.append({**session, "last_epoch": last, "seconds": seconds})
    return records


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo names the model there.
    model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    name = f"{model} ({platform.machine()})" if model else platform.machine()
    isa = torch.backends.cpu.get_cpu_capability()
    return f"CPU {name}, {isa}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def library_versions() -> dict[str, str]:
    import fastai
    import huggingface_hub
    import safetensors

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "fastai": fastai.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "safetensors": safetensors.__version__,
    }


def train_run(
    config: RunConfig,
    data: CifarData,
    out_dir: str | Path,
    *,
    resume: bool = False,
    model_factory: Callable[[RunConfig], nn.Module] | None = None,
    extra_callbacks: Sequence[Callback] = (),
    write_outputs: bool = True,
    pretrained_cfg: dict[str, Any] | None = None,
    results_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``config`` on ``data`` into ``out_dir``; return the results (also results.json).

    Args:
        config: the run; unset values come from its schedule preset.
        data: train and test images (the test split is fastai's validation set, so the
            history holds test accuracy per epoch, as the report's figures do).
        out_dir: the run folder.
        resume: continue from ``out_dir/checkpoint.pt``; the run's settings must match.
        model_factory: builds the model (default ``timm.create_model(arch, ...)``); the transfer
            recipe passes one that loads pretrained weights.
        extra_callbacks: more fastai callbacks for the fit.
        write_outputs: write the run folder's final files (rank 0 only when distributed).
        pretrained_cfg: entries for the pretrained config in the run's config.json (e.g. the
            mean and std of a CIFAR-100 run); see ``allconv_zoo.hub.save_model_folder``.
        results_extra: entries added to (or replacing those of) the results and results.json.

    Raises:
        RunError: bad settings, or ``resume`` without a matching checkpoint, or a finished run
            folder that ``resume=False`` would overwrite.
    """
    config = config.resolved()
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    saved_config = dataclasses.asdict(config)
    checkpoint = None
    if resume:
        if not checkpoint_path.exists():
            raise RunError(
                f"--resume: no {CHECKPOINT_NAME} in {out_dir}. Start the run without --resume, "
                "or point --out at the folder of the run to continue."
            )
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        # A checkpoint from before freeze_epochs existed was taken without freezing.
        old_config = {"freeze_epochs": 0, **checkpoint["config"]}
        if old_config != saved_config:
            diffs = {
                k: (old_config.get(k), v) for k, v in saved_config.items() if old_config.get(k) != v
            }
            raise RunError(
                f"--resume: the run in {out_dir} was started with other settings "
                f"(checkpoint vs now: {diffs}). Resume with the same flags, or use a new --out."
            )
    elif checkpoint_path.exists() or (out_dir / "results.json").exists():
        raise RunError(
            f"{out_dir} already holds a run. Pass --resume to continue it, or choose another --out."
        )

    # Under torchrun / accelerate launch every process runs this function; rank 0 alone writes.
    rank, world_size = rank_distrib(), max(1, num_distrib())
    device = resolve_device(config.device)
    if world_size > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # one GPU a process
        torch.cuda.set_device(device)
    precision = resolve_precision(config.precision, device)
    channels_last = use_channels_last(precision, device)
    schedule = SCHEDULES[config.schedule]
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    dls = make_dataloaders(
        data,
        bs=config.bs,
        device=device,
        limit=config.limit,
        channels_last=channels_last,
        seed=config.seed,
    )
    if world_size > 1:
        dls = _distributed_dataloaders(dls)
    if model_factory is None:
        model = timm.create_model(
            config.arch,
            num_classes=len(data.classes),
            drop_rate=config.drop_rate,
            drop_in_rate=config.drop_in_rate,
            **config.model_kwargs,
        )
    else:
        model = model_factory(config)
    throughput = TrainThroughput()
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    start_epoch = checkpoint["epochs_done"] if checkpoint is not None else 0
    history_logger = ResumableCSVLogger("history.csv", append=resume, start_epoch=start_epoch)
    # A run resumed on another machine, or at another precision, trained its epochs at other
    # speeds and in other arithmetic; each session is recorded so that the card can say so.
    this_session = {
        "first_epoch": start_epoch + 1,
        "machine": machine_description(device),
        "precision": precision,
    }
    earlier_sessions = []
    if checkpoint is not None:
        earlier_sessions = checkpoint.get("sessions") or [
            # A checkpoint from before sessions were recorded.
            {"first_epoch": 1, "machine": None, "precision": None}
        ]
    sessions = [*earlier_sessions, this_session]
    checkpointer = Checkpoint(
        checkpoint_path, saved_config, start_epoch=start_epoch, sessions=sessions
    )
    writers = [history_logger, checkpointer] if rank == 0 else []
    callbacks: list[Callback] = [throughput, *writers, *extra_callbacks]
    learn = build_learner(
        model,
        dls,
        wd=config.wd,
        precision=precision,
        channels_last=channels_last,
        path=out_dir,
        cbs=callbacks,
    )

    if checkpoint is not None:
        learn.model.load_state_dict(checkpoint["model"])
        learn.create_opt()
        learn.opt.load_state_dict(checkpoint["opt"])
        learn.dls.train.load_state_dict(checkpoint["train_loader"])
        _set_rng_state(checkpoint["rng"])
        if rank == 0:
            _truncate_history(out_dir / "history.csv", start_epoch)
        logger.info("Resuming %s at epoch %d of %d", out_dir, start_epoch, config.epochs)
    # A resumed run's wall time is that of all its sessions: the earlier ones' is the sum of the
    # finished epochs' times in the history, which is kept across resumes.
    earlier_seconds = history_seconds(out_dir / "history.csv") if checkpoint is not None else 0.0

    started = time.perf_counter()
    if start_epoch < config.epochs:
        # fastai's distrib_ctx wraps the model in DistributedDataParallel for the fit and
        # unwraps it after, through accelerate, which starts the process group (gloo on CPUs,
        # but only when told cpu=True: else it falls back to a single process without a word).
        distributed = learn.distrib_ctx(cpu=device.type == "cpu") if world_size > 1 else None
        with distributed or contextlib.nullcontext():
            fit(
                learn,
                schedule,
                lr=config.lr,
                epochs=config.epochs,
                start_epoch=start_epoch,
                freeze_epochs=config.freeze_epochs,
            )
    wall_time = earlier_seconds + time.perf_counter() - started

    # fastai's validate() runs the callbacks' before_fit: the CSV logger would truncate the
    # history and the timer would reset, so they step out for the final evaluation.
    # Distributed, each rank evaluates its shard of the test set and fastai gathers the metric.
    # The test accuracy is that of the fp32 weights a user loads: a bf16 run's autocast steps
    # out too (its epochs' valid_accuracy, in the history, was measured under autocast, and can
    # differ from the fp32 number by a few tenths of a point).
    autocasts = [cb for cb in learn.cbs if isinstance(cb, Autocast)]
    with learn.removed_cbs([throughput, *writers, *extra_callbacks, *autocasts]):
        _, test_accuracy = learn.validate()
    results = {
        "arch": config.arch,
        "tag": config.tag,
        "dataset": data.name,
        "data_source": data.source,
        "data_notes": " ".join(data.notes),
        "num_classes": len(data.classes),
        "label_names": list(data.classes),
        "test_accuracy": round(100.0 * float(test_accuracy), 2),
        "test_precision": "fp32",
        "train_images": len(dls.train.dataset),
        "test_images": len(dls.valid.dataset),
        "epochs": config.epochs,
        "schedule": config.schedule,
        "schedule_notes": schedule.notes,
        "hyperparameters": {
            **saved_config,
            "precision": precision,
            "channels_last": channels_last,
            "momentum": MOMENTUM,
            "weight_decay_kind": "coupled (L2 in the gradient)",
            "world_size": world_size,
            "global_bs": config.bs * world_size,
        },
        "wall_time_s": round(wall_time, 1),
        "resumed_at_epoch": start_epoch if resume else None,
        # Every rank trains as many images in the same time: the run's rate is world_size x one's.
        "images_per_second": round(throughput.images_per_second * world_size, 1),
        "parameters": sum(p.numel() for p in learn.model.parameters()),
        "macs": count_macs(learn.model.float(), (data.train_images.shape[1], 32, 32)),
        "versions": library_versions(),
        "machine": this_session["machine"],
        "device": str(device),
        "sessions": sessions_with_epochs(sessions, config.epochs, out_dir / "history.csv"),
        **(results_extra or {}),
    }
    if write_outputs and rank == 0:
        write_run_folder(learn.model, results, out_dir, pretrained_cfg=pretrained_cfg)
        checkpoint_path.unlink(missing_ok=True)
    return results


def evaluate_accuracy(
    model: nn.Module,
    data: CifarData,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    bs: int = 500,
    device: str = "auto",
) -> float:
    """Top-1 accuracy in percent of ``model`` on the test split of ``data``.

    Normalised with ``mean``/``std`` (default: the data's), no augmentation: what a user of the
    weights gets, and what the runs' validation measured.
    """
    from allconv_zoo.loaders import BatchAugment

    target = resolve_device(device)
    transform = BatchAugment(mean or data.mean, std or data.std, train=False)
    model = model.to(target).eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(data.test_labels), bs):
            images = data.test_images[start : start + bs].to(target)
            labels = data.test_labels[start : start + bs].to(target)
            inputs, _ = transform((images, labels))
            correct += int((model(inputs).argmax(dim=1) == labels).sum())
    return 100.0 * correct / len(data.test_labels)


def write_run_folder(
    model: nn.Module,
    results: dict[str, Any],
    out_dir: Path,
    *,
    pretrained_cfg: dict[str, Any] | None = None,
) -> None:
    """Weights and timm config, results.json and curves.png (history.csv is already there).

    ``pretrained_cfg`` entries replace those of the model's own pretrained config in config.json.
    """
    model = model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    save_model_folder(
        model, out_dir, label_names=results["label_names"], pretrained_cfg=pretrained_cfg
    )
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    plot_curves(out_dir / "history.csv", out_dir / "curves.png", title=results["arch"])


def save_figure(figure, out: Path) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    try:
        with atomic_path(out, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=120)
    finally:
        plt.close(figure)


def plot_curves(history: Path, out: Path, *, title: str = "") -> None:
    """Train and test accuracy per epoch, as the report's figures show them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = read_history(history)
    epochs = [int(e) + 1 for e in columns["epoch"]]
    figure, axis = plt.subplots(figsize=(6, 4))
    if "train_accuracy" in columns:
        axis.plot(epochs, [100 * a for a in columns["train_accuracy"]], label="train")
    axis.plot(epochs, [100 * a for a in columns["valid_accuracy"]], label="test")
    axis.set_xlabel("epoch")
    axis.set_ylabel("accuracy (%)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    save_figure(figure, out)
