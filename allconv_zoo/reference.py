"""Published numbers that the zoo's results are compared with, in one place.

All values are test accuracies in percent.

* ``PAPER_CIFAR10_ACCURACY``: Springenberg et al., "Striving for Simplicity: The All
  Convolutional Net" (arXiv:1412.6806), Table 3, CIFAR-10 without data augmentation, given there
  as error rates and written here as 100 minus the error.
* ``REPORT_CIFAR10_ACCURACY`` and ``REPORT_CIFAR100_TRANSFER``: the reproduction report these
  models follow, Li, "All Convolutional Net for Recognition and Transfer Learning Tasks". Its
  CIFAR-100 experiments train All-CNN-C on two class subsets of CIFAR-100 ("class1", "class2"),
  once starting from the CIFAR-10 weights (transfer) and once from scratch.
"""

from __future__ import annotations

import re

__all__ = [
    "PAPER",
    "PAPER_CIFAR10_ACCURACY",
    "PAPER_CIFAR10_ERROR",
    "REPORT",
    "REPORT_CIFAR10_ACCURACY",
    "REPORT_CIFAR100_TRANSFER",
    "cifar10_reference",
    "cifar100_reference",
    "model_table",
    "report_accuracy",
    "report_subset",
]

PAPER = (
    'J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller, "Striving for Simplicity: '
    'The All Convolutional Net", ICLR 2015 workshop, https://arxiv.org/abs/1412.6806'
)
REPORT = 'Li, "All Convolutional Net for Recognition and Transfer Learning Tasks"'

PAPER_CIFAR10_ACCURACY: dict[str, float] = {
    "cnn_a": 87.53,
    "cnn_b": 89.80,
    "cnn_c": 90.26,
    "strided_cnn_c": 89.81,
    "convpool_cnn_c": 90.69,
    "all_cnn_c": 90.92,
}

# Table 3 of the paper gives an error for all twelve networks (CIFAR-10, no augmentation). The
# six above are 100 minus these; the A/B variants were transcribed from the table by hand and
# have no second source here.
PAPER_CIFAR10_ERROR: dict[str, float] = {
    "cnn_a": 12.47,
    "strided_cnn_a": 13.46,
    "convpool_cnn_a": 10.21,
    "all_cnn_a": 10.30,
    "cnn_b": 10.20,
    "strided_cnn_b": 10.98,
    "convpool_cnn_b": 9.33,
    "all_cnn_b": 9.10,
    "cnn_c": 9.74,
    "strided_cnn_c": 10.19,
    "convpool_cnn_c": 9.31,
    "all_cnn_c": 9.08,
}

REPORT_CIFAR10_ACCURACY: dict[str, float] = {
    "cnn_a": 85.33,
    "cnn_b": 86.84,
    "cnn_c": 88.74,
    "strided_cnn_c": 88.86,
    "convpool_cnn_c": 89.42,
    "all_cnn_c": 89.21,
}

# arch -> subset -> {"transfer": from the CIFAR-10 weights, "scratch": from a fresh init}
REPORT_CIFAR100_TRANSFER: dict[str, dict[str, dict[str, float]]] = {
    "all_cnn_c": {
        "class1": {"transfer": 83.6, "scratch": 73.3},
        "class2": {"transfer": 84.5, "scratch": 73.5},
    },
}


def cifar10_reference(arch: str) -> dict[str, float]:
    """The paper's and the report's CIFAR-10 accuracy of ``arch``; keys absent where unknown."""
    out = {}
    if arch in PAPER_CIFAR10_ACCURACY:
        out["paper"] = PAPER_CIFAR10_ACCURACY[arch]
    if arch in REPORT_CIFAR10_ACCURACY:
        out["report"] = REPORT_CIFAR10_ACCURACY[arch]
    return out


def cifar100_reference(arch: str, subset: str) -> dict[str, float]:
    """The report's transfer and scratch accuracy of ``arch`` on a CIFAR-100 subset, or {}."""
    return dict(REPORT_CIFAR100_TRANSFER.get(arch, {}).get(subset, {}))


def report_subset(tag: str) -> str | None:
    """The report's CIFAR-100 subset a tag names (``cifar100_class1`` -> ``class1``), or None."""
    match = re.search(r"class\d+", tag)
    return match.group(0) if match else None


def report_accuracy(arch: str, dataset: str, tag: str) -> float | None:
    """The report's number for a run: Table 1 on CIFAR-10, the fine-tuned one of Table 2 on a
    CIFAR-100 subset (named in ``tag``, e.g. ``cifar100_class1``); None where it has none."""
    if dataset == "cifar10":
        return REPORT_CIFAR10_ACCURACY.get(arch)
    subset = report_subset(tag)
    return cifar100_reference(arch, subset).get("transfer") if subset else None


def model_table() -> str:
    """The README's model table, computed from the code (a test keeps the README in step)."""
    import timm

    from allconv_zoo.models import MODEL_NAMES, PAPER_NAMES, PRETRAINED_ARCHS, count_macs

    lines = [
        "| timm name | paper name | parameters | MACs at 32x32 "
        "| paper's CIFAR-10 error | weights |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for arch in MODEL_NAMES:
        model = timm.create_model(arch)
        parameters = sum(p.numel() for p in model.parameters())
        macs = count_macs(model)
        weights = f"`{arch}.cifar10`" if arch in PRETRAINED_ARCHS else "-"
        lines.append(
            f"| `{arch}` | {PAPER_NAMES[arch]} | {parameters:,} | {macs / 1e6:.1f} M | "
            f"{PAPER_CIFAR10_ERROR[arch]:.2f}% | {weights} |"
        )
    return "\n".join(lines)
