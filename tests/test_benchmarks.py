"""Smoke test of benchmarks/throughput.py at toy size: the code paths and results.json's shape.

Speeds are measurements, never asserted; the benchmark itself is not part of the test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"


@pytest.mark.slow
def test_tiny_benchmark_writes_every_measurement_of_each_network(tmp_path):
    command = [sys.executable, str(BENCHMARK), "--synthetic", "--quick", "--tiny"]
    command += ["--archs", "strided_cnn_c", "--device", "cpu", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((tmp_path / "results.json").read_text())
    assert {"machine", "settings", "networks", "load_average_start", "load_average_end"} <= set(
        report
    )
    machine = report["machine"]
    assert machine["peak_fp32_flops"] > 0 and machine["matmul_fp32_flops"] > 0
    assert "FMA" in machine["peak_formula"]
    (row,) = report["networks"]
    assert row["arch"] == "strided_cnn_c" and row["macs"] > 0
    for name in ("bare", "recipe", "reference", "recipe_over_bare", "recipe_over_reference"):
        assert {"median", "min", "max"} <= set(row[name]), name
        assert row[name]["min"] <= row[name]["median"] <= row[name]["max"]
    assert set(row["train_flops"]) == {"bare", "recipe", "reference"}
    for key in ("fp32_images_per_s", "bf16_images_per_s", "fp32_latency_ms", "bf16_latency_ms"):
        assert row["inference"][key] > 0, key
    assert len(row["load_before"]) == len(row["load_after"]) == 3

    table = (tmp_path / "table.md").read_text()
    assert "| strided_cnn_c |" in table and "recipe/bare" in table
