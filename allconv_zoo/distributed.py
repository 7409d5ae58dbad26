"""Data-parallel training through fastai's own distributed support, on CPUs (gloo) and GPUs.

A process started by ``torchrun`` (or ``accelerate launch``) finds its rank and the world size
in its environment; ``train_run`` then shards every epoch with fastai's ``DistributedDL``, wraps
the model in DistributedDataParallel with fastai's ``Learner.distrib_ctx`` (which drives
Hugging Face ``accelerate``), and leaves every file of the run folder to rank 0.

fastai's ``DistributedDL`` broadcasts each epoch's shuffled indices from rank 0 as a CUDA
tensor, which the gloo backend of a CPU run cannot send; ``TensorDistributedDL`` broadcasts on
the backend's own device and hands the resume state of the loader it wraps through. The batches
themselves are still built by ``TensorBatchLoader.create_batches`` from the rank's indices.

Batch size and learning rate: ``bs`` is per process, so the global batch is ``bs x world
size``, and the learning rate is used as given, not scaled. To train a preset's global batch on
N processes pass ``bs = preset / N``; to keep ``bs`` per process and scale the learning rate
linearly with the global batch (Goyal et al., 2017), pass ``lr x N`` yourself.
"""

from __future__ import annotations

# fastai.distributed fails at import (a NameError) without accelerate: import it first, so that
# its absence is an ImportError the caller can turn into an install hint.
import accelerate  # noqa: F401
import torch
from fastai.data.core import DataLoaders
from fastai.distributed import DistributedDL

__all__ = ["TensorDistributedDL", "distributed_dataloaders"]


class TensorDistributedDL(DistributedDL):
    """fastai's ``DistributedDL`` over a ``TensorBatchLoader``, for gloo as well as nccl.

    Every rank's loader shuffles with the same seeded RNG and augments with the same seeded
    generator, so all ranks hold the same loader state and rank 0's checkpoint resumes every
    rank. (Image i of rank r's batch gets the crop of image i of rank 0's; the images differ.)
    """

    def _broadcast(self, values: list[int], rank: int) -> list[int]:
        # nccl sends CUDA tensors only, gloo CPU ones; fastai's version always uses CUDA.
        on_cuda = torch.distributed.get_backend() == "nccl"
        tensor = torch.tensor(values, dtype=torch.long, device="cuda" if on_cuda else "cpu")
        torch.distributed.broadcast(tensor, rank)
        return tensor.cpu().tolist()

    def state_dict(self) -> dict:
        return self.dl.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.dl.load_state_dict(state)


def distributed_dataloaders(dls: DataLoaders) -> DataLoaders:
    """``dls`` with each loader sharded over the ranks.

    The process group must exist by the first batch; ``Learner.distrib_ctx`` starts it.
    """
    return DataLoaders(*(TensorDistributedDL(dl) for dl in dls.loaders), device=dls.device)
