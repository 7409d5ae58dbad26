"""Training and inference speed of the zoo's CIFAR-10 networks on this machine, in one run.

    python benchmarks/throughput.py --data DIR                    # the six networks
    python benchmarks/throughput.py --data DIR --quick            # all_cnn_c, a few minutes
    python benchmarks/throughput.py --synthetic --quick --tiny    # smoke test, seconds

For each network it measures training images/s three ways, on the same machine and settings:

* bare: forward, backward and SGD step on a batch already in memory, in the recipe's precision
  and memory layout: the ceiling for any loop around this model here;
* recipe: ``allconv_zoo.learner.train_run`` end to end (its DataLoader, batch augmentation,
  callbacks, train metrics, schedule), timed over whole training epochs of a subset;
* reference: the loop most public reproductions of the paper use: a torchvision-style Dataset
  giving PIL images to RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor and Normalize,
  a torch DataLoader with worker processes, fp32 in NCHW layout, plain ``torch.optim.SGD``.

and inference images/s at batch 256 and latency at batch 1, in fp32 and bf16. Achieved FLOP/s are
derived from the multiply-accumulates per image (``count_macs``): a training step is about three
forward passes (6 x MACs FLOPs per image), inference one (2 x MACs). They are set beside two
peaks: a theoretical one from the CPU's description and a measured large fp32 matmul.

The first epoch (and the first steps) of every measurement are warm-up and are not counted. The
table and results.json go to ``--out`` (default benchmarks/results/latest/). Numbers are
measurements of one machine at one moment: the load average at the start and the end of each
measurement is recorded beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn as nn

from allconv_zoo.data import CifarData, load_cifar10
from allconv_zoo.learner import (
    MOMENTUM,
    SCHEDULES,
    RunConfig,
    TrainThroughput,
    resolve_device,
    resolve_precision,
    train_run,
    use_channels_last,
)
from allconv_zoo.models import count_macs

CIFAR10_NETWORKS = ("cnn_a", "cnn_b", "cnn_c", "strided_cnn_c", "convpool_cnn_c", "all_cnn_c")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest"

# Sizes of each measurement. "full" is the committed table's; "quick" keeps one network under a
# few minutes on a 2-core CPU; "tiny" only exercises the code paths (a smoke test, not a number).
# bs None: the schedule's batch size; infer_bs: the batch of the inference images/s.
SIZES = {
    "full": {"limit": 512, "valid": 256, "epochs": 2, "bare_steps": 4, "bs": None},
    "quick": {"limit": 256, "valid": 128, "epochs": 2, "bare_steps": 2, "bs": None},
    "tiny": {"limit": 48, "valid": 16, "epochs": 2, "bare_steps": 1, "bs": 16},
}
INFER = {
    "full": {"bs": 256, "batches": 4, "latency_calls": 50},
    "quick": {"bs": 256, "batches": 2, "latency_calls": 20},
    "tiny": {"bs": 16, "batches": 1, "latency_calls": 2},
}
MATMUL_N = 2048  # large enough to reach BLAS's steady state, small enough for a second or two

logger = logging.getLogger("throughput")


class BenchmarkError(RuntimeError):
    """The benchmark cannot run as asked (no data, unknown network)."""


# The machine


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def busy_processes(limit: int = 5) -> list[str]:
    """The other processes using the CPU now, to read the numbers against (Linux ``ps``)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()[1:]
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in out:
        pid, pcpu, etime, args = line.split(None, 3)
        if int(pid) == os.getpid() or args.startswith("ps ") or float(pcpu) < 5:
            continue
        rows.append(f"{pcpu}% {etime} {args[:100]}")
    return rows[:limit]


