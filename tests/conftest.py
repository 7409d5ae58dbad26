"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The folder with the real CIFAR copies: $ALLCONV_DATA, else ../shared/data beside the repo.

    Tests that use it are marked ``real_data`` and skip when neither is there.
    """
    env = os.environ.get("ALLCONV_DATA")
    if env:
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    pytest.skip(
        f"real CIFAR data not found: set ALLCONV_DATA=DIR or put cifar10.tgz and "
        f"cifar100-subsets.tgz in {shared}"
    )
