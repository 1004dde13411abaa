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


# --- native resolution (image_size=None) ----------------------------------------------------
NATIVE_SHAPE = {"mri-brain": (1, 256, 256), "ct-phantom": (1, 512, 512)}


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_native_items_shape_and_range(name, split):
    ds = get_dataset(name, split, image_size=None, length=2 if split == "train" else None)
    for i in range(2):
        x = ds[i]
        assert type(x) is torch.Tensor and x.dtype == torch.float32 and x.shape[0] == channels_of(name)
        if name in NATIVE_SHAPE:
            assert x.shape == NATIVE_SHAPE[name]
        elif split == "train":
            assert min(x.shape[1:]) >= natural.NATIVE_MIN_CROP
        else:
            assert x.shape[1:] == (natural.NATIVE_EVAL_SIZE, natural.NATIVE_EVAL_SIZE)
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.3


def test_native_val_test_fixed_train_random(name):
    a, b = get_dataset(name, "test", image_size=None, seed=0), get_dataset(name, "test", image_size=None, seed=3)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[0], a[1])
    train = get_dataset(name, "train", image_size=None, length=3)
    again = get_dataset(name, "train", image_size=None, length=3)
    assert torch.equal(train[2], again[2]) and not torch.equal(train[1], train[2])


def test_full_resolution_dataset_builtin():
    from scoremed.data import full_resolution_dataset
    from scoremed.training.config import DataConfig

    ds = full_resolution_dataset(DataConfig(dataset="ct-phantom"), split="val")
    assert ds[0].shape == (1, 512, 512) and torch.equal(ds[0], get_dataset("ct-phantom", "val", image_size=None)[0])


def test_brain_native_orientation_matches_slice_geometry():
    pytest.importorskip("nilearn")
    from scoremed.io.slices import SliceGeometry
    from scoremed.data import brain_native

    volume = np.random.default_rng(0).random((5, 6, 7))
    for orientation, axis in (("sagittal", 0), ("coronal", 1), ("axial", 2)):
        expected = SliceGeometry.for_volume(volume.shape, np.eye(4), axis).to_slices(volume)[3]
        assert np.array_equal(brain_native.display_slice(volume, orientation, 3), expected)


def test_brain_native_no_train_voxel_near_a_held_out_slab():
    pytest.importorskip("nilearn")
    from scoremed.data import brain_native as bn

    held = set()
    for slab in (brain.VAL_SLAB, brain.TEST_SLAB):
        held.update(range(slab.start - brain.GAP, slab.stop + brain.GAP))
    slices = bn.train_slices()
    assert {s[0] for s in slices} == set(bn.ORIENTATIONS)
    assert not held & {k for o, k, _ in slices if o == "axial"}
    nz = brain._volumes()["mask"].shape[2]
    for orientation, half in (("coronal", "inferior"), ("coronal", "superior"), ("sagittal", "inferior"),
                              ("sagittal", "superior")):
        ks = [k for o, k, h in slices if (o, h) == (orientation, half)]
        k = ks[len(ks) // 2]
        ch = bn.slice_channels(orientation, k, half)
        z = nz - 1 - np.arange(ch.shape[1])              # display rows run superior -> inferior
        rows = np.isin(z, sorted(held))
        assert ch[1:4].sum() > 0 and not ch[:4, rows].any() and np.isinf(ch[4, rows]).all()
    # the held-out slabs themselves are axial slices of the slabs only
    assert bn.native_item("test", 4, np.random.default_rng(0), None).shape == (1, 256, 256)


def test_phantom_trabecular_bone_has_rim_and_fine_structure():
    from scoremed.data import phantom_texture as tex

    n = 96
    yy, xx = np.mgrid[:n, :n] - n / 2
    bone = (xx ** 2 + yy ** 2 <= 40 ** 2).astype(float)
    hu = np.where(bone > 0, 300.0, 40.0)
    interior = tex.trabecular_bone(hu, bone, np.random.default_rng(1))
    rim = (bone > 0.5) & ~interior
    assert interior.sum() > 0.8 * bone.sum() and rim.any()
    assert hu[rim].min() >= 800 and hu[~(bone > 0.5)].max() == 40.0
    inner = hu[interior]
    assert inner.std() > 100 and -100 < inner.mean() < 500   # marrow + trabeculae, not flat
    # fine structure: most of the interior's variance is at scales below ~4 px (3 mm)
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(hu, 2.0)
    assert np.var((hu - smooth)[interior]) > 0.3 * np.var(inner)


def test_phantom_vessel_tree_branches_and_tapers():
    from scipy.ndimage import label

    from scoremed.data import phantom_texture as tex

    tree = tex.vessel_tree((200, 200), (100, 20), (0.0, 1.0), 3.0, np.random.default_rng(2), depth=6)
    assert 0 <= tree.min() and tree.max() <= 1
    parts, count = label(tree > 0.5)
    assert count == 1                                              # one connected tree
    assert 0.01 < (tree > 0.5).mean() < 0.2
    assert (tree[:, 20:40] > 0.5).sum(1).max() >= 5               # trunk ~6 px wide near the root


def test_ct_noise_is_correlated_with_given_std():
    from scoremed.data import phantom_texture as tex

    noise = tex.ct_noise(np.random.default_rng(3), (128, 128), 20.0)
    assert noise.std() == pytest.approx(20.0, rel=1e-6)
    power = np.abs(np.fft.fft2(noise)) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    low, mid, high = (power[(f > lo) & (f <= hi)].mean() for lo, hi in ((0, 0.02), (0.08, 0.2), (0.6, 0.71)))
    assert power[0, 0] < 1e-6 * mid and mid > 3 * low and mid > 3 * high   # ramp x apodisation, not white


@pytest.mark.parametrize("region", ["thorax", "abdomen", "pelvis", "head"])
def test_native_phantom_regions_inside_disc_and_textured(region):
    from scipy.ndimage import gaussian_filter

    from scoremed.data import phantoms_native as pn

    img = pn.render_native(np.random.default_rng(4), region, noise=False)
    flat = phantoms.render_phantom(np.random.default_rng(4), pn.NATIVE_SIZE, "pelvis" if region == "head" else region)
    disc = phantoms.inscribed_disc(pn.NATIVE_SIZE)
    assert img.shape == (512, 512) and np.all(img[~disc] == 0) and 0 <= img.min() and img.max() <= 1
    bone = img > (200 + 1000) / 2000
    assert bone.any()

    def fine(x):  # high-frequency energy inside bone (scales below ~2 mm)
        hp = x - gaussian_filter(x, 1.5)
        return np.mean(hp[x > 0.6] ** 2)

    assert fine(img) > 2 * fine(flat)


def test_a_missing_optional_package_is_a_clear_input_error():
    from scoremed.data._common import require
    from scoremed.errors import InputError, MissingDependency

    with pytest.raises(MissingDependency, match=r"scoremed\[data\]") as info:
        require("scoremed_no_such_package")
    assert isinstance(info.value, InputError) and isinstance(info.value, ImportError)
