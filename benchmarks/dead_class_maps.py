"""How many class maps of a fresh transfer head start dead behind the paper's ReLU.

All-CNN-C ends in a 1x1 convolution with one map per class, a ReLU, and a global average. A new
head on a trained body (what ``recipes/transfer.py`` builds) gives some class a map that is
negative at every position of every image: the ReLU then passes neither a score nor a gradient,
so that class can never be learned. This measures, on a subset's training images and over many
seeds of the new head's Xavier initialisation, how often that happens:

    python benchmarks/dead_class_maps.py --weights model_cards/all_cnn_c.cifar10 --data DIR

It prints a Markdown table and writes ``results.json`` to ``--out``. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import timm
import torch

from allconv_zoo.data import load_dataset
from allconv_zoo.files import atomic_write_text
from allconv_zoo.loaders import BatchAugment


def body_features(model: torch.nn.Module, data, bs: int = 500) -> torch.Tensor:
    """The trained body's output on every training image, normalised as the recipe does."""
    transform = BatchAugment(data.mean, data.std, train=False)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(data.train_labels), bs):
            images = data.train_images[start : start + bs]
            inputs, _ = transform((images, data.train_labels[start : start + bs]))
            chunks.append(model.forward_features(inputs))
    return torch.cat(chunks)


def dead_fractions(model, features: torch.Tensor, num_classes: int, seeds: int) -> dict:
    """Per seed: classes whose map is <= 0 everywhere on all images, and per-image dead share."""
    dead_classes, dead_share = [], []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model.reset_classifier(num_classes)
        with torch.inference_mode():
            maps = model.classifier(features)  # images x classes x h x w, before the ReLU
        alive = (maps > 0).flatten(2).any(dim=2)  # images x classes
        dead_classes.append(int((~alive.any(dim=0)).sum()))
        dead_share.append(float((~alive).float().mean()))
    return {"dead_classes_per_seed": dead_classes, "dead_image_class_share": dead_share}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="a staged or run folder of all_cnn_c")
    parser.add_argument("--data", help="data root (else $ALLCONV_DATA)")
    parser.add_argument("--subsets", default="class1,class2")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/dead_class_maps")
    args = parser.parse_args(argv)

    folder = Path(args.weights)
    results = json.loads((folder / "results.json").read_text())
    model = timm.create_model(
        results["arch"],
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(folder / "model.safetensors")),
    ).eval()
    report = {"weights": str(folder), "source_accuracy": results["test_accuracy"], "subsets": {}}
    lines = [
        "| subset | seeds | classes dead at start (min / mean / max of 10) "
        "| image-class pairs dead (mean %) |",
        "| --- | ---: | --- | ---: |",
    ]
    for subset in args.subsets.split(","):
        data = load_dataset(subset, args.data, download=False)
        features = body_features(model, data)
        measured = dead_fractions(model, features, len(data.classes), args.seeds)
        report["subsets"][subset] = measured
        dead = measured["dead_classes_per_seed"]
        share = 100 * sum(measured["dead_image_class_share"]) / args.seeds
        lines.append(
            f"| {subset} | {args.seeds} | {min(dead)} / {sum(dead) / len(dead):.2f} / "
            f"{max(dead)} | {share:.1f} |"
        )
    table = "\n".join(lines)
    out = Path(args.out)
    atomic_write_text(out / "results.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "table.md", table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
