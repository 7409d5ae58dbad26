"""Transfer from CIFAR-10 to a CIFAR-100 subset, and the run from scratch it is judged against.

The reproduction report these models follow (Li, see ``allconv_zoo.reference``) trains All-CNN-C
on two ten-class CIFAR-100 subsets (``class1``, ``class2``; ``allconv_zoo.data.CIFAR100_SUBSETS``)
twice: once starting from its CIFAR-10 weights ("transfer") and once from a fresh initialisation
("scratch"), and reports 83.6% against 73.3% on class1 and 84.5% against 73.5% on class2.

Transfer here is fastai's ``fine_tune`` on the zoo's model. The body (every layer up to the
192-channel features) keeps the source weights; the head, the 1x1 class-map convolution
``classifier`` and the only layer whose shape depends on the classes, is replaced by a new
Xavier-initialised one. The first ``freeze_epochs`` epochs train the head alone; the rest train
every layer, the body at a lower learning rate (the ``fine_tune`` schedule of
``allconv_zoo.learner``, through its splitter [body, head]).

Fairness rules, so that the gap between the two runs is the effect of the starting weights:

* Equal: the images (the same subset, ``limit`` and test set), the seed (hence the same shuffling
  and augmentation draws), the number of epochs (scratch trains ``freeze_epochs + epochs``, all
  of them with every layer), batch size, weight decay, dropout, augmentation, optimiser (SGD,
  momentum 0.95-0.85), schedule family (one cycle of warm-up and cosine annealing), peak learning
  rate ``lr``, device and precision.
* Different, by design: the starting weights; the transfer body is frozen for ``freeze_epochs``
  epochs; after that the transfer run peaks at ``lr / 2`` for the head and ``lr / 2 / lr_mult``
  for the body, as fastai's ``fine_tune`` does, where scratch peaks at ``lr`` for every layer;
  the transfer run's two cycles warm up differently (over 99% of the frozen phase from 1/25 of
  its peak, then over 30% of the rest from 1/5) from scratch's single cycle (over 25% of the run
  from 1/25).

``fairness_notes`` writes these out for the settings of a pair of runs; each run's results.json
and the comparison's table.md carry them, and the recipes print them.

The transfer run folders are what ``recipes/publish.py`` pushes as ``<arch>.cifar100_class1`` and
``<arch>.cifar100_class2`` (``cifar100_custom`` for another class list): their results.json carry
that tag, dataset ``cifar100`` and the source as ``base_model``; their config.json the CIFAR-100
mean and std they were trained with.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn as nn
from fastai.callback.core import Callback

from allconv_zoo.data import CIFAR100_SUBSETS, CifarData
from allconv_zoo.data import _parse_class_list as _parse_cifar100_classes
from allconv_zoo.files import atomic_write_text
from allconv_zoo.hub import read_history
from allconv_zoo.learner import (
    SCHEDULES,
    RunConfig,
    RunError,
    save_figure,
    train_run,
)
from allconv_zoo.models import (
    HUB_NAMESPACE,
    PAPER_NAMES,
    PRETRAINED_ARCHS,
    PretrainedWeightsError,
    check_model_name,
    default_cfgs,
)
from allconv_zoo.reference import REPORT, cifar100_reference

__all__ = [
    "STRATEGIES",
    "SourceWeights",
    "SourceWeightsFileError",
    "SourceWeightsUnavailableError",
    "StrategyRun",
    "TableRow",
    "TransferError",
    "body_state",
    "epochs_to_fraction",
    "fairness_notes",
    "make_transfer_model",
    "parse_class_request",
    "plot_comparison",
    "read_table_row",
    "render_table",
    "resolve_source_weights",
    "run_comparison",
    "strategy_configs",
    "transfer_tag",
]

logger = logging.getLogger(__name__)

STRATEGIES = ("transfer", "scratch")
# The source every transfer starts from unless a local file is given: the zoo's CIFAR-10 weights.
SOURCE_TAG = "cifar10"
# "Epochs to reach 90% of the final accuracy": how fast a run gets near where it ends.
FRACTION_OF_FINAL = 0.9
TRANSFER_SCHEDULE = "fine_tune"
SCRATCH_SCHEDULE = "fast"
WEIGHTS_NAME = "model.safetensors"


class TransferError(Exception):
    """Base class of the errors this module raises."""


class SourceWeightsUnavailableError(TransferError, PretrainedWeightsError):
    """No source weights could be had from the Hub or its cache, and no local file was given."""


class SourceWeightsFileError(TransferError, ValueError):
    """A local source (``--weights``) that is missing, unreadable, or of another architecture."""


@dataclass(frozen=True)
class SourceWeights:
    """Where a transfer run's body comes from.

    Attributes:
        arch: the architecture the weights are for.
        file: a local safetensors file, or None for the Hub's ``<arch>.cifar10`` weights.
        num_classes: the classes of the source's head (which the transfer replaces).
        description: the source in words, for results.json and the table.
        base_model: the Hub repo of the source (the model card's ``base_model``): the repo timm
            downloads, or the one a local file was declared a copy of; else None.
        sha256: hex digest of a local file (the Hub lists the same digest for the repo's copy);
            None for weights timm downloads.
    """

    arch: str
    file: Path | None
    num_classes: int
    description: str
    base_model: str | None
    sha256: str | None = None


@dataclass(frozen=True)
class StrategyRun:
    """One finished run of a comparison: its folder, results and per-epoch history."""

    strategy: str
    run_dir: Path
    results: dict[str, Any]
    history: dict[str, list[float]]


@dataclass(frozen=True)
class TableRow:
    """One line of the comparison table (accuracies in percent)."""

    subset: str
    strategy: str
    accuracy: float
    epochs_to_90: int | None
    epochs: int
    report: float | None


def parse_class_request(subset: str | None = None, classes: str | Sequence[str] | None = None):
    """The CIFAR-100 fine names of ``subset`` (class1, class2) or of a custom ``classes`` list.

    Checked before any data or weights are looked for, so a typo costs nothing.

    Raises:
        TransferError: both or neither of ``subset`` and ``classes`` were given.
        UnknownClassError: a name is not a CIFAR-100 fine class (the closest names are listed).
        ClassListError: a name repeats, or fewer than two classes were asked for.
    """
    if (subset is None) == (classes is None):
        raise TransferError(
            "Name the task once: a subset (" + " or ".join(CIFAR100_SUBSETS) + ") or a list of "
            "CIFAR-100 fine classes (--classes apple,bear,...), not both and not neither."
        )
    return _parse_cifar100_classes(subset if subset is not None else classes)


def transfer_tag(data: CifarData) -> str:
    """The tag a transfer run on ``data`` is published under: cifar100_class1, _class2, _custom."""
    return data.name


def resolve_source_weights(
    arch: str,
    weights: str | os.PathLike | None = None,
    *,
    fetch: bool = True,
    base_model: str | None = None,
) -> SourceWeights:
    """Find the weights a transfer starts from, and check that they can be had and fit ``arch``.

    Args:
        arch: the architecture to transfer.
        weights: a run folder holding ``model.safetensors``, or a ``.safetensors`` file; None
            takes the Hub's ``<arch>.cifar10`` through timm's pretrained config.
        fetch: for the Hub, download the weights now (into the Hugging Face cache), so that a
            missing network fails before any training; the transfer model reads the cache.
        base_model: with ``weights`` only: the Hub repo those weights are a copy of (a staged
            ``model_cards/<arch>.cifar10`` folder, say), recorded as the card's ``base_model``.
            It cannot be checked offline; ``sha256`` lets anyone compare it with the Hub's file.

    Raises:
        SourceWeightsUnavailableError: no ``weights`` and the Hub's weights cannot be had.
        SourceWeightsFileError: ``weights`` is missing, unreadable or of another architecture.
        TransferError: ``base_model`` without ``weights``, or not a valid repo id.
    """
    check_model_name(arch)
    if base_model is not None:
        _check_base_model(base_model, weights)
    if weights is not None:
        source = _local_source(arch, Path(weights))
        if base_model is None:
            return source
        return dataclasses.replace(
            source,
            base_model=base_model,
            description=f"{source.description} (a copy of Hub repo {base_model})",
        )
    if arch not in PRETRAINED_ARCHS:
        raise SourceWeightsUnavailableError(
            f"{arch!r} has no CIFAR-10 weights in the zoo (those that do: "
            f"{', '.join(PRETRAINED_ARCHS)}). Train it first (`python recipes/train.py {arch}`) "
            f"and pass the run folder with --weights RUN_DIR."
        )
    repo_id = default_cfgs[arch].cfgs[SOURCE_TAG].hf_hub_id
    source = SourceWeights(arch, None, 10, f"Hub repo {repo_id}", repo_id)
    if fetch:
        _load_source(source, num_classes=source.num_classes)
    return source


def _check_base_model(base_model: str, weights: str | os.PathLike | None) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if weights is None:
        raise TransferError(
            f"--base-model {base_model!r} names the Hub repo that a local --weights file is a "
            "copy of; without --weights the source is the Hub's own repo and is recorded as "
            "such. Pass --weights too, or leave --base-model out."
        )
    try:
        validate_repo_id(base_model)
    except HFValidationError as err:
        raise TransferError(f"--base-model {base_model!r} is not a Hub repo id ({err}).") from err
    if "/" not in base_model:
        raise TransferError(
            f"--base-model {base_model!r} has no namespace: give it as namespace/name, for "
            f"example {HUB_NAMESPACE}/{base_model}."
        )


def _hub_sha256(file: Path) -> str:
    # The Hub's own digest function for LFS files, so the value compares with the repo's.
    from huggingface_hub.utils.sha import sha_fileobj

    with open(file, "rb") as handle:
        return sha_fileobj(handle).hex()


def _local_source(arch: str, path: Path) -> SourceWeights:
    from safetensors import SafetensorError, safe_open

    run_dir = path if path.is_dir() else None
    file = path / WEIGHTS_NAME if run_dir else path
    if not file.is_file():
        if run_dir is not None:
            unfinished = " It holds a checkpoint.pt: the run has not finished; resume it." * (
                (run_dir / "checkpoint.pt").is_file()
            )
            raise SourceWeightsFileError(
                f"--weights {str(path)!r} is a folder without {WEIGHTS_NAME}.{unfinished} Pass "
                f"the folder of a finished run (recipes/train.py writes {WEIGHTS_NAME} at the "
                "end) or the .safetensors file itself."
            )
        raise SourceWeightsFileError(
            f"--weights {str(path)!r} does not exist. Pass a run folder holding {WEIGHTS_NAME} "
            "or a .safetensors file; leave --weights out to start from the Hub's CIFAR-10 weights."
        )

    # The run's config.json names its architecture; a bare file is judged by its tensors, which
    # cannot tell apart networks that differ only in pooling (cnn_a and strided_cnn_a).
    config_path = file.parent / "config.json"
    named = None
    if config_path.is_file():
        try:
            named = json.loads(config_path.read_text()).get("architecture")
        except (json.JSONDecodeError, AttributeError):
            named = None
    if named is not None and named != arch:
        raise SourceWeightsFileError(
            f"--weights {str(path)!r} holds a run of {named!r}, not of {arch!r}: a body transfers "
            f"only to its own architecture. Pass --arch {named}, or a run of {arch}."
        )
    try:
        with safe_open(os.fspath(file), framework="pt") as handle:
            names = list(handle.keys())
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in names}
    except (SafetensorError, OSError) as err:
        raise SourceWeightsFileError(
            f"--weights {str(file)!r} is not a readable safetensors file ({err}). Save or copy it "
            "again; a run folder's model.safetensors is written when the run ends."
        ) from err

    expected = {name: tuple(t.shape) for name, t in timm.create_model(arch).state_dict().items()}
    head = {"classifier.weight", "classifier.bias"}
    problems = [f"missing {name}" for name in sorted(set(expected) - set(shapes) - head)]
    problems += [f"unexpected {name}" for name in sorted(set(shapes) - set(expected))]
    problems += [
        f"{name} is {list(shapes[name])}, {arch} has {list(expected[name])}"
        for name in sorted(set(expected) & set(shapes) - head)
        if shapes[name] != expected[name]
    ]
    if "classifier.weight" not in shapes:
        problems.append("no classifier.weight")
    if problems:
        listed = "; ".join(problems[:4]) + (
            f"; and {len(problems) - 4} more" if problems[4:] else ""
        )
        raise SourceWeightsFileError(
            f"--weights {str(file)!r} does not hold the tensors of {arch} ({listed}): it is a "
            f"model of another architecture. Pass a run of {arch}, or the --arch it was trained as."
        )
    return SourceWeights(
        arch,
        file,
        int(shapes["classifier.weight"][0]),
        f"local file {file}",
        base_model=None,
        sha256=_hub_sha256(file),
    )


def _load_source(source: SourceWeights, num_classes: int, **kwargs: Any) -> nn.Module:
    """The source model through timm's pretrained loader (which drops a head of another size)."""
    if source.file is not None:
        name = source.arch
        # The overlay's num_classes is the file's: when the task has another number of classes
        # timm's loader leaves the old head out.
        kwargs["pretrained_cfg_overlay"] = dict(
            file=os.fspath(source.file), num_classes=source.num_classes
        )
    else:
        name = f"{source.arch}.{SOURCE_TAG}"
    try:
        return timm.create_model(name, pretrained=True, num_classes=num_classes, **kwargs)
    except PretrainedWeightsError as err:
        if source.file is not None:
            raise SourceWeightsFileError(str(err)) from err
        raise SourceWeightsUnavailableError(
            f"No pretrained weights for the transfer: {err}\n"
            "Provide them in one of three ways:\n"
            f"  * be online, so that timm downloads {source.base_model} from the Hub (check "
            "HF_ENDPOINT; unset HF_HUB_OFFLINE);\n"
            "  * or work offline from a Hugging Face cache that already holds them: HF_HOME or "
            "HF_HUB_CACHE pointing at it, and HF_HUB_OFFLINE=1;\n"
            "  * or pass --weights RUN_DIR|FILE: the folder of a finished "
            f"`python recipes/train.py {source.arch}` run, or its model.safetensors.",
            repo_id=source.base_model,
        ) from err


def make_transfer_model(
    source: SourceWeights, num_classes: int, *, load: bool = True, **kwargs: Any
) -> nn.Module:
    """``source.arch`` with the source's body and a new, Xavier-initialised ``num_classes`` head.

    Args:
        source: from ``resolve_source_weights``.
        num_classes: the classes of the new task.
        load: False builds the architecture without reading the weights (a resumed run, whose
            checkpoint holds them).
        kwargs: passed to ``timm.create_model`` (``drop_rate``, ``drop_in_rate``...).

    Raises:
        SourceWeightsUnavailableError, SourceWeightsFileError: as ``resolve_source_weights``.
    """
    if not load:
        return timm.create_model(source.arch, num_classes=num_classes, **kwargs)
    model = _load_source(source, num_classes, **kwargs)
    # timm keeps the source's head when the task has as many classes (CIFAR-10 -> a ten-class
    # subset); its weights belong to other classes, so the head is new either way.
    model.reset_classifier(num_classes)
    return model


def strategy_configs(
    arch: str,
    *,
    tag: str,
    epochs: int,
    freeze_epochs: int = 1,
    lr: float | None = None,
    bs: int | None = None,
    wd: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    limit: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, RunConfig]:
    """The transfer and scratch runs of one comparison, equal in all but the rules' exceptions.

    Args:
        epochs: epochs with every layer trained after the frozen ones (fastai's ``fine_tune``
            ``epochs``); each run has ``freeze_epochs + epochs`` in all.
        freeze_epochs: epochs of the transfer run that train the new head alone.
        lr, bs, wd: default to the ``fine_tune`` preset's, which are the ``fast`` preset's.
        model_kwargs: more ``timm.create_model`` arguments of both networks.

    Raises:
        RunError: bad settings.
    """
    if epochs < 1:
        raise RunError(f"epochs must be at least 1 (got {epochs}): the body must train unfrozen.")
    transfer = RunConfig(
        arch=arch,
        dataset="cifar100",
        tag=tag,
        schedule=TRANSFER_SCHEDULE,
        epochs=freeze_epochs + epochs,
        freeze_epochs=freeze_epochs,
        lr=lr,
        bs=bs,
        wd=wd,
        device=device,
        precision=precision,
        seed=seed,
        limit=limit,
        model_kwargs=dict(model_kwargs or {}),
    ).resolved()
    # Everything the rules keep equal is copied from the transfer run, not from a second preset.
    scratch = dataclasses.replace(
        transfer, tag=f"{tag}_scratch", schedule=SCRATCH_SCHEDULE, freeze_epochs=0
    ).resolved()
    return {"transfer": transfer, "scratch": scratch}


def fairness_notes(configs: dict[str, RunConfig], source: SourceWeights | None) -> dict[str, list]:
    """What the runs of ``strategy_configs`` share and where they differ, in sentences.

    Returns:
        ``{"equal": [...], "different": [...]}``.
    """
    transfer, scratch = configs["transfer"], configs["scratch"]
    shared = ("epochs", "bs", "wd", "drop_rate", "drop_in_rate", "seed", "limit", "device")
    shared += ("precision",)
    equal = [
        "the same images (same subset, same training images, same test set)",
        "the same shuffling and augmentation draws (same seed; random crops and flips)",
        "optimiser SGD with momentum 0.95-0.85 and coupled weight decay",
        "schedule family one cycle (warm-up, then cosine annealing)",
        f"peak learning rate {transfer.lr:g}",
    ]
    different = []
    for name in shared:
        a, b = getattr(transfer, name), getattr(scratch, name)
        (equal if a == b else different).append(
            f"{name} {a}" if a == b else f"{name}: transfer {a}, scratch {b}"
        )
    lr, mult = transfer.lr, SCHEDULES[transfer.schedule].lr_mult
    start = source.description if source is not None else "the source weights"
    different += [
        f"start: transfer from {start} (new {transfer.arch} head), scratch from Xavier "
        "initialisation",
        f"transfer body frozen for the first {transfer.freeze_epochs} of {transfer.epochs} epochs "
        f"(head only); scratch trains every layer in all {scratch.epochs}",
        f"learning rate split: transfer peaks at {lr:g} for the head while frozen, then at "
        f"{lr / 2:g} (head) and {lr / 2 / mult:g} (body, lr/2/{mult:g}) as fastai's fine_tune "
        f"does; scratch peaks at {lr:g} for every layer",
        "warm-up: transfer over 99% of the frozen phase from 1/25 of its peak, then over 30% "
        "of the rest from 1/5; scratch over 25% of the run from 1/25",
    ]
    return {"equal": equal, "different": different}


def run_comparison(
    data: CifarData,
    out_dir: str | os.PathLike,
    configs: dict[str, RunConfig],
    *,
    source: SourceWeights | None = None,
    strategies: Sequence[str] = STRATEGIES,
    resume: bool = False,
    extra_callbacks: dict[str, Sequence[Callback]] | None = None,
) -> list[StrategyRun]:
    """Train each strategy into ``out_dir/<strategy>`` and write the comparison's table and figure.

    Args:
        data: the task; its mean and std go into each run's config.json.
        out_dir: the comparison folder: ``transfer/``, ``scratch/``, ``curves.png``, ``table.md``.
        configs: from ``strategy_configs``.
        source: the transfer run's weights (required when ``strategies`` has ``transfer``).
        strategies: which of ``STRATEGIES`` to run, in order.
        resume: go on with what ``out_dir`` holds: a finished run is read back, a killed one
            resumes from its checkpoint (across the freeze/unfreeze boundary too), a missing one
            starts.
        extra_callbacks: more fastai callbacks per strategy.

    Raises:
        TransferError: an unknown strategy, or transfer without ``source``.
        RunError: a run folder that is there without ``resume``, or bad settings.
        SourceWeightsUnavailableError, SourceWeightsFileError: the source cannot be loaded.
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise TransferError(
            f"Unknown strategies {unknown or '(none given)'}: choose from {', '.join(STRATEGIES)}."
        )
    if "transfer" in strategies and source is None:
        raise TransferError("The transfer strategy needs source weights (resolve_source_weights).")
    out_dir = Path(out_dir)
    # A limited run draws the same fixed selection of images for both strategies (the
    # DataLoaders take ``limit`` images of a fixed permutation, not the first ones).
    notes = fairness_notes(configs, source)
    subset = data.name.removeprefix("cifar100_")
    runs = []
    for strategy in strategies:
        config = configs[strategy]
        run_dir = out_dir / strategy
        if resume and (run_dir / "results.json").is_file():
            logger.info("%s already finished in %s; reading it back", strategy, run_dir)
            runs.append(_read_run(strategy, run_dir))
            continue
        resuming = resume and (run_dir / "checkpoint.pt").is_file()
        factory = None
        if strategy == "transfer":

            def factory(cfg: RunConfig, load: bool = not resuming) -> nn.Module:
                return make_transfer_model(
                    source,
                    len(data.classes),
                    load=load,
                    drop_rate=cfg.drop_rate,
                    drop_in_rate=cfg.drop_in_rate,
                    **cfg.model_kwargs,
                )

        started = "from " + source.description if strategy == "transfer" else "from scratch"
        results_extra = {
            "strategy": strategy,
            "subset": subset,
            "source_weights": source.description if strategy == "transfer" else None,
            "source_sha256": source.sha256 if strategy == "transfer" else None,
            "freeze_epochs": config.freeze_epochs,
            "fairness": notes,
        }
        if data.name.startswith("cifar100"):
            results_extra["dataset"] = "cifar100"  # the Hub's dataset; the tag names the subset
        if strategy == "transfer" and source.base_model:
            results_extra["base_model"] = source.base_model
        pretrained_cfg = {
            "tag": config.tag,
            "description": f"{PAPER_NAMES[config.arch]} trained on {data.name} {started}",
            "num_classes": len(data.classes),
            "mean": tuple(data.mean),
            "std": tuple(data.std),
        }
        logger.info("Training %s (%s) into %s", strategy, started, run_dir)
        results = train_run(
            config,
            data,
            run_dir,
            resume=resuming,
            model_factory=factory,
            extra_callbacks=(extra_callbacks or {}).get(strategy, ()),
            pretrained_cfg=pretrained_cfg,
            results_extra=results_extra,
        )
        runs.append(StrategyRun(strategy, run_dir, results, read_history(run_dir / "history.csv")))

    baseline = record_scratch_baseline(out_dir)
    if baseline is not None:
        runs = [
            dataclasses.replace(run, results={**run.results, "scratch_baseline": baseline})
            if run.strategy == "transfer"
            else run
            for run in runs
        ]
    rows = [table_row(run) for run in runs]
    atomic_write_text(out_dir / "table.md", render_table(rows, notes))
    plot_comparison({subset: {run.strategy: run.history for run in runs}}, out_dir / "curves.png")
    return runs


def record_scratch_baseline(comparison_dir: str | os.PathLike) -> dict[str, Any] | None:
    """Write the scratch run's result into the transfer run's results.json, as its baseline.

    The transfer folder is what gets published; this puts the comparison (what starting from
    CIFAR-10 bought over training the same network from scratch) in its card. Does nothing and
    returns None unless both runs of the comparison have finished.

    Returns:
        The ``scratch_baseline`` entry: the scratch run's test accuracy, epochs and folder, and
        its test accuracy per epoch (percent) when its history.csv is there.
    """
    comparison_dir = Path(comparison_dir)
    transfer_file = comparison_dir / "transfer" / "results.json"
    scratch_file = comparison_dir / "scratch" / "results.json"
    if not (transfer_file.is_file() and scratch_file.is_file()):
        return None
    transfer = json.loads(transfer_file.read_text())
    scratch = json.loads(scratch_file.read_text())
    if scratch.get("tag") != f"{transfer['tag']}_scratch" or scratch["arch"] != transfer["arch"]:
        raise TransferError(
            f"{comparison_dir}: scratch/ holds {scratch['arch']}.{scratch.get('tag')}, not the "
            f"scratch run of {transfer['arch']}.{transfer['tag']}: the two runs are of "
            "different comparisons. Run the comparison again into a folder of its own."
        )
    # The card calls it "the same images and N epochs": a scratch run left from a comparison
    # with other settings must not pass for this one's twin.
    ours, theirs = transfer.get("hyperparameters", {}), scratch.get("hyperparameters", {})
    differing = [k for k in ("epochs", "bs", "wd", "seed", "limit") if ours.get(k) != theirs.get(k)]
    if differing:
        raise TransferError(
            f"{comparison_dir}: the scratch run differs from the transfer run in "
            f"{', '.join(differing)}, so it is not its twin. Run both again with the same flags "
            "(recipes/transfer.py trains both)."
        )
    baseline = {
        "test_accuracy": scratch["test_accuracy"],
        "epochs": scratch["epochs"],
        "run": "scratch",
    }
    scratch_history = comparison_dir / "scratch" / "history.csv"
    if scratch_history.is_file():
        # Kept so the published transfer repo can draw both curves (hub.draw_comparison).
        per_epoch = read_history(scratch_history)["valid_accuracy"]
        baseline["test_accuracy_per_epoch"] = [round(100 * value, 2) for value in per_epoch]
    if transfer.get("scratch_baseline") != baseline:
        transfer["scratch_baseline"] = baseline
        atomic_write_text(transfer_file, json.dumps(transfer, indent=2) + "\n")
    return baseline


def _read_run(strategy: str, run_dir: Path) -> StrategyRun:
    results = json.loads((run_dir / "results.json").read_text())
    return StrategyRun(strategy, run_dir, results, read_history(run_dir / "history.csv"))


def epochs_to_fraction(accuracies: Sequence[float], fraction: float = FRACTION_OF_FINAL):
    """The first epoch (counted from 1) whose accuracy reaches ``fraction`` of the last one."""
    if not accuracies:
        return None
    target = fraction * accuracies[-1]
    return next(epoch for epoch, value in enumerate(accuracies, 1) if value >= target)


def table_row(run: StrategyRun) -> TableRow:
    results = run.results
    subset = results.get("subset") or str(results["dataset"]).removeprefix("cifar100_")
    return TableRow(
        subset=subset,
        strategy=run.strategy,
        accuracy=float(results["test_accuracy"]),
        epochs_to_90=epochs_to_fraction(run.history.get("valid_accuracy", [])),
        epochs=int(results["epochs"]),
        report=cifar100_reference(results["arch"], subset).get(run.strategy),
    )


def read_table_row(run_dir: str | os.PathLike, strategy: str | None = None) -> TableRow:
    """The table row of a finished run folder (its results.json and history.csv).

    Raises:
        TransferError: the folder holds no finished run.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file() or not (run_dir / "history.csv").is_file():
        raise TransferError(
            f"{run_dir} holds no finished run (results.json and history.csv). Run the "
            "comparison first (without --from-runs), or point --out at the folder it wrote."
        )
    return table_row(_read_run(strategy or run_dir.name, run_dir))


def render_table(rows: Sequence[TableRow], notes: dict[str, list] | None = None) -> str:
    """The comparison as Markdown: one row per run, the report's number beside it, the rules."""
    lines = [
        "| Subset | Strategy | Test accuracy (%) | Epochs to 90% of final | Epochs | Report (%) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        report = f"{row.report:.1f}" if row.report is not None else "-"
        reach = str(row.epochs_to_90) if row.epochs_to_90 is not None else "-"
        lines.append(
            f"| {row.subset} | {row.strategy} | {row.accuracy:.2f} | {reach} | {row.epochs} | "
            f"{report} |"
        )
    text = "\n".join(lines) + "\n"
    text += (
        f"\nReport: {REPORT} (All-CNN-C), trained with its own schedule and length; compare the "
        "gap between the strategies more than the absolute numbers.\n"
    )
    if notes:
        text += "\nEqual in both runs: " + "; ".join(notes["equal"]) + ".\n"
        text += "\nNot equal: " + "; ".join(notes["different"]) + ".\n"
    return text


def plot_comparison(panels: dict[str, dict[str, dict[str, list[float]]]], out: Path) -> None:
    """Test accuracy per epoch of each strategy, one panel per subset (the report's Figs. 3, 4).

    Args:
        panels: subset -> strategy -> history columns (``read_history``).
        out: the PNG to write (atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for axis, (subset, histories) in zip(axes[0], panels.items(), strict=True):
        for strategy, columns in histories.items():
            epochs = [int(e) + 1 for e in columns["epoch"]]
            axis.plot(epochs, [100 * a for a in columns["valid_accuracy"]], label=strategy)
        axis.set_xlabel("epoch")
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"CIFAR-100 {subset}")
        axis.grid(alpha=0.3)
        axis.legend()
    save_figure(figure, out)


def body_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every tensor but the head's: what a transfer keeps from its source."""
    head = {f"classifier.{name}" for name, _ in model.get_classifier().named_parameters()}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in head}
