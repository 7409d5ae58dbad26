"""Tests of allconv_zoo.data: every source layout, CIFAR-100 subsets, errors, and the cache.

The synthetic tests write tiny datasets (a few images per class) in each format the module
reads, so they run in seconds; the tests marked ``real_data`` read the real copies.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import pickle
import socket
import tarfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
from PIL import Image

from allconv_zoo import data
from allconv_zoo.data import (
    CIFAR100_FINE_LABELS,
    CIFAR100_SUBSETS,
    ClassListError,
    DataFormatError,
    DataNotFoundError,
    MissingClassesError,
    UnknownClassError,
    UnknownDatasetError,
    load_cifar10,
    load_cifar100_subset,
    load_dataset,
    resolve_data_root,
)
from allconv_zoo.models import CIFAR10_LABELS, CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN

TRAIN_PER_CLASS = 2
TEST_PER_CLASS = 1
# A few CIFAR-100 classes for the folder-layout sources: enough to pick from, small to write.
SOURCE_CLASSES = ("bear", "tiger", "rose", "clock")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _isolated(request, tmp_path_factory, monkeypatch):
    """Keep the synthetic tests off the user's caches, $ALLCONV_DATA and the network.

    torchvision's download URLs point at a closed local port, so a download that a test did not
    mean to start fails at once (connection refused) through the real download code.
    """
    if request.node.get_closest_marker("real_data"):
        return
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    refused = f"http://127.0.0.1:{_closed_port()}"
    for dataset_class in (torchvision.datasets.CIFAR10, torchvision.datasets.CIFAR100):
        monkeypatch.setattr(dataset_class, "url", f"{refused}/{dataset_class.filename}")


def _home_cache() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "allconv_zoo" / "cache"


def _random_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)


def _per_class(classes: Sequence[str], count: int, seed: int) -> dict[str, np.ndarray]:
    return {name: _random_images(count, seed * 1000 + i) for i, name in enumerate(classes)}


def _stack(images: dict[str, np.ndarray], order: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """What a folder layout must decode to: the classes in label order, files in name order."""
    pixels = np.concatenate([images[name] for name in order])
    labels = np.repeat(np.arange(len(order)), [len(images[name]) for name in order])
    return torch.from_numpy(pixels), torch.from_numpy(labels)


def _write_pickle(path: Path, obj: dict) -> None:
    # Protocol 2, as close to the release's Python 2 pickles as Python 3 writes.
    path.write_bytes(pickle.dumps(obj, protocol=2))


def _write_cifar10_batches(directory: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """The official ``cifar-10-batches-py`` layout with shuffled labels; returns what it holds."""
    rng = np.random.default_rng(seed)
    train_y = rng.permutation(np.repeat(np.arange(10), TRAIN_PER_CLASS))
    test_y = rng.permutation(np.repeat(np.arange(10), TEST_PER_CLASS))
    train_x, test_x = _random_images(len(train_y), seed), _random_images(len(test_y), seed + 1)
    directory.mkdir(parents=True)
    batches = zip(np.array_split(train_x, 5), np.array_split(train_y, 5), strict=True)
    for i, (x, y) in enumerate(batches, start=1):
        _write_pickle(directory / f"data_batch_{i}", _batch(f"training batch {i} of 5", x, y))
    _write_pickle(directory / "test_batch", _batch("testing batch 1 of 1", test_x, test_y))
    meta = {"num_cases_per_batch": 10000, "label_names": list(CIFAR10_LABELS), "num_vis": 3072}
    _write_pickle(directory / "batches.meta", meta)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


def _batch(name: str, x: np.ndarray, y: np.ndarray, label_key: str = "labels") -> dict:
    return {
        "batch_label": name,
        label_key: [int(v) for v in y],
        "data": x.reshape(len(x), -1),
        "filenames": [f"image_{i:05d}.png" for i in range(len(x))],
    }


def _write_cifar100_python(directory: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """The official ``cifar-100-python`` layout, all 100 classes, shuffled labels."""
    rng = np.random.default_rng(seed)
    held = {}
    directory.mkdir(parents=True)
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        y = rng.permutation(np.repeat(np.arange(100), per_class))
        x = _random_images(len(y), seed + len(held))
        batch = _batch(f"{split}ing batch 1 of 1", x, y, label_key="fine_labels")
        batch["coarse_labels"] = [int(v) // 5 for v in y]
        _write_pickle(directory / split, batch)
        held[f"{split}_x"], held[f"{split}_y"] = x, y
    meta = {
        "fine_label_names": list(CIFAR100_FINE_LABELS),
        "coarse_label_names": [f"coarse_{i}" for i in range(20)],
    }
    _write_pickle(directory / "meta", meta)
    return held


def _write_folder_layout(
    directory: Path,
    train: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    labels_txt: Sequence[str] | None = None,
    extra_files: dict[str, str] | None = None,
) -> None:
    """fastai's layout: ``{train,test}/<class>/NNNN.png``, optionally with ``labels.txt``."""
    for split, images in (("train", train), ("test", test)):
        for name, pixels in images.items():
            class_dir = directory / split / name
            class_dir.mkdir(parents=True)
            for i, image in enumerate(pixels):
                Image.fromarray(image.transpose(1, 2, 0)).save(class_dir / f"{i:04d}.png")
    if labels_txt is not None:
        (directory / "labels.txt").write_text("".join(f"{name}\n" for name in labels_txt))
    for name, text in (extra_files or {}).items():
        (directory / name).write_text(text)


