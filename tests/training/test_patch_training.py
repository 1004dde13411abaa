"""Random training patches: the crop, its position and the zero background."""
from __future__ import annotations

import pytest
import torch

import scoremed
from scoremed.errors import InputError
from scoremed.training import Trainer
from scoremed.training.config import config_from_dict
from scoremed.training.patches import PatchDataset, crop_with_background, image_pool


def test_patch_is_the_window_at_its_position():
    image = torch.arange(2 * 10 * 12, dtype=torch.float32).reshape(2, 10, 12)
    ds = PatchDataset([image], patch_size=6, length=200, seed=3, flip=False)
    for i in range(200):
        patch, pos = ds[i]
        rows = ((pos[0, :, 0] + 1) * 10 / 2 - 0.5).round().long()
        cols = ((pos[1, 0, :] + 1) * 12 / 2 - 0.5).round().long()
        inside = (rows[:, None] >= 0) & (rows[:, None] < 10) & (cols[None] >= 0) & (cols[None] < 12)
        assert inside.any()                                      # every patch overlaps the image
        expect = image[:, rows.clamp(0, 9)][:, :, cols.clamp(0, 11)] * inside
        torch.testing.assert_close(patch, expect)


def test_corners_cover_every_overlapping_window():
    ds = PatchDataset([torch.ones(1, 5, 5)], patch_size=3, length=3000, seed=0, flip=False)
    tops = {int(((ds[i][1][0, 0, 0] + 1) * 5 / 2 - 0.5).round()) for i in range(3000)}
    assert tops == set(range(-2, 5))


def test_crop_with_background_outside_is_zero():
    patch = crop_with_background(torch.ones(1, 4, 4), -3, 2, 4)
    assert patch.sum() == 2 and patch[0, 3, :2].tolist() == [1.0, 1.0]


def test_images_smaller_than_the_patch_are_refused():
    with pytest.raises(InputError, match="patch_size: 32 is larger"):
        PatchDataset([torch.ones(1, 40, 40), torch.ones(1, 20, 64)], patch_size=32)


def test_image_pool_spreads_over_the_indices():
    pool = image_pool([torch.full((1, 2, 2), float(i)) for i in range(100)], 5)
    assert [int(p[0, 0, 0]) for p in pool] == [0, 25, 50, 74, 99]


def test_patch_prior_trains_and_scores_any_size(tmp_path):
    config = config_from_dict({
        "name": "patch-smoke", "data": {"channels": 1, "patch_size": 16},
        "sde": {"kind": "vesde", "sigma_min": 0.01, "sigma_max": 10.0, "N": 100},
        "model": {"channels": [8, 16], "attention_levels": [False, False], "num_head_channels": 8,
                  "norm_num_groups": 4},
        "training": {"steps": 4, "batch_size": 4, "warmup": 1, "checkpoint_every": 4, "log_every": 2}})
    images = [torch.rand(1, 24, 40), torch.rand(1, 33, 20)]
    Trainer(config, PatchDataset(images, 16), tmp_path, device="cpu", progress=False).train()
    prior = scoremed.load_prior(tmp_path)
    assert prior.resolution_free and prior.image_shape == (1, None, None)
    for size in [(48, 48), (96, 70)]:
        x = torch.rand(1, 1, *size)
        assert prior.score(x, torch.full((1,), 0.5)).shape == x.shape
    assert prior.shape_for((50, 60)) == (1, 50, 60)
    with pytest.raises(InputError, match="resolution-free"):
        prior.shape_for()
