"""Built-in training data sets: shapes, ranges, fixed splits, contrast synthesis, test images."""
import warnings

import numpy as np
import pytest
import torch

from scoremed.data import (
    DATASETS, channels_of, default_test_image, get_dataset, make_default_test_images,
)
from scoremed.data import brain, natural, phantoms
from scoremed.errors import InputError

needs = {"mri-brain": "nilearn", "natural": "sklearn", "ct-phantom": "scipy"}


@pytest.fixture(params=list(DATASETS))
def name(request):
    pytest.importorskip(needs[request.param])
    return request.param


@pytest.mark.parametrize("split", ["train", "val", "test"])
@pytest.mark.parametrize("size", [32, 64])
def test_items_shape_dtype_range(name, split, size):
    ds = get_dataset(name, split, image_size=size, length=3 if split == "train" else None)
    assert len(ds) == (3 if split == "train" else 64)
    for i in range(3):
        x = ds[i]
        assert type(x) is torch.Tensor and x.dtype == torch.float32
        assert x.shape == (channels_of(name), size, size)
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.3
    with pytest.raises(IndexError):
        ds[len(ds)]


@pytest.mark.parametrize("split", ["val", "test"])
def test_val_test_fixed_whatever_the_seed(name, split):
    a, b = get_dataset(name, split, seed=0), get_dataset(name, split, seed=7)
    for i in (0, 5, 63):
        assert torch.equal(a[i], b[i])
    assert not torch.equal(a[0], a[1])


def test_train_depends_on_seed_and_index(name):
    a, b = get_dataset(name, "train", length=4, seed=0), get_dataset(name, "train", length=4, seed=1)
    assert torch.equal(a[2], get_dataset(name, "train", length=4, seed=0)[2])
    assert not torch.equal(a[2], b[2]) and not torch.equal(a[2], a[3])


def test_brain_splits_are_slabs_with_gaps():
    pytest.importorskip("nilearn")
    s = {k: np.array(brain.split_slices(k)) for k in ("train", "val", "test")}
    assert len(s["train"]) > 60 and len(s["val"]) == len(s["test"]) == 8
    for held in ("val", "test"):
        assert np.all(np.diff(s[held]) == 1)  # one contiguous slab
        assert np.abs(s["train"][:, None] - s[held][None, :]).min() > brain.GAP
    assert np.abs(s["val"][:, None] - s["test"][None, :]).min() > brain.GAP


def test_natural_splits_use_different_photos():
    sets = [set(p) for p in natural.SPLIT_PHOTOS.values()]
    assert sum(map(len, sets)) == len(set.union(*sets))
    assert natural.SPLIT_PHOTOS["test"] == ("china", "flower")


def test_phantom_numbers_disjoint():
    n = 100_000
    ranges = {split: (phantoms.phantom_number(split, 0), phantoms.phantom_number(split, n - 1))
              for split in ("val", "test")}
    ranges.update({f"train{s}": (phantoms.phantom_number("train", 0, s), phantoms.phantom_number("train", n - 1, s))
                   for s in (0, 1, 2)})
    spans = sorted(ranges.values())
    assert all(hi < next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))


def test_contrast_orderings():
    pytest.importorskip("nilearn")
    maps = brain.tissue_maps(64)[92]  # (template, CSF, GM, WM)
    tissue = {k: maps[i + 1] > 0.8 for i, k in enumerate(("csf", "gm", "wm"))}
    rng = np.random.default_rng(0)
    for _ in range(5):
        mean = {c: {k: brain.synthesize(maps, c, rng)[0][m].mean() for k, m in tissue.items()}
                for c in ("t1", "t2", "pd")}
        assert mean["t1"]["wm"] > mean["t1"]["gm"] > mean["t1"]["csf"]
        assert mean["t2"]["csf"] > mean["t2"]["gm"] > mean["t2"]["wm"]
        assert mean["pd"]["gm"] >= mean["pd"]["wm"] and mean["pd"]["csf"] > 0.4
    assert torch.equal(brain.synthesize(maps, "template", rng), maps[:1])
    with pytest.raises(ValueError):
        brain.synthesize(maps, "flair", rng)


@pytest.mark.parametrize("size", [32, 64, 65])
def test_phantom_only_inside_inscribed_disc(size):
    from skimage.transform import radon

    disc = phantoms.inscribed_disc(size)
    for k in range(6):
        img = phantoms.render_phantom(np.random.default_rng(k), size)
        assert np.all(img[~disc] == 0.0) and img[disc].max() > 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # skimage warns about content outside its circle
            radon(img, theta=np.array([0.0, 45.0]), circle=True)


def test_phantom_regions_and_hu_window():
    for region in phantoms.REGIONS:
        assert phantoms.render_phantom(np.random.default_rng(0), 32, region).shape == (32, 32)
    with pytest.raises(InputError):
        phantoms.render_phantom(np.random.default_rng(0), 32, "head")
    assert np.allclose(phantoms.hu_to_unit(np.array([-2000.0, -1000.0, 0.0, 1000.0, 3000.0])),
                       [0.0, 0.0, 0.5, 1.0, 1.0])


def test_unknown_name_or_split():
    with pytest.raises(InputError, match="mri-brain.*ct-phantom.*natural"):
        get_dataset("knee")
    with pytest.raises(InputError, match="split"):
        get_dataset("ct-phantom", "validation")
    with pytest.raises(InputError):
        channels_of("knee")
    with pytest.raises(InputError):
        default_test_image("knee")
    assert [channels_of(n) for n in DATASETS] == [1, 1, 3]


def test_default_test_images(tmp_path):
    for n in DATASETS:
        x = default_test_image(n)
        assert x.dtype == torch.float32 and x.shape == (channels_of(n), 64, 64)
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.1
    pytest.importorskip("nilearn")
    pytest.importorskip("sklearn")
    written = make_default_test_images(tmp_path)
    assert sorted(written) == sorted([*DATASETS, *(f"{n}-native" for n in DATASETS)])
    for n in DATASETS:
        assert np.allclose(np.load(written[n]), default_test_image(n).numpy(), atol=1e-4)
        assert np.allclose(np.load(written[f"{n}-native"]), default_test_image(n, native=True).numpy(), atol=1e-4)