def _tar(source: Path, archive: Path, arcname: str) -> Path:
    mode = "w" if archive.suffix == ".tar" else "w:gz"
    with tarfile.open(archive, mode) as tar:
        tar.add(source, arcname=arcname)
    return archive


def _cifar10_tgz(root: Path, seed: int = 0, extra_files: dict[str, str] | None = None):
    """``root/cifar10.tgz`` holding ``cifar10/labels.txt`` and the PNGs; returns the images."""
    train = _per_class(CIFAR10_LABELS, TRAIN_PER_CLASS, seed)
    test = _per_class(CIFAR10_LABELS, TEST_PER_CLASS, seed + 1)
    layout = root.parent / f"{root.name}-layout-{seed}"
    _write_folder_layout(layout, train, test, CIFAR10_LABELS, extra_files)
    root.mkdir(parents=True, exist_ok=True)
    _tar(layout, root / "cifar10.tgz", "cifar10")
    return train, test


def _cifar100_subsets_tgz(root: Path, seed: int = 0):
    """Like the project's ``cifar100-subsets.tgz``: some fine classes, labels.txt of all 100."""
    train = _per_class(SOURCE_CLASSES, TRAIN_PER_CLASS, seed)
    test = _per_class(SOURCE_CLASSES, TEST_PER_CLASS, seed + 1)
    layout = root.parent / f"{root.name}-layout100-{seed}"
    coarse = "".join(f"{name}\tsome_coarse_class\n" for name in SOURCE_CLASSES)
    _write_folder_layout(layout, train, test, CIFAR100_FINE_LABELS, {"coarse.txt": coarse})
    root.mkdir(parents=True, exist_ok=True)
    _tar(layout, root / "cifar100-subsets.tgz", "cifar100")
    return train, test


def _count_decodes(monkeypatch) -> list[Path]:
    """Record each real decode of a source; a cache hit does not call it."""
    calls: list[Path] = []
    original = data._decode_source

    def counting(candidate):
        calls.append(candidate.path)
        return original(candidate)

    monkeypatch.setattr(data, "_decode_source", counting)
    return calls


def _assert_well_formed(dataset) -> None:
    for images, labels in (
        (dataset.train_images, dataset.train_labels),
        (dataset.test_images, dataset.test_labels),
    ):
        assert images.dtype == torch.uint8 and images.is_contiguous()
        assert images.shape[1:] == (3, 32, 32)
        assert labels.dtype == torch.int64 and labels.shape == (images.shape[0],)


# --- where the data is looked for -------------------------------------------------------------


