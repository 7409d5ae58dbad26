"""The report's CIFAR-100 transfer table: class1 and class2, each by transfer and from scratch.

    python recipes/table2.py                        # four runs into runs/table2, then the table
    python recipes/table2.py --weights runs/all_cnn_c.cifar10 --epochs 4 --limit 2000
    python recipes/table2.py --from-runs            # rebuild table.md and curves.png only

Each subset is one comparison of recipes/transfer.py (same flags, same fairness rules), written
to <out>/class1 and <out>/class2. <out>/table.md holds the four rows beside the report's numbers
(class1: transfer 83.6, scratch 73.3; class2: transfer 84.5, scratch 73.5) and <out>/curves.png
the test accuracy per epoch of both strategies on both subsets, as the report's Figures 3 and 4.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from transfer import USER_ERRORS, add_transfer_arguments, compare

from allconv_zoo.data import CIFAR100_SUBSETS
from allconv_zoo.files import atomic_write_text
from allconv_zoo.hub import read_history
from allconv_zoo.models import check_model_name
from allconv_zoo.transfer import (
    plot_comparison,
    read_table_row,
    record_scratch_baseline,
    render_table,
    table_row,
)

SUBSETS = tuple(CIFAR100_SUBSETS)


def from_runs(out: Path, strategies: tuple[str, ...]):
    """Rows, notes and histories read back from the run folders under ``out``."""
    import json

    rows, panels, notes = [], {}, None
    for subset in SUBSETS:
        panels[subset] = {}
        # Runs made before the transfer results carried their baseline get it now.
        record_scratch_baseline(out / subset)
        for strategy in strategies:
            run_dir = out / subset / strategy
            rows.append(read_table_row(run_dir, strategy))
            panels[subset][strategy] = read_history(run_dir / "history.csv")
            notes = notes or json.loads((run_dir / "results.json").read_text()).get("fairness")
    return rows, notes, panels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/table2", help="folder (default runs/table2)")
    parser.add_argument(
        "--from-runs",
        action="store_true",
        help="train nothing: rebuild table.md and curves.png from <out>/class1 and <out>/class2",
    )
    add_transfer_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)

    try:
        check_model_name(args.arch)
        if args.from_runs:
            rows, notes, panels = from_runs(out, args.strategies)
        else:
            rows, panels, notes = [], {}, None
            for subset in SUBSETS:
                runs, notes, _ = compare(args, CIFAR100_SUBSETS[subset], out / subset)
                rows += [table_row(run) for run in runs]
                panels[subset] = {run.strategy: run.history for run in runs}
    except USER_ERRORS as error:
        parser.exit(2, f"error: {error}\n")

    table = render_table(rows, notes)
    atomic_write_text(out / "table.md", table)
    plot_comparison(panels, out / "curves.png")
    print(table, end="")
    print(f"table: {out / 'table.md'}, figure: {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
