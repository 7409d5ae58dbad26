"""Run folder <-> Hugging Face Hub repo: safetensors weights, timm config, model card, upload.

A run folder (written by ``allconv_zoo.learner``) holds ``model.safetensors``, ``config.json``,
``history.csv``, ``curves.png`` and ``results.json``. Publishing stages from it what a Hub repo
holds (those five files and ``README.md``, the model card), checks them, checks the token, and
uploads them in one commit. Files whose content the repo already has are skipped by the client,
so publishing the same run twice makes no second commit.

The model card is rendered from ``results.json`` alone, so ``recipes/make_cards.py`` can
regenerate every card under ``model_cards/`` without the weights. Reference numbers come from
``allconv_zoo.reference``.

Pulling is timm's own ``create_model(..., pretrained=True)``; ``pretrained_weights_error`` turns
its failures into a ``PretrainedWeightsError`` that names the repo and what to do.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn
from timm.models import save_for_hf

from allconv_zoo.files import atomic_copy, atomic_write_text
from allconv_zoo.models import (
    HUB_NAMESPACE,
    PAPER_NAMES,
    PRETRAINED_ARCHS,
    PretrainedWeightsError,
    check_model_name,
    describe_architecture,
)
from allconv_zoo.reference import (
    PAPER,
    REPORT,
    REPORT_CIFAR10_ACCURACY,
    cifar10_reference,
    cifar100_reference,
    report_accuracy,
    report_subset,
)

__all__ = [
    "DATASETS",
    "HubAuthError",
    "HubError",
    "MissingRunFileError",
    "PretrainedWeightsError",
    "PublishResult",
    "RunFolderError",
    "check_write_access",
    "default_repo_id",
    "draw_comparison",
    "load_results",
    "pretrained_weights_error",
    "publish",
    "read_history",
    "regenerate_model_cards",
    "render_model_card",
    "resolve_token",
    "save_model_folder",
    "stage_repo_folder",
    "write_card_folder",
]

_logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
RESULTS_NAME = "results.json"
CURVES_NAME = "curves.png"
COMPARISON_NAME = "comparison.png"
CARD_NAME = "README.md"
HISTORY_NAME = "history.csv"

REQUIRED_RESULT_KEYS = (
    "arch",
    "tag",
    "dataset",
    "data_source",
    "data_notes",
    "num_classes",
    "label_names",
    "test_accuracy",
    "epochs",
    "schedule",
    "hyperparameters",
    "wall_time_s",
    "images_per_second",
    "versions",
    "machine",
    "parameters",
    "macs",
)

# results.json "dataset" -> (Hub dataset id, display name). The card's front matter links the id.
DATASETS: dict[str, tuple[str, str]] = {
    "cifar10": ("uoft-cs/cifar10", "CIFAR-10"),
    "cifar100": ("uoft-cs/cifar100", "CIFAR-100"),
}

# Organisation roles that may push to the organisation's repos.
_WRITE_ROLES = ("write", "contributor", "admin")


class HubError(Exception):
    """Base class of the errors this module raises."""


class RunFolderError(HubError, ValueError):
    """A run folder whose content cannot be published as it is."""


class MissingRunFileError(RunFolderError, FileNotFoundError):
    """A run folder lacks a file that publishing or card rendering needs."""


class HubAuthError(HubError, PermissionError):
    """No token, an invalid token, or a token that cannot write to the target repo."""


@dataclass(frozen=True)
class PublishResult:
    """What ``publish`` did.

    Attributes:
        repo_id: the repo written to.
        revision: the branch written to.
        commit: the head commit after publishing.
        url: the commit's URL.
        changed: False when the repo already held exactly these files (no commit was made).
    """

    repo_id: str
    revision: str
    commit: str
    url: str
    changed: bool


# -- run folder ----------------------------------------------------------------------------


def save_model_folder(
    model: nn.Module,
    out_dir: str | Path,
    *,
    label_names: Sequence[str] | None = None,
    pretrained_cfg: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.safetensors`` and timm's ``config.json`` for ``model`` into ``out_dir``.

    The files are written into a temporary folder inside ``out_dir`` and then moved into place
    one by one with ``os.replace``, so a run killed while saving leaves either the previous file
    or the new one, never half of one.

    Args:
        model: a timm model (it carries ``pretrained_cfg``, which timm's config export reads).
        out_dir: the run folder; created if missing.
        label_names: one name per class, stored in ``config.json`` for timm and the Hub widget.
        pretrained_cfg: entries that replace the model's own pretrained config in
            ``config.json`` (e.g. ``tag``, ``description``, ``mean``, ``std`` of a CIFAR-100 run).

    Returns:
        The path of the written ``model.safetensors``.

    Raises:
        ValueError: ``label_names`` does not have one name per class.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_config: dict[str, Any] = {}
    overlay = dict(pretrained_cfg or {})
    if label_names is not None:
        if len(label_names) != model.num_classes:
            raise ValueError(
                f"Got {len(label_names)} label names for a model with {model.num_classes} "
                "classes: pass one name per class, or none."
            )
        model_config["label_names"] = list(label_names)
        # timm lets the top-level label_names win, but the nested copy would still name the
        # classes of the config the model was built from; keep both the same.
        overlay["label_names"] = list(label_names)
    if overlay:
        model_config["pretrained_cfg"] = overlay
    # The temporary folder lives inside out_dir so that os.replace stays on one file system,
    # where it is atomic.
    with tempfile.TemporaryDirectory(prefix=".save-", dir=out_dir) as tmp:
        save_for_hf(model, tmp, model_config=model_config, safe_serialization=True)
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            os.replace(Path(tmp) / name, out_dir / name)
    _logger.info("Saved %s and %s to %s", WEIGHTS_NAME, CONFIG_NAME, out_dir)
    return out_dir / WEIGHTS_NAME


def load_results(run_dir: str | Path) -> dict[str, Any]:
    """Read a run folder's ``results.json``.

    Raises:
        MissingRunFileError: the folder or its ``results.json`` does not exist.
        RunFolderError: ``results.json`` is not valid JSON.
    """
    run_dir = Path(run_dir)
    path = run_dir / RESULTS_NAME
    if not path.is_file():
        where = "does not exist" if not run_dir.is_dir() else f"has no {RESULTS_NAME}"
        raise MissingRunFileError(
            f"Run folder {str(run_dir)!r} {where}. Point at the --out folder of a finished "
            f"`python recipes/train.py ARCH --out DIR` run; it writes {RESULTS_NAME} at the end."
        )
    try:
        with path.open() as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise RunFolderError(
            f"{path} is not valid JSON ({err}). It is written at the end of a run; a run killed "
            "while writing it leaves none, so this file was edited or copied incompletely: "
            "train again or restore it."
        ) from err


def _check_results(results: dict[str, Any], source: str) -> None:
    missing = [key for key in REQUIRED_RESULT_KEYS if key not in results]
    if missing:
        raise RunFolderError(
            f"{source} lacks {', '.join(missing)}. It must come from `python recipes/train.py` "
            "of this version of the zoo; train again or add the keys by hand."
        )
    check_model_name(results["arch"])
    if len(results["label_names"]) != results["num_classes"]:
        raise RunFolderError(
            f"{source} has {len(results['label_names'])} label names for "
            f"{results['num_classes']} classes; they must match."
        )
    if results["dataset"] not in DATASETS:
        raise RunFolderError(
            f"{source} names dataset {results['dataset']!r}; the cards know "
            f"{', '.join(DATASETS)}. Add it to allconv_zoo.hub.DATASETS."
        )


def default_repo_id(results: dict[str, Any], namespace: str | None = None) -> str:
    """``NAMESPACE/arch.tag``, the name timm's pretrained configs use for the zoo's weights."""
    return f"{namespace or HUB_NAMESPACE}/{results['arch']}.{results['tag']}"


def _load_checked_model(run_dir: Path, results: dict[str, Any]) -> nn.Module:
    """Build the run's architecture and load its weights strictly: the publish-time check."""
    import safetensors.torch
    import timm
    from safetensors import SafetensorError

    weights = run_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise MissingRunFileError(
            f"Run folder {str(run_dir)!r} has no {WEIGHTS_NAME}. It is written when training "
            "ends; a run that did not finish leaves only checkpoint.pt: resume it with "
            "`python recipes/train.py ARCH --out DIR --resume`."
        )
    try:
        state_dict = safetensors.torch.load_file(weights)
    except SafetensorError as err:
        raise RunFolderError(
            f"{weights} is not a readable safetensors file ({err}); it is probably truncated. "
            "Train again or restore the file."
        ) from err
    model = timm.create_model(results["arch"], num_classes=results["num_classes"])
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        first_line = str(err).splitlines()[0]
        raise RunFolderError(
            f"{weights} does not hold the tensors of {results['arch']} with "
            f"{results['num_classes']} classes, as results.json says ({first_line}). The folder "
            "mixes files of different runs: train again into an empty folder."
        ) from err
    return model.eval()


