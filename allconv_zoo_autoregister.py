"""Registers allconv_zoo's models with timm the first time timm is imported.

timm has no plugin entry points, so ``timm.create_model("all_cnn_c")`` in a program that never
imports allconv_zoo would not find the models. The wheel installs ``allconv_zoo_autoregister.pth``
at the root of site-packages; Python runs it at start-up and it imports this module, which only
puts a watcher on ``sys.meta_path``: no torch, no timm, nothing else is loaded until the program
itself imports timm. Then timm is imported as usual and, right after its ``__init__`` has run,
``allconv_zoo`` is imported, which registers the models.

Set ``ALLCONV_ZOO_AUTOREGISTER=0`` to turn the hook off (``import allconv_zoo`` still works).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import warnings

DISABLE_VARIABLE = "ALLCONV_ZOO_AUTOREGISTER"


class _RegisterAfterExec(importlib.abc.Loader):
    """Runs timm's own loader, then imports allconv_zoo, then steps out of the way."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            # Leave timm looking exactly as if no hook had been there.
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader
        try:
            importlib.import_module("allconv_zoo")
        except Exception as error:  # never break the user's `import timm`
            warnings.warn(
                f"allconv_zoo could not register its models with timm ({error!r}); "
                "`import allconv_zoo` explicitly to see the full error.",
                RuntimeWarning,
                stacklevel=2,
            )


class _TimmImportWatcher(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "timm":
            return None
        # One shot: remove ourselves first so the lookup below does not come back here.
        uninstall()
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def install() -> None:
    """Arm the hook unless it is disabled, timm is already imported, or it is armed already."""
    if os.environ.get(DISABLE_VARIABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if "timm" in sys.modules:
        return
    if not any(isinstance(finder, _TimmImportWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TimmImportWatcher())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TimmImportWatcher)]
