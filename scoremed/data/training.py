"""The training data set a config asks for: a built-in data set or the user's files.

- :func:`training_dataset`: whole images resized to ``data.image_size`` (fixed-size priors);
- :func:`full_resolution_dataset`: images at their own size (patch priors cut patches from them).
"""
from __future__ import annotations

from torch.utils.data import Dataset

from scoremed.training.config import Config


def training_dataset(config: Config) -> Dataset:
    """Map-style training dataset for ``config``: (C, S, S) float32 images in [0, 1], or for a
    patch prior (``data.patch_size`` > 0) (patch (C, P, P), position (2, P, P)) items cut from
    ``data.pool_size`` full-resolution images. A share ``data.dead_leaves`` of the images is
    replaced by dead-leaves images (:mod:`scoremed.data.dead_leaves`)."""
    data, seed = config.data, config.training.seed
    if data.patch_size:
        from scoremed.training.patches import PatchDataset, image_pool

        images = _with_dead_leaves(full_resolution_dataset(data, "train", seed=seed), data.dead_leaves, seed)
        return PatchDataset(image_pool(images, data.pool_size), data.patch_size, seed=seed)
    if data.paths:
        from scoremed.data.files import file_dataset

        return _with_dead_leaves(file_dataset(data), data.dead_leaves, seed)
    from scoremed.data.builtin import get_dataset

    images = get_dataset(data.dataset, "train", image_size=data.image_size, seed=seed)
    return _with_dead_leaves(images, data.dead_leaves, seed)


def _with_dead_leaves(dataset: Dataset, share: float, seed: int) -> Dataset:
    if not share:
        return dataset
    from scoremed.data.dead_leaves import WithDeadLeaves

    return WithDeadLeaves(dataset, share, seed)


def full_resolution_dataset(data_config, split: str = "train", seed: int = 0) -> Dataset:
    """Map-style dataset of float32 images (C, H, W) in [0, 1] at the data's own size.

    ``data_config`` is a :class:`scoremed.training.config.DataConfig`. With ``paths`` set:
    every non-empty 2D slice of the user's files at its native in-plane grid (sizes may
    differ between items; ``split`` is ignored, the files are the training data). Otherwise
    the built-in set ``dataset`` in native mode (``get_dataset(..., image_size=None)``):
    train items are fresh random samples per index, val/test fixed finite sets.
    """
    if data_config.paths:
        from scoremed.data.files import file_dataset

        return file_dataset(data_config, native=True)
    from scoremed.data.builtin import get_dataset

    return get_dataset(data_config.dataset, split, image_size=None, seed=seed)
