"""Regenerate the README's model table and results table from the code and model_cards/.

python recipes/update_readme.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from allconv_zoo.files import atomic_write_text
from allconv_zoo.tables import render_readme

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    readme = REPO / "README.md"
    atomic_write_text(readme, render_readme(readme.read_text(), REPO / "model_cards"))
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
