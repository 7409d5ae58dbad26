"""Data-parallel training under torchrun: two CPU processes (gloo) on synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate", reason="fastai.distributed needs accelerate")

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory) -> tuple[Path, Path]:
    """One 1-epoch run of strided_cnn_a on 128 images with two processes; (run, report) dirs."""
    root = tmp_path_factory.mktemp("distributed")
    run_dir, report_dir = root / "run", root / "report"
    report_dir.mkdir()
    # One thread per process: two processes share the machine's cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(WORKER), str(run_dir), str(report_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run_dir, report_dir


def test_both_ranks_end_with_the_same_weights(two_rank_run):
    _, report = two_rank_run
    rank0, rank1 = (torch.load(report / f"rank{r}.pt") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name


def test_each_rank_trains_on_its_own_half_of_every_epoch(two_rank_run):
    _, report = two_rank_run
    rank0, rank1 = (json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["images"] == rank1["images"] == 64  # 128 images over 2 ranks, batch 32 each
    assert not set(rank0["sums"]) & set(rank1["sums"])
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["test_accuracy"] == rank1["test_accuracy"]  # gathered over both shards


def test_only_rank_0_writes_the_run_folder_and_checkpoints(two_rank_run):
    run, report = two_rank_run
    rank0, rank1 = (json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank1["writes"] == []
    assert any(w.endswith("checkpoint.pt") for w in rank0["writes"])
    # The checkpoint holds the model's own keys, not DistributedDataParallel's "module.*".
    weights = torch.load(report / "rank0.pt")
    assert rank0["checkpoint_keys"] == sorted(weights)
    assert str(run) in rank0["writes"]
    files = {p.name for p in run.iterdir()}
    assert {"model.safetensors", "config.json", "history.csv", "results.json"} <= files
    assert "checkpoint.pt" not in files  # removed once the run is complete
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 2  # one header and one epoch: nobody else appended
    results = json.loads((run / "results.json").read_text())
    assert results["hyperparameters"]["global_bs"] == 64
