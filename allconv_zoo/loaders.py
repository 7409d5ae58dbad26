"""Whole-batch augmentation and fastai DataLoaders over images held as one uint8 tensor.

CIFAR fits in memory many times over (60,000 x 3 x 32 x 32 bytes = 184 MB), so the images stay
one uint8 tensor on the training device and a batch is a single indexing operation. The
augmentation of the reproduction report (random 32x32 crop of the image padded by 4 pixels,
horizontal flip, normalisation) then runs on the whole batch at once on that device, instead of
per image through PIL in worker processes, which on a 2-core CPU costs more than the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader

from allconv_zoo.data import CifarData

__all__ = ["BatchAugment", "TensorBatchLoader", "make_dataloaders"]


class BatchAugment:
    """Crop-from-padding, flip and normalise a whole uint8 batch; used as fastai's ``after_batch``.

    Args:
        mean, std: per-channel statistics in [0, 1].
        pad: pixels of zero padding for the random crop (the report's 4); 0 turns cropping off.
        flip: random horizontal flips with probability 1/2.
        train: augment (True) or only normalise (False, for evaluation).
        channels_last: return the batch in channels_last memory layout.
        seed: seed of the augmentation's own generator, so augmentation repeats across runs and
            its state can be checkpointed without touching the global RNG.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        pad: int = 4,
        flip: bool = True,
        train: bool = True,
        channels_last: bool = False,
        seed: int = 0,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.pad = pad
        self.flip = flip
        self.train = train
        self.channels_last = channels_last
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def crop_and_flip(self, images: torch.Tensor) -> torch.Tensor:
        """Random crops and flips of a uint8 (B, C, H, W) batch, same size out."""
        batch, _, height, width = images.shape
        device = images.device
        # Draw on the CPU generator, so results do not depend on the device they run on.
        if self.pad:
            shifts = torch.randint(0, 2 * self.pad + 1, (2, batch), generator=self.generator)
            padded = F.pad(images, (self.pad,) * 4)
            rows = (shifts[0, :, None] + torch.arange(height)).to(device)
            cols = (shifts[1, :, None] + torch.arange(width)).to(device)
            # One gather for the whole batch: image b takes rows[b] x cols[b] of its padded copy.
            images = padded[
                torch.arange(batch, device=device)[:, None, None, None],
                torch.arange(images.shape[1], device=device)[None, :, None, None],
                rows[:, None, :, None],
                cols[:, None, None, :],
            ]
        if self.flip:
            flips = torch.rand(batch, generator=self.generator) < 0.5
            flips = flips.to(device)[:, None, None, None]
            images = torch.where(flips, images.flip(-1), images)
        return images

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(images.device), self.std.to(images.device)
        floats = images.float().div_(255).sub_(mean).div_(std)
        if self.channels_last:
            floats = floats.contiguous(memory_format=torch.channels_last)
        return floats

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        images, labels = batch
        if self.train:
            images = self.crop_and_flip(images)
        return self.normalize(images), labels


class _ImagesAndLabels:
    """The minimal indexed dataset fastai's DataLoader wants; batches bypass per-item access."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


class TensorBatchLoader(DataLoader):
    """A fastai DataLoader whose batches are slices of in-memory tensors.

    fastai builds each batch item by item and collates it; here ``create_batches`` takes the
    (shuffled) indices of a batch and indexes the image tensor once. Everything else (shuffling
    with its own RNG, ``device``, ``after_batch``, ``new``, ``one_batch``) is fastai's.
    """

    def __init__(self, dataset: _ImagesAndLabels | None = None, **kwargs) -> None:
        super().__init__(dataset=dataset, num_workers=0, **kwargs)

    def create_batches(self, samps):
        indices = torch.as_tensor(list(samps), dtype=torch.long)
        images, labels = self.dataset.images, self.dataset.labels
        for chunk in indices.to(images.device).split(self.bs):
            if self.drop_last and len(chunk) < self.bs:
                return
            yield images[chunk], labels[chunk]

    def state_dict(self) -> dict:
        state = {"rng": self.rng.getstate()}
        if isinstance(self.after_batch, BatchAugment):
            state["augment"] = self.after_batch.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.rng.setstate(state["rng"])
        if "augment" in state and isinstance(self.after_batch, BatchAugment):
            self.after_batch.load_state_dict(state["augment"])


def make_dataloaders(
    data: CifarData,
    *,
    bs: int = 128,
    device: torch.device | str = "cpu",
    limit: int | None = None,
    augment: bool = True,
    channels_last: bool = False,
    seed: int = 0,
    eval_bs: int | None = None,
) -> DataLoaders:
    """fastai ``DataLoaders`` (train, valid = the test split) over ``data``, resident on ``device``.

    Args:
        data: the images and labels as uint8 tensors.
        bs: training batch size.
        device: where the images live and batches are built ("cuda" keeps the dataset on the GPU).
        limit: use only ``limit`` training images (for quick runs and tests): the first ones of
            a fixed permutation, the same for every run and seed. Taking the first images of
            the source instead would give one class only from the folder layouts, which are
            sorted by class.
        augment: crop-from-padding and flip the training batches.
        channels_last: hand the model channels_last batches.
        seed: seeds shuffling and augmentation, so a run repeats exactly.
        eval_bs: evaluation batch size (default: 2 x bs, no gradients to hold).
    """
    if bs < 1:
        raise ValueError(f"Batch size must be at least 1, got {bs}.")
    train_images, train_labels = data.train_images, data.train_labels
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be a positive number of training images, got {limit}.")
        fixed_order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(0))
        chosen = fixed_order[:limit]
        train_images, train_labels = train_images[chosen], train_labels[chosen]
    device = torch.device(device)
    train_set = _ImagesAndLabels(train_images.to(device), train_labels.to(device))
    test_set = _ImagesAndLabels(data.test_images.to(device), data.test_labels.to(device))

    train_augment = BatchAugment(
        data.mean,
        data.std,
        pad=4 if augment else 0,
        flip=augment,
        train=augment,
        channels_last=channels_last,
        seed=seed,
    )
    eval_transform = BatchAugment(data.mean, data.std, train=False, channels_last=channels_last)
    train_loader = TensorBatchLoader(
        train_set,
        bs=bs,
        shuffle=True,
        drop_last=len(train_set) > bs,
        device=device,
        after_batch=train_augment,
    )
    # fastai seeds each DataLoader's shuffling RNG from Python's global one; seed it from ours.
    train_loader.rng.seed(seed)
    valid_loader = TensorBatchLoader(
        test_set, bs=eval_bs or 2 * bs, shuffle=False, device=device, after_batch=eval_transform
    )
    return DataLoaders(train_loader, valid_loader, device=device)
