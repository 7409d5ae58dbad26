"""One process of the two-process run in tests/test_distributed.py (started by torchrun).

It trains a tiny model on synthetic squares with ``train_run``, records every file write the
learner makes and what the rank trained on, and saves its final weights beside the run folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from fastai.callback.core import Callback

import allconv_zoo.learner as learner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_learner import synthetic_data


class SeenBatches(Callback):
    """The training images this rank saw: how many, and a checksum of each batch."""

    def before_fit(self) -> None:
        self.images, self.sums = 0, []

    def after_batch(self) -> None:
        if self.training:
            self.images += len(self.yb[0])
            self.sums.append(float(self.xb[0].double().sum()))

    def after_fit(self) -> None:
        # Still inside the fit, the model may be wrapped in DistributedDataParallel.
        model = getattr(self.learn.model, "module", self.learn.model)
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}


def main(run_dir: str, report_dir: str) -> None:
    rank = int(os.environ["RANK"])
    writes: list[str] = []
    model_keys: set[str] = set()
    save, write_folder = learner.atomic_torch_save, learner.write_run_folder

    def spy_save(obj, path):
        writes.append(str(path))
        model_keys.update(obj["model"])
        save(obj, path)

    def spy_write_folder(model, results, out_dir, **kwargs):
        writes.append(str(out_dir))
        write_folder(model, results, out_dir, **kwargs)

    learner.atomic_torch_save, learner.write_run_folder = spy_save, spy_write_folder
    seen = SeenBatches()
    config = learner.RunConfig(arch="strided_cnn_a", schedule="fast", epochs=1, bs=32)
    data = synthetic_data(n_train=128, n_test=64)
    results = learner.train_run(config, data, run_dir, extra_callbacks=[seen])
    report = Path(report_dir)
    torch.save(seen.weights, report / f"rank{rank}.pt")
    (report / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "writes": writes,
                "checkpoint_keys": sorted(model_keys),
                "images": seen.images,
                "sums": seen.sums,
                "test_accuracy": results["test_accuracy"],
                "images_per_second": results["images_per_second"],
                "world_size": results["hyperparameters"]["world_size"],
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
