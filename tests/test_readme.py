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