def test_resolve_data_root_prefers_argument_then_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_root() == tmp_path / "xdg" / "allconv_zoo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_data_root() == Path.home() / ".cache" / "allconv_zoo"

    monkeypatch.setenv("ALLCONV_DATA", str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_root(str(tmp_path / "arg")) == tmp_path / "arg"
    assert resolve_data_root("~/x") == Path.home() / "x"


def test_default_root_is_searched_when_nothing_is_given(tmp_path):
    default = resolve_data_root()
    held = _write_cifar10_batches(default / "cifar-10-batches-py")
    dataset = load_cifar10(download=False)
    assert torch.equal(dataset.train_images, torch.from_numpy(held["train_x"]))


# --- each layout, pixel-exact -----------------------------------------------------------------


@pytest.mark.parametrize("as_root", [False, True], ids=["under-root", "is-root"])
def test_official_batches_round_trip_pixel_exact_in_batch_order(tmp_path, as_root):
    held = _write_cifar10_batches(tmp_path / "cifar-10-batches-py")
    root = tmp_path / "cifar-10-batches-py" if as_root else tmp_path

    dataset = load_cifar10(root, download=False)

    _assert_well_formed(dataset)
    assert dataset.name == "cifar10" and dataset.classes == CIFAR10_LABELS
    assert torch.equal(dataset.train_images, torch.from_numpy(held["train_x"]))
    assert torch.equal(dataset.train_labels, torch.from_numpy(held["train_y"]))
    assert torch.equal(dataset.test_images, torch.from_numpy(held["test_x"]))
    assert torch.equal(dataset.test_labels, torch.from_numpy(held["test_y"]))
    assert (dataset.mean, dataset.std) == (CIFAR10_MEAN, CIFAR10_STD)
    assert dataset.num_classes == 10 and dataset.num_train == 20 and dataset.num_test == 10
    assert "official" in dataset.source and "cifar-10-batches-py" in dataset.source
    assert dataset.notes == ()


def test_official_archive_is_read_without_unpacking(tmp_path):
    held = _write_cifar10_batches(tmp_path / "src" / "cifar-10-batches-py")
    root = tmp_path / "root"
    root.mkdir()
    batches = tmp_path / "src" / "cifar-10-batches-py"
    _tar(batches, root / "cifar-10-python.tar.gz", "cifar-10-batches-py")

    dataset = load_cifar10(root, download=False)

    assert torch.equal(dataset.train_images, torch.from_numpy(held["train_x"]))
    assert torch.equal(dataset.test_labels, torch.from_numpy(held["test_y"]))
    assert "cifar-10-python.tar.gz" in dataset.source
    assert not (root / "cifar-10-batches-py").exists()


@pytest.mark.parametrize(
    "labels_txt", [None, tuple(reversed(CIFAR10_LABELS))], ids=["sorted-folders", "labels-txt"]
)
def test_folder_layout_round_trip_in_label_order(tmp_path, labels_txt):
    train = _per_class(CIFAR10_LABELS, TRAIN_PER_CLASS, seed=1)
    test = _per_class(CIFAR10_LABELS, TEST_PER_CLASS, seed=2)
    _write_folder_layout(tmp_path / "cifar10", train, test, labels_txt)
    order = labels_txt or tuple(sorted(CIFAR10_LABELS))

    dataset = load_cifar10(tmp_path, download=False)

    _assert_well_formed(dataset)
    assert dataset.classes == order
    train_x, train_y = _stack(train, order)
    test_x, test_y = _stack(test, order)
    assert torch.equal(dataset.train_images, train_x)
    assert torch.equal(dataset.train_labels, train_y)
    assert torch.equal(dataset.test_images, test_x)
    assert torch.equal(dataset.test_labels, test_y)
    assert "folder layout" in dataset.source


@pytest.mark.parametrize("archive_name", ["cifar10.tgz", "cifar10.tar"])
def test_tar_of_folder_layout_round_trip_and_notes_jpeg_derived_images(tmp_path, archive_name):
    train = _per_class(CIFAR10_LABELS, TRAIN_PER_CLASS, seed=3)
    test = _per_class(CIFAR10_LABELS, TEST_PER_CLASS, seed=4)
    jpeg = "test/horse/0000.png\ntrain/ship/0001.png\n"
    extra = {"jpeg-derived.txt": jpeg}
    _write_folder_layout(tmp_path / "layout", train, test, CIFAR10_LABELS, extra)
    root = tmp_path / "root"
    root.mkdir()
    archive = _tar(tmp_path / "layout", root / archive_name, "cifar10")

    for location in (root, archive):  # the root may also be the archive itself
        dataset = load_cifar10(location, download=False)
        assert dataset.classes == CIFAR10_LABELS
        assert torch.equal(dataset.train_images, _stack(train, CIFAR10_LABELS)[0])
        assert torch.equal(dataset.test_labels, _stack(test, CIFAR10_LABELS)[1])
        assert str(archive) in dataset.source
        assert len(dataset.notes) == 1 and "2 of the 30 images" in dataset.notes[0]
        assert "JPEG" in dataset.notes[0]


def test_cifar100_release_gives_class1_and_class2_in_task_order(tmp_path):
    held = _write_cifar100_python(tmp_path / "cifar-100-python")

    for subset in ("class1", "class2"):
        dataset = load_cifar100_subset(subset, tmp_path, download=False)

        _assert_well_formed(dataset)
        names = CIFAR100_SUBSETS[subset]
        assert dataset.name == f"cifar100_{subset}" and dataset.classes == names
        assert dataset.mean == CIFAR100_MEAN
        assert dataset.num_train == 10 * TRAIN_PER_CLASS and dataset.num_test == 10 * TEST_PER_CLASS
        for split in ("train", "test"):
            fine = held[f"{split}_y"]
            keep = np.isin(fine, [CIFAR100_FINE_LABELS.index(name) for name in names])
            expected_labels = [names.index(CIFAR100_FINE_LABELS[v]) for v in fine[keep]]
            # Kept in the source's order, relabelled 0..9 in the subset's order.
            assert getattr(dataset, f"{split}_labels").tolist() == expected_labels
            expected_images = torch.from_numpy(held[f"{split}_x"][keep])
            assert torch.equal(getattr(dataset, f"{split}_images"), expected_images)


def test_custom_class_list_is_reindexed_in_the_given_order(tmp_path):
    train, test = _cifar100_subsets_tgz(tmp_path)

    dataset = load_cifar100_subset(["rose", "bear"], tmp_path, download=False)

    assert dataset.name == "cifar100_custom" and dataset.classes == ("rose", "bear")
    # The source holds bear before rose and the selection keeps that image order, but the
    # labels follow the order asked for: rose is 0.
    for split, images in (("train", train), ("test", test)):
        count = len(images["bear"])
        expected = np.concatenate([images["bear"], images["rose"]])
        assert torch.equal(getattr(dataset, f"{split}_images"), torch.from_numpy(expected))
        assert getattr(dataset, f"{split}_labels").tolist() == [1] * count + [0] * count
    assert any("not the official CIFAR-100 split" in note for note in dataset.notes)

    same = load_dataset("cifar100: Rose, bear", tmp_path, download=False)
    assert same.classes == ("rose", "bear")
    assert torch.equal(same.train_images, dataset.train_images)


def test_load_dataset_knows_the_recipe_names(tmp_path):
    _write_cifar10_batches(tmp_path / "cifar-10-batches-py")
    _write_cifar100_python(tmp_path / "cifar-100-python")

    assert load_dataset("cifar10", tmp_path, download=False).name == "cifar10"
    assert load_dataset("class1", tmp_path, download=False).name == "cifar100_class1"
    assert load_dataset("cifar100_class2", tmp_path, download=False).name == "cifar100_class2"
    assert load_dataset("cifar100:apple,worm", tmp_path, download=False).classes == (
        "apple",
        "worm",
    )
    with pytest.raises(UnknownDatasetError, match="cifar10"):
        load_dataset("cifar11", tmp_path)


def test_fine_labels_are_the_100_official_names():
    assert len(CIFAR100_FINE_LABELS) == len(set(CIFAR100_FINE_LABELS)) == 100
    assert CIFAR100_FINE_LABELS[:3] == ("apple", "aquarium_fish", "baby")
    assert CIFAR100_FINE_LABELS.index("plate") == 61 and CIFAR100_FINE_LABELS[-1] == "worm"
    for names in CIFAR100_SUBSETS.values():
        assert len(names) == 10 and set(names) <= set(CIFAR100_FINE_LABELS)


# --- errors -----------------------------------------------------------------------------------


def test_no_data_without_download_names_every_path_and_remedy(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_cifar10(tmp_path, download=False)

    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for path in ("cifar-10-batches-py", "cifar10", "cifar-10-python.tar.gz", "cifar10.tgz"):
        assert str(tmp_path / path) in message
    for remedy in ("--data DIR", "ALLCONV_DATA=DIR", "download=True"):
        assert remedy in message


def test_failing_download_is_one_data_not_found_error_with_the_cause_chained(tmp_path):
    # The fixture points torchvision at a closed port: the real download code fails at once.
    with pytest.raises(DataNotFoundError) as info:
        load_cifar10(tmp_path / "data")

    message = str(info.value)
    assert "downloading into" in message and str(tmp_path / "data" / "cifar10.tgz") in message
    assert isinstance(info.value.__cause__, OSError)  # urllib's URLError, chained, not shown raw


def test_unknown_class_lists_the_closest_names():
    with pytest.raises(UnknownClassError, match="tiger"):
        load_cifar100_subset(["tigr", "bear"])
    with pytest.raises(UnknownClassError, match="class1"):
        load_cifar100_subset("clas1")


@pytest.mark.parametrize("classes", [["bear"], "bear", "bear,", []])
def test_fewer_than_two_classes_is_refused(classes):
    with pytest.raises(ClassListError, match="at least 2"):
        load_cifar100_subset(classes)


def test_duplicate_classes_are_refused():
    with pytest.raises(ClassListError, match="bear"):
        load_cifar100_subset(["bear", "lion", "Bear"])


@pytest.mark.parametrize("download", [False, True])
def test_class_missing_from_the_source_says_which_and_where(tmp_path, download):
    _cifar100_subsets_tgz(tmp_path)

    with pytest.raises(MissingClassesError) as info:
        load_cifar100_subset(["apple", "bear", "worm"], tmp_path, download=download)

    message = str(info.value)
    assert str(tmp_path / "cifar100-subsets.tgz") in message
    assert "lacks apple, worm" in message
    assert isinstance(info.value, DataNotFoundError)


def test_cifar10_request_on_a_cifar100_archive_is_not_taken(tmp_path):
    _cifar100_subsets_tgz(tmp_path)
    with pytest.raises(DataNotFoundError, match="not the CIFAR-10 classes"):
        load_cifar10(tmp_path / "cifar100-subsets.tgz", download=False)


def test_image_of_the_wrong_size_is_a_format_error(tmp_path):
    train = _per_class(CIFAR10_LABELS, 1, seed=5)
    _write_folder_layout(tmp_path / "cifar10", train, train)
    Image.new("RGB", (31, 32)).save(tmp_path / "cifar10" / "train" / "cat" / "0000.png")
    with pytest.raises(DataFormatError, match="31x32"):
        load_cifar10(tmp_path, download=False)


# --- the cache --------------------------------------------------------------------------------


def test_cache_is_written_beside_the_data_and_reused(tmp_path, monkeypatch):
    decodes = _count_decodes(monkeypatch)
    train, _ = _cifar10_tgz(tmp_path / "root")

    first = load_cifar10(tmp_path / "root", download=False)
    second = load_cifar10(tmp_path / "root", download=False)

    assert len(decodes) == 1
    (cache,) = (tmp_path / "root" / ".allconv_cache").glob("*.safetensors")
    # Readable by others as the umask allows, not safetensors' 0600: data folders are shared.
    umask = os.umask(0)
    os.umask(umask)
    assert cache.stat().st_mode & 0o777 == 0o666 & ~umask
    assert torch.equal(second.train_images, _stack(train, CIFAR10_LABELS)[0])
    assert torch.equal(first.test_labels, second.test_labels)
    assert second.source == first.source and second.notes == first.notes


def test_cache_is_invalidated_when_the_archive_changes(tmp_path, monkeypatch):
    decodes = _count_decodes(monkeypatch)
    root = tmp_path / "root"
    _cifar10_tgz(root, seed=0)
    load_cifar10(root, download=False)

    (root / "cifar10.tgz").unlink()
    train, _ = _cifar10_tgz(root, seed=7)
    stat = (root / "cifar10.tgz").stat()
    # Same-size archives written in the same clock tick would look unchanged; move time on.
    os.utime(root / "cifar10.tgz", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    dataset = load_cifar10(root, download=False)

    assert len(decodes) == 2
    assert torch.equal(dataset.train_images, _stack(train, CIFAR10_LABELS)[0])
    # The stale cache of the old archive is gone, not left to pile up.
    assert len(list((root / ".allconv_cache").glob("*.safetensors"))) == 1


def test_cache_is_invalidated_when_a_folder_image_changes(tmp_path, monkeypatch):
    decodes = _count_decodes(monkeypatch)
    train = _per_class(CIFAR10_LABELS, TRAIN_PER_CLASS, seed=1)
    _write_folder_layout(tmp_path / "cifar10", train, train, CIFAR10_LABELS)
    load_cifar10(tmp_path, download=False)
    load_cifar10(tmp_path, download=False)
    assert len(decodes) == 1

    changed = tmp_path / "cifar10" / "train" / "bird" / "0001.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    dataset = load_cifar10(tmp_path, download=False)

    assert len(decodes) == 2
    assert int(dataset.train_images[2 * TRAIN_PER_CLASS + 1].max()) == 0


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch, damage):
    decodes = _count_decodes(monkeypatch)
    train, _ = _cifar10_tgz(tmp_path)
    load_cifar10(tmp_path, download=False)
    (cache,) = (tmp_path / ".allconv_cache").glob("*.safetensors")
    content = cache.read_bytes()
    cache.write_bytes(content[: len(content) // 2] if damage == "truncate" else b"\x00" * 64)

    dataset = load_cifar10(tmp_path, download=False)
    assert len(decodes) == 2
    assert torch.equal(dataset.train_images, _stack(train, CIFAR10_LABELS)[0])
    load_cifar10(tmp_path, download=False)
    assert len(decodes) == 2  # the rebuilt file is whole again


def test_read_only_data_folder_caches_in_the_home_cache(tmp_path, monkeypatch):
    """A chmod 555 data folder is not written to, the cache goes to $XDG_CACHE_HOME.

    The tests run as root, where chmod does not stop writes; data._is_writable also honours the
    mode bits for that reason, so this test checks the real behaviour under root too.
    """
    decodes = _count_decodes(monkeypatch)
    root = tmp_path / "root"
    _cifar10_tgz(root)
    root.chmod(0o555)
    try:
        load_cifar10(root, download=False)
        dataset = load_cifar10(root, download=False)
    finally:
        root.chmod(0o755)

    assert len(decodes) == 1
    assert not (root / ".allconv_cache").exists()
    assert len(list(_home_cache().glob("*.safetensors"))) == 1
    assert dataset.num_train == 10 * TRAIN_PER_CLASS


def test_cache_write_failure_falls_back_to_the_home_cache(tmp_path, monkeypatch):
    # A read-only file system looks writable by its mode bits; the write itself fails there.
    decodes = _count_decodes(monkeypatch)
    _cifar10_tgz(tmp_path / "root")
    real_save = data.save_file

    def save_file(tensors, filename, metadata=None):
        if str(filename).startswith(str(tmp_path / "root")):
            raise OSError(30, "Read-only file system", filename)
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(data, "save_file", save_file)
    load_cifar10(tmp_path / "root", download=False)
    load_cifar10(tmp_path / "root", download=False)

    assert len(decodes) == 1
    assert len(list(_home_cache().glob("*.safetensors"))) == 1
    assert not list((tmp_path / "root" / ".allconv_cache").glob("*"))  # no temp file left


# --- the real download code path, served locally ----------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_through_torchvision_from_a_local_server(tmp_path, monkeypatch):
    batches = tmp_path / "build" / "cifar-10-batches-py"
    held = _write_cifar10_batches(batches)
    served = tmp_path / "served"
    served.mkdir()
    archive = _tar(batches, served / "cifar-10-python.tar.gz", "cifar-10-batches-py")

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=os.fspath(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cifar10 = torchvision.datasets.CIFAR10
    port = server.server_address[1]
    monkeypatch.setattr(cifar10, "url", f"http://127.0.0.1:{port}/cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar10, "tgz_md5", _md5(archive))
    # torchvision checks every unpacked file against its md5; these are the tiny files' sums.
    train_list = [[name, _md5(batches / name)] for name, _ in cifar10.train_list]
    monkeypatch.setattr(cifar10, "train_list", train_list)
    monkeypatch.setattr(cifar10, "test_list", [["test_batch", _md5(batches / "test_batch")]])
    monkeypatch.setattr(cifar10, "meta", {**cifar10.meta, "md5": _md5(batches / "batches.meta")})
    root = tmp_path / "data"
    try:
        dataset = load_cifar10(root)
    finally:
        server.shutdown()
        server.server_close()

    assert (root / "cifar-10-python.tar.gz").is_file()
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert torch.equal(dataset.train_images, torch.from_numpy(held["train_x"]))
    assert torch.equal(dataset.test_labels, torch.from_numpy(held["test_y"]))
    assert "official" in dataset.source
    # Once there, it is found without the network.
    assert load_cifar10(root, download=False).num_train == 10 * TRAIN_PER_CLASS


# --- the real data ----------------------------------------------------------------------------


def _load_real(loader, *args):
    try:
        return loader(*args, download=False)
    except DataNotFoundError as exc:
        pytest.skip(f"real data not there: {str(exc).splitlines()[0]}")


def _channel_mean(images: torch.Tensor) -> list[float]:
    # Summed in chunks: a float copy of all 50,000 images would take 600 MB.
    total = torch.zeros(3, dtype=torch.int64)
    for chunk in images.split(5000):
        total += chunk.sum(dim=(0, 2, 3), dtype=torch.int64)
    return (total.double() / (images.shape[0] * 32 * 32 * 255)).tolist()


@pytest.mark.real_data
def test_real_cifar10_is_complete_with_the_official_statistics(real_data_root):
    start = time.perf_counter()
    dataset = _load_real(load_cifar10, real_data_root)
    first = time.perf_counter() - start
    start = time.perf_counter()
    again = load_cifar10(real_data_root, download=False)
    cached = time.perf_counter() - start
    print(f"first load {first:.1f} s, cached load {cached:.1f} s")

    _assert_well_formed(dataset)
    assert dataset.classes == CIFAR10_LABELS
    assert dataset.num_train == 50_000 and dataset.num_test == 10_000
    assert torch.bincount(dataset.train_labels).tolist() == [5000] * 10
    assert torch.bincount(dataset.test_labels).tolist() == [1000] * 10
    assert [round(v, 3) for v in _channel_mean(dataset.train_images)] == [
        round(v, 3) for v in CIFAR10_MEAN
    ]
    assert torch.equal(again.train_images, dataset.train_images)
    assert cached < 15, "a cached load should take seconds"
    if dataset.source.endswith("cifar10.tgz"):  # the project's copy, with 98 JPEG images
        assert any("98 of the 60,000 images" in note for note in dataset.notes)


@pytest.mark.real_data
@pytest.mark.parametrize("subset", ["class1", "class2"])
def test_real_cifar100_subsets_hold_500_and_100_per_class(real_data_root, subset):
    dataset = _load_real(load_cifar100_subset, subset, real_data_root)

    _assert_well_formed(dataset)
    assert dataset.classes == CIFAR100_SUBSETS[subset]
    assert dataset.num_train == 5000 and dataset.num_test == 1000
    assert torch.bincount(dataset.train_labels).tolist() == [500] * 10
    assert torch.bincount(dataset.test_labels).tolist() == [100] * 10
    if "cifar100-subsets" in dataset.source:
        assert any("not the official CIFAR-100 split" in note for note in dataset.notes)