def cpu_description() -> dict[str, Any]:
    """Cores, clock and SIMD of this CPU from /proc/cpuinfo, and the peak they imply.

    Peak fp32 FLOP/s = cores x GHz x FMA units per core x fp32 lanes per SIMD register x 2 (an
    FMA is two FLOPs). The lanes come from the flags (AVX-512: 16, AVX2: 8, SSE: 4); two FMA
    units per core is what current x86 server cores (Zen 2 and later, Skylake-SP and later)
    have, an assumption the flags cannot show. The clock is the base clock the kernel reports
    (``cpu MHz``; on a VM the TSC frequency): boost clocks would raise the peak.
    """
    info: dict[str, str] = {}
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "flags":
                flags = set(value.split())
            info.setdefault(key, value)
    except OSError:
        pass
    cores = os.cpu_count() or 1
    mhz = float(info.get("cpu MHz", "nan"))
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fma_units = 2 if "fma" in flags else 1
    flops_per_cycle = fma_units * lanes * (2 if "fma" in flags else 1)
    peak = cores * mhz * 1e6 * flops_per_cycle
    return {
        "model": info.get("model name", platform.processor() or platform.machine()),
        "cores": cores,
        "ghz": round(mhz / 1000, 3),
        "simd": "avx512" if lanes == 16 else "avx2" if lanes == 8 else "sse",
        "fma": "fma" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_tile" in flags,
        "fp32_flops_per_cycle_per_core": flops_per_cycle,
        "peak_fp32_flops": peak,
        "peak_formula": f"{cores} cores x {mhz / 1000:.2f} GHz x {fma_units} FMA units x "
        f"{lanes} fp32 lanes x 2 FLOPs per FMA",
    }


def measured_matmul_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of the best of a few n x n matmuls: the practical peak of dense BLAS here."""
    a = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(4):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * MATMUL_N**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# Data


def synthetic_cifar(n_train: int, n_test: int, seed: int = 0) -> CifarData:
    """Random uint8 images of CIFAR's shape: the speed of a step does not depend on pixels."""
    generator = torch.Generator().manual_seed(seed)
    return CifarData(
        name="synthetic",
        classes=tuple(f"class{i}" for i in range(10)),
        train_images=torch.randint(0, 256, (n_train, 3, 32, 32), generator=generator).byte(),
        train_labels=torch.randint(0, 10, (n_train,), generator=generator),
        test_images=torch.randint(0, 256, (n_test, 3, 32, 32), generator=generator).byte(),
        test_labels=torch.randint(0, 10, (n_test,), generator=generator),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        source="random pixels made by the benchmark",
    )


def subset(data: CifarData, n_train: int, n_test: int, seed: int = 0) -> CifarData:
    """A fixed random subset: the stored copies are sorted by class, so the first N are one."""
    generator = torch.Generator().manual_seed(seed)
    train = torch.randperm(len(data.train_labels), generator=generator)[:n_train]
    test = torch.randperm(len(data.test_labels), generator=generator)[:n_test]
    return dataclasses.replace(
        data,
        train_images=data.train_images[train],
        train_labels=data.train_labels[train],
        test_images=data.test_images[test],
        test_labels=data.test_labels[test],
    )


class PilCifar(torch.utils.data.Dataset):
    """What ``torchvision.datasets.CIFAR10`` does per item: HWC uint8 -> PIL image -> transform."""

    def __init__(self, data: CifarData, transform: Callable) -> None:
        self.images = data.train_images.permute(0, 2, 3, 1).numpy()
        self.labels = data.train_labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


# Measurements


def _model(arch: str, device: torch.device, channels_last: bool) -> nn.Module:
    model = timm.create_model(arch, num_classes=10).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def bare_step(
    arch: str,
    *,
    bs: int,
    lr: float,
    wd: float,
    device: torch.device,
    precision: str,
    channels_last: bool,
    steps: int,
    compile_model: bool = False,
) -> dict[str, float]:
    """Images/s of forward + backward + SGD step on one resident batch (2 warm-up steps)."""
    torch.manual_seed(0)
    model = _model(arch, device, channels_last)
    forward = torch.compile(model) if compile_model else model
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=wd)
    images = torch.randn(bs, 3, 32, 32, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (bs,), device=device)
    loss_func = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_func(forward(images).float(), labels)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    _sync(device)
    first_step = time.perf_counter() - start
    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return {
        "images_per_s": steps * bs / (time.perf_counter() - start),
        "first_step_s": first_step,
    }


def recipe_epochs(
    arch: str, data: CifarData, *, schedule: str, epochs: int, bs: int, device: str
) -> dict[str, Any]:
    """train_run as the recipe runs it; images/s over the training part of epochs 2..N."""
    timer = TrainThroughput()
    config = RunConfig(arch=arch, schedule=schedule, epochs=epochs, bs=bs, device=device)
    with tempfile.TemporaryDirectory() as out:
        results = train_run(config, data, out, extra_callbacks=[timer], write_outputs=False)
    images, seconds = sum(timer.epoch_images[1:]), sum(timer.epoch_seconds[1:])
    return {
        "images_per_s": images / seconds,
        "epoch_seconds": [round(s, 2) for s in timer.epoch_seconds],
        "first_epoch_s": round(timer.epoch_seconds[0], 2),
        "precision": results["hyperparameters"]["precision"],
        "channels_last": results["hyperparameters"]["channels_last"],
    }


