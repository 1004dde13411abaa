"""Training data: the built-in data sets (brain, phantoms, natural) and the user's files.

- :mod:`.builtin`: ``get_dataset`` (fixed-size or native), default test images;
- :mod:`.brain`, :mod:`.phantoms`, :mod:`.natural`: the three built-in sets and their splits;
- :mod:`.files`: user files (NIfTI, DICOM, fastMRI HDF5, images, .npy) as 2D training slices;
- :mod:`.dead_leaves`: procedural dead-leaves images mixed into any of them (``data.dead_leaves``);
- :mod:`.training`: the data set a training config asks for (fixed-size or full resolution).
"""
from scoremed.data.builtin import (
    DATASETS, SPLITS, channels_of, default_test_image, get_dataset, make_default_test_images,
)
from scoremed.data.training import full_resolution_dataset, training_dataset

__all__ = ["DATASETS", "SPLITS", "channels_of", "default_test_image", "full_resolution_dataset", "get_dataset",
           "make_default_test_images", "training_dataset"]
