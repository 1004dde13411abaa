"""Pieces shared by the built-in data sets: split names, per-item random streams, the Dataset base."""
from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import torch
from torch.utils.data import Dataset

from scoremed.errors import InputError, MissingDependency

SPLITS = ("train", "val", "test")
DEFAULT_LENGTH = {"train": 100_000, "val": 64, "test": 64}
# val/test items come from these fixed seeds whatever ``seed`` the caller passes, so the
# documented split is the same on every machine; train items come from the caller's seed.
_FIXED_SEED = {"val": 1, "test": 2}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def require(module: str) -> ModuleType:
    """Import an optional dependency of the ``data`` extra, or fail saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependency(
            f"the built-in training data needs the optional package {module!r}; "
            "install it with `pip install 'scoremed[data]'`"
        ) from err


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise InputError(f"split: expected one of {list(SPLITS)}, got {split!r}")
    return split


def item_rng(split: str, seed: int, index: int) -> np.random.Generator:
    """The random stream of one item: seeded by (split, seed, index) for train, (split, index) for val/test."""
    seed = seed if split == "train" else _FIXED_SEED[split]
    return np.random.default_rng([_SPLIT_CODE[split], seed, index])


def rescale_unit(x: torch.Tensor, q: float = 0.995) -> torch.Tensor:
    """Divide by the ``q`` quantile of ``x`` and clip to [0, 1] (robust to a few hot pixels)."""
    top = torch.quantile(x.flatten(), q).clamp_min(1e-6)
    return (x / top).clamp_(0.0, 1.0)


class ItemDataset(Dataset):
    """Map-style data set whose item ``i`` is ``self.sample(self.rng(i), i)``.

    Subclasses implement ``sample`` returning a float32 tensor (C, S, S) in [0, 1], or
    (C, H, W) at the data's own size when ``image_size`` is None (native mode); ``rng``
    defaults to ``item_rng(split, seed, i)``.
    """

    channels = 1

    def __init__(self, split: str = "train", image_size: int | None = 64, length: int | None = None, seed: int = 0):
        self.split = check_split(split)
        if image_size is not None and (isinstance(image_size, bool) or int(image_size) < 8):
            raise InputError(f"image_size: expected an integer >= 8 or None (native size), got {image_size!r}")
        if length is not None and int(length) < 1:
            raise InputError(f"length: expected a positive integer or None, got {length!r}")
        if int(seed) < 0:
            raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
        self.image_size = None if image_size is None else int(image_size)
        self.length = DEFAULT_LENGTH[split] if length is None else int(length)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        index = int(index)
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a data set of length {self.length}")
        return self.sample(self.rng(index), index)

    def rng(self, index: int) -> np.random.Generator:
        return item_rng(self.split, self.seed, index)

    def sample(self, rng: np.random.Generator, index: int) -> torch.Tensor:
        raise NotImplementedError
