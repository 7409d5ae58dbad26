"""Publish a finished run folder to the Hugging Face Hub, or stage its repo content locally.

    python recipes/publish.py model_cards/all_cnn_c.cifar10 --repo-id allconv-zoo/all_cnn_c.cifar10
    python recipes/publish.py runs/all_cnn_c --repo-id me/all_cnn_c.cifar10 --dry-run out/

RUN_DIR is a run folder of recipes/train.py or a folder staged under model_cards/. The repo gets
model.safetensors, config.json (timm's format), README.md (the model card), results.json,
history.csv and curves.png in one commit; publishing the same run again makes no commit. The
token comes from --token, HF_TOKEN or `hf auth login`, and is checked before anything is
uploaded.
"""

from __future__ import annotations

import argparse
import logging
import sys

from allconv_zoo.hub import HubError, publish, stage_repo_folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run_dir", help="a finished run folder (--out of recipes/train.py) or model_cards/ARCH.TAG"
    )
    parser.add_argument(
        "--repo-id", required=True, help="NAMESPACE/NAME, e.g. me/all_cnn_c.cifar10"
    )
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to commit to (created if missing); default main")
    parser.add_argument("--commit-message", help="default: the run's name and test accuracy")
    parser.add_argument("--token", help="Hub token with write access; default HF_TOKEN or login")
    parser.add_argument(
        "--dry-run", metavar="DIR", help="write the repo's files into DIR and upload nothing"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        if args.dry_run:
            out = stage_repo_folder(args.run_dir, args.dry_run, repo_id=args.repo_id)
            print(f"Staged {args.repo_id} into {out}:")
            for path in sorted(out.iterdir()):
                print(f"  {path.name:20s} {path.stat().st_size:>10,d} bytes")
            return 0
        result = publish(
            args.run_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            token=args.token,
        )
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    state = "new commit" if result.changed else "unchanged, no commit made"
    print(f"{result.repo_id}@{result.revision}: {result.commit} ({state})")
    print(result.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
