"""Transfer to a new task against training from scratch: the model, the fine-tune fit, the CLI."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from fastai.callback.core import Callback
from safetensors.torch import load_file

from allconv_zoo.data import CIFAR100_SUBSETS, CifarData
from allconv_zoo.hub import save_model_folder
from allconv_zoo.learner import SCHEDULES, RunConfig, build_learner, fit, train_run
from allconv_zoo.loaders import make_dataloaders
from allconv_zoo.models import CIFAR100_MEAN, CIFAR100_STD, CIFAR100_TRANSFER_LABELS
from allconv_zoo.transfer import (
    SourceWeightsFileError,
    TransferError,
    body_state,
    epochs_to_fraction,
    make_transfer_model,
    record_scratch_baseline,
    resolve_source_weights,
    run_comparison,
    strategy_configs,
)

REPO = Path(__file__).resolve().parents[1]
# The cheapest network of the zoo (about 45M multiply-accumulates per image).
ARCH = "strided_cnn_a"
# Without the ReLU on the class maps a new Xavier head cannot start with classes that never
# fire (a class map below zero everywhere gets no gradient), which on these few-step synthetic
# tasks would decide the outcome by the draw of the head; the tests are about the transfer.
MODEL_KWARGS = {"class_map_relu": False}
# Colours of the square that gives an image its class (4 classes).
PALETTE = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], dtype=torch.uint8)


def squares(n_train, n_test, *, seed, sizes=(6, 14), labels=(0, 1, 2, 3), name="squares"):
    """A square of one of four colours, of a side drawn from ``sizes``, at a random place on dark
    noise; its colour is the class, numbered as ``labels`` says."""
    generator = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.randint(0, 40, (n, 3, 32, 32), generator=generator, dtype=torch.uint8)
        colours = torch.randint(0, len(PALETTE), (n,), generator=generator)
        sides = torch.randint(sizes[0], sizes[1] + 1, (n,), generator=generator)
        for i in range(n):
            side = int(sides[i])
            y, x = torch.randint(0, 32 - side + 1, (2,), generator=generator).tolist()
            images[i, :, y : y + side, x : x + side] = PALETTE[colours[i]].view(3, 1, 1)
        return images, torch.tensor(labels)[colours]

    train_images, train_labels = make(n_train)
    test_images, test_labels = make(n_test)
    return CifarData(
        name=name,
        classes=tuple(f"colour{i}" for i in range(len(PALETTE))),
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        source="synthetic squares made by the tests",
    )


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    """A run folder of ARCH pretrained on the squares task (a few seconds of training)."""
    run = tmp_path_factory.mktemp("pretrained") / "run"
    config = RunConfig(
        arch=ARCH,
        schedule="fast",
        epochs=3,
        bs=16,
        lr=0.05,
        device="cpu",
        precision="fp32",
        model_kwargs=MODEL_KWARGS,
    )
    results = train_run(config, squares(256, 128, seed=0), run)
    assert results["test_accuracy"] > 60.0, "the pretraining itself failed; the tests need it"
    return run


@pytest.fixture(scope="module")
def source(source_run):
    return resolve_source_weights(ARCH, source_run)


def related_task(n_train: int = 32, seed: int = 11) -> CifarData:
    """The pretraining task's colours under other labels, on small squares only (a weak signal
    that 32 images do not teach a network from scratch in a few steps, but that the pretrained
    colour detectors pick up)."""
    return squares(n_train, 128, seed=seed, sizes=(5, 7), labels=(2, 3, 0, 1), name="related")


def transfer_configs(epochs: int = 2, freeze_epochs: int = 1, seed: int = 0, **kwargs):
    return strategy_configs(
        ARCH,
        tag="related",
        epochs=epochs,
        freeze_epochs=freeze_epochs,
        bs=8,
        lr=0.05,
        device="cpu",
        precision="fp32",
        seed=seed,
        model_kwargs=MODEL_KWARGS,
        **kwargs,
    )


# The model


def test_transfer_tags_are_in_the_pretrained_configs():
    for subset, names in CIFAR100_SUBSETS.items():
        assert CIFAR100_TRANSFER_LABELS[f"cifar100_{subset}"] == names
        cfg = timm.create_model(f"all_cnn_c.cifar100_{subset}").pretrained_cfg
        assert cfg["num_classes"] == 10 and tuple(cfg["label_names"]) == names
        assert tuple(cfg["mean"]) == CIFAR100_MEAN and tuple(cfg["std"]) == CIFAR100_STD
        assert cfg["hf_hub_id"].endswith(f"/all_cnn_c.cifar100_{subset}")
    assert timm.create_model("all_cnn_c").pretrained_cfg["tag"] == "cifar10"  # still the default


def test_new_head_has_the_task_classes_and_the_body_is_the_source(source, source_run):
    weights = load_file(source_run / "model.safetensors")
    for classes in (3, 4):  # 4: as many as the source, whose head must still not be kept
        model = make_transfer_model(source, classes, **MODEL_KWARGS)
        assert model.get_classifier().out_channels == classes
        body = body_state(model)
        assert body.keys() == {k for k in weights if not k.startswith("classifier.")}
        assert all(torch.equal(body[k], weights[k]) for k in body)
    assert not torch.equal(model.get_classifier().weight, weights["classifier.weight"])


class _Snapshots(Callback):
    """Copies of the weights when the fit starts and after each epoch."""

    order = 95

    def before_fit(self) -> None:
        self.states = {"start": copy.deepcopy(self.learn.model.state_dict())}

    def after_epoch(self) -> None:
        self.states[self.epoch] = copy.deepcopy(self.learn.model.state_dict())


def test_frozen_epochs_train_the_head_alone_then_everything_trains(source, tmp_path):
    snapshots = _Snapshots()
    configs = transfer_configs(epochs=1, freeze_epochs=1)
    run_comparison(
        related_task(),
        tmp_path,
        configs,
        source=source,
        strategies=["transfer"],
        extra_callbacks={"transfer": [snapshots]},
    )
    start, frozen, unfrozen = (snapshots.states[key] for key in ("start", 0, 1))
    head = {"classifier.weight", "classifier.bias"}
    body = [k for k in start if k not in head]
    assert all(torch.equal(start[k], frozen[k]) for k in body), "a frozen body weight moved"
    assert not torch.equal(start["classifier.weight"], frozen["classifier.weight"])
    assert not all(torch.equal(frozen[k], unfrozen[k]) for k in body), "the body never trained"


def test_one_fit_fine_tune_trains_as_fastais_fine_tune(source):
    data = related_task()
    torch.manual_seed(0)
    model = make_transfer_model(source, 4, drop_rate=0.0, drop_in_rate=0.0, **MODEL_KWARGS)
    ours = build_learner(model, make_dataloaders(data, bs=8, seed=0), wd=5e-4)
    theirs = build_learner(copy.deepcopy(model), make_dataloaders(data, bs=8, seed=0), wd=5e-4)
    schedule = SCHEDULES["fine_tune"]
    fit(ours, schedule, lr=0.05, epochs=3, freeze_epochs=1)
    theirs.fine_tune(2, base_lr=0.05, freeze_epochs=1, lr_mult=schedule.lr_mult)
    a, b = ours.model.state_dict(), theirs.model.state_dict()
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


class _KillAfterEpoch(Callback):
    order = 100

    def __init__(self, epoch: int) -> None:
        self.kill_epoch = epoch

    def after_epoch(self) -> None:
        if self.epoch == self.kill_epoch:
            raise KeyboardInterrupt("simulated kill")


def test_resume_across_the_freeze_boundary_ends_as_an_unbroken_run(source, tmp_path):
    configs = transfer_configs(epochs=1, freeze_epochs=1)
    data = related_task()
    run_comparison(data, tmp_path / "unbroken", configs, source=source, strategies=["transfer"])
    with pytest.raises(KeyboardInterrupt):
        run_comparison(
            data,
            tmp_path / "broken",
            configs,
            source=source,
            strategies=["transfer"],
            extra_callbacks={"transfer": [_KillAfterEpoch(0)]},  # the last frozen epoch
        )
    assert (tmp_path / "broken" / "transfer" / "checkpoint.pt").is_file()
    run_comparison(
        data, tmp_path / "broken", configs, source=source, strategies=["transfer"], resume=True
    )
    a = load_file(tmp_path / "unbroken" / "transfer" / "model.safetensors")
    b = load_file(tmp_path / "broken" / "transfer" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = (tmp_path / "broken" / "transfer" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0", "1"]


def test_transfer_beats_scratch_on_a_related_few_sample_task(source, tmp_path):
    """Measured on three seeds: transfer 80-100%, scratch 19-28% (chance 25%)."""
    runs = run_comparison(related_task(), tmp_path, transfer_configs(seed=1), source=source)
    accuracy = {run.strategy: run.results["test_accuracy"] for run in runs}
    assert accuracy["transfer"] > 70.0, accuracy
    assert accuracy["transfer"] >= accuracy["scratch"] + 30.0, accuracy

    # What both runs leave behind.
    for strategy in ("transfer", "scratch"):
        for name in ("model.safetensors", "config.json", "history.csv", "results.json"):
            assert (tmp_path / strategy / name).is_file(), (strategy, name)
    results = json.loads((tmp_path / "transfer" / "results.json").read_text())
    assert results["tag"] == "related" and results["strategy"] == "transfer"
    # A local source is named by its digest, which anyone can compare with a Hub repo's file.
    digest = hashlib.sha256(source.file.read_bytes()).hexdigest()
    assert results["source_sha256"] == digest and "base_model" not in results
    assert results["epochs"] == 3 and results["hyperparameters"]["freeze_epochs"] == 1
    scratch = json.loads((tmp_path / "scratch" / "results.json").read_text())
    assert scratch["hyperparameters"]["freeze_epochs"] == 0 and scratch["epochs"] == 3
    # The published transfer folder carries its scratch twin's result (written after both).
    scratch_history = (tmp_path / "scratch" / "history.csv").read_text().splitlines()[1:]
    per_epoch = [round(100 * float(row.split(",")[4]), 2) for row in scratch_history]
    assert len(per_epoch) == 3
    assert per_epoch[-1] == pytest.approx(scratch["test_accuracy"], abs=0.01)
    baseline = dict(
        test_accuracy=scratch["test_accuracy"],
        epochs=3,
        run="scratch",
        test_accuracy_per_epoch=per_epoch,
    )
    assert results["scratch_baseline"] == baseline
    assert runs[0].results["scratch_baseline"] == baseline
    assert (tmp_path / "curves.png").stat().st_size > 0
    table = (tmp_path / "table.md").read_text()
    assert "| related | transfer |" in table and "| related | scratch |" in table
    assert "frozen for the first 1 of 3 epochs" in table and "Equal in both runs" in table


def test_epochs_to_ninety_percent_of_the_final_accuracy():
    assert epochs_to_fraction([0.2, 0.5, 0.75, 0.8]) == 3  # 0.75 >= 0.9 * 0.8
    assert epochs_to_fraction([0.9]) == 1
    assert epochs_to_fraction([]) is None


def test_weights_of_another_architecture_are_refused(tmp_path):
    other = tmp_path / "other"
    save_model_folder(timm.create_model("cnn_a"), other)
    with pytest.raises(SourceWeightsFileError, match="'cnn_a', not of 'strided_cnn_a'"):
        resolve_source_weights(ARCH, other)
    # A bare file is judged by its tensors (cnn_a's have strided_cnn_a's shapes: pools have none).
    save_model_folder(timm.create_model("all_cnn_c"), other)
    (other / "config.json").unlink()
    with pytest.raises(SourceWeightsFileError, match="does not hold the tensors of strided_cnn_a"):
        resolve_source_weights(ARCH, other / "model.safetensors")


def _fake_comparison(folder, transfer_tag="cifar100_class1", scratch_tag="cifar100_class1_scratch"):
    for strategy, tag, accuracy in [
        ("transfer", transfer_tag, 61.0),
        ("scratch", scratch_tag, 44.0),
    ]:
        (folder / strategy).mkdir(parents=True)
        results = dict(arch="all_cnn_c", tag=tag, test_accuracy=accuracy, epochs=10)
        (folder / strategy / "results.json").write_text(json.dumps(results))
    return folder / "transfer" / "results.json"


def test_scratch_baseline_is_recorded_once_both_runs_exist(tmp_path):
    transfer_file = _fake_comparison(tmp_path)
    scratch_file = tmp_path / "scratch" / "results.json"
    scratch = scratch_file.read_text()
    scratch_file.unlink()
    assert record_scratch_baseline(tmp_path) is None  # scratch has not finished
    assert "scratch_baseline" not in json.loads(transfer_file.read_text())
    scratch_file.write_text(scratch)
    baseline = record_scratch_baseline(tmp_path)
    assert baseline == dict(test_accuracy=44.0, epochs=10, run="scratch")
    assert json.loads(transfer_file.read_text())["scratch_baseline"] == baseline
    assert json.loads(transfer_file.read_text())["test_accuracy"] == 61.0


def test_scratch_baseline_of_another_comparison_is_refused(tmp_path):
    transfer_file = _fake_comparison(tmp_path, scratch_tag="cifar100_class2_scratch")
    before = transfer_file.read_text()
    with pytest.raises(TransferError, match="different comparisons"):
        record_scratch_baseline(tmp_path)
    assert transfer_file.read_text() == before


def test_scratch_baseline_with_other_settings_is_refused(tmp_path):
    transfer_file = _fake_comparison(tmp_path)
    for strategy, seed in [("transfer", 0), ("scratch", 1)]:
        path = tmp_path / strategy / "results.json"
        results = json.loads(path.read_text())
        results["hyperparameters"] = dict(epochs=10, bs=256, wd=5e-4, seed=seed, limit=None)
        path.write_text(json.dumps(results))
    with pytest.raises(TransferError, match="differs from the transfer run in seed"):
        record_scratch_baseline(tmp_path)
    assert "scratch_baseline" not in json.loads(transfer_file.read_text())


def test_a_local_copy_of_a_hub_repo_records_it_as_the_base_model(source_run):
    source = resolve_source_weights(ARCH, source_run, base_model="zoo-test/strided_cnn_a.cifar10")
    assert source.base_model == "zoo-test/strided_cnn_a.cifar10"
    assert "a copy of Hub repo zoo-test/strided_cnn_a.cifar10" in source.description
    assert source.sha256 == hashlib.sha256(source.file.read_bytes()).hexdigest()
    assert resolve_source_weights(ARCH, source_run).base_model is None


@pytest.mark.parametrize(
    ("weights", "base_model", "message"),
    [
        (None, "allconv-zoo/all_cnn_c.cifar10", "Pass --weights too"),
        ("run", "strided_cnn_a.cifar10", "has no namespace"),
        ("run", "two//slashes", "is not a Hub repo id"),
    ],
)
def test_base_model_needs_local_weights_and_a_repo_id(source_run, weights, base_model, message):
    with pytest.raises(TransferError, match=message):
        resolve_source_weights(ARCH, weights and source_run, base_model=base_model, fetch=False)


# The command line


def run_transfer(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "recipes" / "transfer.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "messages"),
    [
        (["--classes", "bear,tigr,lion"], ["'tigr': closest tiger"]),
        (["--classes", "bear"], ["at least 2 classes"]),
        (["class1", "--weights", "/nonexistent/run"], ["does not exist", "--weights"]),
        (["class1", "--base-model", "allconv-zoo/all_cnn_c.cifar10"], ["without --weights"]),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(args, messages, tmp_path):
    out = run_transfer(*args, "--out", str(tmp_path / "out"))
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    for message in messages:
        assert message in out.stderr


def test_cli_offline_without_weights_names_the_three_ways(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_CACHE", None)
    out = run_transfer("class1", "--out", str(tmp_path / "out"), env=env)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    for way in ("be online", "HF_HUB_OFFLINE=1", "--weights RUN_DIR|FILE"):
        assert way in out.stderr


@pytest.mark.real_data
def test_short_real_class1_transfer_leaves_runs_and_a_table(real_data_root, tmp_path):
    """A tiny stand-in source (an untrained strided_cnn_a folder), 1 + 1 epochs on 640 images.

    A smoke test of the real path (data, run folders, tags, table), not of learning: 40 steps do
    not move ten CIFAR-100 classes off chance (measured 9.1% and 10.0% on the 2-core CPU); an
    accuracy worth asserting takes thousands of images and several epochs.
    """
    source_dir = tmp_path / "source"
    save_model_folder(timm.create_model(ARCH), source_dir)
    out = tmp_path / "out"
    args = ["class1", "--arch", ARCH, "--weights", str(source_dir), "--data", str(real_data_root)]
    args += ["--epochs", "1", "--freeze-epochs", "1", "--limit", "640", "--bs", "32"]
    args += ["--device", "cpu", "--precision", "fp32", "--offline", "--out", str(out)]
    result = run_transfer(*args)
    assert result.returncode == 0, result.stderr
    assert "| class1 | transfer |" in result.stdout
    for strategy in ("transfer", "scratch"):
        results = json.loads((out / strategy / "results.json").read_text())
        assert results["test_images"] == 1000 and results["epochs"] == 2
        assert 0.0 <= results["test_accuracy"] <= 100.0
        assert len((out / strategy / "history.csv").read_text().splitlines()) == 1 + 2
        config = json.loads((out / strategy / "config.json").read_text())
        assert tuple(config["pretrained_cfg"]["mean"]) == CIFAR100_MEAN
    transfer = json.loads((out / "transfer" / "results.json").read_text())
    assert transfer["tag"] == "cifar100_class1" and transfer["dataset"] == "cifar100"
    assert transfer["label_names"] == list(CIFAR100_SUBSETS["class1"])
    assert (out / "table.md").is_file() and (out / "curves.png").is_file()
