"""The README stays true: its generated tables match the code, its test command is CI's."""

from __future__ import annotations

from pathlib import Path

from allconv_zoo.tables import render_readme, replace_block

REPO = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_code_and_the_staged_results():
    readme = (REPO / "README.md").read_text()
    assert render_readme(readme, REPO / "model_cards") == readme, (
        "README tables are stale: run `python recipes/update_readme.py`"
    )


def test_model_table_has_every_network_with_its_parameters():
    readme = (REPO / "README.md").read_text()
    assert "| `all_cnn_c` | All-CNN-C | 1,369,738 |" in readme
    assert "| `cnn_a` | Model A | 839,242 |" in readme


def test_replace_block_only_touches_the_block():
    text = "a\n<!-- t:start note -->\nold\n<!-- t:end -->\nb\n"
    assert replace_block(text, "t", "new") == "a\n<!-- t:start note -->\nnew\n<!-- t:end -->\nb\n"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "python -m pytest -q" in readme
    assert "python -m pytest -q" in ci
    assert 'pip install ".[test]"' in readme and '".[test]"' in ci


def test_results_table_sets_each_staged_run_beside_its_reference_numbers(tmp_path):
    import json

    from allconv_zoo.tables import staged_results_table

    assert staged_results_table(tmp_path) == "(no staged runs yet)"
    runs = {
        "all_cnn_c.cifar10": dict(arch="all_cnn_c", tag="cifar10", dataset="cifar10"),
        "all_cnn_c.cifar100_class2": dict(
            arch="all_cnn_c", tag="cifar100_class2", dataset="cifar100"
        ),
    }
    for name, run in runs.items():
        (tmp_path / name).mkdir()
        run.update(test_accuracy=71.234, epochs=4, schedule="fast", wall_time_s=1000.0)
        run["machine"] = "CPU test"
        if name.endswith("cifar10"):
            run["hyperparameters"] = {"precision": "bf16"}
        (tmp_path / name / "results.json").write_text(json.dumps(run))
    rows = staged_results_table(tmp_path).splitlines()[2:]
    assert rows == [
        "| `all_cnn_c.cifar10` | 71.23 | 89.21 | 90.92 | 4 | fast | 250 | bf16 | CPU test |",
        # A run without its hyperparameters says nothing rather than guess.
        "| `all_cnn_c.cifar100_class2` | 71.23 | 84.50 | - | 4 | fast | 250 | ? | CPU test |",
    ]


def test_transfer_table_sets_each_staged_transfer_beside_its_scratch_twin(tmp_path):
    import json

    from allconv_zoo.tables import staged_transfer_table

    assert staged_transfer_table(tmp_path) == "(no staged transfer runs yet)"
    runs = {
        "all_cnn_c.cifar10": dict(tag="cifar10", dataset="cifar10"),
        "all_cnn_c.cifar100_class1": dict(
            tag="cifar100_class1",
            dataset="cifar100",
            scratch_baseline=dict(test_accuracy=40.5, epochs=10, run="scratch"),
        ),
        # Staged before transfer runs carried their baseline: shown, without a comparison.
        "all_cnn_c.cifar100_class2": dict(tag="cifar100_class2", dataset="cifar100"),
    }
    for name, run in runs.items():
        (tmp_path / name).mkdir()
        run.update(arch="all_cnn_c", test_accuracy=55.25, epochs=10)
        (tmp_path / name / "results.json").write_text(json.dumps(run))
    rows = staged_transfer_table(tmp_path).splitlines()[2:]
    assert rows == [
        "| `all_cnn_c.cifar100_class1` | class1 | 55.25 | 40.50 | +14.75 | 83.60 | 73.30 | 10 |",
        "| `all_cnn_c.cifar100_class2` | class2 | 55.25 | - | - | 84.50 | 73.50 | 10 |",
    ]
