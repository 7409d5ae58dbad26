"""Tables and figures that compare runs with each other and with the published numbers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from allconv_zoo.hub import read_history, training_machines, training_precisions
from allconv_zoo.learner import save_figure
from allconv_zoo.models import PAPER_NAMES
from allconv_zoo.reference import (
    PAPER_CIFAR10_ACCURACY,
    REPORT_CIFAR10_ACCURACY,
    cifar100_reference,
    report_accuracy,
    report_subset,
)

__all__ = [
    "TABLE1_ARCHS",
    "cifar10_table",
    "load_run_results",
    "plot_test_curves",
    "render_readme",
    "replace_block",
    "staged_results_table",
    "staged_transfer_table",
]

# The six networks of the reproduction report's Table 1, in its order.
TABLE1_ARCHS = ("cnn_a", "cnn_b", "cnn_c", "strided_cnn_c", "convpool_cnn_c", "all_cnn_c")


def load_run_results(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """results.json of each finished run folder, with ``run_dir`` added; unfinished ones skipped."""
    results = []
    for run_dir in map(Path, run_dirs):
        path = run_dir / "results.json"
        if path.exists():
            results.append({**json.loads(path.read_text()), "run_dir": str(run_dir)})
    return results


def cifar10_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: our CIFAR-10 test accuracy per network beside the report's and the paper's."""
    lines = [
        "| model | ours (%) | report (%) | paper (%) | epochs | schedule "
        "| train images/s | device |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for run in sorted(results, key=lambda r: _table_order(r["arch"])):
        arch = run["arch"]
        report = REPORT_CIFAR10_ACCURACY.get(arch)
        paper = PAPER_CIFAR10_ACCURACY.get(arch)
        lines.append(
            f"| {PAPER_NAMES[arch]} (`{arch}`) | {run['test_accuracy']:.2f} | "
            f"{_number(report)} | {_number(paper)} | {run['epochs']} | {run['schedule']} | "
            f"{run['images_per_second']:.0f} | {run.get('device', '?')} |"
        )
    return "\n".join(lines)


def _table_order(arch: str) -> int:
    return TABLE1_ARCHS.index(arch) if arch in TABLE1_ARCHS else len(TABLE1_ARCHS)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plot_test_curves(
    histories: Mapping[str, str | Path], out: str | Path, *, title: str = ""
) -> None:
    """Test accuracy per epoch of several runs in one figure (the report's Figures 1-4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, history in histories.items():
        columns = read_history(Path(history))
        epochs = [int(e) + 1 for e in columns["epoch"]]
        axis.plot(epochs, [100 * a for a in columns["valid_accuracy"]], label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    save_figure(figure, out)


def _staged_results(cards_dir: str | Path) -> list[dict[str, Any]]:
    return load_run_results(sorted(p for p in Path(cards_dir).iterdir() if p.is_dir()))


def staged_results_table(cards_dir: str | Path) -> str:
    """The README's results table, from the staged Hub folders' results.json files.

    Beside each accuracy stand the report's and the paper's numbers for the same model and data
    (the report's fine-tuned number for a transfer run), and what produced it: epochs, schedule,
    seconds per epoch (wall time, test evaluation included), the training precision (bf16
    autocast or fp32, which sets the speed more than the machine's name says) and the machine.
    """
    staged = _staged_results(cards_dir)
    if not staged:
        return "(no staged runs yet)"
    lines = [
        "| Hub repo | test accuracy (%) | report (%) | paper (%) | epochs | schedule "
        "| s/epoch | precision | machine |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |",
    ]
    for run in staged:
        report = report_accuracy(run["arch"], run["dataset"], run["tag"])
        paper = PAPER_CIFAR10_ACCURACY.get(run["arch"]) if run["dataset"] == "cifar10" else None
        lines.append(
            f"| `{Path(run['run_dir']).name}` | {run['test_accuracy']:.2f} "
            f"| {_number(report)} | {_number(paper)} "
            f"| {run['epochs']} | {run['schedule']} | {run['wall_time_s'] / run['epochs']:.0f} "
            f"| {training_precisions(run)} "
            f"| {training_machines(run) if 'machine' in run else '?'} |"
        )
    return "\n".join(lines)


def staged_transfer_table(cards_dir: str | Path) -> str:
    """The README's transfer table (the report's Table 2), from the staged CIFAR-100 folders.

    Each staged transfer run carries its scratch twin's result (``scratch_baseline``, written by
    ``allconv_zoo.transfer.record_scratch_baseline``), so the comparison is read from the folder
    that is published, not from run folders that are not committed.
    """
    staged = [r for r in _staged_results(cards_dir) if r["dataset"] == "cifar100"]
    if not staged:
        return "(no staged transfer runs yet)"
    lines = [
        "| Hub repo | subset | from CIFAR-10 (%) | from scratch (%) | gain (points) "
        "| report: from CIFAR-10 | report: from scratch | epochs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in staged:
        subset = report_subset(run["tag"]) or run["tag"]
        reference = cifar100_reference(run["arch"], subset)
        baseline = run.get("scratch_baseline") or {}
        scratch = baseline.get("test_accuracy")
        gain = run["test_accuracy"] - scratch if scratch is not None else None
        lines.append(
            f"| `{Path(run['run_dir']).name}` | {subset} | {run['test_accuracy']:.2f} "
            f"| {_number(scratch)} | {'-' if gain is None else f'{gain:+.2f}'} "
            f"| {_number(reference.get('transfer'))} | {_number(reference.get('scratch'))} "
            f"| {run['epochs']} |"
        )
    return "\n".join(lines)


def replace_block(text: str, name: str, content: str) -> str:
    """Replace what stands between the ``<!-- NAME:start ... -->`` and ``<!-- NAME:end -->``."""
    start = text.index(f"<!-- {name}:start")
    start = text.index("-->", start) + len("-->")
    end = text.index(f"<!-- {name}:end -->")
    return text[:start] + "\n" + content + "\n" + text[end:]


def render_readme(readme: str, cards_dir: str | Path) -> str:
    """The README with its generated tables brought up to date."""
    from allconv_zoo.reference import model_table

    readme = replace_block(readme, "model-table", model_table())
    readme = replace_block(readme, "results-table", staged_results_table(cards_dir))
    return replace_block(readme, "transfer-table", staged_transfer_table(cards_dir))
