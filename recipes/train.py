"""Train one of the zoo's networks on CIFAR-10 with fastai and leave a publishable run folder.

    python recipes/train.py all_cnn_c                       # the `fast` preset, 10 epochs
    python recipes/train.py all_cnn_c --schedule report     # the reproduction report's recipe
    python recipes/train.py all_cnn_c --out runs/x --resume # continue a killed run
    torchrun --nproc_per_node 2 recipes/train.py all_cnn_c  # data-parallel, 2 processes

The run folder (default ``runs/<arch>.<tag>``) holds model.safetensors, config.json, history.csv,
results.json and curves.png; ``recipes/publish.py`` pushes it to the Hugging Face Hub.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from allconv_zoo.data import DataNotFoundError, load_dataset
from allconv_zoo.learner import SCHEDULES, RunConfig, RunError, train_run
from allconv_zoo.models import UnknownModelError, check_model_name

DISTRIBUTED_HELP = """\
data-parallel: under torchrun (or accelerate launch) each process trains on its shard of every
epoch through fastai's distributed support (gloo on CPUs, nccl on GPUs, one GPU a process) and
rank 0 alone writes the run folder. --bs is per process: the global batch is bs x processes. The
learning rate is used as given, not scaled: to train a preset's global batch on N processes pass
--bs PRESET_BS/N; to scale linearly with the global batch instead, pass --lr PRESET_LR*N.
"""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags shared by the train and transfer recipes."""
    parser.add_argument(
        "--schedule", default=None, choices=sorted(SCHEDULES), help="preset (default: fast)"
    )
    parser.add_argument("--epochs", type=positive_int, help="override the preset's epochs")
    parser.add_argument("--lr", type=positive_float, help="override the preset's learning rate")
    parser.add_argument(
        "--bs", type=positive_int, help="override the preset's batch size (per process)"
    )
    parser.add_argument("--wd", type=float, help="override the preset's weight decay")
    parser.add_argument("--out", help="run folder")
    add_data_and_device_arguments(parser)


def add_data_and_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the data are, how much of it, and where and how to compute: every recipe's flags."""
    parser.add_argument("--data", help="data root (else $ALLCONV_DATA, else ~/.cache/allconv_zoo)")
    parser.add_argument(
        "--limit", type=positive_int, help="use only N training images (a fixed random choice)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "fp32"],
        help="auto: bf16 autocast + channels_last where the device computes bf16 natively",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of shuffling, augmentation, init")
    parser.add_argument(
        "--offline", action="store_true", help="never try to download the data, fail instead"
    )


def run_config_from_args(arch: str, args: argparse.Namespace, **extra) -> RunConfig:
    """The RunConfig that the shared flags (``add_run_arguments``) ask for."""
    return RunConfig(
        arch=arch,
        schedule=args.schedule or "fast",
        epochs=args.epochs,
        lr=args.lr,
        bs=args.bs,
        wd=args.wd,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        limit=args.limit,
        **extra,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=DISTRIBUTED_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("arch", help="e.g. all_cnn_c (see README's model table)")
    add_run_arguments(parser)
    parser.add_argument("--drop-rate", type=float, help="dropout after each stage")
    parser.add_argument("--drop-in-rate", type=float, help="dropout on the input")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        check_model_name(args.arch)
        config = run_config_from_args(
            args.arch, args, drop_rate=args.drop_rate, drop_in_rate=args.drop_in_rate
        ).resolved()
        data = load_dataset("cifar10", args.data, download=not args.offline)
        out = Path(args.out or f"runs/{args.arch}.cifar10")
        results = train_run(config, data, out, resume=args.resume)
    except (UnknownModelError, RunError, DataNotFoundError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")

    if os.environ.get("RANK", "0") != "0":  # the other processes of a distributed run
        return 0
    summary = {k: results[k] for k in ("arch", "test_accuracy", "epochs", "images_per_second")}
    print(json.dumps(summary))
    print(f"run folder: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
