"""The training data set a config asks for: a built-in data set or the user's files."""
from __future__ import annotations

from torch.utils.data import Dataset

from scoremed.training.config import Config


def training_dataset(config: Config) -> Dataset:
    """Map-style dataset of (C, S, S) float32 images in [0, 1] for ``config``."""
    data = config.data
    if data.paths:
        from scoremed.io.training_files import file_dataset

        return file_dataset(data)
    from scoremed.datasets import get_dataset

    return get_dataset(data.dataset, "train", image_size=data.image_size, seed=config.training.seed)
