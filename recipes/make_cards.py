"""Regenerate every model card under model_cards/ from the results.json staged beside it.

    python recipes/make_cards.py                       # re-render the cards already staged
    python recipes/make_cards.py --runs runs/a runs/b  # stage these runs first, then re-render

A staged folder is model_cards/<arch>.<tag>/, the exact content of its Hub repo: model.safetensors,
config.json, README.md (the card), results.json, history.csv and curves.png. Re-rendering needs
only results.json, so the cards follow the template in allconv_zoo/hub.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from allconv_zoo.hub import HubError, regenerate_model_cards

CARDS_DIR = Path(__file__).resolve().parent.parent / "model_cards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="*", default=[], help="run folders to stage first")
    parser.add_argument("--cards-dir", default=str(CARDS_DIR), help="default: model_cards/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = regenerate_model_cards(args.cards_dir, args.runs)
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print(f"{len(written)} cards")
    return 0


if __name__ == "__main__":
    sys.exit(main())
