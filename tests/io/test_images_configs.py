"""2D image files in and out, percentile scaling, and the shipped configs found through the package."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from scoremed.configs import CONFIG_DIR, config_names, find_config
from scoremed.errors import InputError
from scoremed.io.images import load_image, percentile_window, save_png, to_unit_range
from scoremed.networks.published import published_configs
from scoremed.training.config import load_config


def test_percentile_window_is_numpy_percentiles_with_a_min_max_fallback():
    data = np.random.default_rng(0).random(1000)
    assert percentile_window(data) == tuple(np.percentile(data, [0.5, 99.5]))
    spike = np.zeros(1000)
    spike[3] = 2.0
    assert percentile_window(spike) == (0.0, 2.0)
    with pytest.raises(InputError, match="^input: the image is constant"):
        percentile_window(np.full(10, 3.0), argument="input")
    unit = to_unit_range(data)
    assert unit.min() == 0.0 and unit.max() == 1.0 and unit.dtype == np.float32


def test_png_round_trip_and_gray_from_rgb(tmp_path):
    yy, xx = np.mgrid[0:1:16j, 0:1:16j]
    rgb = torch.from_numpy(np.stack([xx, yy, 0.5 * (xx + yy)])).float()
    save_png(tmp_path / "rgb.png", rgb)
    color = load_image(tmp_path / "rgb.png", 3, (16, 16))
    assert color.shape == (3, 16, 16)
    assert np.corrcoef(color.flatten().numpy(), rgb.flatten().numpy())[0, 1] > 0.999
    gray = load_image(tmp_path / "rgb.png", 1, (8, 8))
    assert gray.shape == (1, 8, 8) and float(gray.min()) >= 0 and float(gray.max()) <= 1
    with pytest.raises(InputError, match="^images: file not found"):
        load_image(tmp_path / "missing.png", 1, (8, 8), argument="images")
    np.save(tmp_path / "two.npy", np.zeros((2, 4, 4, 4)))
    with pytest.raises(InputError, match="^path: expected a 2D image"):
        load_image(tmp_path / "two.npy", 1, (8, 8))


def test_shipped_configs_are_found_through_the_package():
    assert {"smoke", "mri-brain", "ct-phantom", "natural"} <= set(config_names())
    assert find_config("smoke") == CONFIG_DIR / "smoke.yaml" and CONFIG_DIR.name == "configs"
    assert load_config(find_config("smoke")).name == "smoke"
    assert published_configs() and (CONFIG_DIR / "published").is_dir()
    with pytest.raises(InputError, match=r"^config: no file 'nope' .*known: \['ct-phantom'"):
        find_config("nope")
