"""Shared fixtures: correlated Gaussian data with closed-form answers, a tiny trained prior (trained once
per session) and ``device`` (the CPU always, CUDA too when present)."""
from __future__ import annotations

import math

import pytest
import torch

import scoremed
from scoremed.training.config import load_config
from scoremed.training import Trainer
from scoremed.data import training_dataset
from scoremed.configs import find_config


# Small tensors dominate the tests; one thread avoids oversubscription on shared CI cores.
torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each test taking ``device`` runs on the CPU, and on CUDA when a GPU is present."""
    return torch.device(request.param)


def smooth_gaussian(h: int = 8, length: float = 2.0, var: float = 0.05, mean: float = 0.5):
    """Mean (D,) and squared-exponential covariance (D, D) over an h x h image, float64."""
    g = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij"), -1).reshape(-1, 2).double()
    cov = var * torch.exp(-((g[:, None] - g[None]) ** 2).sum(-1) / (2 * length ** 2))
    cov = cov + 1e-3 * torch.eye(h * h, dtype=torch.float64)
    return torch.full((h * h,), mean, dtype=torch.float64), cov


def random_gaussian(d: int = 4, seed: int = 0, mean_scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    return mean_scale * torch.randn(d, generator=g, dtype=torch.float64), cov


def bits_per_dim(logp: torch.Tensor, d: int) -> torch.Tensor:
    return -logp / (d * math.log(2))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A run folder of the smoke config trained for 60 steps (a few seconds)."""
    out = tmp_path_factory.mktemp("smoke_run")
    config = load_config(find_config("smoke"))
    Trainer(config, training_dataset(config), out, device="cpu", progress=False).train(60)
    return out


@pytest.fixture(scope="session")
def smoke_prior(smoke_run):
    return scoremed.load_prior(smoke_run)


#: sizes of the .npy training files of the smoke-patch prior (mixed, none a multiple of its 32 patches)
PATCH_TRAINING_SIZES = [(40, 56), (64, 64), (48, 72), (80, 36)]


@pytest.fixture(scope="session")
def smoke_patch_run(tmp_path_factory):
    """A run folder of the smoke-patch config (a resolution-free prior on 32 x 32 patches) trained for 60
    steps on .npy files of mixed sizes (a few seconds)."""
    import dataclasses

    import numpy as np

    root = tmp_path_factory.mktemp("smoke_patch")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(PATCH_TRAINING_SIZES):
        yy, xx = np.mgrid[:h, :w]
        ellipse = ((xx - w / 2) / (0.4 * w)) ** 2 + ((yy - h / 2) / (0.45 * h)) ** 2 < 1
        np.save(data / f"image{i}.npy", (0.6 * ellipse + 0.1 * rng.random((h, w))).astype(np.float32))
    config = load_config(find_config("smoke-patch"))
    config.data = dataclasses.replace(config.data, paths=[str(data)])
    Trainer(config, training_dataset(config), root / "run", device="cpu", progress=False).train(60)
    return root / "run"


@pytest.fixture(scope="session")
def smoke_patch_prior(smoke_patch_run):
    return scoremed.load_prior(smoke_patch_run)