def reference_epochs(
    arch: str,
    data: CifarData,
    *,
    epochs: int,
    bs: int,
    lr: float,
    wd: float,
    device: torch.device,
    workers: int,
) -> dict[str, Any]:
    """The common reproduction's loop; images/s over epochs 2..N, worker start-up included."""
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(data.mean, data.std),
        ]
    )
    loader = torch.utils.data.DataLoader(
        PilCifar(data, transform),
        batch_size=bs,
        shuffle=True,
        drop_last=len(data.train_labels) > bs,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    torch.manual_seed(0)
    model = _model(arch, device, channels_last=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=wd)
    loss_func = nn.CrossEntropyLoss()
    epoch_seconds, epoch_images = [], []
    for _ in range(epochs):
        model.train()
        images_seen = 0
        start = time.perf_counter()
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = loss_func(model(images), labels)
            loss.backward()
            optimizer.step()
            images_seen += len(labels)
        _sync(device)
        epoch_seconds.append(time.perf_counter() - start)
        epoch_images.append(images_seen)
    return {
        "images_per_s": sum(epoch_images[1:]) / sum(epoch_seconds[1:]),
        "epoch_seconds": [round(s, 2) for s in epoch_seconds],
        "workers": workers,
    }


@torch.inference_mode()
def inference(
    arch: str,
    *,
    device: torch.device,
    channels_last: bool,
    bs: int,
    batches: int,
    latency_calls: int,
) -> dict[str, float]:
    """Images/s at batch ``bs`` and median latency at batch 1, fp32 and bf16 autocast."""
    model = _model(arch, device, channels_last).eval()
    results = {}
    for precision in ("fp32", "bf16"):
        autocast = partial_autocast(device, precision)
        big = torch.randn(bs, 3, 32, 32, device=device)
        one = torch.randn(1, 3, 32, 32, device=device)
        if channels_last:
            big = big.contiguous(memory_format=torch.channels_last)
            one = one.contiguous(memory_format=torch.channels_last)
        with autocast():
            model(big)  # warm-up: oneDNN builds its kernels for these shapes on the first call
            _sync(device)
            start = time.perf_counter()
            for _ in range(batches):
                model(big)
            _sync(device)
            seconds = time.perf_counter() - start
            results[f"{precision}_images_per_s"] = batches * bs / seconds
            model(one)
            times = []
            for _ in range(latency_calls):
                _sync(device)
                start = time.perf_counter()
                model(one)
                _sync(device)
                times.append(time.perf_counter() - start)
            results[f"{precision}_latency_ms"] = 1000 * statistics.median(times)
    return results


def partial_autocast(device: torch.device, precision: str) -> Callable:
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": [round(v, 2) for v in values],
    }


def ratio(numerator: dict[str, float], denominator: dict[str, float]) -> dict[str, float]:
    """Median over median, with the widest range the repeats allow (min/max to max/min)."""
    return {
        "median": numerator["median"] / denominator["median"],
        "min": numerator["min"] / denominator["max"],
        "max": numerator["max"] / denominator["min"],
    }


