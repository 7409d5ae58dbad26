"""Reproduce the report's Table 1: the six CIFAR-10 networks, trained with the same flags.

    python recipes/table1.py --schedule report --out runs/table1      # train all six, then table
    python recipes/table1.py --out runs/table1 --from-runs            # only rebuild the table
    python recipes/table1.py --archs all_cnn_c,convpool_cnn_c --stage # train in this order, stage

Each network trains into ``<out>/<arch>.cifar10`` (a run folder as recipes/train.py writes; an
unfinished one is resumed, a finished one is kept). ``<out>/table1.md`` holds our accuracy beside
the report's and the paper's, ``<out>/curves.png`` the test accuracy curves of all six.
``--stage`` copies each finished run into ``model_cards/<arch>.cifar10/`` as soon as it ends (its
Hub repo content and card), so a session that stops mid-queue loses none of the finished runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train import add_run_arguments, run_config_from_args

from allconv_zoo.data import DataNotFoundError, load_dataset
from allconv_zoo.files import atomic_write_text
from allconv_zoo.hub import HubError, regenerate_model_cards
from allconv_zoo.learner import RunError, train_run
from allconv_zoo.tables import TABLE1_ARCHS, cifar10_table, load_run_results, plot_test_curves

CARDS_DIR = Path(__file__).resolve().parent.parent / "model_cards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument(
        "--archs", default=",".join(TABLE1_ARCHS), help="comma-separated subset of the six"
    )
    parser.add_argument(
        "--from-runs", action="store_true", help="train nothing; rebuild from existing folders"
    )
    parser.add_argument(
        "--stage",
        action="store_true",
        help="stage each finished run into --cards-dir (then run recipes/update_readme.py)",
    )
    parser.add_argument("--cards-dir", default=str(CARDS_DIR), help="default: model_cards/")
    args = parser.parse_args(argv)
    archs = [a for a in args.archs.split(",") if a]
    unknown = sorted(set(archs) - set(TABLE1_ARCHS))
    if unknown:
        parser.error(f"--archs: {unknown} are not in Table 1 ({', '.join(TABLE1_ARCHS)})")
    out = Path(args.out or "runs/table1")
    run_dirs = {arch: out / f"{arch}.cifar10" for arch in archs}

    if not args.from_runs:
        try:
            data = load_dataset("cifar10", args.data, download=not args.offline)
            for arch, run_dir in run_dirs.items():
                if (run_dir / "results.json").exists():
                    print(f"{arch}: finished run in {run_dir}, kept")
                else:
                    config = run_config_from_args(arch, args)
                    resume = (run_dir / "checkpoint.pt").exists()
                    train_run(config, data, run_dir, resume=resume)
                if args.stage:
                    regenerate_model_cards(args.cards_dir, [run_dir])
        except (RunError, DataNotFoundError, HubError, ValueError) as error:
            parser.exit(2, f"error: {error}\n")

    results = load_run_results(list(run_dirs.values()))
    if not results:
        parser.exit(2, f"error: no finished run folders under {out}; train them first.\n")
    table = cifar10_table(results)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table1.md", table + "\n")
    plot_test_curves(
        {r["arch"]: Path(r["run_dir"]) / "history.csv" for r in results},
        out / "curves.png",
        title="CIFAR-10 test accuracy",
    )
    print(table)
    print(f"table: {out / 'table1.md'}  figure: {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
