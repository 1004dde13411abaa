"""Dead-leaves images and their mixing into training data (scoremed.data.dead_leaves)."""
import numpy as np
import pytest
import torch
from scipy import stats
from torch.utils.data import Dataset

from scoremed.data.dead_leaves import WithDeadLeaves, dead_leaves, leaf_radii
from scoremed.data.training import training_dataset
from scoremed.errors import InputError
from scoremed.training.config import config_from_dict


def test_radii_follow_the_inverse_cube_law():
    r_min, r_max = 3.0, 120.0
    radii = leaf_radii(np.random.default_rng(0), 20_000, r_min, r_max)

    def cdf(r):  # of the density ∝ r^-3 on [r_min, r_max]
        return (r_min ** -2 - np.clip(r, r_min, r_max) ** -2) / (r_min ** -2 - r_max ** -2)

    assert radii.min() >= r_min and radii.max() <= r_max
    assert stats.kstest(radii, cdf).pvalue > 0.01


@pytest.mark.parametrize("shape", [(1, 96, 80), (3, 64, 64)])
def test_image_shape_range_and_determinism(shape):
    image = dead_leaves(np.random.default_rng(3), shape)
    assert image.shape == shape and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    np.testing.assert_array_equal(image, dead_leaves(np.random.default_rng(3), shape))
    assert not np.array_equal(image, dead_leaves(np.random.default_rng(4), shape))


def test_images_are_piecewise_flat_with_edges_and_vary_in_contrast():
    contrasts = []
    for seed in range(12):
        image = dead_leaves(np.random.default_rng(seed), (1, 128, 128))[0].astype(np.float64)
        gradient = np.hypot(*np.gradient(image))
        contrasts.append(image.std())
        # most of the image is inside leaves (small gradient), a few pixels are edges
        assert np.median(gradient) < 0.25 * gradient.max()
    assert max(contrasts) > 5 * min(contrasts)  # low- and high-contrast images both occur


class _Constant(Dataset):
    def __len__(self):
        return 400

    def __getitem__(self, index):
        return torch.full((1, 32, 48), -1.0)


def test_mixing_replaces_the_given_share_with_same_shape_images():
    mixed = WithDeadLeaves(_Constant(), 0.3, seed=5)
    items = [mixed[i] for i in range(len(mixed))]
    replaced = [bool((x >= 0).all()) for x in items]
    assert all(x.shape == (1, 32, 48) for x in items)
    assert all(bool((x == -1).all()) for x, r in zip(items, replaced) if not r)
    share = np.mean(replaced)
    assert abs(share - 0.3) < 3 * np.sqrt(0.3 * 0.7 / len(items))
    torch.testing.assert_close(mixed[7], WithDeadLeaves(_Constant(), 0.3, seed=5)[7])


@pytest.mark.parametrize("share", [-0.1, 1.0, 2])
def test_share_out_of_range_is_an_input_error(share):
    with pytest.raises(InputError, match="dead_leaves"):
        WithDeadLeaves(_Constant(), share)
    with pytest.raises(InputError, match="data.dead_leaves"):
        config_from_dict({"data": {"dead_leaves": share}})


def test_training_dataset_mixes_leaves_into_a_builtin_set():
    config = config_from_dict({"data": {"dataset": "ct-phantom", "image_size": 32, "dead_leaves": 0.5}})
    data = training_dataset(config)
    assert isinstance(data, WithDeadLeaves) and data.shape == (1, 32, 32)
    plain = training_dataset(config_from_dict({"data": {"dataset": "ct-phantom", "image_size": 32}}))
    same = [torch.equal(data[i], plain[i]) for i in range(40)]
    assert 5 < sum(same) < 35