def measure_network(arch: str, data: CifarData, args: argparse.Namespace) -> dict[str, Any]:
    size = SIZES[args.size]
    preset = SCHEDULES[args.schedule]
    bs = args.bs or size["bs"] or preset.bs
    device = resolve_device(args.device)
    precision = resolve_precision("auto", device)
    channels_last = use_channels_last(precision, device)
    macs = count_macs(timm.create_model(arch, num_classes=10))
    row: dict[str, Any] = {"arch": arch, "macs": macs, "bs": bs, "load_before": load_average()}
    bare, recipe, reference = [], [], []
    for repeat in range(args.repeats):
        logger.info("%s: repeat %d of %d", arch, repeat + 1, args.repeats)
        step = bare_step(
            arch,
            bs=bs,
            lr=preset.lr,
            wd=preset.wd,
            device=device,
            precision=precision,
            channels_last=channels_last,
            steps=size["bare_steps"],
        )
        bare.append(step["images_per_s"])
        run = recipe_epochs(
            arch, data, schedule=args.schedule, epochs=size["epochs"], bs=bs, device=str(device)
        )
        recipe.append(run["images_per_s"])
        row.setdefault("recipe_epoch_seconds", []).append(run["epoch_seconds"])
        if not args.no_reference:
            ref = reference_epochs(
                arch,
                data,
                epochs=size["epochs"],
                bs=bs,
                lr=preset.lr,
                wd=preset.wd,
                device=device,
                workers=args.workers,
            )
            reference.append(ref["images_per_s"])
            row.setdefault("reference_epoch_seconds", []).append(ref["epoch_seconds"])
    row.update(
        precision=precision,
        channels_last=channels_last,
        bare=spread(bare),
        recipe=spread(recipe),
        recipe_over_bare=ratio(spread(recipe), spread(bare)),
    )
    if reference:
        row["reference"] = spread(reference)
        row["recipe_over_reference"] = ratio(row["recipe"], row["reference"])
    if args.compile:
        eager = bare_step(
            arch,
            bs=bs,
            lr=preset.lr,
            wd=preset.wd,
            device=device,
            precision=precision,
            channels_last=channels_last,
            steps=size["bare_steps"],
        )
        compiled = bare_step(
            arch,
            bs=bs,
            lr=preset.lr,
            wd=preset.wd,
            device=device,
            precision=precision,
            channels_last=channels_last,
            steps=size["bare_steps"],
            compile_model=True,
        )
        row["compile"] = {
            "eager_images_per_s": eager["images_per_s"],
            "compiled_images_per_s": compiled["images_per_s"],
            "compile_first_step_s": compiled["first_step_s"],
            "eager_first_step_s": eager["first_step_s"],
        }
    row["inference"] = inference(
        arch, device=device, channels_last=channels_last, **INFER[args.size]
    )
    measured = [name for name in ("bare", "recipe", "reference") if name in row]
    row["train_flops"] = {name: 6 * macs * row[name]["median"] for name in measured}
    row["inference_flops"] = {
        p: 2 * macs * row["inference"][f"{p}_images_per_s"] for p in ("fp32", "bf16")
    }
    row["load_after"] = load_average()
    return row


# Report