def _repo_config(run_dir: Path, results: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """The run's timm config.json, checked against results.json and given the run's tag."""
    path = run_dir / CONFIG_NAME
    dataset_name = DATASETS[results["dataset"]][1]
    overlay = {
        "tag": results["tag"],
        "description": f"{PAPER_NAMES[results['arch']]} trained on {dataset_name}",
        "num_classes": results["num_classes"],
        "label_names": list(results["label_names"]),
    }
    if not path.is_file():
        _logger.warning("%s has no %s; writing one from the model", run_dir, CONFIG_NAME)
        with tempfile.TemporaryDirectory() as tmp:
            save_model_folder(
                model, tmp, label_names=results["label_names"], pretrained_cfg=overlay
            )
            return json.loads((Path(tmp) / CONFIG_NAME).read_text())
    config = json.loads(path.read_text())
    if config.get("architecture") != results["arch"]:
        raise RunFolderError(
            f"{path} is for architecture {config.get('architecture')!r} but results.json says "
            f"{results['arch']!r}. The folder mixes files of different runs: train again."
        )
    if config.get("num_classes") != results["num_classes"]:
        raise RunFolderError(
            f"{path} has num_classes {config.get('num_classes')} but results.json says "
            f"{results['num_classes']}. The folder mixes files of different runs: train again."
        )
    config["label_names"] = list(results["label_names"])
    config.setdefault("pretrained_cfg", {}).update(overlay)
    return config


def stage_repo_folder(
    run_dir: str | Path, out_dir: str | Path, *, repo_id: str | None = None
) -> Path:
    """Write the content of the run's Hub repo into ``out_dir``: what ``--dry-run`` shows.

    ``model.safetensors`` (the run's tensors, checked by loading them into the architecture),
    ``config.json`` (timm's format), ``README.md`` (the model card), the run's
    ``results.json``, ``history.csv`` and ``curves.png``, and for a transfer run with a scratch
    baseline ``comparison.png`` (``draw_comparison``), each written atomically. A staged
    folder is itself a run folder: it can be staged again (in place too) or published.

    Args:
        run_dir: a finished run folder.
        out_dir: created if missing; files of the same names are replaced, and a figure or
            history an earlier staging left there that this run lacks is removed.
        repo_id: the repo the card's usage examples name; defaults to ``default_repo_id``.

    Returns:
        ``out_dir``.

    Raises:
        MissingRunFileError: the run lacks results.json or model.safetensors.
        RunFolderError: the run's files do not agree with each other.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    results = load_results(run_dir)
    _check_results(results, str(run_dir / RESULTS_NAME))
    model = _load_checked_model(run_dir, results)
    config = _repo_config(run_dir, results, model)

    out_dir.mkdir(parents=True, exist_ok=True)
    # safetensors holds tensors and a string header only, so the run's file is copied as it is.
    atomic_copy(run_dir / WEIGHTS_NAME, out_dir / WEIGHTS_NAME)
    atomic_write_text(out_dir / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    atomic_copy(run_dir / RESULTS_NAME, out_dir / RESULTS_NAME)
    for name, consequence in ((CURVES_NAME, "the card will show no curves"), (HISTORY_NAME, "")):
        if (run_dir / name).is_file():
            atomic_copy(run_dir / name, out_dir / name)
        else:
            _logger.warning("%s has no %s; %s", run_dir, name, consequence or "it is left out")
            # One left by an earlier staging into this folder belongs to another run: the card
            # would show it and publishing would upload it beside these weights.
            (out_dir / name).unlink(missing_ok=True)
    card = render_model_card(
        results,
        repo_id=repo_id,
        has_curves=(out_dir / CURVES_NAME).is_file(),
        has_comparison=draw_comparison(results, out_dir),
        train_accuracy=final_train_accuracy(out_dir),
    )
    atomic_write_text(out_dir / CARD_NAME, str(card))
    return out_dir


def draw_comparison(results: dict[str, Any], folder: str | Path) -> bool:
    """Draw ``comparison.png`` in a transfer run's folder: its test accuracy per epoch beside
    that of the same network from scratch (the report's Figures 3 and 4, one subset each).

    Drawn from the folder's ``history.csv`` and the per-epoch accuracies that
    ``record_scratch_baseline`` keeps in results.json, so a staged folder can redraw it without
    the scratch run's folder, which is not published.

    Returns:
        Whether the figure is there: False for any run without a recorded scratch baseline,
        and then a ``comparison.png`` left in the folder by an earlier staging is removed
        (it was drawn for other results and would be published unlinked).
    """
    figure = Path(folder) / COMPARISON_NAME
    baseline = results.get("scratch_baseline") or {}
    scratch_accuracies = baseline.get("test_accuracy_per_epoch")
    history = Path(folder) / HISTORY_NAME
    if not scratch_accuracies or not history.is_file():
        figure.unlink(missing_ok=True)
        return False
    # Imported here: it loads fastai, which nothing else in this module needs (a failed
    # pretrained load imports this module for its error message).
    from allconv_zoo.transfer import plot_comparison

    transfer = read_history(history)
    if not transfer.get("valid_accuracy"):
        figure.unlink(missing_ok=True)
        return False
    scratch = {
        "epoch": list(range(len(scratch_accuracies))),
        "valid_accuracy": [value / 100 for value in scratch_accuracies],
    }
    subset = report_subset(results["tag"]) or results["tag"]
    plot_comparison({subset: {"from CIFAR-10": transfer, "from scratch": scratch}}, figure)
    return True


# -- model card ----------------------------------------------------------------------------


def _reference_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    arch, dataset = results["arch"], results["dataset"]
    rows = []
    if dataset == "cifar10":
        reference = cifar10_reference(arch)
        if "paper" in reference:
            rows.append(("Paper (Springenberg et al., Table 3)", f"{reference['paper']:.2f}"))
        if "report" in reference:
            rows.append(("Reproduction report (Li)", f"{reference['report']:.2f}"))
    elif dataset == "cifar100":
        subset = report_subset(results["tag"])
        reference = cifar100_reference(arch, subset) if subset else {}
        baseline = results.get("scratch_baseline")
        if baseline:
            rows.append(
                (
                    f"The same network from scratch, same images and {baseline['epochs']} epochs",
                    f"{baseline['test_accuracy']:.2f}",
                )
            )
        if "transfer" in reference:
            rows.append((f"Report (Li), {subset}, from CIFAR-10", f"{reference['transfer']:.1f}"))
        if "scratch" in reference:
            rows.append((f"Report (Li), {subset}, from scratch", f"{reference['scratch']:.1f}"))
    return rows


# Train accuracy (on augmented images) this many points above the test accuracy at the end of
# a run marks it as overfitting rather than under-trained. The 8-epoch runs ended within a point;
# a gap of several points is what more epochs of the same schedule only widen.
OVERFIT_GAP_POINTS = 3.0


def read_history(history: Path) -> dict[str, list[float]]:
    """history.csv as columns of floats (the ``time`` column is skipped).

    Here rather than in ``allconv_zoo.learner``, which writes the file, because staging and
    card rendering read it too and must not need fastai.
    """
    with history.open(newline="") as file:
        rows = list(csv.DictReader(file))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "time":
                columns.setdefault(key, []).append(float(value))
    return columns


def training_machines(results: dict[str, Any]) -> str:
    """Where a run trained: its machine, or, for a run resumed on other machines or at another
    precision, which epochs ran where and how fast (results.json's ``sessions``)."""
    sessions = results.get("sessions") or []
    if len({(s["machine"], s["precision"]) for s in sessions}) <= 1:
        return results["machine"]
    parts = []
    for session in sessions:
        epochs = session["last_epoch"] - session["first_epoch"] + 1
        machine = session["machine"] or "a machine that was not recorded"
        speed = f"{session['seconds'] / epochs:.0f} s/epoch"
        precision = f"{session['precision']}, " if session["precision"] else ""
        parts.append(
            f"epochs {session['first_epoch']}-{session['last_epoch']} on {machine} "
            f"({precision}{speed})"
        )
    return "; ".join(parts)


def training_precisions(results: dict[str, Any]) -> str:
    """The precision the epochs trained in; ``bf16+fp32`` (in session order) for a mixed run."""
    sessions = results.get("sessions") or []
    named = list(dict.fromkeys(s["precision"] for s in sessions if s["precision"]))
    if len(named) > 1:
        return "+".join(named)
    return results.get("hyperparameters", {}).get("precision", "?")


def final_train_accuracy(folder: str | Path) -> float | None:
    """The last epoch's train accuracy in percent, from ``history.csv``; None without one."""
    history = Path(folder) / HISTORY_NAME
    if not history.is_file():
        return None
    train_accuracy = read_history(history).get("train_accuracy")
    return 100.0 * train_accuracy[-1] if train_accuracy else None


def _shortfall(results: dict[str, Any], train_accuracy: float | None = None) -> str:
    """A Limitations line when the model is clearly below the reproduction report's number."""
    report = report_accuracy(results["arch"], results["dataset"], results["tag"])
    accuracy = float(results["test_accuracy"])
    # Half a point: below that the gap is within what another seed of the same recipe gives.
    if report is None or accuracy >= report - 0.5:
        return ""
    label, cure = "Under-trained", "weights from a longer run"
    overfit_by = train_accuracy - accuracy if train_accuracy is not None else 0.0
    if results["dataset"] == "cifar10" and overfit_by > OVERFIT_GAP_POINTS:
        label, cure = "Overfit", "better-regularised weights"
        why = (
            f"Its train accuracy (on augmented images) ended {overfit_by:.1f} points above its "
            "test accuracy, so more epochs of the same schedule would gain little; regularisation "
            "(the paper's dropout) is the next thing to try"
        )
    elif results["dataset"] == "cifar10":
        why = "The report trained 100 epochs"
    else:
        # A fine-tuned model is bounded by its body too; the card names the body above.
        body = REPORT_CIFAR10_ACCURACY.get(results["arch"])
        body_note = f" ({body:.2f}% in its Table 1)" if body is not None else ""
        why = (
            f"The report fine-tuned its own CIFAR-10 {PAPER_NAMES[results['arch']]}{body_note}; "
            "this one starts from "
            f"{results.get('base_model') or results.get('source_weights') or 'another body'}, "
            "whose card gives its CIFAR-10 accuracy"
        )
    return (
        f"\n- {label}: {report - accuracy:.2f} points below the reproduction report's "
        f"{report:.2f}%, after {results['epochs']} epochs of the `{results['schedule']}` preset "
        f"on {training_machines(results)}. {why}; {cure} will replace these under the same name."
    )


def _usage(results: dict[str, Any], repo_id: str) -> str:
    arch, tag = results["arch"], results["tag"]
    default = tag == "cifar10" and arch in PRETRAINED_ARCHS and repo_id == default_repo_id(results)
    by_name = (
        f'model = timm.create_model("{arch}", pretrained=True)  # the zoo\'s default weights\n'
        if default
        else ""
    )
    return f"""```python
import timm
import torch

# Installing allconv_zoo registers the architectures with timm (pip install allconv_zoo).
{by_name}model = timm.create_model("hf-hub:{repo_id}", pretrained=True).eval()

config = timm.data.resolve_data_config({{}}, model=model)
transform = timm.data.create_transform(**config)  # 32x32, normalised as in training
with torch.no_grad():
    probabilities = model(transform(image).unsqueeze(0)).softmax(-1)  # image: a PIL image
```

Fine-tuning on another task keeps every layer but the class-map convolution, which timm
re-initialises for the new number of classes:

```python
model = timm.create_model("hf-hub:{repo_id}", pretrained=True, num_classes=100)
```"""


def render_model_card(
    results: dict[str, Any],
    *,
    repo_id: str | None = None,
    has_curves: bool = True,
    has_comparison: bool = False,
    train_accuracy: float | None = None,
) -> Any:
    """The model card of a run, built from its ``results.json`` (and its final train accuracy).

    Args:
        results: the run's results (see ``REQUIRED_RESULT_KEYS``).
        repo_id: the repo the card describes; defaults to ``default_repo_id(results)``.
        has_curves: link ``curves.png``, which must then sit next to the card.
        has_comparison: link ``comparison.png`` (``draw_comparison``) likewise.
        train_accuracy: the last epoch's train accuracy in percent (``final_train_accuracy``),
            which tells an overfit model from an under-trained one in the Limitations.

    Returns:
        A ``huggingface_hub.ModelCard``; ``str(card)`` is the README.md text.

    Raises:
        RunFolderError: ``results`` lacks keys or names an unknown architecture or dataset.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    _check_results(results, "results")
    repo_id = repo_id or default_repo_id(results)
    arch, tag = results["arch"], results["tag"]
    dataset_id, dataset_name = DATASETS[results["dataset"]]
    subset = report_subset(tag)
    split_note = f" ({subset} subset)" if results["dataset"] == "cifar100" and subset else ""
    accuracy = float(results["test_accuracy"])
    name = f"{arch}.{tag}"
    paper_name = PAPER_NAMES[arch]

    card_data = ModelCardData(
        library_name="timm",
        license=results.get("license", "apache-2.0"),
        tags=["image-classification", "timm"],
        datasets=[dataset_id],
        pipeline_tag="image-classification",
        model_name=name,
        base_model=results.get("base_model"),
        eval_results=[
            EvalResult(
                task_type="image-classification",
                task_name="Image Classification",
                dataset_type=dataset_id,
                dataset_name=f"{dataset_name}{split_note}",
                dataset_split="test",
                metric_type="accuracy",
                metric_name="Test accuracy (%)",
                metric_value=accuracy,
            )
        ],
    )

    hyper = results["hyperparameters"]
    hyper_rows = "\n".join(f"| `{key}` | `{hyper[key]}` |" for key in sorted(hyper))
    versions = ", ".join(f"{key} {value}" for key, value in sorted(results["versions"].items()))
    notes = results["data_notes"]
    # The data module keeps notes as a list of sentences; older runs wrote one string.
    notes = " ".join(notes) if isinstance(notes, (list, tuple)) else notes
    data_notes = notes or "None: the data are the official release."
    data_line = results["data_source"]
    if "train_images" in results and "test_images" in results:
        # The counts show the size of the split a run used, and any --limit cut of it.
        data_line = (
            f"{results['train_images']:,} training images; the test accuracy is over "
            f"{results['test_images']:,} test images. Read from: {data_line}"
        )
    reference_rows = "\n".join(
        f"| {label} | {value} |" for label, value in _reference_rows(results)
    )
    curves = (
        "![Train and test accuracy per epoch](curves.png)"
        if has_curves
        else "No curves were recorded for this run."
    )
    comparison = (
        "\n\n![Test accuracy per epoch, from CIFAR-10 and from scratch](comparison.png)"
        if has_comparison
        else ""
    )
    base = f"\nIt starts from `{results['base_model']}`." if results.get("base_model") else ""
    precision_note = (
        " The epochs ran under bf16 autocast; this accuracy is that of the fp32 weights as saved"
        " (the curves' last test point, measured under autocast, can differ by a few tenths)."
        if hyper.get("precision") == "bf16" and results.get("test_precision") == "fp32"
        else ""
    )
    resumed_at = results.get("resumed_at_epoch")
    resumed_note = (
        f" The run was resumed from a checkpoint (last after epoch {resumed_at}): the wall time is"
        " that of all its sessions, the images per second those of the last."
        if resumed_at
        else ""
    )

    body = f"""
# {name}

{paper_name} from "Striving for Simplicity: The All Convolutional Net" (Springenberg et al.,
[arXiv:1412.6806](https://arxiv.org/abs/1412.6806)), trained on {dataset_name}{split_note} with
the allconv_zoo package's fastai recipe. Test accuracy: **{accuracy:.2f}%**.

## Model

- Architecture: `{arch}` ({paper_name}). {describe_architecture(arch)}
- Parameters: {results["parameters"]:,}
- Multiply-accumulates per 32x32 image: {results["macs"]:,} ({results["macs"] / 1e6:.1f} M)
- Classes: {results["num_classes"]} ({", ".join(map(str, results["label_names"][:10]))}{
        ", ..." if results["num_classes"] > 10 else ""
    })
- Input: 3x32x32, normalised with the mean and std in `config.json`.

## Training

- Recipe: `recipes/{"transfer" if results.get("strategy") else "train"}.py` (fastai `Learner`
  around the timm model), schedule preset
  `{results["schedule"]}`, {results["epochs"]} epoch{"s" if results["epochs"] != 1 else ""}.{base}
- Data: {data_line}
- How the data differ from the official release: {data_notes}
- Machine: {training_machines(results)}; wall time {results["wall_time_s"]:.0f} s,
  {results["images_per_second"]:.0f} training images per second.{resumed_note}
- Software: {versions}

| Hyperparameter | Value |
|---|---|
{hyper_rows}

## Results

Test accuracy in percent on the {dataset_name} test set{split_note}.{precision_note}

| Model | Test accuracy (%) |
|---|---|
| This model | {accuracy:.2f} |
{reference_rows}{comparison}

The paper: {PAPER}.
The reproduction report: {REPORT}.

{curves}

## How to use

{_usage(results, repo_id)}

## Limitations
{_shortfall(results, train_accuracy)}
- Trained and tested at 32x32 on {dataset_name} only; photographs of other sizes and kinds need
  fine-tuning, and the accuracy above says nothing about them.
- One training run with one seed; other seeds of the same recipe give other accuracies.
- The recipe shows the test accuracy after every epoch (no validation split is held out), so
  the test set is not an untouched hold-out for choices made while watching it.
- The data notes above list every way the training data differ from the official release.
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def write_card_folder(
    results: dict[str, Any],
    card_dir: str | Path,
    *,
    curves: str | Path | None = None,
    repo_id: str | None = None,
) -> Path:
    """Stage a card folder: ``results.json``, ``curves.png`` (if given) and ``README.md``.

    Returns:
        The path of the written ``README.md``.
    """
    card_dir = Path(card_dir)
    card_dir.mkdir(parents=True, exist_ok=True)
    _check_results(results, "results")
    atomic_write_text(card_dir / RESULTS_NAME, json.dumps(results, indent=2) + "\n")
    if curves is not None and Path(curves).is_file():
        atomic_copy(curves, card_dir / CURVES_NAME)
    has_curves = (card_dir / CURVES_NAME).is_file()
    card = render_model_card(
        results,
        repo_id=repo_id,
        has_curves=has_curves,
        has_comparison=draw_comparison(results, card_dir),
        train_accuracy=final_train_accuracy(card_dir),
    )
    atomic_write_text(card_dir / CARD_NAME, str(card))
    return card_dir / CARD_NAME


def regenerate_model_cards(cards_dir: str | Path, runs: Iterable[str | Path] = ()) -> list[Path]:
    """Stage the given run folders under ``cards_dir``, then re-render every card there.

    Each run becomes ``cards_dir/<arch>.<tag>/`` holding its whole Hub repo content
    (``stage_repo_folder``: weights checked, config, card, results, history, curves). Every
    card is then rendered again from the ``results.json`` beside it, so the cards follow the
    template without the weights or the run folders.

    Returns:
        The written ``README.md`` paths, sorted.
    """
    cards_dir = Path(cards_dir)
    staged = set()
    for run in runs:
        results = load_results(run)
        _check_results(results, str(Path(run) / RESULTS_NAME))
        folder = cards_dir / f"{results['arch']}.{results['tag']}"
        stage_repo_folder(run, folder)
        staged.add(folder.resolve())
    written = []
    for results_path in sorted(cards_dir.glob(f"*/{RESULTS_NAME}")):
        folder = results_path.parent
        if folder.resolve() in staged:
            # stage_repo_folder has just rendered this card (and drawn its figures).
            written.append(folder / CARD_NAME)
        else:
            written.append(write_card_folder(load_results(folder), folder))
    _logger.info("Rendered %d model cards under %s", len(written), cards_dir)
    return written


# -- upload --------------------------------------------------------------------------------


def resolve_token(token: str | None = None) -> str:
    """``token``, else ``HF_TOKEN``, else the token saved by ``hf auth login``.

    Raises:
        HubAuthError: none of the three is set.
    """
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise HubAuthError(
            "No Hugging Face token found. Pass --token, set HF_TOKEN, or run `hf auth login`; "
            "the token needs write access (https://huggingface.co/settings/tokens)."
        )
    return token


def check_write_access(api: Any, repo_id: str, token: str) -> str:
    """Ask the Hub who ``token`` belongs to and whether it may write to ``repo_id``'s namespace.

    Runs before anything is created or uploaded, so a bad token costs nothing.

    Returns:
        The token's user name.

    Raises:
        HubAuthError: the token is invalid, read-only, or its user cannot write to the namespace.
    """
    from huggingface_hub.errors import HfHubHTTPError

    try:
        me = api.whoami(token=token)
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 401:
            raise HubAuthError(
                f"The Hub at {api.endpoint} rejected the token (401 Unauthorized). Create a new "
                "token with write access and pass it with --token or HF_TOKEN."
            ) from err
        raise
    user = me.get("name", "?")
    role = me.get("auth", {}).get("accessToken", {}).get("role")
    if role == "read":
        raise HubAuthError(
            f"The token of {user!r} is read-only, so it cannot push to {repo_id!r}. Create a "
            "token with the write role and pass it with --token or HF_TOKEN."
        )
    namespace = repo_id.split("/")[0]
    writable = [user] + [
        org["name"] for org in me.get("orgs", []) if org.get("roleInOrg", "write") in _WRITE_ROLES
    ]
    # Fine-grained tokens list their own scopes; the Hub checks those when the repo is created.
    if role != "fineGrained" and namespace not in writable:
        raise HubAuthError(
            f"{user!r} cannot write to namespace {namespace!r} (writable: "
            f"{', '.join(writable)}). Publish to one of those, e.g. --repo-id {user}/"
            f"{repo_id.split('/')[-1]}, or ask an admin of {namespace!r} for the write role."
        )
    return user


def publish(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> PublishResult:
    """Upload a run folder's repo content to ``repo_id`` in one commit.

    The content is staged and checked first, then the token, and only then is the repo
    created (if missing) and the commit made. When the repo already holds the same files the
    client makes no commit, and ``changed`` is False.

    Args:
        run_dir: a finished run folder.
        repo_id: ``namespace/name``; ``default_repo_id`` gives the name timm looks up.
        private: create the repo private (an existing repo keeps its visibility).
        revision: the branch to commit to, created from main if missing; default main.
        commit_message: default "Publish <arch>.<tag>: <accuracy>% test accuracy".
        token: default ``HF_TOKEN`` or the login cache.
        endpoint: the Hub's URL; default ``HF_ENDPOINT`` or huggingface.co.

    Raises:
        MissingRunFileError, RunFolderError: the run folder cannot be published.
        HubAuthError: no token, or one that cannot write to ``repo_id``.
        huggingface_hub.errors.HfHubHTTPError: the Hub refused the upload.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if repo_id.count("/") != 1:
        raise ValueError(f"repo_id must be NAMESPACE/NAME, got {repo_id!r}.")
    results = load_results(run_dir)
    token = resolve_token(token)
    api = HfApi(endpoint=endpoint, token=token)
    revision = revision or "main"
    with tempfile.TemporaryDirectory(prefix="allconv-publish-") as staging:
        stage_repo_folder(run_dir, staging, repo_id=repo_id)
        user = check_write_access(api, repo_id, token)
        _logger.info("Publishing %s to %s@%s as %s", run_dir, repo_id, revision, user)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
        except HfHubHTTPError as err:
            if err.response is not None and err.response.status_code in (401, 403):
                raise HubAuthError(
                    f"The Hub refused to create {repo_id!r} for {user!r} "
                    f"({err.response.status_code}): the token lacks write access to that "
                    "namespace. Use a token with write access or another --repo-id."
                ) from err
            raise
        if revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        before = api.model_info(repo_id, revision=revision).sha
        message = commit_message or (
            f"Publish {results['arch']}.{results['tag']}: "
            f"{float(results['test_accuracy']):.2f}% test accuracy"
        )
        info = api.upload_folder(
            repo_id=repo_id, folder_path=staging, revision=revision, commit_message=message
        )
    changed = info.oid != before
    if not changed:
        _logger.info("%s@%s already holds these files; no commit made", repo_id, revision)
    return PublishResult(repo_id, revision, info.oid, info.commit_url, changed)


# -- pull errors ---------------------------------------------------------------------------


def pretrained_weights_error(
    variant: str, kwargs: dict[str, Any], err: BaseException
) -> PretrainedWeightsError | None:
    """Explain a failure of timm's pretrained loading; None if ``err`` is not such a failure.

    Called by the zoo's model factory around ``build_model_with_cfg(..., pretrained=True)``.
    """
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from safetensors import SafetensorError
    from timm.models import resolve_pretrained_cfg

    cfg = resolve_pretrained_cfg(
        variant,
        pretrained_cfg=kwargs.get("pretrained_cfg"),
        pretrained_cfg_overlay=kwargs.get("pretrained_cfg_overlay"),
    )
    file = cfg.file or None
    repo_id = None if file else cfg.hf_hub_id
    source = f"local file {file!r}" if file else f"Hub repo {repo_id!r}"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
    local = "or pass pretrained_cfg_overlay=dict(file='.../model.safetensors') to load a copy"
    untrained = f"or pretrained=False for an untrained {variant}"

    # Most specific first: several of these subclass HfHubHTTPError or each other.
    if isinstance(err, RepositoryNotFoundError):
        what = f"the repo does not exist at {endpoint} (or is private to your token)"
        todo = (
            f"check ALLCONV_HUB_NAMESPACE (now {HUB_NAMESPACE!r}) and HF_ENDPOINT, both read "
            f"when timm is imported; {local}; {untrained}"
        )
    elif isinstance(err, RevisionNotFoundError):
        what = f"the revision asked for does not exist at {endpoint}"
        todo = f"check the revision; {local}; {untrained}"
    elif isinstance(err, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        what = f"the weights are not in the local cache and the Hub was not reached ({detail})"
        todo = (
            "go online once (unset HF_HUB_OFFLINE, check HF_ENDPOINT) or point HF_HUB_CACHE at a "
            f"cache that has them; {local}; {untrained}"
        )
    elif isinstance(err, EntryNotFoundError):
        what = "the repo has no model.safetensors"
        todo = f"publish a run to it with recipes/publish.py; {local}; {untrained}"
    elif isinstance(err, SafetensorError):
        what = f"the weights file is truncated or corrupted ({detail})"
        todo = (
            f"delete the cached copy (`hf cache delete` and pick {repo_id}) and try again; "
            f"{local}; {untrained}"
            if repo_id
            else f"save or download the file again; {untrained}"
        )
    elif isinstance(err, RuntimeError) and "state_dict" in str(err):
        what = (
            f"its tensors do not fit {variant} ({detail}); they belong to another architecture "
            "or another number of classes"
        )
        todo = (
            "publish the right run there, or pass num_classes to match the weights (timm then "
            f"re-initialises the classifier); {local}; {untrained}"
        )
    elif isinstance(err, FileNotFoundError) and file:
        what = f"the file does not exist ({detail})"
        todo = f"check the path; {untrained}"
    elif isinstance(err, HfHubHTTPError):
        what = f"the Hub answered with an error ({detail})"
        todo = f"check HF_ENDPOINT and your token; {local}; {untrained}"
    else:
        return None
    return PretrainedWeightsError(
        f"Could not load pretrained weights for {variant!r} from the {source}: {what}. "
        f"To fix: {todo}.",
        repo_id=repo_id,
        file=file,
    )
