"""Every staged Hub folder under model_cards/ scores the accuracy its results.json states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm

from allconv_zoo.data import load_dataset
from allconv_zoo.learner import evaluate_accuracy

REPO = Path(__file__).resolve().parents[1]
STAGED = sorted(p for p in (REPO / "model_cards").glob("*") if (p / "model.safetensors").exists())


def check_staged_folder(folder: Path, data_root: Path) -> tuple[float, float]:
    """(stated, measured) test accuracy of a staged folder, loaded the way users load it."""
    results = json.loads((folder / "results.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    model = timm.create_model(
        results["arch"],
        pretrained=True,
        num_classes=results["num_classes"],
        pretrained_cfg_overlay=dict(
            file=str(folder / "model.safetensors"), num_classes=results["num_classes"]
        ),
    )
    data = load_dataset(results["tag"], data_root, download=False)
    cfg = config["pretrained_cfg"]
    measured = evaluate_accuracy(model, data, mean=cfg["mean"], std=cfg["std"])
    return results["test_accuracy"], measured


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("folder", STAGED, ids=[p.name for p in STAGED])
def test_staged_weights_score_what_their_results_say(folder, real_data_root):
    stated, measured = check_staged_folder(folder, real_data_root)
    assert abs(stated - measured) <= 0.1, (folder.name, stated, measured)