def _range(s: dict[str, float], digits: int = 1) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def markdown_table(report: dict[str, Any]) -> str:
    machine = report["machine"]
    peak_theory = machine["peak_fp32_flops"]
    peak_matmul = max(machine["matmul_fp32_flops"], machine.get("matmul_fp32_flops_end", 0.0))
    lines = [
        f"Machine: {machine['description']}. Peak fp32: {peak_theory / 1e9:.0f} GFLOP/s "
        f"theoretical ({machine['peak_formula']}), {peak_matmul / 1e9:.0f} GFLOP/s measured "
        f"(best {MATMUL_N}x{MATMUL_N} fp32 matmul, start and end of the run). "
        f"Settings: {report['settings_text']}.",
        "",
        "Training images/s, median (min-max) over repeats; ratios median (widest range):",
        "",
        "| network | MMAC/img | bare | recipe | reference | recipe/bare | recipe/ref "
        "| recipe GFLOP/s (% matmul) | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["networks"]:
        reference = _range(row["reference"]) if "reference" in row else "-"
        over_ref = _range(row["recipe_over_reference"], 2) if "reference" in row else "-"
        flops = row["train_flops"]["recipe"]
        lines.append(
            f"| {row['arch']} | {row['macs'] / 1e6:.0f} | {_range(row['bare'])} "
            f"| {_range(row['recipe'])} | {reference} | {_range(row['recipe_over_bare'], 2)} "
            f"| {over_ref} | {flops / 1e9:.1f} ({100 * flops / peak_matmul:.0f}%) "
            f"| {row['load_before'][0]:.1f} -> {row['load_after'][0]:.1f} |"
        )
    lines += [
        "",
        f"Inference, batch {INFER[report['settings']['size']]['bs']} images/s and batch 1 "
        "median latency:",
        "",
        "| network | fp32 img/s | bf16 img/s | fp32 GFLOP/s | fp32 ms @1 | bf16 ms @1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in report["networks"]:
        inf = row["inference"]
        lines.append(
            f"| {row['arch']} | {inf['fp32_images_per_s']:.0f} | {inf['bf16_images_per_s']:.0f} "
            f"| {row['inference_flops']['fp32'] / 1e9:.1f} | {inf['fp32_latency_ms']:.1f} "
            f"| {inf['bf16_latency_ms']:.1f} |"
        )
    compiled = [row for row in report["networks"] if "compile" in row]
    if compiled:
        lines += [
            "",
            "torch.compile (inductor) of the bare step:",
            "",
            "| network | eager img/s | compiled img/s | first step eager s "
            "| first step compiled s |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in compiled:
            c = row["compile"]
            lines.append(
                f"| {row['arch']} | {c['eager_images_per_s']:.1f} | "
                f"{c['compiled_images_per_s']:.1f} | {c['eager_first_step_s']:.1f} | "
                f"{c['compile_first_step_s']:.1f} |"
            )
    if report["other_processes"]:
        lines += ["", "Other processes using the CPU at the start:", ""]
        lines += [f"    {p}" for p in report["other_processes"]]
    return "\n".join(lines) + "\n"


def load_data(args: argparse.Namespace) -> CifarData:
    size = SIZES[args.size]
    n_train, n_test = args.limit or size["limit"], size["valid"]
    if args.synthetic:
        return synthetic_cifar(n_train, n_test)
    root = args.data or os.environ.get("ALLCONV_DATA")
    if not root:
        raise BenchmarkError(
            "No data: pass --data DIR (or set ALLCONV_DATA) to a folder with cifar10.tgz, or "
            "--synthetic to time random images of the same shape."
        )
    return subset(load_cifar10(root, download=False), n_train, n_test)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=None, help="networks (default: the six)")
    parser.add_argument("--data", help="data root (else $ALLCONV_DATA)")
    parser.add_argument("--synthetic", action="store_true", help="random images, no data needed")
    parser.add_argument("--limit", type=int, help="training images per epoch (default by size)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default 2, quick 1)")
    parser.add_argument("--schedule", default="report", choices=sorted(SCHEDULES))
    parser.add_argument("--bs", type=int, help="batch size (default: the schedule's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="reference loader's workers")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference loop")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--quick", action="store_true", help="all_cnn_c, smaller subsets")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks the code only")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the results")
    args = parser.parse_args(argv)
    args.size = "tiny" if args.tiny else "quick" if args.quick else "full"
    if args.archs is None:
        args.archs = ["all_cnn_c"] if args.quick or args.tiny else list(CIFAR10_NETWORKS)
    if args.repeats is None:
        args.repeats = 1 if args.quick or args.tiny else 2
    unknown = [a for a in args.archs if a not in timm.list_models()]
    if unknown:
        parser.error(f"unknown networks {unknown}; the CIFAR-10 ones are {CIFAR10_NETWORKS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        data = load_data(args)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    machine = {
        **cpu_description(),
        "description": machine_description_text(device),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "matmul_fp32_flops": measured_matmul_flops(device),
    }
    if device.type == "cuda":
        machine["matmul_bf16_flops"] = measured_matmul_flops(device, torch.bfloat16)
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine,
        "load_average_start": load_average(),
        "other_processes": busy_processes(),
        "settings": {
            "size": args.size,
            "schedule": args.schedule,
            "train_images": len(data.train_labels),
            "valid_images": len(data.test_labels),
            "epochs": SIZES[args.size]["epochs"],
            "counted_epochs": SIZES[args.size]["epochs"] - 1,
            "repeats": args.repeats,
            "reference_workers": args.workers,
            "data": data.source,
        },
        "networks": [],
    }
    s = report["settings"]
    report["settings_text"] = (
        f"{s['schedule']} preset, {s['train_images']} training images, {s['epochs']} epochs "
        f"(first not counted), {s['repeats']} repeats, reference with {s['reference_workers']} "
        f"workers, data: {s['data']}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for arch in args.archs:
        report["networks"].append(measure_network(arch, data, args))
        # Written after every network, so a long run that is stopped keeps what it measured.
        report["load_average_end"] = load_average()
        (args.out / "results.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    # Measured again at the end: a load that came or went during the run moves this peak.
    machine["matmul_fp32_flops_end"] = measured_matmul_flops(device)
    (args.out / "results.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    table = markdown_table(report)
    (args.out / "table.md").write_text(table)
    print(table)
    print(f"results: {args.out / 'results.json'}")
    return 0


def machine_description_text(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = cpu_description()
    return (
        f"{cpu['model']}, {cpu['cores']} cores at {cpu['ghz']} GHz, {cpu['simd']}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}"
    )


if __name__ == "__main__":
    sys.exit(main())
