"""CIFAR-10 and CIFAR-100 subsets as uint8 tensors, decoded once and cached.

Paper: "Striving for Simplicity: The All Convolutional Net", J. T. Springenberg et al., 2014,
https://arxiv.org/abs/1412.6806. Its experiments use CIFAR-10 and CIFAR-100; this zoo also trains
on two ten-class CIFAR-100 subsets (``CIFAR100_SUBSETS``).

Every loader returns a ``CifarData``: the whole dataset as uint8 tensors of shape (N, 3, 32, 32),
which is all the batch augmentation and DataLoaders in ``allconv_zoo.loaders`` need.

Where the data comes from, searched for under one data root (``resolve_data_root``), the root
itself possibly being one of these:

* the official python release, as torchvision reads it (``cifar-10-batches-py/``,
  ``cifar-100-python/``), or its archive (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``);
* fastai's folder layout ``{train,test}/<class>/*.png`` (``cifar10/``, ``cifar100/``), with an
  optional ``labels.txt`` giving the label order;
* a tar of that layout (``cifar10.tgz``, ``cifar100.tgz``, ``cifar100-subsets.tgz``, also as
  ``.tar.gz`` or ``.tar``), read member by member without unpacking it;
* failing those, the official release downloaded through torchvision.

Decoding 60,000 PNGs takes a while, so the decoded tensors are saved once with safetensors and
read back on later calls (see ``_load_or_decode``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import io
import json
import logging
import os
import pickle
import tarfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from allconv_zoo.models import (
    CIFAR10_LABELS,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    CIFAR100_TRANSFER_LABELS,
)

__all__ = [
    "CIFAR100_FINE_LABELS",
    "CIFAR100_SUBSETS",
    "DATA_ENV_VAR",
    "CifarData",
    "ClassListError",
    "DataFormatError",
    "DataNotFoundError",
    "MissingClassesError",
    "UnknownClassError",
    "UnknownDatasetError",
    "load_cifar10",
    "load_cifar100_subset",
    "load_dataset",
    "resolve_data_root",
]

logger = logging.getLogger(__name__)

# The environment variable that names the data root when no ``data`` argument is given.
DATA_ENV_VAR = "ALLCONV_DATA"

# The 100 fine classes in the official label order (``fine_label_names`` of the release's
# ``meta`` file), kept here so that class names can be checked before any data is present.
CIFAR100_FINE_LABELS = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman",
    "worm",
)  # fmt: skip

# The zoo's two ten-class CIFAR-100 tasks, in label order 0-9. The names live once, with the
# pretrained configs of the transfer models that are trained on them (models.py).
CIFAR100_SUBSETS: dict[str, tuple[str, ...]] = {
    tag.removeprefix("cifar100_"): names for tag, names in CIFAR100_TRANSFER_LABELS.items()
}

IMAGE_SHAPE = (3, 32, 32)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TAR_SUFFIXES = (".tgz", ".tar.gz", ".tar")
CACHE_DIR_NAME = ".allconv_cache"
# Part of every cache key: bump it whenever the decoding changes, so old caches are not reused.
CACHE_FORMAT = "2"

# Folder layouts and their tars carry no record of how their train/test split was made. For the
# archives this project distributes, what is known is written here so that model cards can say
# it; keyed by the file or folder name without its suffix.
_KNOWN_SOURCE_NOTES = {
    "cifar100-subsets": (
        "Taken from an archive of 20 of the 100 CIFAR-100 fine classes, whose train/test split "
        "(500/100 images per class) is not the official CIFAR-100 split."
    ),
}


class DataNotFoundError(FileNotFoundError):
    """No usable copy of the data was found, and it could not be downloaded."""


class MissingClassesError(DataNotFoundError):
    """The CIFAR-100 copies that were found lack some of the requested classes."""


class DataFormatError(ValueError):
    """A source was found but does not hold what its layout promises (size, classes, files)."""


class UnknownClassError(ValueError):
    """A class name that is not one of the 100 CIFAR-100 fine classes."""


class ClassListError(ValueError):
    """A list of CIFAR-100 classes that cannot make a task: duplicates, or fewer than two."""


class UnknownDatasetError(ValueError):
    """A dataset name that ``load_dataset`` does not know."""


@dataclass(frozen=True, eq=False)
class CifarData:
    """A CIFAR dataset held in memory.

    ``eq=False``: comparing tensors elementwise is not what ``==`` on a dataset should mean, and
    the default would raise on it.
    """

    name: str
    classes: tuple[str, ...]
    train_images: torch.Tensor = field(repr=False)
    train_labels: torch.Tensor = field(repr=False)
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    # How this copy differs from the official release, in sentences a model card can quote.
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or tuple(images.shape[1:]) != IMAGE_SHAPE:
                raise DataFormatError(
                    f"{split}_images must be uint8 of shape (N, 3, 32, 32), "
                    f"got {images.dtype} {tuple(images.shape)}"
                )
            if labels.dtype != torch.int64 or tuple(labels.shape) != (images.shape[0],):
                raise DataFormatError(
                    f"{split}_labels must be int64 of shape ({images.shape[0]},), "
                    f"got {labels.dtype} {tuple(labels.shape)}"
                )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_train(self) -> int:
        return int(self.train_images.shape[0])

    @property
    def num_test(self) -> int:
        return int(self.test_images.shape[0])


@dataclass(frozen=True)
class _Family:
    """What tells one CIFAR release from the other on disk."""

    name: str
    title: str
    official_dir: str
    official_archive: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    meta_key: str
    label_key: str
    folder_names: tuple[str, ...]
    archive_stems: tuple[str, ...]
    torchvision_class: str

    @property
    def official_files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files, self.meta_file)


_CIFAR10 = _Family(
    name="cifar10",
    title="CIFAR-10",
    official_dir="cifar-10-batches-py",
    official_archive="cifar-10-python.tar.gz",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    meta_file="batches.meta",
    meta_key="label_names",
    label_key="labels",
    folder_names=("cifar10",),
    archive_stems=("cifar10",),
    torchvision_class="CIFAR10",
)
_CIFAR100 = _Family(
    name="cifar100",
    title="CIFAR-100",
    official_dir="cifar-100-python",
    official_archive="cifar-100-python.tar.gz",
    train_files=("train",),
    test_files=("test",),
    meta_file="meta",
    meta_key="fine_label_names",
    label_key="fine_labels",
    folder_names=("cifar100",),
    archive_stems=("cifar100", "cifar100-subsets"),
    torchvision_class="CIFAR100",
)
_FAMILIES = (_CIFAR10, _CIFAR100)


@dataclass(frozen=True)
class _Decoded:
    """One source's images, labelled by its own class order; what the cache stores."""

    classes: tuple[str, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    # How many images a jpeg-derived.txt lists as lossy. The notes built from it are not
    # cached, so rewording them never invalidates a cache.
    jpeg_derived: int = 0
    notes: tuple[str, ...] = ()


_KIND_TITLES = {
    "official": "official python release",
    "folder": "folder layout",
    "tar": "tar archive",
}


@dataclass(frozen=True)
class _Candidate:
    path: Path
    kind: str  # "official" (a batches folder), "folder" (fastai layout) or "tar" (either)


def resolve_data_root(data: str | os.PathLike | None = None) -> Path:
    """Return the folder (or archive) to look for the data in.

    Args:
        data: an explicit location; wins over everything else.

    Returns:
        ``data`` if given, else ``$ALLCONV_DATA`` if set, else ``$XDG_CACHE_HOME/allconv_zoo``
        (``~/.cache/allconv_zoo`` when ``XDG_CACHE_HOME`` is unset).
    """
    if data is not None and os.fspath(data) != "":
        return Path(data).expanduser()
    env = os.environ.get(DATA_ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    return _user_cache_home()


def load_cifar10(data: str | os.PathLike | None = None, *, download: bool = True) -> CifarData:
    """Load CIFAR-10, 50,000 train and 10,000 test images.

    Args:
        data: where to look (see ``resolve_data_root``).
        download: fetch the official release through torchvision when no copy is found.

    Returns:
        The dataset, labels in the order of ``classes`` (the official order unless a folder
        layout's ``labels.txt`` says otherwise).

    Raises:
        DataNotFoundError: no copy was found and downloading was off or failed.
        DataFormatError: a copy was found but is broken (wrong image size, unreadable file).
    """
    decoded = _find_and_load(_CIFAR10, resolve_data_root(data), download, wanted=None)
    if decoded.classes != CIFAR10_LABELS:
        logger.warning(
            "%s orders the CIFAR-10 classes as %s, not in the official order; its labels follow "
            "that order",
            decoded.source,
            ", ".join(decoded.classes),
        )
    return CifarData(
        name="cifar10",
        classes=decoded.classes,
        train_images=decoded.train_images,
        train_labels=decoded.train_labels,
        test_images=decoded.test_images,
        test_labels=decoded.test_labels,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        source=decoded.source,
        notes=decoded.notes,
    )


def load_cifar100_subset(
    classes: str | Sequence[str],
    data: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> CifarData:
    """Load some CIFAR-100 fine classes as a task of their own.

    Args:
        classes: ``"class1"`` or ``"class2"`` (see ``CIFAR100_SUBSETS``), a comma-separated string
            of fine names, or a sequence of fine names. Labels are 0..n-1 in the order given.
        data: where to look (see ``resolve_data_root``).
        download: fetch the official release through torchvision when no copy found holds all
            the requested classes.

    Returns:
        The selected images, in the order the source holds them.

    Raises:
        UnknownClassError: a name is not a CIFAR-100 fine class.
        ClassListError: a name repeats, or fewer than two classes were asked for.
        MissingClassesError: copies were found, but none holds every requested class.
        DataNotFoundError: no copy was found and downloading was off or failed.
        DataFormatError: a copy was found but is broken.
    """
    names = _parse_class_list(classes)
    decoded = _find_and_load(_CIFAR100, resolve_data_root(data), download, wanted=names)

    # One lookup table maps the source's labels to the task's (-1: not in the task), so the
    # selection keeps the source's image order.
    remap = torch.full((len(decoded.classes),), -1, dtype=torch.int64)
    for new_label, name in enumerate(names):
        remap[decoded.classes.index(name)] = new_label
    splits = {}
    for split in ("train", "test"):
        labels = remap[getattr(decoded, f"{split}_labels")]
        keep = labels >= 0
        splits[f"{split}_images"] = getattr(decoded, f"{split}_images")[keep].contiguous()
        splits[f"{split}_labels"] = labels[keep].contiguous()

    subset = next((key for key, value in CIFAR100_SUBSETS.items() if value == names), None)
    return CifarData(
        name=f"cifar100_{subset}" if subset else "cifar100_custom",
        classes=names,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        source=decoded.source,
        notes=decoded.notes,
        **splits,
    )


def load_dataset(
    name: str, data: str | os.PathLike | None = None, *, download: bool = True
) -> CifarData:
    """Load a dataset by the name the recipes use.

    Args:
        name: ``"cifar10"``, ``"class1"``, ``"class2"`` (also as ``"cifar100_class1"``...), or
            ``"cifar100:NAME,NAME,..."`` for any list of CIFAR-100 fine classes.
        data: where to look (see ``resolve_data_root``).
        download: fetch the official release when no copy is found.

    Raises:
        UnknownDatasetError: the name is none of the above.
        and whatever ``load_cifar10`` or ``load_cifar100_subset`` raise.
    """
    key = name.strip().lower()
    if key == "cifar10":
        return load_cifar10(data, download=download)
    subset = key.removeprefix("cifar100_")
    if subset in CIFAR100_SUBSETS:
        return load_cifar100_subset(subset, data, download=download)
    if key.startswith("cifar100:"):
        names = [part for part in key.removeprefix("cifar100:").split(",") if part.strip()]
        return load_cifar100_subset(names, data, download=download)
    known = ["cifar10", *CIFAR100_SUBSETS, *(f"cifar100_{short}" for short in CIFAR100_SUBSETS)]
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownDatasetError(
        f"Unknown dataset {name!r}.{hint} Known: cifar10, class1, class2, or "
        f"cifar100:NAME,NAME,... with CIFAR-100 fine class names (e.g. cifar100:apple,bear)."
    )


def _parse_class_list(classes: str | Sequence[str]) -> tuple[str, ...]:
    """Check a class request and return the fine names in task order."""
    if isinstance(classes, str):
        key = classes.strip().lower()
        if key in CIFAR100_SUBSETS:
            return CIFAR100_SUBSETS[key]
        if "," not in key and _normalise_class(key) not in CIFAR100_FINE_LABELS:
            # A lone word is more likely a mistyped subset name than a one-class task.
            close = difflib.get_close_matches(
                key, [*CIFAR100_SUBSETS, *CIFAR100_FINE_LABELS], n=3, cutoff=0.6
            )
            hint = f" Closest names: {', '.join(close)}." if close else ""
            raise UnknownClassError(
                f"{classes!r} is neither a CIFAR-100 subset ({', '.join(CIFAR100_SUBSETS)}) nor "
                f"a CIFAR-100 fine class.{hint}"
            )
        classes = [part for part in key.split(",") if part.strip()]

    names = tuple(_normalise_class(name) for name in classes)
    unknown = [name for name in names if name not in CIFAR100_FINE_LABELS]
    if unknown:
        lines = []
        for name in unknown:
            close = difflib.get_close_matches(name, CIFAR100_FINE_LABELS, n=3, cutoff=0.5)
            lines.append(f"  {name!r}: closest {', '.join(close) if close else '(none close)'}")
        raise UnknownClassError(
            "Not CIFAR-100 fine classes:\n"
            + "\n".join(lines)
            + "\nAll 100 names are in allconv_zoo.data.CIFAR100_FINE_LABELS."
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ClassListError(
            f"Each class may be asked for once; repeated: {', '.join(duplicates)}."
        )
    if len(names) < 2:
        raise ClassListError(
            f"A classification task needs at least 2 classes, got {len(names)}: "
            f"{', '.join(names) or '(none)'}. Name more fine classes, or use "
            f"{' or '.join(CIFAR100_SUBSETS)}."
        )
    return names


def _normalise_class(name: str) -> str:
    # "Pickup truck" and "pickup-truck" mean pickup_truck; the official names are snake_case.
    return "_".join(name.strip().lower().replace("-", " ").split())


def _user_cache_home() -> Path:
    # XDG_CACHE_HOME counts only when absolute, as the XDG base directory spec says.
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "allconv_zoo"


def _find_and_load(
    family: _Family, root: Path, download: bool, wanted: tuple[str, ...] | None
) -> _Decoded:
    """Return the first source under ``root`` that holds ``family`` (and ``wanted``)."""
    tried: list[str] = []
    lacking = False
    for candidate in _candidates(family, root):
        if not _exists(candidate, family):
            tried.append(f"  {candidate.path}  ({_KIND_TITLES[candidate.kind]}: not there)")
            continue
        decoded = _load_or_decode(candidate, _cache_home(root))
        mismatch = _family_mismatch(decoded, family)
        if mismatch:
            tried.append(f"  {candidate.path}  (found, but {mismatch})")
            continue
        missing = [name for name in wanted or () if name not in decoded.classes]
        if missing:
            tried.append(f"  {candidate.path}  (found, lacks {', '.join(missing)})")
            lacking = True
            continue
        return decoded

    if download:
        destination = _download_dir(root)
        try:
            official = _download_official(family, destination)
            return _load_or_decode(_Candidate(official, "official"), destination)
        except DataFormatError:
            raise
        # Anything can go wrong on the network (URLError, timeouts, http.client errors, a
        # checksum mismatch as RuntimeError, a truncated tar): each means the data is not
        # available, and the cause stays chained for whoever needs the details.
        except Exception as exc:
            note = f"downloading into {destination} failed: {exc!r}"
            error_type = MissingClassesError if lacking else DataNotFoundError
            raise error_type(_not_found_message(family, root, tried, wanted, note)) from exc
    note = "download=False"
    error_type = MissingClassesError if lacking else DataNotFoundError
    raise error_type(_not_found_message(family, root, tried, wanted, note))


def _candidates(family: _Family, root: Path) -> list[_Candidate]:
    """Every place the data may be, in the order they are preferred."""
    if root.is_file():
        candidates = [_Candidate(root, "tar")]
    else:
        # The official files come first: they are the exact release, in its order, and the
        # fastest to read.
        candidates = [
            _Candidate(root, "official"),
            _Candidate(root / family.official_dir, "official"),
            _Candidate(root, "folder"),
            *(_Candidate(root / name, "folder") for name in family.folder_names),
            _Candidate(root / family.official_archive, "tar"),
            *(
                _Candidate(root / f"{stem}{suffix}", "tar")
                for stem in family.archive_stems
                for suffix in TAR_SUFFIXES
            ),
        ]
    # Where a download goes when the root cannot take it (see _download_dir).
    fallback = _download_dir(root) / family.official_dir
    if all(candidate.path != fallback for candidate in candidates):
        candidates.append(_Candidate(fallback, "official"))
    return candidates


def _exists(candidate: _Candidate, family: _Family) -> bool:
    path = candidate.path
    if candidate.kind == "official":
        return all((path / name).is_file() for name in family.official_files)
    if candidate.kind == "folder":
        return (path / "train").is_dir() and (path / "test").is_dir()
    return path.is_file()


def _family_mismatch(decoded: _Decoded, family: _Family) -> str | None:
    """Why ``decoded`` is not a copy of ``family``, or None when it is."""
    if family is _CIFAR10:
        if set(decoded.classes) == set(CIFAR10_LABELS):
            return None
        return f"its classes are not the CIFAR-10 classes: {_shorten(decoded.classes)}"
    strangers = [name for name in decoded.classes if name not in CIFAR100_FINE_LABELS]
    if strangers:
        return f"these classes are not CIFAR-100 fine classes: {_shorten(strangers)}"
    return None


def _shorten(names: Sequence[str], limit: int = 10) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _not_found_message(
    family: _Family,
    root: Path,
    tried: list[str],
    wanted: tuple[str, ...] | None,
    download_note: str,
) -> str:
    head = f"{family.title} not found under {root}"
    if wanted:
        head = f"No {family.title} copy under {root} holds all of {', '.join(wanted)}"
    stems = " or ".join(f"{stem}{TAR_SUFFIXES[0]}" for stem in family.archive_stems)
    return (
        f"{head} ({download_note}).\n"
        f"Looked at:\n" + "\n".join(tried) + "\n"
        f"Provide the data in one of these ways:\n"
        f"  * pass --data DIR to a recipe (data=DIR in Python) or set {DATA_ENV_VAR}=DIR, where "
        f"DIR holds one of:\n"
        f"      {family.official_dir}/  the official python release, as torchvision unpacks it\n"
        f"      {family.official_archive}  the official archive\n"
        f"      {family.folder_names[0]}/{{train,test}}/<class>/*.png  fastai's folder layout "
        f"(labels.txt optional)\n"
        f"      {stems} (.tar.gz, .tar also work)  a tar of that folder layout\n"
        f"    (DIR may also be one of these itself);\n"
        f"  * or allow network access and keep download=True, which fetches the official release "
        f"into {_download_dir(root)}."
    )


def _download_dir(root: Path) -> Path:
    # torchvision unpacks where it downloads, so a root that cannot be written (CI's read-only
    # data folder) downloads into the user's cache instead; an archive given as the root
    # downloads beside it.
    directory = root.parent if root.is_file() else root
    return directory if _is_writable(directory) else _user_cache_home()


def _download_official(family: _Family, destination: Path) -> Path:
    """Fetch and unpack the official release with torchvision; return the batches folder."""
    # Imported here: torchvision takes a second or two to import and most calls never download.
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, family.torchvision_class)
    logger.info("Downloading %s from %s into %s", family.title, dataset_class.url, destination)
    destination.mkdir(parents=True, exist_ok=True)
    # Constructing the test split downloads, checks every file's md5 and unpacks; the batches
    # are then read by this module like any other copy, so the result is cached the same way.
    dataset_class(os.fspath(destination), train=False, download=True)
    return destination / family.official_dir


def _cache_home(root: Path) -> Path:
    # The cache goes beside the data so it lives and dies with it.
    return root.parent if root.is_file() else root


def _is_writable(directory: Path) -> bool:
    """Whether ``directory`` (or the nearest existing folder above it) may be written to.

    As root, ``os.access`` says yes for any folder on a writable file system, so the mode bits
    are checked as well: a folder someone made read-only stays untouched even under root, which
    is how CI mounts its shared data.
    """
    for path in (directory, *directory.parents):
        if path.exists():
            try:
                mode = path.stat().st_mode
            except OSError:
                return False
            return path.is_dir() and os.access(path, os.W_OK | os.X_OK) and bool(mode & 0o222)
    return False


def _load_or_decode(candidate: _Candidate, cache_home: Path) -> _Decoded:
    """Read ``candidate`` from the cache if it is there and intact, else decode and cache it.

    The cache holds the whole source: every class it has, both splits. A CIFAR-100 subset is
    picked from that in memory, which takes milliseconds, so one file per source serves every
    class list, where a file per class list would repeat the same pixels many times over.
    """
    key = _cache_key(candidate)
    cache_dirs = [cache_home / CACHE_DIR_NAME, _user_cache_home() / "cache"]
    for directory in dict.fromkeys(cache_dirs):
        path = directory / f"{key}.safetensors"
        if path.is_file():
            decoded = _read_cache(path)
            if decoded is not None:
                logger.info("Read %s from the cache %s", decoded.source, path)
                return _with_notes(decoded, candidate)

    start = time.perf_counter()
    decoded = _decode_source(candidate)
    count = decoded.train_images.shape[0] + decoded.test_images.shape[0]
    logger.info(
        "Decoded %d images from %s in %.1f s", count, decoded.source, time.perf_counter() - start
    )
    for directory in dict.fromkeys(cache_dirs):
        if not _is_writable(directory):
            logger.info("Cache folder %s is not writable; trying the next one", directory)
            continue
        try:
            _write_cache(directory, key, decoded)
        except OSError as exc:
            logger.warning(
                "Could not write the cache in %s (%s); trying the next one", directory, exc
            )
            continue
        return _with_notes(decoded, candidate)
    logger.warning(
        "No cache folder was writable (%s); %s will be decoded again next time",
        ", ".join(map(str, cache_dirs)),
        decoded.source,
    )
    return _with_notes(decoded, candidate)


def _cache_key(candidate: _Candidate) -> str:
    """``<name>-<where>-<what>``: one prefix per source location, a suffix per source state."""
    path = candidate.path.resolve()
    where = hashlib.sha256(f"{path}|{candidate.kind}".encode()).hexdigest()[:8]
    state = json.dumps([CACHE_FORMAT, _fingerprint(candidate)])
    what = hashlib.sha256(state.encode()).hexdigest()[:16]
    return f"{path.name or 'root'}-{where}-{what}"


def _fingerprint(candidate: _Candidate) -> list:
    """Cheap stand-in for the source's content: sizes and modification times, no reading."""
    path = candidate.path
    if candidate.kind == "tar":
        stat = path.stat()
        return [os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns]
    if candidate.kind == "official":
        return [
            [name, (path / name).stat().st_size, (path / name).stat().st_mtime_ns]
            for name in sorted(os.listdir(path))
            if (path / name).is_file() and not name.startswith(".")
        ]
    # A folder layout: count, total size and newest mtime of the images, plus the newest mtime
    # of the folders themselves, which changes when an image is moved to another class.
    count, total, newest_file, newest_dir = 0, 0, 0, 0
    for split in ("train", "test"):
        for directory, subdirs, files in os.walk(path / split):
            subdirs[:] = sorted(name for name in subdirs if not name.startswith("."))
            newest_dir = max(newest_dir, os.stat(directory).st_mtime_ns)
            for name in files:
                if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."):
                    stat = os.stat(os.path.join(directory, name))
                    count, total = count + 1, total + stat.st_size
                    newest_file = max(newest_file, stat.st_mtime_ns)
    texts = [
        [name, (path / name).stat().st_size, (path / name).stat().st_mtime_ns]
        for name in ("labels.txt", "jpeg-derived.txt")
        if (path / name).is_file()
    ]
    return [count, total, newest_file, newest_dir, texts]


def _write_cache(directory: Path, key: str, decoded: _Decoded) -> None:
    """Write atomically: a reader sees the old file, no file, or the whole new file."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: getattr(decoded, name).contiguous()
        for name in ("train_images", "train_labels", "test_images", "test_labels")
    }
    metadata = {
        "format": CACHE_FORMAT,
        "classes": json.dumps(decoded.classes),
        "source": decoded.source,
        "jpeg_derived": str(decoded.jpeg_derived),
    }
    temp = directory / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        # save_file leaves mode 0600, which would hide a cache in a shared data folder from the
        # other users; an empty file made first shows the mode the umask gives, without
        # changing the process-wide umask.
        temp.touch(exist_ok=False)
        mode = temp.stat().st_mode & 0o777
        save_file(tensors, os.fspath(temp), metadata=metadata)
        os.chmod(temp, mode)
        os.replace(temp, directory / f"{key}.safetensors")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    logger.info("Cached the decoded images in %s", directory / f"{key}.safetensors")

    # Older caches of the same source location are stale now (the source changed); each can be
    # as large as the dataset, so they are removed rather than left to pile up.
    prefix = key.rsplit("-", 1)[0] + "-"
    for stale in directory.iterdir():
        name = stale.name
        if name.startswith(prefix) and name.endswith(".safetensors") and not name.startswith(key):
            stale.unlink(missing_ok=True)


def _read_cache(path: Path) -> _Decoded | None:
    """The cached tensors, or None (after removing the file) when it is damaged or outdated."""
    try:
        with safe_open(os.fspath(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        if metadata.get("format") != CACHE_FORMAT:
            raise ValueError(f"cache format {metadata.get('format')!r}, expected {CACHE_FORMAT}")
        decoded = _Decoded(
            classes=tuple(json.loads(metadata["classes"])),
            train_images=tensors["train_images"],
            train_labels=tensors["train_labels"],
            test_images=tensors["test_images"],
            test_labels=tensors["test_labels"],
            source=metadata["source"],
            jpeg_derived=int(metadata["jpeg_derived"]),
        )
        _check_decoded(decoded)
    # safetensors reports a truncated or garbled file with its own exception types, which are
    # not a stable public API; whatever fails here means "decode again", never a crash.
    except Exception as exc:
        logger.warning("Cache file %s is damaged (%s); decoding the source again", path, exc)
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    return decoded


def _check_decoded(decoded: _Decoded) -> None:
    for split in ("train", "test"):
        images = getattr(decoded, f"{split}_images")
        labels = getattr(decoded, f"{split}_labels")
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"{split} images are {images.dtype} {tuple(images.shape)}")
        if labels.dtype != torch.int64 or tuple(labels.shape) != (images.shape[0],):
            raise ValueError(f"{split} labels are {labels.dtype} {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= len(decoded.classes)):
            raise ValueError(f"{split} labels fall outside the {len(decoded.classes)} classes")


def _decode_source(candidate: _Candidate) -> _Decoded:
    """Decode one source into tensors (the slow step the cache exists for)."""
    if candidate.kind == "official":
        family = next(f for f in _FAMILIES if _exists(candidate, f))
        return _decode_official(
            family,
            lambda name: (candidate.path / name).read_bytes(),
            f"official python release in {candidate.path}",
        )
    if candidate.kind == "folder":
        return _decode_folder(candidate.path)
    return _decode_tar(candidate.path)


def _decode_official(family: _Family, read: Callable[[str], bytes], source: str) -> _Decoded:
    """Read the release's pickled batches: rows of 3,072 bytes, the R, G, B planes row-major."""

    def unpickle(name: str) -> dict:
        try:
            # latin1 is how the Python 2 pickles of the release decode into numpy arrays (the
            # same choice torchvision makes); the files are trusted as torchvision trusts them.
            return pickle.loads(read(name), encoding="latin1")
        except Exception as exc:
            raise DataFormatError(f"{source}: cannot read {name} ({exc!r})") from exc

    classes = tuple(unpickle(family.meta_file)[family.meta_key])
    splits = {}
    for split, names in (("train", family.train_files), ("test", family.test_files)):
        images, labels = [], []
        for name in names:
            batch = unpickle(name)
            data = np.asarray(batch["data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
                raise DataFormatError(
                    f"{source}: {name} holds data of shape {data.shape}, expected (N, 3072)"
                )
            images.append(data.reshape(-1, *IMAGE_SHAPE))
            labels.append(np.asarray(batch[family.label_key], dtype=np.int64))
        splits[f"{split}_images"] = torch.from_numpy(np.ascontiguousarray(np.concatenate(images)))
        splits[f"{split}_labels"] = torch.from_numpy(np.concatenate(labels))
    decoded = _Decoded(classes=classes, source=source, **splits)
    try:
        _check_decoded(decoded)
    except ValueError as exc:
        raise DataFormatError(f"{source}: {exc}") from exc
    return decoded


def _decode_image(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            array = np.asarray(image.convert("RGB"))
    except Exception as exc:
        raise DataFormatError(f"cannot decode the image {where} ({exc!r})") from exc
    if array.shape != (32, 32, 3):
        raise DataFormatError(f"{where} is {array.shape[1]}x{array.shape[0]}, expected 32x32")
    return array


def _decode_folder(path: Path) -> _Decoded:
    images: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    for split in ("train", "test"):
        for class_dir in sorted((path / split).iterdir()):
            if not class_dir.is_dir() or class_dir.name.startswith("."):
                continue
            images[(split, class_dir.name)] = [
                (file.name, _decode_image(file.read_bytes(), os.fspath(file)))
                for file in sorted(class_dir.iterdir())
                if file.suffix.lower() in IMAGE_SUFFIXES and not file.name.startswith(".")
            ]
    texts = {
        name: (path / name).read_text()
        for name in ("labels.txt", "jpeg-derived.txt")
        if (path / name).is_file()
    }
    return _assemble_folder_layout(images, texts, f"fastai folder layout in {path}")


def _decode_tar(path: Path) -> _Decoded:
    """Read a tar member by member, in one pass, as a stream (no unpacking, no seeking)."""
    images: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    texts: dict[str, str] = {}
    official: dict[str, dict[str, bytes]] = {}  # official batches folder name -> file -> bytes
    prefixes: set[PurePosixPath] = set()
    official_names = {name for family in _FAMILIES for name in family.official_files}
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = PurePosixPath(member.name.removeprefix("./")).parts
                name = parts[-1]
                if name.startswith("."):
                    continue
                if (
                    len(parts) >= 2
                    and name in official_names
                    and parts[-2] in {family.official_dir for family in _FAMILIES}
                ):
                    official.setdefault(parts[-2], {})[name] = _read_member(tar, member)
                elif name in ("labels.txt", "jpeg-derived.txt"):
                    texts[name] = _read_member(tar, member).decode()
                elif (
                    len(parts) >= 3
                    and parts[-3] in ("train", "test")
                    and name.lower().endswith(IMAGE_SUFFIXES)
                ):
                    prefixes.add(PurePosixPath(*parts[:-3]))
                    where = f"{member.name} in {path}"
                    image = _decode_image(_read_member(tar, member), where)
                    images.setdefault((parts[-3], parts[-2]), []).append((name, image))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataFormatError(f"{path} is not a readable tar archive ({exc!r})") from exc

    for family in _FAMILIES:
        files = official.get(family.official_dir, {})
        if all(name in files for name in family.official_files):
            return _decode_official(family, files.__getitem__, f"official python release in {path}")
    if len(prefixes) > 1:
        raise DataFormatError(
            f"{path} holds more than one train/test folder layout "
            f"({', '.join(sorted(map(str, prefixes)))}); pack one dataset per archive."
        )
    if not images:
        raise DataFormatError(
            f"{path} holds neither the official batches nor train/<class>/*.png images."
        )
    return _assemble_folder_layout(images, texts, f"fastai folder layout in {path}")


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise DataFormatError(f"cannot read {member.name} from the archive")
    return handle.read()


def _assemble_folder_layout(
    images: dict[tuple[str, str], list[tuple[str, np.ndarray]]],
    texts: dict[str, str],
    source: str,
) -> _Decoded:
    """Stack a folder layout's images, labelled in ``labels.txt`` order (else sorted names)."""
    present = {class_name for (_, class_name), files in images.items() if files}
    if "labels.txt" in texts:
        listed = [line.strip() for line in texts["labels.txt"].splitlines() if line.strip()]
        unlisted = sorted(present - set(listed))
        if unlisted:
            raise DataFormatError(
                f"{source}: labels.txt does not list the class folders {', '.join(unlisted)}; "
                f"add them to it or remove the file to use sorted folder names."
            )
        # A labels.txt may list classes the archive leaves out (all 100 CIFAR-100 names for a
        # 20-class archive): the labels count only the classes present, in the listed order.
        classes = tuple(name for name in listed if name in present)
    else:
        classes = tuple(sorted(present))

    splits = {}
    for split in ("train", "test"):
        arrays, labels = [], []
        for label, class_name in enumerate(classes):
            files = sorted(images.get((split, class_name), []), key=lambda item: item[0])
            arrays.extend(array for _, array in files)
            labels.extend([label] * len(files))
        if not arrays:
            raise DataFormatError(f"{source}: no {split} images ({split}/<class>/*.png)")
        stacked = np.stack(arrays).transpose(0, 3, 1, 2)
        splits[f"{split}_images"] = torch.from_numpy(np.ascontiguousarray(stacked))
        splits[f"{split}_labels"] = torch.tensor(labels, dtype=torch.int64)

    derived = [line for line in texts.get("jpeg-derived.txt", "").splitlines() if line.strip()]
    return _Decoded(classes=classes, source=source, jpeg_derived=len(derived), **splits)


def _with_notes(decoded: _Decoded, candidate: _Candidate) -> _Decoded:
    """Add what a model card should say about how this copy differs from the official one."""
    notes = []
    if decoded.jpeg_derived:
        total = len(decoded.train_labels) + len(decoded.test_labels)
        notes.append(
            f"{decoded.jpeg_derived} of the {total:,} images come from a JPEG copy and are not "
            f"the exact original pixels (listed in jpeg-derived.txt)."
        )
    stem = candidate.path.name
    for suffix in TAR_SUFFIXES:
        stem = stem.removesuffix(suffix)
    if candidate.kind != "official" and stem in _KNOWN_SOURCE_NOTES:
        notes.append(_KNOWN_SOURCE_NOTES[stem])
    return dataclasses.replace(decoded, notes=tuple(notes))
