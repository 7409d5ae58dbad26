"""Fine-tune a CIFAR-10 network on a CIFAR-100 subset and train the same network from scratch.

    python recipes/transfer.py class1                         # Hub weights of all_cnn_c.cifar10
    python recipes/transfer.py class2 --weights runs/all_cnn_c.cifar10   # a local CIFAR-10 run
    python recipes/transfer.py class1 --weights model_cards/all_cnn_c.cifar10 \
        --base-model allconv-zoo/all_cnn_c.cifar10        # the staged copy of a Hub repo, offline
    python recipes/transfer.py --classes apple,bear,rose --strategies transfer
    python recipes/transfer.py class1 --out runs/transfer/class1 --resume   # go on after a kill

Transfer keeps the source's body, gives it a new head and runs fastai's fine_tune: the body is
frozen for --freeze-epochs, then every layer trains for --epochs with the body at a lower
learning rate. Scratch trains the same network from Xavier initialisation for the same
freeze-epochs + epochs, on the same images, with the same one-cycle schedule family; what is and
is not equal between the two is printed and written to table.md (see allconv_zoo.transfer).

--out (default runs/transfer/<arch>.<tag>) receives transfer/ and scratch/ (each a run folder as
recipes/train.py writes it; recipes/publish.py pushes transfer/ as <arch>.cifar100_class1 etc.),
curves.png (test accuracy per epoch of both) and table.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from train import add_data_and_device_arguments, positive_float, positive_int

from allconv_zoo.data import DataNotFoundError, load_cifar100_subset
from allconv_zoo.learner import SCHEDULES, RunError
from allconv_zoo.models import UnknownModelError, check_model_name
from allconv_zoo.transfer import (
    STRATEGIES,
    TransferError,
    parse_class_request,
    render_table,
    resolve_source_weights,
    run_comparison,
    strategy_configs,
    table_row,
)

DEFAULT_EPOCHS = 9
DEFAULT_FREEZE_EPOCHS = 1

# What the recipes turn into "error: ..." and exit code 2: every mistake a user can make.
USER_ERRORS = (UnknownModelError, RunError, DataNotFoundError, TransferError, ValueError)


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def strategy_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown strategies {', '.join(unknown) or '(none)'}; use {','.join(STRATEGIES)} "
            "or one of them"
        )
    return names


def add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags shared by the transfer and table2 recipes."""
    parser.add_argument("--arch", default="all_cnn_c", help="architecture (default all_cnn_c)")
    parser.add_argument(
        "--weights",
        metavar="RUN_DIR|FILE",
        help="start from a local run folder (its model.safetensors) or a .safetensors file "
        "instead of the Hub's <arch>.cifar10 weights",
    )
    parser.add_argument(
        "--base-model",
        metavar="REPO_ID",
        help="with --weights: the Hub repo those weights are a copy of (for example "
        "allconv-zoo/all_cnn_c.cifar10 for model_cards/all_cnn_c.cifar10), recorded as the "
        "transfer card's base_model; not checkable offline, so the file's sha256 is recorded too",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=DEFAULT_EPOCHS,
        help=f"epochs with every layer trained, after the frozen ones (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--freeze-epochs",
        type=non_negative_int,
        default=DEFAULT_FREEZE_EPOCHS,
        help="epochs of the transfer run that train the new head alone (default "
        f"{DEFAULT_FREEZE_EPOCHS}); scratch trains freeze-epochs + epochs, every layer",
    )
    preset = SCHEDULES["fine_tune"]
    parser.add_argument(
        "--lr", type=positive_float, help=f"peak learning rate of both runs (default {preset.lr})"
    )
    parser.add_argument("--bs", type=positive_int, help=f"batch size (default {preset.bs})")
    parser.add_argument("--wd", type=float, help=f"weight decay (default {preset.wd})")
    add_data_and_device_arguments(parser)
    parser.add_argument(
        "--strategies",
        type=strategy_list,
        default=STRATEGIES,
        help="which runs to make, comma-separated (default transfer,scratch)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with what --out holds: finished runs are read back, killed ones resume "
        "(also across the freeze/unfreeze boundary)",
    )


def compare(args: argparse.Namespace, names: tuple[str, ...], out: Path | None):
    """Load the data and the source weights, run the strategies; return (runs, notes, out)."""
    # The source is checked before the data are read or anything trains, so that a missing
    # network or a wrong --weights fails at once. A resumed run that is past needing the
    # source does not ask the Hub again.
    source = None
    if "transfer" in args.strategies:
        finished = out is not None and any(
            (out / "transfer" / name).is_file() for name in ("results.json", "checkpoint.pt")
        )
        source = resolve_source_weights(
            args.arch,
            args.weights,
            fetch=not (args.resume and finished),
            base_model=args.base_model,
        )
    data = load_cifar100_subset(names, args.data, download=not args.offline)
    configs = strategy_configs(
        args.arch,
        tag=data.name,
        epochs=args.epochs,
        freeze_epochs=args.freeze_epochs,
        lr=args.lr,
        bs=args.bs,
        wd=args.wd,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        limit=args.limit,
    )
    out = out or Path(f"runs/transfer/{args.arch}.{data.name}")
    runs = run_comparison(
        data, out, configs, source=source, strategies=args.strategies, resume=args.resume
    )
    return runs, runs[0].results["fairness"], out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The rest of the story is in this file's docstring and allconv_zoo/transfer.py.",
    )
    parser.add_argument(
        "subset",
        nargs="?",
        help="class1 or class2 (the report's ten-class CIFAR-100 subsets); or use --classes",
    )
    parser.add_argument(
        "--classes", help="a custom task: comma-separated CIFAR-100 fine names, e.g. apple,bear"
    )
    parser.add_argument("--out", help="comparison folder (default runs/transfer/<arch>.<tag>)")
    add_transfer_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        check_model_name(args.arch)
        names = parse_class_request(args.subset, args.classes)
        runs, notes, out = compare(args, names, Path(args.out) if args.out else None)
    except USER_ERRORS as error:
        parser.exit(2, f"error: {error}\n")

    print(render_table([table_row(run) for run in runs], notes), end="")
    print(f"comparison folder: {out} (table.md, curves.png, {', '.join(args.strategies)}/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
